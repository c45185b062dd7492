package safetensors

import (
	"bytes"
	"encoding/binary"
	"maps"
	"math"
	"testing"

	nlp "github.com/nlpodyssey/safetensors"
)

// A file written by Encode must load with an independent implementation,
// github.com/nlpodyssey/safetensors, and yield the same values.
func TestInteropEncodeThenThirdPartyReads(t *testing.T) {
	md := map[string]string{"format": "pt", "note": "héllo <&>"}
	ts := sampleTensors()
	file := mustEncode(t, md, ts)

	st, err := nlp.Deserialize(file)
	if err != nil {
		t.Fatalf("nlpodyssey Deserialize: %v", err)
	}
	if st.Len() != len(ts) {
		t.Fatalf("nlpodyssey sees %d tensors, want %d", st.Len(), len(ts))
	}
	_, meta, err := nlp.ReadMetadata(file)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(meta.Metadata(), md) {
		t.Errorf("nlpodyssey metadata = %v, want %v", meta.Metadata(), md)
	}
	for _, want := range ts {
		view, ok := st.Tensor(want.Name)
		if !ok {
			t.Errorf("nlpodyssey: tensor %q missing", want.Name)
			continue
		}
		if view.DType() != nlp.F32 {
			t.Errorf("%q: dtype %s, want F32", want.Name, view.DType())
		}
		shape := make([]int, len(view.Shape()))
		for i, d := range view.Shape() {
			shape[i] = int(d)
		}
		if !sameInts(shape, want.Shape) {
			t.Errorf("%q: shape %v, want %v", want.Name, view.Shape(), want.Shape)
		}
		raw := view.Data()
		got := make([]float32, len(raw)/4)
		for i := range got {
			got[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		if !sameFloats(got, want.Data) {
			t.Errorf("%q: data %v, want %v", want.Name, got, want.Data)
		}
	}
}

// A file written by the third-party writer must decode with ours. Its writer
// orders tensors by descending dtype alignment rather than by name, which
// exercises offset-based validation; the values cover every float dtype.
func TestInteropThirdPartyWritesThenDecode(t *testing.T) {
	view := func(dt nlp.DType, shape []uint64, data []byte) nlp.TensorView {
		t.Helper()
		v, err := nlp.NewTensorView(dt, shape, data)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	views := map[string]nlp.TensorView{
		"f32":  view(nlp.F32, []uint64{2, 2}, f32Bytes(1, -2.5, 3e38, float32(math.Copysign(0, -1)))),
		"f16":  view(nlp.F16, []uint64{3}, u16Bytes(0x3c00, 0x3555, 0xfc00)),
		"bf16": view(nlp.BF16, []uint64{1, 2}, u16Bytes(0x3f80, 0x4049)),
		"f64":  view(nlp.F64, []uint64{2}, f64Bytes(0.1, -7)),
		"a":    view(nlp.F32, []uint64{1}, f32Bytes(5)),
	}
	md := map[string]string{"format": "pt", "source": "nlpodyssey"}
	file, err := nlp.Serialize(views, md)
	if err != nil {
		t.Fatalf("nlpodyssey Serialize: %v", err)
	}
	var buf bytes.Buffer
	if err := nlp.SerializeToWriter(views, md, &buf); err != nil || !bytes.Equal(buf.Bytes(), file) {
		t.Fatalf("SerializeToWriter disagrees with Serialize: %v", err)
	}

	gotMD, got, err := Decode(file)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !maps.Equal(gotMD, md) {
		t.Errorf("metadata = %v, want %v", gotMD, md)
	}
	want := []Tensor{
		{Name: "a", Shape: []int{1}, Data: []float32{5}},
		{Name: "bf16", Shape: []int{1, 2}, Data: []float32{1, BFloat16ToFloat32(0x4049)}},
		{Name: "f16", Shape: []int{3}, Data: []float32{1, 0.333251953125, negInf}},
		{Name: "f32", Shape: []int{2, 2}, Data: []float32{1, -2.5, 3e38, float32(math.Copysign(0, -1))}},
		{Name: "f64", Shape: []int{2}, Data: []float32{0.1, -7}},
	}
	if d := diffTensors(want, got); d != "" {
		t.Errorf("%s: got %+v", d, got)
	}
	h, err := ReadHeader(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if h.DataOffset%8 != 0 {
		t.Errorf("third-party header not 8-aligned: %d", h.DataOffset)
	}
	if h.Tensors[0].DType != F64 {
		t.Errorf("expected the third-party writer to put F64 first, got %+v", h.Tensors[0])
	}

	// And what we re-encode from that decode loads back in the third party.
	again := mustEncode(t, gotMD, got)
	if _, err := nlp.Deserialize(again); err != nil {
		t.Errorf("nlpodyssey rejects our re-encoding: %v", err)
	}
}
