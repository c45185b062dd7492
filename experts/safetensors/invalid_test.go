package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// f32Entry is a header entry for an F32 vector of n elements at
// [begin, begin+4n).
func f32Entry(name string, begin, n int) string {
	return `"` + name + `":{"dtype":"F32","shape":[` + strconv.Itoa(n) + `],"data_offsets":[` +
		strconv.Itoa(begin) + `,` + strconv.Itoa(begin+4*n) + `]}`
}

func lengthPrefix(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

func TestInvalidFiles(t *testing.T) {
	valid := mustEncode(t, map[string]string{"k": "v"}, []Tensor{
		{Name: "a", Shape: []int{2}, Data: []float32{1, 2}},
		{Name: "b", Shape: []int{3}, Data: []float32{3, 4, 5}},
	})
	tests := []struct {
		name string
		file []byte
		want string // substring of the error message
	}{
		{"empty file", nil, "file is 0 bytes, shorter than the 8-byte header length prefix"},
		{"shorter than 8 bytes", []byte{2, 0, 0, 0}, "file is 4 bytes"},
		{"header length beyond file", append(lengthPrefix(100), `{}`...), "header length 100 runs past the end of the 10-byte file"},
		{"header length huge", append(lengthPrefix(1<<63), `{}`...), "exceeds the 100000000-byte limit"},
		{"header length just over limit", append(lengthPrefix(MaxHeaderSize+1), `{}`...), "exceeds"},
		{"header length zero", lengthPrefix(0), "must start with '{'"},
		{"truncated data", valid[:len(valid)-3], `tensor "b": data_offsets [8,20] run past the end of the 17-byte data buffer`},
		{"truncated header", valid[:20], "runs past the end of the 20-byte file"},
		{"overlapping offsets",
			rawFile(`{`+f32Entry("a", 0, 2)+`,`+f32Entry("b", 4, 2)+`}`, make([]byte, 12)),
			`tensor "b": data_offsets [4,12] overlap tensor "a", which ends at 8`},
		{"identical offsets",
			rawFile(`{`+f32Entry("a", 0, 1)+`,`+f32Entry("b", 0, 1)+`}`, make([]byte, 4)),
			`tensor "b": data_offsets [0,4] overlap tensor "a"`},
		{"hole between tensors",
			rawFile(`{`+f32Entry("a", 0, 1)+`,`+f32Entry("b", 8, 1)+`}`, make([]byte, 12)),
			`hole in data buffer: bytes [4,8) between tensors "a" and "b"`},
		{"hole at start",
			rawFile(`{`+f32Entry("a", 4, 1)+`}`, make([]byte, 8)),
			`hole in data buffer: bytes [0,4) before tensor "a"`},
		{"trailing bytes after last tensor",
			rawFile(`{`+f32Entry("a", 0, 1)+`}`, make([]byte, 9)),
			"hole in data buffer: bytes [4,9) at the end of the 9-byte data buffer"},
		{"data but no tensors", rawFile(`{}`, []byte{1}), "bytes [0,1) at the end"},
		{"offsets past end",
			rawFile(`{`+f32Entry("a", 0, 1)+`,`+f32Entry("b", 4, 2)+`}`, make([]byte, 8)),
			`tensor "b": data_offsets [4,12] run past the end of the 8-byte data buffer`},
		{"size/shape mismatch",
			rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)),
			`tensor "a": shape [3] with dtype F32 needs 12 bytes but data_offsets [0,8] span 8`},
		{"size/shape mismatch by dtype",
			rawFile(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)),
			`shape [2] with dtype F16 needs 4 bytes`},
		{"begin after end",
			rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, make([]byte, 8)),
			`tensor "a": data_offsets [8,4] begin after they end`},
		{"unknown dtype",
			rawFile(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, make([]byte, 16)),
			`tensor "a": unknown dtype "F128"`},
		{"lowercase dtype",
			rawFile(`{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)),
			`unknown dtype "f32"`},
		{"dtype not a string",
			rawFile(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)),
			`tensor "a": dtype must be a string, got number 4`},
		{"duplicate tensor key",
			rawFile(`{`+f32Entry("a", 0, 1)+`,`+f32Entry("a", 0, 1)+`}`, make([]byte, 4)),
			`duplicate tensor name "a"`},
		{"duplicate tensor key via escape",
			rawFile(`{`+f32Entry("a", 0, 1)+`,"\u0061":{}}`, make([]byte, 4)),
			`duplicate tensor name "a"`},
		{"duplicate metadata key",
			rawFile(`{"__metadata__":{"k":"1","k":"2"}}`, nil),
			`duplicate key "k" in __metadata__`},
		{"duplicate __metadata__ object",
			rawFile(`{"__metadata__":{"k":"1"},"__metadata__":{"j":"2"}}`, nil),
			`duplicate "__metadata__" key in header`},
		{"duplicate field in tensor entry",
			rawFile(`{"a":{"dtype":"F32","shape":[1],"dtype":"F16","data_offsets":[0,4]}}`, make([]byte, 4)),
			`tensor "a": duplicate key "dtype"`},
		{"non-string metadata value",
			rawFile(`{"__metadata__":{"epochs":3}}`, nil),
			`__metadata__ value for key "epochs" must be a string, got number 3`},
		{"null metadata value",
			rawFile(`{"__metadata__":{"x":null}}`, nil),
			`value for key "x" must be a string, got null`},
		{"nested metadata value",
			rawFile(`{"__metadata__":{"x":{"y":"z"}}}`, nil),
			`value for key "x" must be a string, got an object`},
		{"metadata not an object",
			rawFile(`{"__metadata__":["a"]}`, nil),
			`__metadata__ must be a JSON object, got an array`},
		{"negative shape",
			rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)),
			`tensor "a" shape: entry -1 is negative`},
		{"negative offset",
			rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, make([]byte, 4)),
			`tensor "a" data_offsets: entry -4 is negative`},
		{"fractional shape",
			rawFile(`{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}`, make([]byte, 4)),
			`entry 1.0 is not an integer`},
		{"exponent shape",
			rawFile(`{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}`, make([]byte, 4)),
			`entry 1e0 is not an integer`},
		{"shape entry too large",
			rawFile(`{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}`, make([]byte, 4)),
			`entry 99999999999999999999 is too large`},
		{"shape product overflow",
			rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil),
			`tensor "a": element count of shape [4294967296 4294967296] overflows`},
		{"shape product overflow before a zero",
			rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, nil),
			`element count of shape [4294967296 4294967296 0] overflows`},
		{"byte size overflow",
			rawFile(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}`, nil),
			`byte size of shape [2305843009213693952] with dtype F64 overflows`},
		{"shape not an array",
			rawFile(`{"a":{"dtype":"F32","shape":4,"data_offsets":[0,4]}}`, make([]byte, 4)),
			`tensor "a" shape must be a JSON array, got number 4`},
		{"shape entry a string",
			rawFile(`{"a":{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}}`, make([]byte, 16)),
			`entries must be non-negative integers, got string "4"`},
		{"one data offset",
			rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0]}}`, nil),
			`data_offsets must have exactly 2 entries, got 1`},
		{"three data offsets",
			rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0,0]}}`, nil),
			`data_offsets must have exactly 2 entries, got more`},
		{"missing shape",
			rawFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)),
			`tensor "a": missing "shape"`},
		{"missing dtype",
			rawFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)),
			`tensor "a": missing "dtype"`},
		{"missing data_offsets",
			rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)),
			`tensor "a": missing "data_offsets"`},
		{"tensor entry not an object",
			rawFile(`{"a":[0,4]}`, make([]byte, 4)),
			`tensor "a" entry must be a JSON object, got an array`},
		{"tensor entry null", rawFile(`{"a":null}`, nil), `tensor "a" entry must be a JSON object, got null`},
		{"empty tensor name", rawFile(`{"":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, nil), "empty name"},
		{"header not an object", rawFile(`[{"a":1}]`, nil), "header is not a JSON object: it must start with '{'"},
		{"header a string", rawFile(`"{}"`, nil), "must start with '{'"},
		{"header leading space", rawFile(` {}`, nil), "must start with '{'"},
		{"header all spaces", rawFile(`        `, nil), "must start with '{'"},
		{"trailing garbage in JSON", rawFile(`{}  x`, nil), "trailing data after the header JSON object at header byte 4"},
		{"second JSON object", rawFile(`{}{}`, nil), "trailing data after the header JSON object at header byte 2"},
		{"NUL padding", rawFile("{}\x00\x00", nil), "trailing data"},
		{"unterminated object", rawFile(`{"a":{"dtype":"F32"`, nil), "header JSON ends early"},
		{"malformed JSON", rawFile(`{"a" "b"}`, nil), "malformed header JSON"},
		{"trailing comma", rawFile(`{"__metadata__":{"a":"b",}}`, nil), "malformed header JSON"},
		{"bad unknown field value", rawFile(`{"a":{"x":[1,}}`, nil), `tensor "a": malformed value for field "x"`},
		{"invalid UTF-8", rawFile("{\"\xff\":{}}", nil), "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := func(fn string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s succeeded, want an error containing %q", fn, tc.want)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("%s: errors.Is(%v, ErrInvalid) = false", fn, err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s error\n  %v\ndoes not contain\n  %s", fn, err, tc.want)
				}
			}
			_, _, err := Decode(tc.file)
			check("Decode", err)
			_, err = ReadHeader(bytes.NewReader(tc.file), int64(len(tc.file)))
			check("ReadHeader", err)
		})
	}
}

// Zero-size tensors may share an offset with each other and with the start
// of the next tensor without counting as overlap.
func TestZeroSizeTensorsAtSameOffset(t *testing.T) {
	file := rawFile(`{`+f32Entry("z2", 4, 0)+`,`+f32Entry("a", 0, 1)+`,`+f32Entry("z1", 4, 0)+`,`+f32Entry("b", 4, 1)+`,`+f32Entry("z0", 0, 0)+`}`,
		make([]byte, 8))
	h, err := ReadHeader(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, ti := range h.Tensors {
		order = append(order, ti.Name)
	}
	if got := strings.Join(order, ","); got != "z0,a,z1,z2,b" {
		t.Errorf("Tensors order = %s, want sorted by begin, end, name", got)
	}
}
