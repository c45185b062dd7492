package safetensors

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (via errors.Is) by every error reporting that a file
// or header violates the safetensors format, and by every error [Encode]
// returns because its input cannot be represented as a valid file.
var ErrInvalid = errors.New("safetensors: invalid data")

// ErrUnsupportedDType is matched by errors from [Decode] and
// [Header.ReadTensor] for a well-formed tensor whose dtype cannot be
// converted to float32 (integers, BOOL, FP8).
var ErrUnsupportedDType = errors.New("safetensors: unsupported dtype")

// formatError is a format violation; it matches ErrInvalid.
type formatError struct{ msg string }

func (e *formatError) Error() string        { return "safetensors: " + e.msg }
func (e *formatError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &formatError{msg: fmt.Sprintf(format, args...)}
}

// DType is a safetensors element type, spelled as in the file header.
type DType string

// The element types defined by the safetensors format.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U8     DType = "U8"
	Bool   DType = "BOOL"
)

// Size returns the size in bytes of one element of d, or an error matching
// [ErrInvalid] if d is not a known dtype.
func (d DType) Size() (int, error) {
	switch d {
	case F64, I64:
		return 8, nil
	case F32, I32:
		return 4, nil
	case F16, BF16, I16:
		return 2, nil
	case F8E4M3, F8E5M2, I8, U8, Bool:
		return 1, nil
	}
	return 0, invalidf("unknown dtype %q", string(d))
}

// IsFloat reports whether d can be converted to float32 by this package
// (F64, F32, F16, BF16).
func (d DType) IsFloat() bool {
	switch d {
	case F64, F32, F16, BF16:
		return true
	}
	return false
}

// TensorInfo describes one tensor of a header. Begin and End are byte
// offsets relative to the start of the data buffer ([Header.DataOffset]);
// the tensor occupies End-Begin bytes.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int64
	Begin int64
	End   int64
}

// NumElements returns the product of the shape (1 for a scalar), or -1 if a
// dimension is negative or the product overflows int64. Tensors returned by
// [ReadHeader] always have a valid element count.
func (t TensorInfo) NumElements() int64 {
	n, ok := numElements(t.Shape)
	if !ok {
		return -1
	}
	return n
}

// numElements multiplies the dimensions left to right, failing on a negative
// dimension or on any intermediate overflow (as the reference implementation
// does, so [1<<62, 4, 0] is rejected even though its product is zero).
func numElements(shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > maxInt64/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

const maxInt64 = int64(^uint64(0) >> 1)
