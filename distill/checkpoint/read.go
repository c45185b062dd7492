package checkpoint

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/meshnode/meshnode/experts/safetensors"
)

// Matrix is a row-major float32 matrix. Vectors are 1×n, scalars 1×1, and
// tensors of rank > 2 are flattened to shape[0] × (product of the rest).
type Matrix struct {
	Rows, Cols int
	Data       []float32
}

// Row returns row i as a view.
func (m Matrix) Row(i int) []float32 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

func matrixShape(shape []int64) (rows, cols int) {
	switch len(shape) {
	case 0:
		return 1, 1
	case 1:
		return 1, int(shape[0])
	}
	cols = 1
	for _, d := range shape[1:] {
		cols *= int(d)
	}
	return int(shape[0]), cols
}

// Read decodes tensor name to float32, dequantising F8_E4M3 weights with
// their block scales. The result is a new matrix.
func (ck *Checkpoint) Read(ctx context.Context, name string) (Matrix, error) {
	m, _, err := ck.ReadInto(ctx, name, nil, 0)
	return m, err
}

// ReadInto is Read into dst when it is large enough (a new slice otherwise),
// so a scan can reuse one buffer. It also returns how many values have
// magnitude below eps (0 when eps ≤ 0), counted while decoding.
func (ck *Checkpoint) ReadInto(ctx context.Context, name string, dst []float32, eps float32) (Matrix, int64, error) {
	return ck.Stream(ctx, name, dst, eps, nil)
}

// bandRows is how many rows Stream decodes before handing them on: few
// enough to still be in cache when the callback reads them.
const bandRows = 16

// Stream is ReadInto that decodes the matrix in bands of rows and calls
// fn(m, lo, hi) as soon as rows [lo, hi) of m are decoded, in order, so the
// caller can work on each band while it is in cache instead of making
// another pass over memory. fn may be nil.
func (ck *Checkpoint) Stream(ctx context.Context, name string, dst []float32, eps float32, fn func(m Matrix, lo, hi int)) (Matrix, int64, error) {
	if err := ctx.Err(); err != nil {
		return Matrix{}, 0, err
	}
	ref, ok := ck.tensors[name]
	if !ok {
		return Matrix{}, 0, fmt.Errorf("checkpoint %s: no tensor %q", ck.Dir, name)
	}
	s := ck.shards[ref.shard]
	rows, cols := matrixShape(ref.info.Shape)
	n := rows * cols
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	m := Matrix{Rows: rows, Cols: cols, Data: dst[:n]}
	var nearZero int64
	what := fmt.Sprintf("tensor %q in %s", name, s.name)
	err := guardFault(what, func() error {
		raw, err := s.raw(ref.info)
		if err != nil {
			return err
		}
		fp8 := ref.info.DType == safetensors.F8E4M3
		var bs BlockScale
		if fp8 {
			if bs, err = ck.blockScale(name); err != nil {
				return err
			}
		}
		size, _ := ref.info.DType.Size()
		for lo := 0; lo < rows; {
			if err := ctx.Err(); err != nil {
				return err
			}
			hi := min(lo+bandRows, rows)
			out := m.Data[lo*cols : hi*cols]
			in := raw[lo*cols*size : hi*cols*size]
			if fp8 {
				// Stay inside one row of scale blocks.
				br := lo / bs.Rows
				hi = min(hi, (br+1)*bs.Rows)
				out, in = m.Data[lo*cols:hi*cols], raw[lo*cols:hi*cols]
				nbc := blocks(cols, bs.Cols)
				band := BlockScale{Rows: bs.Rows, Cols: bs.Cols, Scale: bs.Scale[br*nbc : (br+1)*nbc]}
				nz, err := DequantizeFP8(out, in, hi-lo, cols, band, eps)
				if err != nil {
					return err
				}
				nearZero += nz
			} else {
				if err := decodeFloats(out, ref.info.DType, in); err != nil {
					return err
				}
				nearZero += countNearZero(out, eps)
			}
			if fn != nil {
				fn(m, lo, hi)
			}
			lo = hi
		}
		return nil
	})
	if err != nil {
		return Matrix{}, 0, fmt.Errorf("checkpoint %s: reading %s: %w", ck.Dir, what, err)
	}
	return m, nearZero, nil
}

// blockScale reads the scales of FP8 weight name.
func (ck *Checkpoint) blockScale(name string) (BlockScale, error) {
	sname := name + ScaleSuffix
	ref, ok := ck.tensors[sname]
	if !ok {
		return BlockScale{}, fmt.Errorf("no block scales %q", sname)
	}
	raw, err := ck.shards[ref.shard].raw(ref.info)
	if err != nil {
		return BlockScale{}, fmt.Errorf("block scales %q: %w", sname, err)
	}
	scale := make([]float32, ref.info.NumElements())
	if err := decodeFloats(scale, ref.info.DType, raw); err != nil {
		return BlockScale{}, fmt.Errorf("block scales %q: %w", sname, err)
	}
	br, bc := ck.Config.BlockSize()
	return BlockScale{Rows: br, Cols: bc, Scale: scale}, nil
}

// ReadRows decodes only the given rows of tensor name (e.g. a sample of
// token embeddings) without touching the rest of it.
func (ck *Checkpoint) ReadRows(ctx context.Context, name string, rows []int) (Matrix, error) {
	if err := ctx.Err(); err != nil {
		return Matrix{}, err
	}
	ref, ok := ck.tensors[name]
	if !ok {
		return Matrix{}, fmt.Errorf("checkpoint %s: no tensor %q", ck.Dir, name)
	}
	s := ck.shards[ref.shard]
	what := fmt.Sprintf("tensor %q in %s", name, s.name)
	nr, cols := matrixShape(ref.info.Shape)
	size, _ := ref.info.DType.Size()
	out := Matrix{Rows: len(rows), Cols: cols, Data: make([]float32, len(rows)*cols)}
	var bs BlockScale
	if ref.info.DType == safetensors.F8E4M3 {
		var err error
		if bs, err = ck.blockScale(name); err != nil {
			return Matrix{}, fmt.Errorf("checkpoint %s: reading %s: %w", ck.Dir, what, err)
		}
	}
	err := guardFault(what, func() error {
		raw, err := s.raw(ref.info)
		if err != nil {
			return err
		}
		for k, r := range rows {
			if r < 0 || r >= nr {
				return fmt.Errorf("row %d outside [0, %d)", r, nr)
			}
			row := raw[r*cols*size : (r+1)*cols*size]
			dst := out.Row(k)
			if ref.info.DType != safetensors.F8E4M3 {
				if err := decodeFloats(dst, ref.info.DType, row); err != nil {
					return err
				}
				continue
			}
			nbc := blocks(cols, bs.Cols)
			scales := bs.Scale[(r/bs.Rows)*nbc : (r/bs.Rows+1)*nbc]
			for j, b := range row {
				dst[j] = E4M3ToFloat32(b) * scales[j/bs.Cols]
			}
		}
		return nil
	})
	if err != nil {
		return Matrix{}, fmt.Errorf("checkpoint %s: reading %s: %w", ck.Dir, what, err)
	}
	return out, nil
}

// Prefetch asks the kernel to start reading the named tensors (and their
// block scales) so a later Read finds them in memory. Unknown names are ignored.
func (ck *Checkpoint) Prefetch(names ...string) {
	for _, n := range names {
		for _, t := range []string{n, n + ScaleSuffix} {
			if ref, ok := ck.tensors[t]; ok {
				ck.shards[ref.shard].prefetch(ref.info)
			}
		}
	}
}

// decodeFloats converts raw little-endian F32, F16, BF16 or F64 values into dst.
func decodeFloats(dst []float32, dt safetensors.DType, raw []byte) error {
	size, err := dt.Size()
	if err != nil {
		return err
	}
	if len(raw) != len(dst)*size {
		return fmt.Errorf("%d bytes of %s for %d values", len(raw), dt, len(dst))
	}
	switch dt {
	case safetensors.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case safetensors.BF16:
		for i := range dst {
			dst[i] = safetensors.BFloat16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case safetensors.F16:
		for i := range dst {
			dst[i] = safetensors.Float16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case safetensors.F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		return fmt.Errorf("%w: dtype %s", safetensors.ErrUnsupportedDType, dt)
	}
	return nil
}
