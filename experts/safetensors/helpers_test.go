package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// rawFile assembles a safetensors file from a literal JSON header and a data
// buffer, without padding or validation, so tests can build any file.
func rawFile(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

func f32Bytes(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func f64Bytes(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func u16Bytes(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

func mustEncode(t testing.TB, md map[string]string, ts []Tensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, md, ts); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes()
}

// sameFloats compares bit patterns, so NaNs and signed zeros must match too.
func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// diffTensors returns a description of the first difference, or "".
func diffTensors(want, got []Tensor) string {
	if len(want) != len(got) {
		return "tensor count differs"
	}
	for i := range want {
		w, g := want[i], got[i]
		switch {
		case w.Name != g.Name:
			return "name of tensor " + w.Name + " differs: " + g.Name
		case !sameInts(w.Shape, g.Shape):
			return "shape of tensor " + w.Name + " differs"
		case !sameFloats(w.Data, g.Data):
			return "data of tensor " + w.Name + " differs"
		}
	}
	return ""
}
