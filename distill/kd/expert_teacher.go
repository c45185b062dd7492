package kd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
)

// ExpertSource finds hosted experts; *store.Store implements it.
type ExpertSource interface {
	Resolve(ctx context.Context, ref string) (cid.Cid, error)
	GetExpert(ctx context.Context, id cid.Cid) (*experts.Manifest, error)
	LoadNetwork(ctx context.Context, m *experts.Manifest) (*experts.Network, error)
}

// ExpertTeacher is a micro-expert used as a teacher.
type ExpertTeacher struct {
	net  *experts.Network
	info TeacherInfo
	// Manifest is the teacher's manifest, nil for a bare weights file.
	Manifest *experts.Manifest
}

var _ VectorTeacher = (*ExpertTeacher)(nil)

// Info describes the teacher.
func (t *ExpertTeacher) Info() TeacherInfo { return t.info }

// Network is the teacher's network.
func (t *ExpertTeacher) Network() *experts.Network { return t.net }

// Outputs runs the teacher's network in batches.
func (t *ExpertTeacher) Outputs(ctx context.Context, x []float64, rows int) ([]float64, error) {
	return batchForward(ctx, t.net.Forward, x, rows, t.net.InputDim(), t.net.OutputDim())
}

// batchForward runs f over rows inputs of width in, 1024 rows at a time, checking ctx between
// batches.
func batchForward(ctx context.Context, f func([]float64, int) ([]float64, error), x []float64, rows, in, out int) ([]float64, error) {
	if rows <= 0 || len(x) != rows*in {
		return nil, fmt.Errorf("teacher: %d values for %d rows of width %d", len(x), rows, in)
	}
	const batch = 1024
	y := make([]float64, 0, rows*out)
	for off := 0; off < rows; off += batch {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("teacher: %w", err)
		}
		b := min(batch, rows-off)
		part, err := f(x[off*in:(off+b)*in], b)
		if err != nil {
			return nil, fmt.Errorf("teacher: %w", err)
		}
		y = append(y, part...)
	}
	return y, nil
}

// manifestPathFor is where `expert export` puts the manifest of a weights file.

// OpenExpert opens an expert teacher: ref is a weights file (when a file of that name exists
// or ref ends in .safetensors) or the ID or name of an expert in src.
func OpenExpert(ctx context.Context, ref string, src ExpertSource) (*ExpertTeacher, error) {
	if fi, err := os.Stat(ref); err == nil && !fi.IsDir() || strings.HasSuffix(ref, ".safetensors") {
		return openExpertFile(ctx, ref)
	}
	if src == nil {
		return nil, fmt.Errorf("teacher expert:%s: no such file, and no repo to look up expert IDs and names in", ref)
	}
	id, err := src.Resolve(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("teacher expert:%s: %w", ref, err)
	}
	m, err := src.GetExpert(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("teacher expert:%s: %w", ref, err)
	}
	net, err := src.LoadNetwork(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("teacher expert:%s: %w", ref, err)
	}
	return newExpertTeacher(ref, net, m, id, "manifest")
}

func openExpertFile(ctx context.Context, path string) (*ExpertTeacher, error) {
	exp, err := store.ReadExport(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("teacher expert:%s: %w", path, err)
	}
	w := exp.Weights
	net, err := experts.DecodeWeights(w)
	if err != nil {
		return nil, fmt.Errorf("teacher expert:%s: %w", path, err)
	}
	if exp.Manifest != nil {
		id, err := experts.ManifestCID(exp.ManifestBytes)
		if err != nil {
			return nil, err
		}
		return newExpertTeacher(path, net, exp.Manifest, id, "manifest")
	}
	id, _, err := store.BlobCID(ctx, bytes.NewReader(w))
	if err != nil {
		return nil, fmt.Errorf("teacher expert:%s: %w", path, err)
	}
	return newExpertTeacher(path, net, nil, id, "weights")
}

func newExpertTeacher(ref string, net *experts.Network, m *experts.Manifest, id cid.Cid, idKind string) (*ExpertTeacher, error) {
	info := TeacherInfo{Kind: KindExpert, Spec: "expert:" + ref, ID: id, IDKind: idKind, Params: net.ParamCount(),
		Meta: map[string]string{"kind": string(KindExpert), "arch": net.Arch.String()}}
	if m != nil {
		info.Name, info.Input, info.Output = m.Name, m.Input, m.Output
		if ds := m.Meta["dataset"]; ds != "" {
			info.Meta["dataset"] = ds
		}
	} else {
		info.Name = strings.TrimSuffix(filepath.Base(ref), ".safetensors")
		info.Input = experts.InputSpec{Kind: experts.InputVector, Dim: net.InputDim()}
		info.Output = experts.OutputSpec{Kind: experts.OutputVector, Dim: net.OutputDim()}
		if net.Arch.Output == experts.OutputSoftmax {
			info.Output.Kind = experts.OutputClasses
			for i := 0; i < net.OutputDim(); i++ {
				info.Output.Labels = append(info.Output.Labels, fmt.Sprint(i))
			}
		}
	}
	info.Meta["name"] = info.Name
	return &ExpertTeacher{net: net, info: info, Manifest: m}, nil
}
