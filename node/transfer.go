package node

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/node/api"
)

// ManifestPath is where export writes, and import looks for, the manifest beside a weights
// file: model.safetensors → model.manifest.cbor.
func ManifestPath(weightsPath string) string { return store.ExportManifestPath(weightsPath) }

// ExportExpert writes a hosted expert's weights (a safetensors file, byte for byte the blob its
// manifest links to) and its manifest (canonical dag-cbor, whose CID is the expert's ID).
func (r *Repo) ExportExpert(ctx context.Context, ref, path string) (*api.ExportReport, error) {
	st, id, m, err := r.Expert(ctx, ref)
	if err != nil {
		return nil, err
	}
	w, err := st.Weights(ctx, m)
	if err != nil {
		return nil, err
	}
	mb, err := st.GetManifestBytes(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(path, w, 0o644); err != nil {
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	mp := ManifestPath(path)
	if err := WriteFileAtomic(mp, mb, 0o644); err != nil {
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	return &api.ExportReport{ID: id.String(), WeightsFile: path, ManifestFile: mp, Bytes: int64(len(w))}, nil
}

// ImportExpert stores an expert from a weights file. With a manifest beside it (as export
// writes), the expert keeps its ID, and the weights must be exactly the ones the manifest names.
// The manifest must carry its publisher's valid signature. Without one, the architecture comes
// from the file's metadata and a new manifest is made, signed by this node.
func (r *Repo) ImportExpert(ctx context.Context, path string, o api.ImportOptions) (*api.ImportReport, error) {
	exp, err := store.ReadExport(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	w := exp.Weights
	st, err := r.Store()
	if err != nil {
		return nil, err
	}
	if m := exp.Manifest; m != nil {
		// The manifest names its publisher: it is kept only with the publisher's signature.
		if len(m.Signature) == 0 {
			return nil, fmt.Errorf("import %s: the manifest beside it is unsigned; move the manifest away to import the weights as a new expert signed by this node", path)
		}
		if err := m.Verify(VerifyPeerSignature); err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		id, err := st.PutExpert(ctx, m, w)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		return &api.ImportReport{ID: id.String(), Name: m.Name, WithManifest: true, Params: m.Params}, nil
	}
	net, err := experts.DecodeWeights(w)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	name := o.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), ".safetensors")
	}
	m := &experts.Manifest{Name: name, Domains: o.Domains, Input: experts.InputSpec{Kind: experts.InputVector},
		Meta: map[string]string{"imported_from": filepath.Base(path)}}
	if len(m.Domains) == 0 {
		m.Domains = []string{name}
	}
	m.Output.Kind = experts.OutputVector
	if net.Arch.Output == experts.OutputSoftmax {
		m.Output.Kind = experts.OutputClasses
		m.Output.Labels = o.Labels
		if m.Output.Labels == nil {
			for i := 0; i < net.OutputDim(); i++ {
				m.Output.Labels = append(m.Output.Labels, fmt.Sprint(i))
			}
		}
	}
	id, err := st.AddNetwork(ctx, m, net, r.Identity)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return &api.ImportReport{ID: id.String(), Name: name, Params: m.Params}, nil
}
