package safetensors

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzSeeds are valid and invalid files shared by both fuzz targets (the
// committed corpus under testdata/fuzz adds more).
func fuzzSeeds(tb testing.TB) [][]byte {
	valid := mustEncode(tb, map[string]string{"format": "pt"}, []Tensor{
		{Name: "w", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}},
		{Name: "s", Shape: []int{}, Data: []float32{-1}},
	})
	return [][]byte{
		valid,
		valid[:len(valid)-1],
		valid[:12],
		nil,
		rawFile(`{}`, nil),
		rawFile(`{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}}`,
			u16Bytes(0x3c00, 0x7e00, 0x3f80)),
		rawFile(`{"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"__metadata__":{"a":"b"}}`, f64Bytes(2.5)),
		rawFile(`{"i":{"dtype":"I8","shape":[3],"data_offsets":[0,3]}}`, []byte{1, 2, 3}),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{}}`, make([]byte, 4)),
		rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]`, nil),
		rawFile(`{} x`, nil),
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		md, ts, err := Decode(file)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupportedDType) {
				t.Fatalf("error matches neither ErrInvalid nor ErrUnsupportedDType: %v", err)
			}
			return
		}
		for i := 1; i < len(ts); i++ {
			if ts[i-1].Name >= ts[i].Name {
				t.Fatalf("tensors not strictly sorted by name: %q, %q", ts[i-1].Name, ts[i].Name)
			}
		}
		var buf bytes.Buffer
		if err := Encode(&buf, md, ts); err != nil {
			t.Fatalf("re-encoding a decoded file failed: %v", err)
		}
		md2, ts2, err := Decode(buf.Bytes())
		if err != nil {
			t.Fatalf("decoding the re-encoded file failed: %v", err)
		}
		if !maps.Equal(md, md2) {
			t.Fatalf("metadata changed across re-encoding: %v vs %v", md, md2)
		}
		if d := diffTensors(ts, ts2); d != "" {
			t.Fatalf("tensors changed across re-encoding: %s", d)
		}
		// Encoding is canonical: a second round trip is byte-identical.
		var buf2 bytes.Buffer
		if err := Encode(&buf2, md2, ts2); err != nil || !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatalf("re-encoding is not stable (err %v)", err)
		}
	})
}

func FuzzReadHeader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		h, err := ReadHeader(bytes.NewReader(file), int64(len(file)))
		_, _, derr := Decode(file)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			if derr == nil || derr.Error() != err.Error() {
				t.Fatalf("ReadHeader failed with %v but Decode returned %v", err, derr)
			}
			return
		}
		if derr != nil && !errors.Is(derr, ErrUnsupportedDType) {
			t.Fatalf("ReadHeader accepted the file but Decode failed: %v", derr)
		}
		if h.Metadata == nil {
			t.Fatal("nil Metadata")
		}
		if h.DataOffset < 8 || h.DataOffset+h.DataSize != int64(len(file)) {
			t.Fatalf("DataOffset %d + DataSize %d != file size %d", h.DataOffset, h.DataSize, len(file))
		}
		// The invariants ReadHeader promises.
		var pos int64
		names := map[string]bool{}
		for _, ti := range h.Tensors {
			if ti.Name == "" || ti.Name == metadataKey || names[ti.Name] {
				t.Fatalf("bad or duplicate name %q", ti.Name)
			}
			names[ti.Name] = true
			size, err := ti.DType.Size()
			if err != nil {
				t.Fatalf("tensor %q: %v", ti.Name, err)
			}
			n := ti.NumElements()
			if n < 0 || n*int64(size) != ti.End-ti.Begin {
				t.Fatalf("tensor %q: %d elements of %d bytes in [%d,%d)", ti.Name, n, size, ti.Begin, ti.End)
			}
			if ti.Begin != pos {
				t.Fatalf("tensor %q begins at %d, want %d", ti.Name, ti.Begin, pos)
			}
			pos = ti.End
			if got, ok := h.Tensor(ti.Name); !ok || got.Begin != ti.Begin {
				t.Fatalf("Tensor(%q) lookup failed", ti.Name)
			}
		}
		if pos != h.DataSize {
			t.Fatalf("tensors cover %d of %d data bytes", pos, h.DataSize)
		}
	})
}

// The committed corpus keeps its meaning: files named valid_* decode, and
// the hand-made invalid ones are rejected.
func TestFuzzCorpusFiles(t *testing.T) {
	for _, target := range []string{"FuzzDecode", "FuzzReadHeader"} {
		dir := filepath.Join("testdata", "fuzz", target)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			body, ok := strings.CutPrefix(string(raw), "go test fuzz v1\n[]byte(")
			body, ok2 := strings.CutSuffix(strings.TrimSpace(body), ")")
			file, err := strconv.Unquote(body)
			if !ok || !ok2 || err != nil {
				t.Errorf("%s/%s: not a []byte corpus entry", target, e.Name())
				continue
			}
			_, _, err = Decode([]byte(file))
			switch {
			case strings.HasPrefix(e.Name(), "valid_") && err != nil:
				t.Errorf("%s/%s: %v", target, e.Name(), err)
			case corpusInvalid[e.Name()] && !errors.Is(err, ErrInvalid):
				t.Errorf("%s/%s: err = %v, want ErrInvalid", target, e.Name(), err)
			}
		}
	}
}

var corpusInvalid = map[string]bool{
	"bad_json": true, "bad_json_trailing": true, "duplicate_key": true, "overlap": true,
	"shape_overflow": true, "short_prefix": true, "truncated_data": true, "truncated_header": true,
}
