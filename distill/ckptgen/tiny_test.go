package ckptgen

import (
	"context"
	"crypto/sha256"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

func hashDir(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == PlantedFile { // holds the folder's path
			continue
		}
		out[e.Name()] = sha256.Sum256(b)
	}
	return out
}

func TestTinyIsDeterministic(t *testing.T) {
	for _, fam := range []checkpoint.Family{checkpoint.DeepSeekV3, checkpoint.Mixtral, checkpoint.QwenMoE} {
		t.Run(string(fam), func(t *testing.T) {
			a, b := t.TempDir(), t.TempDir()
			for _, d := range []string{a, b} {
				if _, err := Tiny(context.Background(), d, TinyOptions{Family: fam, Seed: 5}); err != nil {
					t.Fatal(err)
				}
			}
			ha, hb := hashDir(t, a), hashDir(t, b)
			if len(ha) < 5 {
				t.Fatalf("only %d files", len(ha))
			}
			for name, h := range ha {
				if hb[name] != h {
					t.Errorf("%s differs between two runs with the same options", name)
				}
			}
		})
	}
}

func TestTinyOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		o    TinyOptions
		want string
	}{
		{"too few experts", TinyOptions{Experts: 8}, "cannot hold"},
		{"hidden too small", TinyOptions{Hidden: 10}, "too small"},
		{"too few layers", TinyOptions{Layers: 2}, "at least 3 layers"},
		{"bad domain", TinyOptions{Domains: []string{"a,b", "c"}}, "without commas"},
		{"unknown family", TinyOptions{Family: "llama"}, `"llama"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Tiny(context.Background(), t.TempDir(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestQuantizeFP8(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	rows, cols, br, bc := 70, 45, 32, 32
	v := gaussian(rng, rows*cols, 0.05)
	v[3] = 0 // zero and an all-zero block are fine
	codes, scales := quantizeFP8(v, rows, cols, br, bc)
	if len(scales) != 3*2 {
		t.Fatalf("%d scales, want 6", len(scales))
	}
	for i := range rows {
		for j := range cols {
			s := scales[(i/br)*2+j/bc]
			got := float64(checkpoint.E4M3ToFloat32(codes[i*cols+j]) * s)
			// E4M3 keeps 3 mantissa bits: relative error ≤ 2⁻⁴, or half the
			// smallest subnormal step (2⁻¹⁰ of the scale) near zero.
			tol := math.Max(math.Abs(float64(v[i*cols+j]))/16, float64(s)/1024)
			if d := math.Abs(got - float64(v[i*cols+j])); d > tol*1.0001 {
				t.Fatalf("(%d,%d): %v quantised to %v", i, j, v[i*cols+j], got)
			}
		}
	}
	zeros := make([]float32, 4)
	if _, s := quantizeFP8(zeros, 2, 2, 2, 2); s[0] != 1 {
		t.Errorf("all-zero block scale %v, want 1", s[0])
	}
}

func TestSplitShards(t *testing.T) {
	plan := []tensorPlan{
		{Name: "a", DType: "F32", Shape: []int64{100}}, {Name: "b", DType: "F32", Shape: []int64{10}},
		{Name: "c", DType: "F32", Shape: []int64{10}}, {Name: "d", DType: "F32", Shape: []int64{10}},
	}
	tests := []struct{ n, want int }{{1, 1}, {2, 2}, {4, 4}, {9, 4}}
	for _, tc := range tests {
		parts := splitShards(plan, tc.n)
		total := 0
		for _, p := range parts {
			if len(p) == 0 {
				t.Errorf("n=%d: empty shard", tc.n)
			}
			total += len(p)
		}
		if len(parts) != tc.want || total != len(plan) {
			t.Errorf("n=%d: %d shards holding %d tensors", tc.n, len(parts), total)
		}
	}
}
