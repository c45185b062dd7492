package routing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// QueryProtocol is the stream protocol of queries between nodes.
const QueryProtocol = "/meshnode/query/1.0.0"

// wireVersion is the first byte of every query message.
const wireVersion = 1

// Limits of a query message.
const (
	MaxVectorLen = 1 << 16 // values in an input or output vector
	MaxTextLen   = 64 << 10
	MaxImageLen  = 4 << 20 // an encoded PNG or JPEG
	maxStringLen = 256
)

// ErrBadMessage marks every query message that fails to decode.
var ErrBadMessage = errors.New("bad query message")

// Request is one query on the wire: the expert to run, the input, and the time the caller
// stops waiting.
type Request struct {
	Expert   string    // the expert's ID (CID string)
	Vector   []float32 // the input features, or
	Text     string    // a text the expert's input spec turns into features, or
	Image    []byte    // a PNG or JPEG image the expert's input spec turns into features
	Deadline time.Time // the caller's deadline; a server drops work past it
}

// Response is the answer to a Request.
type Response struct {
	Expert  string    // the expert that answered
	Label   string    // the top class, for class experts
	Output  []float32 // class probabilities or the output vector
	Compute time.Duration
}

// EncodeRequest renders a request.
func EncodeRequest(r Request) []byte {
	b := make([]byte, 0, 32+len(r.Expert)+4*len(r.Vector)+len(r.Text))
	b = append(b, wireVersion)
	b = appendString(b, r.Expert)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Deadline.UnixMicro()))
	switch {
	case r.Vector != nil:
		b = append(b, 0)
		b = appendVector(b, r.Vector)
	case r.Image != nil:
		b = append(b, 2)
		b = appendString(b, string(r.Image))
	default:
		b = append(b, 1)
		b = appendString(b, r.Text)
	}
	return b
}

// DecodeRequest parses a request; every failure wraps ErrBadMessage.
func DecodeRequest(b []byte) (Request, error) {
	d := decoder{b: b}
	var r Request
	d.version()
	r.Expert = d.str(maxStringLen)
	r.Deadline = time.UnixMicro(int64(d.u64()))
	switch d.byte() {
	case 0:
		r.Vector = d.vector()
	case 1:
		r.Text = d.str(MaxTextLen)
	case 2:
		r.Image = []byte(d.str(MaxImageLen))
	default:
		d.fail("unknown input kind")
	}
	return r, d.end()
}

// EncodeResponse renders a response.
func EncodeResponse(r Response) []byte {
	b := make([]byte, 0, 32+len(r.Expert)+len(r.Label)+4*len(r.Output))
	b = append(b, wireVersion)
	b = appendString(b, r.Expert)
	b = appendString(b, r.Label)
	b = appendVector(b, r.Output)
	b = binary.AppendUvarint(b, uint64(r.Compute.Nanoseconds()))
	return b
}

// DecodeResponse parses a response; every failure wraps ErrBadMessage.
func DecodeResponse(b []byte) (Response, error) {
	d := decoder{b: b}
	var r Response
	d.version()
	r.Expert = d.str(maxStringLen)
	r.Label = d.str(maxStringLen)
	r.Output = d.vector()
	r.Compute = time.Duration(min(d.uvarint(), math.MaxInt64))
	return r, d.end()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendVector(b []byte, v []float32) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// decoder reads fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) version() {
	if v := d.byte(); d.err == nil && v != wireVersion {
		d.fail("version %d, want %d", v, wireVersion)
	}
}

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str(max int) string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail("string of %d bytes (limit %d, %d left)", n, max, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) vector() []float32 {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > MaxVectorLen || 4*n > uint64(len(d.b)) {
		d.fail("vector of %d values (limit %d, %d bytes left)", n, MaxVectorLen, len(d.b))
		return nil
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.b[4*i:]))
	}
	d.b = d.b[4*n:]
	return v
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the message", len(d.b))
	}
	return d.err
}
