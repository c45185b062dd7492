package fedjob

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// decodeFrame reads the frame that updates and secure messages share after their magic: a
// little-endian uint32 header length, a JSON header of at most limit bytes decoded into header
// with unknown fields refused, and a uint32 count of the values that follow. It returns the
// count and the bytes after it; the caller checks them against its own limits. Errors are
// descriptions for the caller's prefix.
func decodeFrame(b []byte, limit uint32, header any) (uint32, []byte, error) {
	if len(b) < 4 {
		return 0, nil, fmt.Errorf("truncated before the header length")
	}
	hl := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if hl > limit || int64(hl) > int64(len(b)) {
		return 0, nil, fmt.Errorf("header of %d bytes (limit %d, %d left)", hl, limit, len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b[:hl]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(header); err != nil {
		return 0, nil, fmt.Errorf("header: %v", err)
	}
	if dec.More() {
		return 0, nil, fmt.Errorf("data after the header")
	}
	b = b[hl:]
	if len(b) < 4 {
		return 0, nil, fmt.Errorf("truncated before the value count")
	}
	return binary.LittleEndian.Uint32(b), b[4:], nil
}
