package validate

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
)

// Expert is one expert to validate: its manifest, its encoded weights
// (the safetensors blob the manifest links to) and the decoded network.
type Expert struct {
	ID       string // the manifest's CID, "" without a manifest
	Source   string // file or repo it came from, for the report
	Manifest *experts.Manifest
	Weights  []byte
	Net      *experts.Network
}

// NewExpert checks weights against the manifest (size, content ID,
// architecture) and decodes them. m may be nil for a bare weights file: the
// expert is then named after source, takes vector input and answers classes
// "0".."n-1", as `meshnode expert import` would treat it.
func NewExpert(ctx context.Context, source string, m *experts.Manifest, weights []byte) (Expert, error) {
	e := Expert{Source: source, Manifest: m, Weights: weights}
	if m != nil {
		if err := store.CheckWeights(ctx, m, weights); err != nil {
			return Expert{}, fmt.Errorf("expert %s: %w", source, err)
		}
		id, err := m.CID()
		if err != nil {
			return Expert{}, fmt.Errorf("expert %s: %w", source, err)
		}
		e.ID = id.String()
	}
	net, err := experts.DecodeWeights(weights)
	if err != nil {
		return Expert{}, fmt.Errorf("expert %s: %w", source, err)
	}
	e.Net = net
	if m == nil {
		name := strings.TrimSuffix(filepath.Base(source), ".safetensors")
		e.Manifest = &experts.Manifest{Name: name, Domains: []string{name}, Arch: net.Arch, Params: net.ParamCount(),
			Input: experts.InputSpec{Kind: experts.InputVector, Dim: net.InputDim()}}
		e.Manifest.Output = experts.OutputSpec{Kind: experts.OutputVector, Dim: net.OutputDim()}
		if net.Arch.Output == experts.OutputSoftmax {
			e.Manifest.Output.Kind = experts.OutputClasses
			for i := 0; i < net.OutputDim(); i++ {
				e.Manifest.Output.Labels = append(e.Manifest.Output.Labels, strconv.Itoa(i))
			}
		}
	}
	return e, nil
}

// Name is the manifest's name.
func (e Expert) Name() string { return e.Manifest.Name }

// LoadDir loads every exported expert under dir (recursively, skipping
// hidden folders): each NAME.safetensors file with, when present, the
// NAME.manifest.cbor beside it — the pair `meshnode expert export` writes.
// A file that fails to load is returned in failed with its reason instead
// of stopping the others. A dir that does not exist is an error.
func LoadDir(ctx context.Context, dir string) (loaded []Expert, failed []Result, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("experts folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("experts folder %s: not a folder", dir)
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && strings.HasPrefix(d.Name(), ".") {
			return fs.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".safetensors") {
			files = append(files, p)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("experts folder %s: %w", dir, err)
	}
	slices.Sort(files)
	for _, f := range files {
		e, err := loadFile(ctx, f)
		if err != nil {
			failed = append(failed, Result{Expert: filepath.Base(f), Source: f, Status: StatusFailed, Reason: err.Error()})
			continue
		}
		loaded = append(loaded, e)
	}
	return loaded, failed, nil
}

func loadFile(ctx context.Context, path string) (Expert, error) {
	exp, err := store.ReadExport(ctx, path)
	if err != nil {
		return Expert{}, err
	}
	return NewExpert(ctx, path, exp.Manifest, exp.Weights)
}
