package validate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/experts/store"
)

// trained is a test expert and the data it was trained on.
type trained struct {
	net      *experts.Network
	manifest *experts.Manifest
}

// trainExpert trains a one-hidden-layer MLP on train and returns it with a
// manifest completed as store.AddNetwork would (without a signature).
func trainExpert(t *testing.T, name string, domains []string, input experts.InputSpec, train *dataset.Dataset, hidden, epochs int) trained {
	t.Helper()
	arch := experts.MLP(train.Dim, []int{hidden}, "relu", len(train.Classes), experts.OutputSoftmax)
	net, err := experts.NewNetwork(arch, 1)
	if err != nil {
		t.Fatal(err)
	}
	if epochs > 0 {
		if _, err := experts.Train(context.Background(), net, experts.Samples{X: train.X, Dim: train.Dim, Labels: train.Y},
			experts.Samples{}, experts.TrainConfig{Epochs: epochs, BatchSize: 32, LearningRate: 3e-3, Seed: 1}); err != nil {
			t.Fatal(err)
		}
	}
	input.Dim = train.Dim
	m := &experts.Manifest{Name: name, Domains: domains, Input: input,
		Output: experts.OutputSpec{Kind: experts.OutputClasses, Labels: train.Classes}}
	return trained{net: net, manifest: m}
}

// export writes the expert as `meshnode expert export` does: the weights
// blob and the canonical manifest beside it. It returns the weights path.
func export(t *testing.T, dir string, e trained, withManifest bool) string {
	t.Helper()
	w, err := experts.EncodeWeights(e.net)
	if err != nil {
		t.Fatal(err)
	}
	m := e.manifest
	wc, size, err := store.BlobCID(context.Background(), bytesReader(w))
	if err != nil {
		t.Fatal(err)
	}
	m.Arch, m.Params, m.Input.Dim, m.Output.Dim = e.net.Arch, e.net.ParamCount(), e.net.InputDim(), e.net.OutputDim()
	m.Weights, m.WeightsSize = wc, size
	p := filepath.Join(dir, m.Name+".safetensors")
	if err := os.WriteFile(p, w, 0o644); err != nil {
		t.Fatal(err)
	}
	if withManifest {
		enc, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(store.ExportManifestPath(p), enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
