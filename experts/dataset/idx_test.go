package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// idxBytes encodes an IDX file of unsigned bytes with the given dims.
func idxBytes(dims []uint32, data []byte) []byte {
	b := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func TestReadIDX(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		wantDims []int
		wantData []byte
		wantErr  string
	}{
		{"1d", idxBytes([]uint32{3}, []byte{1, 2, 3}), []int{3}, []byte{1, 2, 3}, ""},
		{"3d", idxBytes([]uint32{2, 1, 2}, []byte{1, 2, 3, 4}), []int{2, 1, 2}, []byte{1, 2, 3, 4}, ""},
		{"4d", idxBytes([]uint32{1, 1, 1, 1}, []byte{9}), []int{1, 1, 1, 1}, []byte{9}, ""},
		{"zero size", idxBytes([]uint32{0, 28, 28}, nil), []int{0, 28, 28}, []byte{}, ""},
		{"empty", nil, nil, nil, "reading magic"},
		{"short magic", []byte{0, 0, 8}, nil, nil, "reading magic"},
		{"bad magic", []byte{0, 1, 8, 1, 0, 0, 0, 0}, nil, nil, "bad magic"},
		{"bad magic 2", []byte{0x1f, 0x8b, 8, 1}, nil, nil, "bad magic"},
		{"float dtype", []byte{0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0}, nil, nil, "unsupported data type 0x0d"},
		{"int dtype", []byte{0, 0, 0x0c, 1, 0, 0, 0, 1}, nil, nil, "unsupported data type"},
		{"zero dims", []byte{0, 0, 8, 0}, nil, nil, "0 dimensions"},
		{"five dims", []byte{0, 0, 8, 5}, nil, nil, "5 dimensions"},
		{"255 dims", []byte{0, 0, 8, 255}, nil, nil, "255 dimensions"},
		{"short sizes", []byte{0, 0, 8, 2, 0, 0, 0, 1, 0, 0}, nil, nil, "dimension sizes"},
		{"size too big", idxBytes([]uint32{1<<31 + 1}, nil), nil, nil, "exceeds"},
		{"product too big", idxBytes([]uint32{1 << 16, 1<<15 + 1}, nil), nil, nil, "multiply to more than"},
		{"product overflows", idxBytes([]uint32{1 << 31, 1 << 31, 1 << 31, 1 << 31}, nil), nil, nil, "multiply to more than"},
		{"truncated", idxBytes([]uint32{10}, []byte{1, 2, 3}), nil, nil, "truncated: got 3 of 10"},
		{"lying header", idxBytes([]uint32{1 << 31}, []byte{1, 2}), nil, nil, "truncated: got 2 of 2147483648"},
		{"trailing", idxBytes([]uint32{2}, []byte{1, 2, 3}), nil, nil, "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dims, data, err := ReadIDX(bytes.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want error containing %q", err, tt.wantErr)
				}
				if dims != nil || data != nil {
					t.Error("non-nil results with an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dims, tt.wantDims) || !bytes.Equal(data, tt.wantData) {
				t.Errorf("got %v %v, want %v %v", dims, data, tt.wantDims, tt.wantData)
			}
		})
	}
}

// errReader fails after its data.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadIDXReaderError(t *testing.T) {
	boom := errors.New("boom")
	_, _, err := ReadIDX(&errReader{idxBytes([]uint32{100}, []byte{1}), boom})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want wrapping boom", err)
	}
	_, _, err = ReadIDX(&errReader{idxBytes([]uint32{1}, []byte{1}), boom})
	if !errors.Is(err, boom) {
		t.Errorf("trailing check: err = %v, want wrapping boom", err)
	}
}

// A header claiming 2 GiB on a short stream must fail without a giant
// allocation.
func TestReadIDXLyingHeaderAllocation(t *testing.T) {
	in := idxBytes([]uint32{1 << 15, 1 << 16}, make([]byte, 3<<20))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := ReadIDX(bytes.NewReader(in))
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v, want truncated", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("allocated %d bytes for a 3 MiB stream", alloc)
	}
}

func TestReadIDXGzipChecksum(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(idxBytes([]uint32{4}, []byte{1, 2, 3, 4}))
	zw.Close()
	good := buf.Bytes()
	zr, err := gzip.NewReader(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadIDX(zr); err != nil {
		t.Fatalf("good gzip: %v", err)
	}
	bad := slices.Clone(good)
	bad[len(bad)-8] ^= 0xff // CRC-32
	zr, err = gzip.NewReader(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadIDX(zr); err == nil {
		t.Error("corrupt gzip checksum accepted")
	}
}

func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes([]uint32{3}, []byte{1, 2, 3}))
	f.Add(idxBytes([]uint32{2, 2, 2}, []byte{1, 2, 3, 4, 5, 6, 7, 8}))
	f.Add(idxBytes([]uint32{1 << 31}, []byte{1}))
	f.Add([]byte{0, 0, 8, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		dims, data, err := ReadIDX(bytes.NewReader(in))
		if err != nil {
			return
		}
		n := 1
		ud := make([]uint32, len(dims))
		for i, d := range dims {
			n *= d
			ud[i] = uint32(d)
		}
		if len(data) != n {
			t.Fatalf("dims %v but %d bytes", dims, len(data))
		}
		// A successful parse consumed exactly the input.
		if !bytes.Equal(idxBytes(ud, data), in) {
			t.Fatal("re-encoding differs from the input")
		}
	})
}

// fashionDir returns the Fashion-MNIST directory or fails the test.
func fashionDir(t testing.TB) string {
	dir := DefaultCatalog().FashionMNISTDir
	if _, err := os.Stat(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz")); err != nil {
		t.Fatalf("Fashion-MNIST not installed (%v): run scripts/setup.sh", err)
	}
	return dir
}

func TestLoadFashionMNIST(t *testing.T) {
	dir := fashionDir(t)
	tests := []struct {
		split  string
		n      int
		perCls int
		firstY int
	}{
		{"train", 60000, 6000, 9},
		{"test", 10000, 1000, 9},
	}
	for _, tt := range tests {
		t.Run(tt.split, func(t *testing.T) {
			d, err := LoadFashionMNIST(dir, tt.split, 0)
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != tt.n || d.Dim != 784 || len(d.X) != tt.n*784 {
				t.Fatalf("%s: Len=%d Dim=%d len(X)=%d", d.Name, d.Len(), d.Dim, len(d.X))
			}
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
			if d.Name != "fashion-mnist:"+tt.split {
				t.Errorf("Name = %q", d.Name)
			}
			if !slices.Equal(d.Classes, FashionMNISTClasses()) || d.Classes[9] != "Ankle boot" {
				t.Errorf("Classes = %v", d.Classes)
			}
			lo, hi := float32(1), float32(0)
			for _, v := range d.X {
				lo, hi = min(lo, v), max(hi, v)
			}
			if lo != 0 || hi != 1 {
				t.Errorf("pixel range [%v,%v], want [0,1]", lo, hi)
			}
			for c, n := range d.ClassCounts() {
				if n != tt.perCls {
					t.Errorf("class %d has %d samples, want %d", c, n, tt.perCls)
				}
			}
			if d.Y[0] != tt.firstY {
				t.Errorf("first label %d, want %d (%s)", d.Y[0], tt.firstY, d.Classes[tt.firstY])
			}
			// limit keeps a prefix.
			l, err := LoadFashionMNIST(dir, tt.split, 100)
			if err != nil {
				t.Fatal(err)
			}
			if l.Len() != 100 || !slices.Equal(l.X, d.X[:100*784]) || !slices.Equal(l.Y, d.Y[:100]) {
				t.Error("limit=100 is not the first 100 samples")
			}
		})
	}
}

func TestLoadFashionMNISTErrors(t *testing.T) {
	tmp := t.TempDir()
	_, err := LoadFashionMNIST(tmp, "train", 0)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(tmp, "train-images-idx3-ubyte.gz")) ||
		!strings.Contains(err.Error(), "dataset-fashion-mnist") {
		t.Errorf("missing dir: %v", err)
	}
	if _, err := LoadFashionMNIST(tmp, "validation", 0); err == nil || !strings.Contains(err.Error(), "unknown split") {
		t.Errorf("bad split: %v", err)
	}

	write := func(name string, raw []byte) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(raw)
		zw.Close()
		if err := os.WriteFile(filepath.Join(tmp, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := idxBytes([]uint32{2, 2, 2}, []byte{0, 255, 51, 102, 1, 2, 3, 4})
	tests := []struct {
		name    string
		labels  []byte
		wantErr string
	}{
		{"ok", idxBytes([]uint32{2}, []byte{3, 0}), ""},
		{"count mismatch", idxBytes([]uint32{3}, []byte{3, 0, 1}), "2 images"},
		{"label range", idxBytes([]uint32{2}, []byte{3, 10}), "label 10"},
		{"labels 2d", idxBytes([]uint32{2, 1}, []byte{3, 0}), "want [n]"},
		{"truncated", idxBytes([]uint32{2}, []byte{3}), "truncated"},
	}
	write("train-images-idx3-ubyte.gz", img)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			write("train-labels-idx1-ubyte.gz", tt.labels)
			d, err := LoadFashionMNIST(tmp, "train", 0)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []float32{0, 1, 0.2, 0.4, 1.0 / 255, 2.0 / 255, 3.0 / 255, 4.0 / 255}
			if d.Dim != 4 || !slices.Equal(d.X, want) || !slices.Equal(d.Y, []int{3, 0}) {
				t.Errorf("got Dim %d X %v Y %v", d.Dim, d.X, d.Y)
			}
		})
	}
}

func BenchmarkLoadFashionMNISTTrain(b *testing.B) {
	dir := fashionDir(b)
	b.SetBytes(60000*784 + 60000) // uncompressed pixels + labels per load
	b.ReportAllocs()
	for b.Loop() {
		d, err := LoadFashionMNIST(dir, "train", 0)
		if err != nil {
			b.Fatal(err)
		}
		if d.Len() != 60000 {
			b.Fatal(d.Len())
		}
	}
}
