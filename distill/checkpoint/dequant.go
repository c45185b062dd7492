package checkpoint

import (
	"fmt"
	"math"
)

// BlockScale describes the scales of a block-quantised FP8 weight: the real
// value of element (i, j) is fp8(i, j) × Scale[(i/Rows)·cols + j/Cols], where
// cols = ⌈columns/Cols⌉. The last block of a row or column of blocks may be
// partial.
type BlockScale struct {
	Rows, Cols int       // block size, e.g. 128 × 128
	Scale      []float32 // ⌈rows/Rows⌉ × ⌈columns/Cols⌉, row-major
}

// blocks returns how many blocks of size b cover n elements.
func blocks(n, b int) int { return (n + b - 1) / b }

// DequantizeFP8 decodes the rows × cols E4M3FN matrix raw with block scales
// bs into dst (len rows·cols), computing each value as float32(fp8) ×
// float32(scale) like the reference kernels. It returns how many values have
// magnitude below eps (0 if eps ≤ 0), counted at no extra pass over dst.
func DequantizeFP8(dst []float32, raw []byte, rows, cols int, bs BlockScale, eps float32) (nearZero int64, err error) {
	if rows < 0 || cols < 0 || len(raw) != rows*cols || len(dst) != rows*cols {
		return 0, fmt.Errorf("dequantize: %d×%d matrix with %d bytes into %d values", rows, cols, len(raw), len(dst))
	}
	if bs.Rows <= 0 || bs.Cols <= 0 {
		return 0, fmt.Errorf("dequantize: block size %d×%d must be positive", bs.Rows, bs.Cols)
	}
	br, bc := blocks(rows, bs.Rows), blocks(cols, bs.Cols)
	if len(bs.Scale) != br*bc {
		return 0, fmt.Errorf("dequantize: %d×%d matrix in %d×%d blocks needs %d×%d=%d scales, got %d",
			rows, cols, bs.Rows, bs.Cols, br, bc, br*bc, len(bs.Scale))
	}
	tab := newE4M3Table()
	// thresholds[k] is the count of non-negative codes whose scaled value is
	// below eps for block column k of the current block row: E4M3 magnitudes
	// grow with the code, so |v| < eps ⟺ code&0x7f < threshold.
	thresholds := make([]uint32, bc)
	for r0 := 0; r0 < rows; r0 += bs.Rows {
		srow := bs.Scale[(r0/bs.Rows)*bc : (r0/bs.Rows+1)*bc]
		if eps > 0 {
			for k, s := range srow {
				thresholds[k] = smallCodes(tab, s, eps)
			}
		}
		for i := r0; i < min(r0+bs.Rows, rows); i++ {
			in := raw[i*cols : (i+1)*cols]
			out := dst[i*cols : (i+1)*cols]
			for k, s := range srow {
				c0, c1 := k*bs.Cols, min((k+1)*bs.Cols, cols)
				seg, o := in[c0:c1], out[c0:c1]
				o = o[:len(seg)]
				th := thresholds[k]
				var n uint32
				for j, b := range seg {
					o[j] = tab[b] * s
					n += (uint32(b&0x7f) - th) >> 31 // 1 when code < threshold
				}
				if eps > 0 {
					nearZero += int64(n)
				}
			}
		}
	}
	return nearZero, nil
}

// smallCodes returns the number of codes c in [0, 0x7e] with |tab[c]·s| < eps;
// they are exactly the codes below the returned value.
func smallCodes(tab *e4m3Table, s, eps float32) uint32 {
	if s != s { // NaN scale: nothing compares below eps
		return 0
	}
	lo, hi := 0, 0x7f // search the first code whose scaled magnitude is ≥ eps
	for lo < hi {
		mid := (lo + hi) / 2
		if float32(math.Abs(float64(tab[mid]*s))) < eps {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return uint32(lo)
}

// countNearZero returns how many values of v have magnitude below eps.
func countNearZero(v []float32, eps float32) int64 {
	if eps <= 0 {
		return 0
	}
	lim := math.Float32bits(eps)
	var n int64
	for _, x := range v {
		if math.Float32bits(x)&0x7fffffff < lim {
			n++
		}
	}
	return n
}
