package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/meshnode/meshnode/experts"
)

// ExportManifestPath is where an exported expert's manifest sits beside its weights file:
// model.safetensors → model.manifest.cbor.
func ExportManifestPath(weightsPath string) string {
	return strings.TrimSuffix(weightsPath, ".safetensors") + ".manifest.cbor"
}

// Export is an exported expert read back from files: the weights, and the manifest when one
// was beside them (Manifest nil otherwise).
type Export struct {
	Weights       []byte
	Manifest      *experts.Manifest
	ManifestBytes []byte // canonical encoding: its CID is the expert's ID
}

// ReadExport reads an exported expert: the weights file and, when present, the manifest beside
// it, both bounded in size. A manifest present must decode and name exactly these weights; its
// signature is the caller's to check.
func ReadExport(ctx context.Context, weightsPath string) (*Export, error) {
	w, err := ReadFileLimited(weightsPath, MaxWeightsSize)
	if err != nil {
		return nil, err
	}
	e := &Export{Weights: w}
	mp := ExportManifestPath(weightsPath)
	mb, err := ReadFileLimited(mp, experts.MaxManifestSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return e, nil
	case err != nil:
		return nil, err
	}
	m, err := experts.DecodeManifest(mb)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", mp, err)
	}
	if err := CheckWeights(ctx, m, w); err != nil {
		return nil, fmt.Errorf("%s: %w", weightsPath, err)
	}
	e.Manifest, e.ManifestBytes = m, mb
	return e, nil
}

// ReadFileLimited reads a whole file, refusing one larger than limit bytes before reading it.
func ReadFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes is over the %d-byte limit", path, fi.Size(), limit)
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}
