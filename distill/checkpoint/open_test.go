package checkpoint_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/distill/ckptgen"
	"github.com/meshnode/meshnode/experts/safetensors"
)

// rawTensor reads a tensor's bytes straight from its shard, without the checkpoint reader.
func rawTensor(t *testing.T, dir string, ix *checkpoint.Index, name string) (safetensors.TensorInfo, []byte) {
	t.Helper()
	path := filepath.Join(dir, ix.WeightMap[name])
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := safetensors.ReadHeader(bytesReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(data)
	var hdr map[string]struct {
		DType   string  `json:"dtype"`
		Shape   []int64 `json:"shape"`
		Offsets []int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(data[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	e, ok := hdr[name]
	if !ok {
		t.Fatalf("%s not in %s", name, path)
	}
	return safetensors.TensorInfo{Name: name, DType: safetensors.DType(e.DType), Shape: e.Shape},
		data[8+int(n)+int(e.Offsets[0]) : 8+int(n)+int(e.Offsets[1])]
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// e4m3 decodes a code from the definition of the format.
func e4m3(b byte) float64 {
	s := 1.0
	if b&0x80 != 0 {
		s = -1
	}
	e, m := int(b>>3)&0xf, float64(b&7)
	if e == 0 {
		return s * math.Ldexp(m/8, -6)
	}
	return s * math.Ldexp(1+m/8, e-7)
}

func readIndex(t *testing.T, dir string) *checkpoint.Index {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, checkpoint.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := checkpoint.ParseIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestOpenTinyDeepSeek(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := ckptgen.Tiny(ctx, dir, ckptgen.TinyOptions{Seed: 7}); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if got := ck.MoELayers(); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("MoE layers %v", got)
	}
	for _, l := range ck.Layers()[1:] {
		if l.Experts != 16 || l.Shared != 1 || !l.RouterBias {
			t.Errorf("layer %+v", l)
		}
	}
	ix := readIndex(t, dir)
	// Every projection of an expert equals fp8 × block scale computed from the raw bytes.
	ex, err := ck.Expert(ctx, 2, 11)
	if err != nil {
		t.Fatal(err)
	}
	for p, m := range []checkpoint.Matrix{ex.Gate, ex.Up, ex.Down} {
		name := ck.Config.ExpertTensor(2, 11, checkpoint.Proj(p))
		info, codes := rawTensor(t, dir, ix, name)
		if info.DType != safetensors.F8E4M3 {
			t.Fatalf("%s has dtype %s", name, info.DType)
		}
		sinfo, sraw := rawTensor(t, dir, ix, name+checkpoint.ScaleSuffix)
		rows, cols := int(info.Shape[0]), int(info.Shape[1])
		if m.Rows != rows || m.Cols != cols {
			t.Fatalf("%s: %d×%d, header says %v", name, m.Rows, m.Cols, info.Shape)
		}
		nbc := int(sinfo.Shape[1])
		for i := range rows {
			for j := range cols {
				scale := math.Float32frombits(binary.LittleEndian.Uint32(sraw[4*((i/32)*nbc+j/32):]))
				want := float32(e4m3(codes[i*cols+j])) * scale
				if got := m.Data[i*cols+j]; got != want {
					t.Fatalf("%s (%d,%d): %v, direct %v", name, i, j, got, want)
				}
			}
		}
	}
	// The router is BF16 and the bias F32.
	r, err := ck.Router(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	_, wraw := rawTensor(t, dir, ix, ck.Config.RouterTensor(2))
	for i, v := range r.Weight.Data {
		if want := safetensors.BFloat16ToFloat32(binary.LittleEndian.Uint16(wraw[2*i:])); v != want {
			t.Fatalf("router[%d] = %v, want %v", i, v, want)
		}
	}
	if len(r.Bias) != 16 || r.Weight.Rows != 16 || r.Weight.Cols != 64 {
		t.Fatalf("router %d×%d, bias %d", r.Weight.Rows, r.Weight.Cols, len(r.Bias))
	}
	sh, err := ck.SharedExpert(ctx, 1)
	if err != nil || sh.Gate.Rows != 40 || sh.Down.Cols != 40 {
		t.Fatalf("shared expert: %v", err)
	}
	// ReadRows picks the same values as a full read.
	full, err := ck.Read(ctx, ck.Config.ExpertTensor(1, 0, checkpoint.Down))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ck.ReadRows(ctx, ck.Config.ExpertTensor(1, 0, checkpoint.Down), []int{63, 0, 33})
	if err != nil {
		t.Fatal(err)
	}
	for k, r := range []int{63, 0, 33} {
		if !slices.Equal(rows.Row(k), full.Row(r)) {
			t.Fatalf("ReadRows row %d differs from Read", r)
		}
	}
	for _, bad := range [][2]int{{0, 0}, {1, 16}, {9, 0}} {
		if _, err := ck.Expert(ctx, bad[0], bad[1]); err == nil {
			t.Errorf("Expert(%d, %d) succeeded", bad[0], bad[1])
		}
	}
}

func TestOpenTinyOtherFamilies(t *testing.T) {
	tests := []struct {
		family checkpoint.Family
		moe    []int
		shared int
		expert string
	}{
		{checkpoint.Mixtral, []int{0, 1, 2, 3}, 0, "model.layers.0.block_sparse_moe.experts.5.w2.weight"},
		{checkpoint.QwenMoE, []int{1, 2, 3}, 1, "model.layers.1.mlp.experts.5.down_proj.weight"},
	}
	for _, tc := range tests {
		t.Run(string(tc.family), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			if _, err := ckptgen.Tiny(ctx, dir, ckptgen.TinyOptions{Family: tc.family}); err != nil {
				t.Fatal(err)
			}
			ck, err := checkpoint.Open(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			if got := ck.MoELayers(); !slices.Equal(got, tc.moe) {
				t.Errorf("MoE layers %v, want %v", got, tc.moe)
			}
			if got := ck.Layers()[tc.moe[0]].Shared; got != tc.shared {
				t.Errorf("shared experts %d, want %d", got, tc.shared)
			}
			if got := ck.ExpertTensors(tc.moe[0], 5)[checkpoint.Down]; got != tc.expert {
				t.Errorf("down projection %q, want %q", got, tc.expert)
			}
			info, _ := ck.Info(tc.expert)
			if info.DType != safetensors.BF16 {
				t.Errorf("%s dtype %s, want BF16", tc.expert, info.DType)
			}
			ex, err := ck.Expert(ctx, tc.moe[0], 5)
			if err != nil || ex.Down.Rows != 64 || ex.Down.Cols != 40 {
				t.Fatalf("expert: %v", err)
			}
			r, err := ck.Router(ctx, tc.moe[0])
			if err != nil || r.Bias != nil {
				t.Fatalf("router: %v, bias %v", err, r.Bias)
			}
		})
	}
}

// Stream hands over every row exactly once, in order, in bands that never
// straddle a row of FP8 scale blocks, and decodes what Read decodes.
func TestStream(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := ckptgen.Tiny(ctx, dir, ckptgen.TinyOptions{}); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	tests := []struct {
		name  string
		bands [][2]int
	}{
		{ck.Config.ExpertTensor(1, 2, checkpoint.Gate), [][2]int{{0, 16}, {16, 32}, {32, 40}}}, // FP8, 40 rows, 32-row blocks
		{ck.Config.ExpertTensor(1, 2, checkpoint.Down), [][2]int{{0, 16}, {16, 32}, {32, 48}, {48, 64}}},
		{ck.Config.RouterTensor(1), [][2]int{{0, 16}}}, // BF16
		{ck.Config.RouterBiasTensor(1), [][2]int{{0, 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := ck.Read(ctx, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			var bands [][2]int
			got, _, err := ck.Stream(ctx, tc.name, nil, 0, func(m checkpoint.Matrix, lo, hi int) {
				bands = append(bands, [2]int{lo, hi})
				if !slices.Equal(m.Data[lo*m.Cols:hi*m.Cols], want.Data[lo*m.Cols:hi*m.Cols]) {
					t.Errorf("rows [%d,%d) differ from Read when handed over", lo, hi)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(bands, tc.bands) || !slices.Equal(got.Data, want.Data) {
				t.Errorf("bands %v, want %v", bands, tc.bands)
			}
		})
	}
}
