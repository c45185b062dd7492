package node

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/distill/validate"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/node/api"
)

// LocalOps runs api.StoreOps on a repo opened in this process, with a data set catalog.
type LocalOps struct {
	Repo    *Repo
	Catalog dataset.Catalog
}

// TrainExpert trains into the repo's store (Repo.TrainExpert).
func (l LocalOps) TrainExpert(ctx context.Context, req api.TrainRequest) (*api.TrainReport, error) {
	return l.Repo.TrainExpert(ctx, l.Catalog, req)
}

// EvalExpert evaluates a stored expert (Repo.EvalExpert).
func (l LocalOps) EvalExpert(ctx context.Context, ref, ds string, limit int) (*api.EvalReport, error) {
	return l.Repo.EvalExpert(ctx, l.Catalog, ref, ds, limit)
}

// ExportExpert writes a stored expert to files (Repo.ExportExpert).
func (l LocalOps) ExportExpert(ctx context.Context, ref, path string) (*api.ExportReport, error) {
	abs, err := filepath.Abs(path) // as the daemon reports it
	if err != nil {
		return nil, fmt.Errorf("export to %s: %w", path, err)
	}
	return l.Repo.ExportExpert(ctx, ref, abs)
}

// ImportExpert stores an expert from a file (Repo.ImportExpert).
func (l LocalOps) ImportExpert(ctx context.Context, path string, o api.ImportOptions) (*api.ImportReport, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return l.Repo.ImportExpert(ctx, abs, o)
}

// ListExperts lists the hosted experts (Repo.HostedExperts).
func (l LocalOps) ListExperts(ctx context.Context) ([]api.HostedExpert, error) {
	return l.Repo.HostedExperts(ctx, nil)
}

// InspectExpert reads an expert's manifest and checks its signature (Repo.InspectExpert).
func (l LocalOps) InspectExpert(ctx context.Context, ref string) (*api.InspectReport, error) {
	return l.Repo.InspectExpert(ctx, ref)
}

// ValidateExperts benchmarks the repo's experts (Repo.ValidateExperts).
func (l LocalOps) ValidateExperts(ctx context.Context, req api.ValidateRequest) (*validate.Report, error) {
	return l.Repo.ValidateExperts(ctx, l.Catalog, req)
}

// PutBlob imports a file as a pinned blob, public unless private (BlobKeeper.Put). Without a
// daemon nothing serves it yet; the daemon announces public blobs when it starts.
func (l LocalOps) PutBlob(ctx context.Context, req api.BlobPutRequest) (*api.BlobInfo, error) {
	k, err := l.Repo.Blobs()
	if err != nil {
		return nil, err
	}
	if req.Path, err = filepath.Abs(req.Path); err != nil {
		return nil, fmt.Errorf("blob put: %w", err)
	}
	info, _, err := k.Put(ctx, req)
	if err != nil {
		return nil, err
	}
	return &info, nil
}

// PinBlob keeps a held blob through gc (BlobKeeper.Pin).
func (l LocalOps) PinBlob(ctx context.Context, c string) error {
	return l.withBlob(ctx, c, (*BlobKeeper).Pin)
}

// UnpinBlob lets gc remove a blob (BlobKeeper.Unpin).
func (l LocalOps) UnpinBlob(ctx context.Context, c string) error {
	return l.withBlob(ctx, c, (*BlobKeeper).Unpin)
}

func (l LocalOps) withBlob(ctx context.Context, c string, f func(*BlobKeeper, context.Context, cid.Cid) error) error {
	id, err := api.ParseCID(c)
	if err != nil {
		return err
	}
	k, err := l.Repo.Blobs()
	if err != nil {
		return err
	}
	return f(k, ctx, id)
}

// GCBlobs deletes the blocks nothing keeps (BlobKeeper.GC).
func (l LocalOps) GCBlobs(ctx context.Context) (*api.GCReport, error) {
	k, err := l.Repo.Blobs()
	if err != nil {
		return nil, err
	}
	rep, err := k.GC(ctx)
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

var (
	_ api.StoreOps = LocalOps{}
	_ api.StoreOps = (*api.Client)(nil)
)
