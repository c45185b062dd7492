package safetensors

import (
	"bytes"
	"io"
	"math"
	"testing"
)

// benchFile is a ~400 KB file: 100K float32s in three tensors.
func benchFile(b *testing.B) []byte {
	const n = 100_000
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(math.Sin(float64(i)))
	}
	ts := []Tensor{
		{Name: "layer.0.w", Shape: []int{250, 200}, Data: data[:50_000]},
		{Name: "layer.0.b", Shape: []int{10_000}, Data: data[50_000:60_000]},
		{Name: "layer.1.w", Shape: []int{200, 200}, Data: data[60_000:]},
	}
	return mustEncode(b, map[string]string{"format": "pt"}, ts)
}

func BenchmarkDecode(b *testing.B) {
	file := benchFile(b)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(file); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	file := benchFile(b)
	md, ts, err := Decode(file)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Encode(io.Discard, md, ts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadHeader(b *testing.B) {
	file := benchFile(b)
	r := bytes.NewReader(file)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadHeader(r, int64(len(file))); err != nil {
			b.Fatal(err)
		}
	}
}
