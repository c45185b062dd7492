package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Tensor is a decoded float tensor. Data is in row-major order and has
// exactly product(Shape) elements (1 for a scalar, Shape == []).
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Encode writes metadata and tensors to w as a safetensors file in which
// every tensor has dtype F32. Tensors are laid out sorted by name with
// contiguous offsets, metadata keys are sorted, and the header is padded
// with spaces so the data buffer starts at a multiple of 8, so the output is
// a deterministic function of the input. The tensors slice is not modified.
//
// Encode fails, with an error matching [ErrInvalid], before writing anything
// if a tensor has an empty name, is named "__metadata__", shares its name
// with another tensor, has a negative dimension, or has len(Data) different
// from the product of its Shape.
func Encode(w io.Writer, metadata map[string]string, tensors []Tensor) error {
	header, err := encodeHeader(metadata, tensors)
	if err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("safetensors: writing header: %w", err)
	}
	// Convert through a fixed scratch buffer: large tensors are never
	// duplicated in memory, and the writer sees few, large writes.
	scratch := make([]byte, 0, 64<<10)
	for _, i := range sortedByName(tensors) {
		data := tensors[i].Data
		for len(data) > 0 {
			k := min(len(data), cap(scratch)/4)
			scratch = scratch[:4*k]
			for j, v := range data[:k] {
				binary.LittleEndian.PutUint32(scratch[4*j:], math.Float32bits(v))
			}
			if _, err := w.Write(scratch); err != nil {
				return fmt.Errorf("safetensors: writing tensor %q: %w", tensors[i].Name, err)
			}
			data = data[k:]
		}
	}
	return nil
}

// sortedByName returns the indices of tensors in name order.
func sortedByName(tensors []Tensor) []int {
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(tensors[a].Name, tensors[b].Name) })
	return order
}

// encodeHeader validates tensors and returns the 8-byte length prefix
// followed by the padded JSON header.
func encodeHeader(metadata map[string]string, tensors []Tensor) ([]byte, error) {
	order := sortedByName(tensors)
	var js bytes.Buffer
	js.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			js.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		sep()
		writeJSONString(&js, metadataKey)
		js.WriteString(":{")
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				js.WriteByte(',')
			}
			writeJSONString(&js, k)
			js.WriteByte(':')
			writeJSONString(&js, metadata[k])
		}
		js.WriteByte('}')
	}
	var offset int64
	for j, i := range order {
		t := &tensors[i]
		switch {
		case t.Name == "":
			return nil, invalidf("cannot encode tensor %d: empty name", i)
		case t.Name == metadataKey:
			return nil, invalidf("cannot encode tensor named %q: the name is reserved", metadataKey)
		case j > 0 && tensors[order[j-1]].Name == t.Name:
			return nil, invalidf("cannot encode tensor %q: duplicate name", t.Name)
		}
		shape := make([]int64, len(t.Shape))
		for k, d := range t.Shape {
			shape[k] = int64(d)
		}
		n, ok := numElements(shape)
		if !ok {
			return nil, invalidf("cannot encode tensor %q: shape %v has a negative dimension or overflows", t.Name, t.Shape)
		}
		if n != int64(len(t.Data)) {
			return nil, invalidf("cannot encode tensor %q: shape %v has %d elements but Data has %d",
				t.Name, t.Shape, n, len(t.Data))
		}
		end := offset + 4*n
		sep()
		writeJSONString(&js, t.Name)
		js.WriteString(`:{"dtype":"F32","shape":[`)
		for k, d := range shape {
			if k > 0 {
				js.WriteByte(',')
			}
			js.WriteString(strconv.FormatInt(d, 10))
		}
		js.WriteString(`],"data_offsets":[`)
		js.WriteString(strconv.FormatInt(offset, 10))
		js.WriteByte(',')
		js.WriteString(strconv.FormatInt(end, 10))
		js.WriteString("]}")
		offset = end
	}
	js.WriteByte('}')
	// Pad so that 8+N is a multiple of 8: the data buffer is then aligned.
	for js.Len()%8 != 0 {
		js.WriteByte(' ')
	}
	if js.Len() > MaxHeaderSize {
		return nil, invalidf("cannot encode: header would be %d bytes, over the %d-byte limit", js.Len(), MaxHeaderSize)
	}
	out := make([]byte, 8, 8+js.Len())
	binary.LittleEndian.PutUint64(out, uint64(js.Len()))
	return append(out, js.Bytes()...), nil
}

// writeJSONString writes s as a JSON string literal without HTML escaping.
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // cannot fail for a string
	buf.Truncate(buf.Len() - 1) // drop the trailing newline
}

// Decode parses a whole safetensors file held in b, converting F32, F16,
// BF16 and F64 tensors to float32. It returns the metadata (never nil) and
// the tensors sorted by name. A format violation yields an error matching
// [ErrInvalid]; a valid file containing a tensor of another dtype yields an
// error matching [ErrUnsupportedDType] that names the tensor and dtype.
func Decode(b []byte) (metadata map[string]string, tensors []Tensor, err error) {
	h, err := ReadHeader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, err
	}
	data := b[h.DataOffset:]
	tensors = make([]Tensor, 0, len(h.Tensors))
	for _, ti := range h.Tensors {
		t, err := decodeTensor(ti, data[ti.Begin:ti.End])
		if err != nil {
			return nil, nil, err
		}
		tensors = append(tensors, t)
	}
	slices.SortFunc(tensors, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	return h.Metadata, tensors, nil
}

// ReadTensor reads the tensor called name from r, the file h was read from,
// and converts it to float32 (see [Decode] for the supported dtypes).
func (h *Header) ReadTensor(r io.ReaderAt, name string) (Tensor, error) {
	ti, ok := h.Tensor(name)
	if !ok {
		return Tensor{}, fmt.Errorf("safetensors: no tensor %q", name)
	}
	if !ti.DType.IsFloat() {
		return Tensor{}, unsupported(ti)
	}
	raw := make([]byte, ti.End-ti.Begin)
	if err := readFullAt(r, raw, h.DataOffset+ti.Begin); err != nil {
		return Tensor{}, fmt.Errorf("safetensors: reading tensor %q: %w", name, err)
	}
	return decodeTensor(ti, raw)
}

func unsupported(ti TensorInfo) error {
	return fmt.Errorf("%w: tensor %q has dtype %s, which cannot be converted to float32", ErrUnsupportedDType, ti.Name, ti.DType)
}

func decodeTensor(ti TensorInfo, raw []byte) (Tensor, error) {
	shape := make([]int, len(ti.Shape))
	for i, d := range ti.Shape {
		if int64(int(d)) != d {
			return Tensor{}, fmt.Errorf("safetensors: tensor %q: dimension %d does not fit in int on this platform", ti.Name, d)
		}
		shape[i] = int(d)
	}
	data, err := ToFloat32(ti.DType, raw)
	if err != nil {
		if errors.Is(err, ErrUnsupportedDType) {
			return Tensor{}, unsupported(ti)
		}
		return Tensor{}, fmt.Errorf("safetensors: tensor %q: %w", ti.Name, err)
	}
	return Tensor{Name: ti.Name, Shape: shape, Data: data}, nil
}

// ToFloat32 converts raw little-endian elements of dtype dt to float32.
// F64 values are rounded to the nearest float32 (±Inf beyond its range).
// It fails for dtypes other than F32, F16, BF16 and F64, or if len(raw) is
// not a multiple of the element size.
func ToFloat32(dt DType, raw []byte) ([]float32, error) {
	size, err := dt.Size()
	if err != nil {
		return nil, err
	}
	if !dt.IsFloat() {
		return nil, fmt.Errorf("%w %s", ErrUnsupportedDType, dt)
	}
	if len(raw)%size != 0 {
		return nil, invalidf("%d bytes is not a whole number of %s elements", len(raw), dt)
	}
	out := make([]float32, len(raw)/size)
	switch dt {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = Float16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	}
	return out, nil
}

// ReadFile reads and decodes the safetensors file at path (see [Decode]).
func ReadFile(path string) (map[string]string, []Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	md, ts, err := Decode(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return md, ts, nil
}

// WriteFile encodes md and ts (see [Encode]) to path atomically: it writes
// a temporary file in the same directory, fsyncs it, and renames it over
// path, so readers see either the old file or the complete new one. The file
// is created with mode 0644.
func WriteFile(path string, md map[string]string, ts []Tensor) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = Encode(f, md, ts); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	// Make the rename durable; not all platforms can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
