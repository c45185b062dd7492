package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func sampleTensors() []Tensor {
	return []Tensor{
		{Name: "w2", Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, 0, 65504, 1e-30}},
		{Name: "b", Shape: []int{3}, Data: []float32{float32(math.Copysign(0, -1)), posInf, negInf}},
		{Name: "nan", Shape: []int{2}, Data: []float32{nan32, math.Float32frombits(0x7f800001)}},
		{Name: "scalar", Shape: []int{}, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 5}, Data: []float32{}},
		{Name: "unicode ünï \"quoted\" <&>", Shape: []int{1, 1, 1}, Data: []float32{math.SmallestNonzeroFloat32}},
	}
}

func sortedTensors(ts []Tensor) []Tensor {
	out := append([]Tensor(nil), ts...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Name < out[i].Name {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		md      map[string]string
		tensors []Tensor
	}{
		{"empty file", nil, nil},
		{"metadata only", map[string]string{"format": "pt"}, nil},
		{"one tensor", nil, []Tensor{{Name: "x", Shape: []int{4}, Data: []float32{1, 2, 3, 4}}}},
		{"mixed", map[string]string{"format": "pt", "": "empty key", "json": `{"a":[1]}`, "nl": "a\nb\x00c"}, sampleTensors()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustEncode(t, tc.md, tc.tensors)
			md, got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !maps.Equal(md, tc.md) {
				t.Errorf("metadata = %v, want %v", md, tc.md)
			}
			if md == nil {
				t.Errorf("metadata is nil, want an empty map")
			}
			if d := diffTensors(sortedTensors(tc.tensors), got); d != "" {
				t.Errorf("round trip: %s", d)
			}
		})
	}
}

func TestEncodeDeterministic(t *testing.T) {
	md := map[string]string{"z": "1", "a": "2", "m": "3", "format": "pt"}
	ts := sampleTensors()
	first := mustEncode(t, md, ts)
	for i := 0; i < 20; i++ {
		// Fresh map (new iteration order) and reversed input order.
		md2 := maps.Clone(md)
		rev := make([]Tensor, len(ts))
		for j := range ts {
			rev[len(ts)-1-j] = ts[j]
		}
		if b := mustEncode(t, md2, rev); !bytes.Equal(b, first) {
			t.Fatalf("encoding %d differs from the first", i)
		}
	}
	// The caller's slice is left in its original order.
	if ts[0].Name != "w2" {
		t.Errorf("Encode reordered its input")
	}
}

func TestEncodeLayout(t *testing.T) {
	ts := []Tensor{
		{Name: "b", Shape: []int{2}, Data: []float32{3, 4}},
		{Name: "a", Shape: []int{1}, Data: []float32{1}},
		{Name: "c", Shape: []int{0}, Data: nil},
	}
	b := mustEncode(t, map[string]string{"k": "v"}, ts)
	n := binary.LittleEndian.Uint64(b)
	wantHeader := `{"__metadata__":{"k":"v"},` +
		`"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},` +
		`"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},` +
		`"c":{"dtype":"F32","shape":[0],"data_offsets":[12,12]}}`
	if got := strings.TrimRight(string(b[8:8+n]), " "); got != wantHeader {
		t.Errorf("header =\n%s\nwant\n%s", got, wantHeader)
	}
	if !bytes.Equal(b[8+n:], f32Bytes(1, 3, 4)) {
		t.Errorf("data = %x, want tensors in name order", b[8+n:])
	}
	h, err := ReadHeader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if h.DataOffset != int64(8+n) || h.DataSize != 12 {
		t.Errorf("DataOffset, DataSize = %d, %d; want %d, 12", h.DataOffset, h.DataSize, 8+n)
	}
	if got := strings.Join(h.Names(), ","); got != "a,b,c" {
		t.Errorf("Names = %s", got)
	}
	ti, ok := h.Tensor("b")
	if !ok || ti.DType != F32 || ti.Begin != 4 || ti.End != 12 || ti.NumElements() != 2 {
		t.Errorf("Tensor(b) = %+v, %v", ti, ok)
	}
	if _, ok := h.Tensor("missing"); ok {
		t.Errorf("Tensor(missing) found")
	}
}

func TestHeaderPadding(t *testing.T) {
	// Vary the name length so the unpadded header length hits every residue.
	for l := 1; l <= 16; l++ {
		name := strings.Repeat("n", l)
		b := mustEncode(t, nil, []Tensor{{Name: name, Shape: []int{1}, Data: []float32{1}}})
		n := binary.LittleEndian.Uint64(b)
		if (8+n)%8 != 0 {
			t.Errorf("name length %d: 8+N = %d is not a multiple of 8", l, 8+n)
		}
		hdr := b[8 : 8+n]
		trimmed := bytes.TrimRight(hdr, " ")
		if len(hdr)-len(trimmed) > 7 || trimmed[len(trimmed)-1] != '}' {
			t.Errorf("name length %d: header %q is not the JSON object plus < 8 spaces", l, hdr)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		tensors []Tensor
		want    string
	}{
		{"too few elements", []Tensor{{Name: "x", Shape: []int{2, 2}, Data: []float32{1, 2, 3}}}, "shape [2 2] has 4 elements but Data has 3"},
		{"too many elements", []Tensor{{Name: "x", Shape: []int{}, Data: []float32{1, 2}}}, "has 1 elements but Data has 2"},
		{"duplicate", []Tensor{{Name: "x", Shape: []int{0}}, {Name: "y", Shape: []int{0}}, {Name: "x", Shape: []int{0}}}, `"x": duplicate name`},
		{"empty name", []Tensor{{Name: "", Shape: []int{0}}}, "empty name"},
		{"reserved name", []Tensor{{Name: "__metadata__", Shape: []int{0}}}, "reserved"},
		{"negative dim", []Tensor{{Name: "x", Shape: []int{-1, -1}, Data: []float32{1}}}, "negative dimension"},
		{"overflow", []Tensor{{Name: "x", Shape: []int{1 << 40, 1 << 40, 0}}}, "overflows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encode(&buf, nil, tc.tensors)
			if err == nil {
				t.Fatal("Encode succeeded")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Encode wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestEncodeWriteError(t *testing.T) {
	big := Tensor{Name: "x", Shape: []int{1 << 16}, Data: make([]float32, 1<<16)}
	err := Encode(&failWriter{n: 1000}, nil, []Tensor{big})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v, want the writer's error", err)
	}
}

// Files with non-F32 float dtypes, built by hand.
func TestDecodeHandBuilt(t *testing.T) {
	tests := []struct {
		name   string
		header string
		data   []byte
		want   []Tensor
	}{
		{
			"F16",
			`{"h":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]}}`,
			u16Bytes(0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3555),
			[]Tensor{{Name: "h", Shape: []int{2, 3}, Data: []float32{1, -2, 65504, 1.0 / (1 << 24), posInf, 0.333251953125}}},
		},
		{
			"BF16",
			`{"b":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}`,
			u16Bytes(0x3f80, 0xc000, 0x4780, 0xff80),
			[]Tensor{{Name: "b", Shape: []int{4}, Data: []float32{1, -2, 65536, negInf}}},
		},
		{
			"F64",
			`{"d":{"dtype":"F64","shape":[1,3],"data_offsets":[0,24]}}`,
			f64Bytes(1.5, -1e300, 0.1),
			[]Tensor{{Name: "d", Shape: []int{1, 3}, Data: []float32{1.5, negInf, 0.1}}},
		},
		{
			"mixed dtypes, offsets out of name order, metadata last, padding",
			`{"z":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},` +
				`"a":{"dtype":"F64","shape":[],"data_offsets":[2,10]},` +
				`"m":{"dtype":"F32","shape":[0],"data_offsets":[10,10]},` +
				`"__metadata__":{"format":"pt"}}` + "   \t\n\r ",
			append(u16Bytes(0xbc00), f64Bytes(2.25)...),
			[]Tensor{
				{Name: "a", Shape: []int{}, Data: []float32{2.25}},
				{Name: "m", Shape: []int{0}, Data: []float32{}},
				{Name: "z", Shape: []int{1}, Data: []float32{-1}},
			},
		},
		{
			"unknown fields ignored, escaped names",
			`{"\u0061b":{"extra":{"x":[1,{"y":null}]},"dtype":"F32","shape":[1],"data_offsets":[0,4],"z":true}}`,
			f32Bytes(7),
			[]Tensor{{Name: "ab", Shape: []int{1}, Data: []float32{7}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := Decode(rawFile(tc.header, tc.data))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if d := diffTensors(tc.want, got); d != "" {
				t.Errorf("%s: got %+v", d, got)
			}
		})
	}
}

func TestDecodeUnsupportedDType(t *testing.T) {
	for _, dt := range []DType{F8E4M3, F8E5M2, I64, I32, I16, I8, U8, Bool} {
		t.Run(string(dt), func(t *testing.T) {
			size, err := dt.Size()
			if err != nil {
				t.Fatal(err)
			}
			hdr := `{"ok":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"weird":{"dtype":"` + string(dt) +
				`","shape":[2],"data_offsets":[4,` + strconv.Itoa(4+2*size) + `]}}`
			file := rawFile(hdr, make([]byte, 4+2*size))
			if _, err := ReadHeader(bytes.NewReader(file), int64(len(file))); err != nil {
				t.Fatalf("ReadHeader rejected a valid %s file: %v", dt, err)
			}
			_, _, err = Decode(file)
			if !errors.Is(err, ErrUnsupportedDType) || errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrUnsupportedDType", err)
			}
			if msg := err.Error(); !strings.Contains(msg, `"weird"`) || !strings.Contains(msg, string(dt)) {
				t.Errorf("error %q does not name the tensor and dtype", msg)
			}
		})
	}
}

func TestDTypeSize(t *testing.T) {
	want := map[DType]int{F64: 8, F32: 4, F16: 2, BF16: 2, F8E4M3: 1, F8E5M2: 1, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, Bool: 1}
	for dt, size := range want {
		if got, err := dt.Size(); err != nil || got != size {
			t.Errorf("%s.Size() = %d, %v; want %d", dt, got, err, size)
		}
	}
	for _, dt := range []DType{"", "f32", "U16", "F8_E4M3FN", "FLOAT"} {
		if _, err := dt.Size(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q.Size() err = %v, want ErrInvalid", dt, err)
		}
	}
	if F8E4M3 != "F8_E4M3" || F8E5M2 != "F8_E5M2" || Bool != "BOOL" {
		t.Errorf("dtype spellings changed")
	}
}

func TestNumElements(t *testing.T) {
	tests := []struct {
		shape []int64
		want  int64
	}{
		{nil, 1}, {[]int64{}, 1}, {[]int64{0}, 0}, {[]int64{2, 3, 4}, 24},
		{[]int64{-1}, -1}, {[]int64{1 << 32, 1 << 31}, -1}, {[]int64{1 << 32, 1 << 30}, 1 << 62},
	}
	for _, tc := range tests {
		if got := (TensorInfo{Shape: tc.shape}).NumElements(); got != tc.want {
			t.Errorf("NumElements(%v) = %d, want %d", tc.shape, got, tc.want)
		}
	}
}

// countingReaderAt records which bytes were read.
type countingReaderAt struct {
	r    *bytes.Reader
	read int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.read += n
	return n, err
}

func TestReadHeaderDoesNotReadData(t *testing.T) {
	ts := []Tensor{{Name: "big", Shape: []int{1 << 16}, Data: make([]float32, 1<<16)}}
	b := mustEncode(t, map[string]string{"a": "b"}, ts)
	cr := &countingReaderAt{r: bytes.NewReader(b)}
	h, err := ReadHeader(cr, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if int64(cr.read) != h.DataOffset {
		t.Errorf("ReadHeader read %d bytes, want only the %d header bytes", cr.read, h.DataOffset)
	}
	if h.Metadata["a"] != "b" || len(h.Tensors) != 1 || h.Tensors[0].End != 4<<16 {
		t.Errorf("header = %+v", h)
	}
}

func TestReadHeaderShortReader(t *testing.T) {
	b := mustEncode(t, nil, []Tensor{{Name: "x", Shape: []int{1}, Data: []float32{1}}})
	// The caller claims a larger size than the reader holds: the header
	// itself is fine, so this reports a layout error, not a panic.
	if _, err := ReadHeader(bytes.NewReader(b), int64(len(b))+4); !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v", err)
	}
	// A reader shorter than the header: an I/O error.
	if _, err := ReadHeader(bytes.NewReader(b[:20]), int64(len(b))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := ReadHeader(bytes.NewReader(nil), -5); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative size: err = %v", err)
	}
}

func TestReadTensor(t *testing.T) {
	file := rawFile(`{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"i":{"dtype":"I32","shape":[1],"data_offsets":[4,8]},"c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`,
		append(u16Bytes(0x3f80, 0x4000), append(make([]byte, 4), f32Bytes(9)...)...))
	r := bytes.NewReader(file)
	h, err := ReadHeader(r, int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.ReadTensor(r, "a")
	if err != nil || !sameFloats(got.Data, []float32{1, 2}) || !sameInts(got.Shape, []int{2}) {
		t.Errorf("ReadTensor(a) = %+v, %v", got, err)
	}
	got, err = h.ReadTensor(r, "c")
	if err != nil || !sameFloats(got.Data, []float32{9}) {
		t.Errorf("ReadTensor(c) = %+v, %v", got, err)
	}
	if _, err := h.ReadTensor(r, "i"); !errors.Is(err, ErrUnsupportedDType) {
		t.Errorf("ReadTensor(i) err = %v", err)
	}
	if _, err := h.ReadTensor(r, "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("ReadTensor(nope) err = %v", err)
	}
}

func TestToFloat32(t *testing.T) {
	if _, err := ToFloat32(F32, make([]byte, 6)); !errors.Is(err, ErrInvalid) {
		t.Errorf("ragged input: err = %v", err)
	}
	if _, err := ToFloat32(U8, make([]byte, 6)); !errors.Is(err, ErrUnsupportedDType) {
		t.Errorf("U8: err = %v", err)
	}
	if _, err := ToFloat32("X", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown dtype: err = %v", err)
	}
}

func TestWriteFileReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "expert.safetensors")
	md := map[string]string{"format": "pt"}
	ts := sampleTensors()
	if err := WriteFile(path, md, ts); err != nil {
		t.Fatal(err)
	}
	// Overwrite with different content: the rename replaces the file.
	ts2 := []Tensor{{Name: "only", Shape: []int{1}, Data: []float32{3}}}
	if err := WriteFile(path, nil, ts2); err != nil {
		t.Fatal(err)
	}
	gotMD, got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotMD) != 0 || diffTensors(ts2, got) != "" {
		t.Errorf("ReadFile = %v, %+v", gotMD, got)
	}
	onDisk, _ := os.ReadFile(path)
	if !bytes.Equal(onDisk, mustEncode(t, nil, ts2)) {
		t.Errorf("file bytes differ from Encode output")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, %v; want 0644", st.Mode(), err)
	}
	// A failed encode leaves the old file and no temporary files.
	if err := WriteFile(path, nil, []Tensor{{Name: "", Shape: []int{0}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("WriteFile with bad tensor: err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after failed write, want 1", len(entries))
	}
	if _, got, err := ReadFile(path); err != nil || diffTensors(ts2, got) != "" {
		t.Errorf("old file damaged: %v", err)
	}
	// ReadFile wraps format errors with the path.
	bad := filepath.Join(dir, "bad.safetensors")
	if err := os.WriteFile(bad, []byte("nope"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadFile(bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad) {
		t.Errorf("ReadFile(bad) err = %v", err)
	}
	if _, _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile(missing) err = %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir", "f"), nil, nil); err == nil {
		t.Errorf("WriteFile into a missing directory succeeded")
	}
}
