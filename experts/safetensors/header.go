package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header accepted, in bytes (100 MB, the
// limit of the reference implementation).
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved top-level key holding free-form string metadata.
const metadataKey = "__metadata__"

// Header is the validated header of a safetensors file.
type Header struct {
	// Metadata holds the "__metadata__" entries; it is never nil.
	Metadata map[string]string
	// Tensors is sorted by Begin (then End, then Name), so consecutive
	// tensors are contiguous and cover the data buffer.
	Tensors []TensorInfo
	// DataOffset is the absolute offset of the data buffer in the file: 8+N.
	DataOffset int64
	// DataSize is the length of the data buffer in bytes.
	DataSize int64
}

// Tensor returns the tensor called name. It scans linearly.
func (h *Header) Tensor(name string) (TensorInfo, bool) {
	for _, t := range h.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// Names returns the tensor names sorted lexicographically.
func (h *Header) Names() []string {
	names := make([]string, len(h.Tensors))
	for i, t := range h.Tensors {
		names[i] = t.Name
	}
	slices.Sort(names)
	return names
}

// ReadHeader reads and validates the header of a safetensors file of total
// size bytes, reading only the 8-byte prefix and the JSON header from r, so
// it is cheap on huge files. The data buffer itself is not read, but the
// tensors' offsets are checked to tile it exactly.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	if size < 8 {
		return nil, invalidf("file is %d bytes, shorter than the 8-byte header length prefix", size)
	}
	var prefix [8]byte
	if err := readFullAt(r, prefix[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	if n > MaxHeaderSize {
		return nil, invalidf("header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return nil, invalidf("header length %d runs past the end of the %d-byte file", n, size)
	}
	buf := make([]byte, n)
	if err := readFullAt(r, buf, 8); err != nil {
		return nil, fmt.Errorf("safetensors: reading %d-byte header: %w", n, err)
	}
	dataOffset := 8 + int64(n)
	return parseHeader(buf, dataOffset, size-dataOffset)
}

// readFullAt fills p from r at off, treating a short read as an error.
func readFullAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil // io.ReaderAt may return io.EOF along with a full read
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// parseHeader parses and validates the JSON header buf for a data buffer of
// dataSize bytes starting at dataOffset.
func parseHeader(buf []byte, dataOffset, dataSize int64) (*Header, error) {
	if len(buf) == 0 || buf[0] != '{' {
		return nil, invalidf("header is not a JSON object: it must start with '{'")
	}
	if !utf8.Valid(buf) {
		return nil, invalidf("header is not valid UTF-8")
	}
	p := &headerParser{dec: json.NewDecoder(bytes.NewReader(buf))}
	p.dec.UseNumber()
	h := &Header{Metadata: map[string]string{}, DataOffset: dataOffset, DataSize: dataSize}
	if err := p.parseTop(h); err != nil {
		return nil, err
	}
	// Only whitespace (normally the space padding) may follow the object.
	rest := buf[p.dec.InputOffset():]
	if i := bytes.IndexFunc(rest, func(r rune) bool { return !isJSONSpace(r) }); i >= 0 {
		return nil, invalidf("trailing data after the header JSON object at header byte %d", p.dec.InputOffset()+int64(i))
	}
	if err := checkLayout(h); err != nil {
		return nil, err
	}
	return h, nil
}

func isJSONSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// checkLayout verifies that the tensors tile [0, h.DataSize) exactly and
// sorts h.Tensors by offset.
func checkLayout(h *Header) error {
	for _, t := range h.Tensors {
		if t.End > h.DataSize {
			return invalidf("tensor %q: data_offsets [%d,%d] run past the end of the %d-byte data buffer",
				t.Name, t.Begin, t.End, h.DataSize)
		}
	}
	slices.SortFunc(h.Tensors, func(a, b TensorInfo) int {
		if a.Begin != b.Begin {
			return cmpInt64(a.Begin, b.Begin)
		}
		if a.End != b.End {
			return cmpInt64(a.End, b.End)
		}
		return strings.Compare(a.Name, b.Name)
	})
	var pos int64
	prev := ""
	for _, t := range h.Tensors {
		switch {
		case t.Begin < pos:
			return invalidf("tensor %q: data_offsets [%d,%d] overlap tensor %q, which ends at %d",
				t.Name, t.Begin, t.End, prev, pos)
		case t.Begin > pos:
			if prev == "" {
				return invalidf("hole in data buffer: bytes [%d,%d) before tensor %q belong to no tensor",
					pos, t.Begin, t.Name)
			}
			return invalidf("hole in data buffer: bytes [%d,%d) between tensors %q and %q belong to no tensor",
				pos, t.Begin, prev, t.Name)
		}
		pos, prev = t.End, t.Name
	}
	if pos != h.DataSize {
		return invalidf("hole in data buffer: bytes [%d,%d) at the end of the %d-byte data buffer belong to no tensor",
			pos, h.DataSize, h.DataSize)
	}
	return nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// headerParser walks the header with json.Decoder tokens, which (unlike
// json.Unmarshal) lets it reject duplicate keys.
type headerParser struct {
	dec *json.Decoder
}

func (p *headerParser) token(what string) (json.Token, error) {
	tok, err := p.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalidf("header JSON ends early, in %s", what)
		}
		return nil, invalidf("malformed header JSON in %s: %v", what, err)
	}
	return tok, nil
}

// expectDelim reads the next token and fails unless it is d.
func (p *headerParser) expectDelim(d json.Delim, what string) error {
	tok, err := p.token(what)
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return invalidf("%s must be a JSON %s, got %s", what, delimKind(d), describe(tok))
	}
	return nil
}

func delimKind(d json.Delim) string {
	if d == '[' {
		return "array"
	}
	return "object"
}

// describe names a token for error messages.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "string " + strconv.Quote(truncate(v))
	case json.Number:
		return "number " + truncate(string(v))
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// key reads an object key or the closing '}'; done reports the latter.
func (p *headerParser) key(what string) (k string, done bool, err error) {
	tok, err := p.token(what)
	if err != nil {
		return "", false, err
	}
	switch v := tok.(type) {
	case string:
		return v, false, nil
	case json.Delim:
		if v == '}' {
			return "", true, nil
		}
	}
	// Unreachable with encoding/json, which only yields strings or '}' here.
	return "", false, invalidf("malformed header JSON in %s: unexpected %s", what, describe(tok))
}

func (p *headerParser) parseTop(h *Header) error {
	if err := p.expectDelim('{', "header"); err != nil {
		return err
	}
	seen := map[string]bool{}
	sawMetadata := false
	for {
		k, done, err := p.key("header")
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if k == metadataKey {
			if sawMetadata {
				return invalidf("duplicate %q key in header", metadataKey)
			}
			sawMetadata = true
			if err := p.parseMetadata(h.Metadata); err != nil {
				return err
			}
			continue
		}
		if seen[k] {
			return invalidf("duplicate tensor name %q in header", k)
		}
		seen[k] = true
		if k == "" {
			return invalidf("tensor with an empty name in header")
		}
		t, err := p.parseTensor(k)
		if err != nil {
			return err
		}
		h.Tensors = append(h.Tensors, t)
	}
}

func (p *headerParser) parseMetadata(md map[string]string) error {
	if err := p.expectDelim('{', metadataKey); err != nil {
		return err
	}
	for {
		k, done, err := p.key(metadataKey)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if _, dup := md[k]; dup {
			return invalidf("duplicate key %q in %s", k, metadataKey)
		}
		tok, err := p.token(metadataKey + " value")
		if err != nil {
			return err
		}
		s, ok := tok.(string)
		if !ok {
			return invalidf("%s value for key %q must be a string, got %s", metadataKey, k, describe(tok))
		}
		md[k] = s
	}
}

func (p *headerParser) parseTensor(name string) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	what := fmt.Sprintf("tensor %q", name)
	if err := p.expectDelim('{', what+" entry"); err != nil {
		return t, err
	}
	seen := map[string]bool{}
	for {
		k, done, err := p.key(what + " entry")
		if err != nil {
			return t, err
		}
		if done {
			break
		}
		if seen[k] {
			return t, invalidf("%s: duplicate key %q", what, k)
		}
		seen[k] = true
		switch k {
		case "dtype":
			tok, err := p.token(what + " dtype")
			if err != nil {
				return t, err
			}
			s, ok := tok.(string)
			if !ok {
				return t, invalidf("%s: dtype must be a string, got %s", what, describe(tok))
			}
			t.DType = DType(s)
			if _, err := t.DType.Size(); err != nil {
				return t, invalidf("%s: unknown dtype %q", what, truncate(s))
			}
		case "shape":
			t.Shape = []int64{} // a scalar's shape is [], never nil
			if err := p.intArray(what+" shape", func(v int64) error {
				t.Shape = append(t.Shape, v)
				return nil
			}); err != nil {
				return t, err
			}
		case "data_offsets":
			var offs []int64
			if err := p.intArray(what+" data_offsets", func(v int64) error {
				if len(offs) == 2 {
					return invalidf("%s: data_offsets must have exactly 2 entries, got more", what)
				}
				offs = append(offs, v)
				return nil
			}); err != nil {
				return t, err
			}
			if len(offs) != 2 {
				return t, invalidf("%s: data_offsets must have exactly 2 entries, got %d", what, len(offs))
			}
			t.Begin, t.End = offs[0], offs[1]
		default:
			// Unknown fields are ignored, as in the reference implementation,
			// but must still be well-formed JSON.
			var skip json.RawMessage
			if err := p.dec.Decode(&skip); err != nil {
				return t, invalidf("%s: malformed value for field %q: %v", what, truncate(k), err)
			}
		}
	}
	for _, f := range []string{"dtype", "shape", "data_offsets"} {
		if !seen[f] {
			return t, invalidf("%s: missing %q", what, f)
		}
	}
	if t.Begin > t.End {
		return t, invalidf("%s: data_offsets [%d,%d] begin after they end", what, t.Begin, t.End)
	}
	n, ok := numElements(t.Shape)
	if !ok {
		return t, invalidf("%s: element count of shape %v overflows", what, t.Shape)
	}
	size, _ := t.DType.Size()
	if n > maxInt64/int64(size) {
		return t, invalidf("%s: byte size of shape %v with dtype %s overflows", what, t.Shape, t.DType)
	}
	if nb := n * int64(size); nb != t.End-t.Begin {
		return t, invalidf("%s: shape %v with dtype %s needs %d bytes but data_offsets [%d,%d] span %d",
			what, t.Shape, t.DType, nb, t.Begin, t.End, t.End-t.Begin)
	}
	return t, nil
}

// intArray reads a JSON array of non-negative integers, calling add for each.
func (p *headerParser) intArray(what string, add func(int64) error) error {
	if err := p.expectDelim('[', what); err != nil {
		return err
	}
	for {
		tok, err := p.token(what)
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok && d == ']' {
			return nil
		}
		num, ok := tok.(json.Number)
		if !ok {
			return invalidf("%s: entries must be non-negative integers, got %s", what, describe(tok))
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		switch {
		case err != nil && strings.HasPrefix(string(num), "-") && isDigits(string(num)[1:]):
			return invalidf("%s: entry %s is negative", what, truncate(string(num)))
		case err != nil && isDigits(string(num)):
			return invalidf("%s: entry %s is too large", what, truncate(string(num)))
		case err != nil:
			return invalidf("%s: entry %s is not an integer", what, truncate(string(num)))
		case v < 0:
			return invalidf("%s: entry %d is negative", what, v)
		}
		if err := add(v); err != nil {
			return err
		}
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
