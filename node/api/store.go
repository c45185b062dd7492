package api

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/meshnode/meshnode/distill/validate"
	"github.com/meshnode/meshnode/experts"
)

// StoreOps are the commands that write or read a repo's store: its experts and its blobs. A
// command runs them in this process when no daemon holds the store (LocalOps) and through the
// daemon's API when one does (*Client): one code path, the same reports either way. Long work
// (train, validate) reports progress through its request and stops when ctx ends.
type StoreOps interface {
	ListExperts(ctx context.Context) ([]HostedExpert, error)
	InspectExpert(ctx context.Context, ref string) (*InspectReport, error)
	TrainExpert(ctx context.Context, req TrainRequest) (*TrainReport, error)
	EvalExpert(ctx context.Context, ref, ds string, limit int) (*EvalReport, error)
	ExportExpert(ctx context.Context, ref, path string) (*ExportReport, error)
	ImportExpert(ctx context.Context, path string, o ImportOptions) (*ImportReport, error)
	ValidateExperts(ctx context.Context, req ValidateRequest) (*validate.Report, error)
	Distill(ctx context.Context, req DistillRequest) (*DistillResult, error)
	Generate(ctx context.Context, req GenerateRequest) (*GenerateResult, error)
	PutBlob(ctx context.Context, req BlobPutRequest) (*BlobInfo, error)
	PinBlob(ctx context.Context, c string) error
	UnpinBlob(ctx context.Context, c string) error
	GCBlobs(ctx context.Context) (*GCReport, error)
}

// ParseCID reads a blob's CID as a user or a request gave it.
func ParseCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, ErrBadRequest.Errorf("%q is not a CID: %w", s, err)
	}
	return c, nil
}

// API paths of the store's commands (TrainExpert has PathExpertTrain, the blob commands
// PathBlob*, ListExperts PathExperts).
const (
	PathExpertEval    = "/api/v1/experts/eval"
	PathExpertExport  = "/api/v1/experts/export"
	PathExpertImport  = "/api/v1/experts/import"
	PathExpertInspect = "/api/v1/experts/inspect" // GET ?ref=ID or name
	PathValidate      = "/api/v1/validate"        // a job: ValidateProgress lines, then a validate.Report
)

// InspectReport is an expert's manifest with the outcome of checking its signature.
type InspectReport struct {
	ID        string            `json:"id"`
	Signature string            `json:"signature_check"` // "valid" or why not
	Manifest  *experts.Manifest `json:"manifest"`
}

// ValidateRequest is the body of PathValidate: validate.Options as data. Suites are absolute
// paths (the daemon reads them).
type ValidateRequest struct {
	Level    validate.Level         `json:"level"`
	Suites   []string               `json:"suites,omitempty"`
	Seed     uint64                 `json:"seed,omitempty"`
	Progress func(ValidateProgress) `json:"-"`
}

// ValidateProgress says which expert a validation measures now.
type ValidateProgress struct {
	Done   int    `json:"done"`
	Total  int    `json:"total"`
	Expert string `json:"expert"`
}

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
	if err := c.Post(ctx, PathExpertEval, EvalRequest{Ref: ref, Dataset: AbsDataset(ds), Limit: limit}, &out); err != nil {
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

// AbsDataset makes a csv:PATH data set absolute, for a daemon whose working folder is not the
// command's.
func AbsDataset(ds string) string {
	if path, ok := strings.CutPrefix(ds, "csv:"); ok {
		if abs, err := filepath.Abs(path); err == nil {
			return "csv:" + abs
		}
	}
	return ds
}

// ListExperts lists the daemon's hosted experts.
func (c *Client) ListExperts(ctx context.Context) ([]HostedExpert, error) {
	var out []HostedExpert
	if err := c.Get(ctx, PathExperts, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// InspectExpert reads an expert's manifest from the daemon's store.
func (c *Client) InspectExpert(ctx context.Context, ref string) (*InspectReport, error) {
	var out InspectReport
	if err := c.Get(ctx, PathExpertInspect+"?ref="+url.QueryEscape(ref), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ValidateExperts benchmarks the daemon's experts in the daemon, handing its progress to
// req.Progress; cancelling ctx cancels it.
func (c *Client) ValidateExperts(ctx context.Context, req ValidateRequest) (*validate.Report, error) {
	req.Suites = slices.Clone(req.Suites) // the caller's slice stays as it was
	for i := range req.Suites {
		if err := AbsPaths("validate", &req.Suites[i]); err != nil {
			return nil, err
		}
	}
	return RunJob[ValidateProgress, validate.Report](ctx, c, PathValidate, req, req.Progress)
}

// PutBlob has the daemon import the file at req.Path, handing its progress to req.Progress
// (a streamed answer) when set.
func (c *Client) PutBlob(ctx context.Context, req BlobPutRequest) (*BlobInfo, error) {
	abs, err := filepath.Abs(req.Path)
	if err != nil {
		return nil, fmt.Errorf("blob put %s: %w", req.Path, err)
	}
	req.Path = abs
	if req.Progress != nil {
		req.Stream = true
		return RunJob[BlobPutProgress, BlobInfo](ctx, c, PathBlobPut, req, req.Progress)
	}
	var out BlobInfo
	if err := c.Post(ctx, PathBlobPut, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PinBlob keeps a blob of the daemon's store through gc.
func (c *Client) PinBlob(ctx context.Context, id string) error {
	return c.Post(ctx, PathBlobPin, CIDRequest{CID: id}, nil)
}

// UnpinBlob lets the daemon's gc remove a blob.
func (c *Client) UnpinBlob(ctx context.Context, id string) error {
	return c.Post(ctx, PathBlobUnpin, CIDRequest{CID: id}, nil)
}

// GCBlobs runs the daemon's gc.
func (c *Client) GCBlobs(ctx context.Context) (*GCReport, error) {
	var out GCReport
	if err := c.Post(ctx, PathBlobGC, struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BlobPutRequest is the body of PathBlobPut; Path is absolute (the daemon reads it).
type BlobPutRequest struct {
	Path    string `json:"path"`
	Private bool   `json:"private,omitempty"`
	// Stream asks for a job's answer: BlobPutProgress lines, then the BlobInfo (else one BlobInfo).
	Stream   bool                  `json:"progress,omitempty"`
	Progress func(BlobPutProgress) `json:"-"`
}

// BlobPutProgress is how much of the file a put has stored.
type BlobPutProgress struct {
	Bytes int64 `json:"bytes"`
	Total int64 `json:"total"`
}

// CIDRequest is the body of PathBlobPin and PathBlobUnpin.
type CIDRequest struct {
	CID string `json:"cid"`
}

// ExportReport says what an export wrote.
type ExportReport struct {
	ID           string `json:"id"`
	WeightsFile  string `json:"weights_file"`
	ManifestFile string `json:"manifest_file"`
	Bytes        int64  `json:"bytes"`
}

// ImportOptions describe an import without a manifest.
type ImportOptions struct {
	Name    string   `json:"name,omitempty"`    // default: the file name
	Domains []string `json:"domains,omitempty"` // default: the name
	Labels  []string `json:"labels,omitempty"`  // class labels; default "0".."n-1"
}

// ImportReport says what an import stored.
type ImportReport struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	WithManifest bool   `json:"with_manifest"`
	Params       int    `json:"params"`
}
