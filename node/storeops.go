package node

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/meshnode/meshnode/experts/dataset"
)

// ExpertOps are the commands that write or read a repo's expert store. A command runs them in
// this process when no daemon holds the store (LocalOps) and through the daemon's API when one
// does (*Client): one code path, the same reports either way.
type ExpertOps interface {
	TrainExpert(ctx context.Context, req TrainRequest) (*TrainReport, error)
	EvalExpert(ctx context.Context, ref, ds string, limit int) (*EvalReport, error)
	ExportExpert(ctx context.Context, ref, path string) (*ExportReport, error)
	ImportExpert(ctx context.Context, path string, o ImportOptions) (*ImportReport, error)
}

// LocalOps runs ExpertOps on a repo opened in this process, with a data set catalog.
type LocalOps struct {
	Repo    *Repo
	Catalog dataset.Catalog
}

// TrainExpert trains into the repo's store (Repo.TrainExpert).
func (l LocalOps) TrainExpert(ctx context.Context, req TrainRequest) (*TrainReport, error) {
	return l.Repo.TrainExpert(ctx, l.Catalog, req)
}

// EvalExpert evaluates a stored expert (Repo.EvalExpert).
func (l LocalOps) EvalExpert(ctx context.Context, ref, ds string, limit int) (*EvalReport, error) {
	return l.Repo.EvalExpert(ctx, l.Catalog, ref, ds, limit)
}

// ExportExpert writes a stored expert to files (Repo.ExportExpert).
func (l LocalOps) ExportExpert(ctx context.Context, ref, path string) (*ExportReport, error) {
	return l.Repo.ExportExpert(ctx, ref, path)
}

// ImportExpert stores an expert from a file (Repo.ImportExpert).
func (l LocalOps) ImportExpert(ctx context.Context, path string, o ImportOptions) (*ImportReport, error) {
	return l.Repo.ImportExpert(ctx, path, o)
}

// API paths of the expert store's commands (TrainExpert has PathExpertTrain).
const (
	PathExpertEval   = "/api/v1/experts/eval"
	PathExpertExport = "/api/v1/experts/export"
	PathExpertImport = "/api/v1/experts/import"
)

// EvalRequest is the body of PathExpertEval.
type EvalRequest struct {
	Ref     string `json:"ref"`
	Dataset string `json:"dataset"`
	Limit   int    `json:"limit,omitempty"`
}

// ExportRequest is the body of PathExpertExport; Path is absolute (the daemon writes it).
type ExportRequest struct {
	Ref  string `json:"ref"`
	Path string `json:"path"`
}

// ExpertImportRequest is the body of PathExpertImport; Path is absolute (the daemon reads it).
type ExpertImportRequest struct {
	Path string `json:"path"`
	ImportOptions
}

// EvalExpert evaluates an expert in the daemon's store.
func (c *Client) EvalExpert(ctx context.Context, ref, ds string, limit int) (*EvalReport, error) {
	var out EvalReport
	if err := c.Post(ctx, PathExpertEval, EvalRequest{Ref: ref, Dataset: absDataset(ds), Limit: limit}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExportExpert has the daemon write an expert of its store to path.
func (c *Client) ExportExpert(ctx context.Context, ref, path string) (*ExportReport, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("export to %s: %w", path, err)
	}
	var out ExportReport
	if err := c.Post(ctx, PathExpertExport, ExportRequest{Ref: ref, Path: abs}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ImportExpert has the daemon store an expert from the file at path.
func (c *Client) ImportExpert(ctx context.Context, path string, o ImportOptions) (*ImportReport, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	var out ImportReport
	if err := c.Post(ctx, PathExpertImport, ExpertImportRequest{Path: abs, ImportOptions: o}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// absDataset makes a csv:PATH data set absolute, for a daemon whose working folder is not the
// command's.
func absDataset(ds string) string {
	if path, ok := strings.CutPrefix(ds, "csv:"); ok {
		if abs, err := filepath.Abs(path); err == nil {
			return "csv:" + abs
		}
	}
	return ds
}

var (
	_ ExpertOps = LocalOps{}
	_ ExpertOps = (*Client)(nil)
)
