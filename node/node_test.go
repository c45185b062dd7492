package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	nlp "github.com/nlpodyssey/safetensors"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/node/api"
)

func newRepo(t *testing.T) *Repo {
	t.Helper()
	r, err := Init(context.Background(), filepath.Join(t.TempDir(), "repo"), InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestFashionMNISTExpert is the foundation's acceptance test: a 784-100-10 expert (79,510
// parameters) trained on the 60,000 Fashion-MNIST training images reaches 0.85 test accuracy.
func TestFashionMNISTExpert(t *testing.T) {
	r := newRepo(t)
	rep, err := r.TrainExpert(context.Background(), dataset.DefaultCatalog(), api.TrainRequest{
		Dataset: "fashion-mnist", Hidden: []int{100}, Epochs: 8, Seed: 1, Patience: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("784-100-10: test accuracy %.4f after %d epochs in %.1fs (%.0f samples/s)",
		rep.Test.Accuracy, len(rep.Epochs), rep.Seconds, rep.SamplesPS)
	if rep.Manifest.Params != 79510 {
		t.Fatalf("%d parameters, want 79510", rep.Manifest.Params)
	}
	if rep.Test.Accuracy < 0.85 || rep.Test.Samples != 10000 {
		t.Fatalf("test accuracy %.4f on %d samples, want ≥ 0.85 on 10000", rep.Test.Accuracy, rep.Test.Samples)
	}
	// The recorded evaluation is what a fresh evaluation of the stored expert measures.
	ev, err := r.EvalExpert(context.Background(), dataset.DefaultCatalog(), rep.ID, "fashion-mnist", 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Evaluation.Accuracy != rep.Manifest.Evals[0].Value || ev.Digest != rep.Manifest.Evals[0].Digest {
		t.Fatalf("stored expert evaluates to %.6f on %s, manifest records %.6f on %s",
			ev.Evaluation.Accuracy, ev.Digest, rep.Manifest.Evals[0].Value, rep.Manifest.Evals[0].Digest)
	}
}

func trainDigits(t *testing.T, r *Repo, seed uint64) *api.TrainReport {
	t.Helper()
	rep, err := r.TrainExpert(context.Background(), dataset.DefaultCatalog(), api.TrainRequest{
		Dataset: "digits", Hidden: []int{32}, Epochs: 15, Seed: seed, Patience: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestSameSeedAndDataGiveSameCID(t *testing.T) {
	r := newRepo(t)
	a := trainDigits(t, r, 7)
	b := trainDigits(t, r, 7)
	if a.ID != b.ID {
		t.Fatalf("same seed and data: %s then %s", a.ID, b.ID)
	}
	if a.Test.Accuracy < 0.9 {
		t.Fatalf("digits accuracy %.3f, want ≥ 0.9", a.Test.Accuracy)
	}
	c := trainDigits(t, r, 8)
	if c.ID == a.ID || c.Manifest.Weights.Equals(a.Manifest.Weights) {
		t.Fatal("another seed gave the same expert")
	}
	// Another node trains the same thing: same weights blob, different publisher, so a different
	// manifest ID.
	other := trainDigits(t, newRepo(t), 7)
	if !other.Manifest.Weights.Equals(a.Manifest.Weights) {
		t.Fatalf("weights CID differs between nodes: %s vs %s", other.Manifest.Weights, a.Manifest.Weights)
	}
	if other.ID == a.ID {
		t.Fatal("two publishers produced one manifest ID")
	}
	if n := countExperts(t, r); n != 2 {
		t.Fatalf("index has %d experts, want 2", n)
	}
}

func countExperts(t *testing.T, r *Repo) int {
	t.Helper()
	st, err := r.Store()
	if err != nil {
		t.Fatal(err)
	}
	list, err := st.ListExperts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func TestExportImportKeepsIDAndLoadsElsewhere(t *testing.T) {
	ctx := context.Background()
	a := newRepo(t)
	rep := trainDigits(t, a, 1)
	file := filepath.Join(t.TempDir(), "digits.safetensors")
	if _, err := a.ExportExpert(ctx, rep.ID, file); err != nil {
		t.Fatal(err)
	}
	// An independent safetensors reader loads the exported file.
	raw, _ := os.ReadFile(file)
	st, err := nlp.Deserialize(raw)
	if err != nil {
		t.Fatalf("independent safetensors reader: %v", err)
	}
	w, ok := st.Tensor("layers.0.weight")
	if !ok || len(w.Shape()) != 2 || w.Shape()[0] != 32 || w.Shape()[1] != 64 || w.DType().String() != "F32" {
		t.Fatalf("independent reader sees layers.0.weight %v (ok=%v)", w, ok)
	}
	_, md, err := nlp.ReadMetadata(raw)
	if err != nil || md.Metadata()[experts.MetaArch] == "" {
		t.Fatal("independent reader sees no architecture in the metadata")
	}
	b := newRepo(t)
	imp, err := b.ImportExpert(ctx, file, api.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if imp.ID != rep.ID || !imp.WithManifest {
		t.Fatalf("imported as %s (manifest %v), exported %s", imp.ID, imp.WithManifest, rep.ID)
	}
	// A manifest altered after signing, or with no signature, is refused.
	good, err := os.ReadFile(ManifestPath(file))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		alter      func(*experts.Manifest)
	}{
		{"altered", "signature", func(m *experts.Manifest) { m.Name = "not-what-was-signed" }},
		{"unsigned", "unsigned", func(m *experts.Manifest) { m.Signature = nil }},
	} {
		m, err := experts.DecodeManifest(good)
		if err != nil {
			t.Fatal(err)
		}
		tc.alter(m)
		bad, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ManifestPath(file), bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := newRepo(t).ImportExpert(ctx, file, api.ImportOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("import with an %s manifest: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
	// Without the manifest the same weights become a new expert signed by the importer.
	os.Remove(ManifestPath(file))
	bare, err := b.ImportExpert(ctx, file, api.ImportOptions{Name: "digits-bare"})
	if err != nil {
		t.Fatal(err)
	}
	if bare.ID == rep.ID || bare.WithManifest || bare.Params != rep.Manifest.Params {
		t.Fatalf("bare import: %+v", bare)
	}
	q, err := b.QueryLocal(ctx, "digits-bare", QueryInput{Vector: make([]float64, 64)})
	if err != nil || len(q.Output) != 10 {
		t.Fatalf("query the bare import: %+v %v", q, err)
	}
}

func TestBadInputGivesClearErrors(t *testing.T) {
	ctx := context.Background()
	cat := dataset.DefaultCatalog()
	missing := filepath.Join(t.TempDir(), "nowhere")
	if _, err := Open(missing); !errors.Is(err, ErrNoRepo) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("open a missing repo: %v", err)
	}
	r := newRepo(t)
	if _, err := r.TrainExpert(ctx, cat, api.TrainRequest{Dataset: "mnist-9000", Epochs: 1}); err == nil || !strings.Contains(err.Error(), "fashion-mnist") {
		t.Fatalf("unknown data set: %v (want the known names listed)", err)
	}
	rep := trainDigits(t, r, 1)
	if _, err := r.QueryLocal(ctx, rep.ID, QueryInput{Vector: []float64{1, 2, 3}}); err == nil || !strings.Contains(err.Error(), "dimension 3") {
		t.Fatalf("wrong input dimension: %v", err)
	}
	if _, err := r.QueryLocal(ctx, rep.ID, QueryInput{Text: "hello"}); err == nil || !strings.Contains(err.Error(), "not text") {
		t.Fatalf("text to a vector expert: %v", err)
	}
	if _, err := r.EvalExpert(ctx, cat, rep.ID, "iris", 0); err == nil || !strings.Contains(err.Error(), "features") {
		t.Fatalf("eval on a data set of another width: %v", err)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "d.safetensors")
	if _, err := r.ExportExpert(ctx, rep.ID, file); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(file)
	cases := []struct {
		name    string
		weights []byte
		want    string
	}{
		{"truncated weights", good[:len(good)-100], "weights are"},
		{"flipped byte", flip(good, len(good)-5), "hash to"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(file, tc.weights, 0o644); err != nil {
				t.Fatal(err)
			}
			before := countExperts(t, r)
			_, err := r.ImportExpert(ctx, file, api.ImportOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
			if countExperts(t, r) != before {
				t.Fatal("a rejected import changed the store")
			}
		})
	}
	os.Remove(ManifestPath(file))
	if err := os.WriteFile(file, good[:20], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ImportExpert(ctx, file, api.ImportOptions{}); err == nil || !strings.Contains(err.Error(), "safetensors") {
		t.Fatalf("truncated safetensors without manifest: %v", err)
	}
	if _, err := r.QueryLocal(ctx, cid.NewCidV1(cid.DagCBOR, rep.Manifest.Weights.Hash()).String(), QueryInput{Vector: make([]float64, 64)}); err == nil {
		t.Fatal("query an expert the node does not have: no error")
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0xff
	return c
}

func TestRepoFilesAndReopen(t *testing.T) {
	r := newRepo(t)
	for _, f := range []string{identityFile, tokenFile} {
		fi, err := os.Stat(filepath.Join(r.Path, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, err %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	if _, err := Init(context.Background(), r.Path, InitOptions{}); err == nil {
		t.Fatal("init over an existing repo: no error")
	}
	id := r.Identity.ID()
	r.Close()
	again, err := Open(r.Path)
	if err != nil || again.Identity.ID() != id {
		t.Fatalf("reopen: %v, peer %s vs %s", err, again.Identity.ID(), id)
	}
	tok, err := again.Token()
	if err != nil || len(tok) != 64 {
		t.Fatalf("token %q, %v", tok, err)
	}
}

// TestPartitionWritesUsableNonIIDParts: every training row lands in exactly one part, small
// alpha skews the parts, and a part trains an expert through csv:FILE.
func TestPartitionWritesUsableNonIIDParts(t *testing.T) {
	cat := dataset.DefaultCatalog()
	dir := t.TempDir()
	rep, err := Partition(cat, "digits", 4, 0.1, 3, 0, dir)
	if err != nil {
		t.Fatal(err)
	}
	total, dominated := 0, 0
	for _, p := range rep.Parts {
		total += p.Samples
		top := 0
		for _, c := range p.ClassCounts {
			top = max(top, c)
		}
		if p.Samples > 0 && float64(top)/float64(p.Samples) > 0.3 {
			dominated++
		}
	}
	train, _, _ := cat.Load("digits", 0)
	if total != train.Len() {
		t.Fatalf("parts hold %d rows, the training part has %d", total, train.Len())
	}
	if dominated < 3 {
		t.Fatalf("alpha 0.1 should give skewed parts; only %d of 4 have a class above 30%%: %+v", dominated, rep.Parts)
	}
	r := newRepo(t)
	tr, err := r.TrainExpert(context.Background(), cat, api.TrainRequest{Dataset: "csv:" + rep.Parts[0].File, Hidden: []int{16}, Epochs: 5, Patience: -1})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Manifest.Input.Dim != 64 {
		t.Fatalf("an expert trained on a part takes %d features", tr.Manifest.Input.Dim)
	}
}
