package fedjob

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
)

// updateMagic starts every encoded update: the format and its version.
var updateMagic = []byte("MNFU1")

// MaxUpdateHeader bounds the JSON header of an update.
const MaxUpdateHeader = 4 << 10

// Update is a participant's signed contribution to one round: the change its local training
// made to the round's model (float32, in the order experts.Network.Params uses), how many
// samples it trained on, and its local figures.
type Update struct {
	Job         string    `json:"job"`
	Round       int       `json:"round"`
	Participant string    `json:"participant"`
	Samples     int       `json:"samples"`
	TrainLoss   float64   `json:"train_loss"`
	Seconds     float64   `json:"seconds"` // local training time
	Delta       []float32 `json:"-"`
	Sig         []byte    `json:"sig,omitempty"`
}

// signingBytes covers the header and every delta value.
func (u *Update) signingBytes() []byte {
	c := *u
	c.Sig = nil
	head, _ := json.Marshal(c)
	h := sha256.New()
	h.Write(head)
	var b [4]byte
	for _, v := range u.Delta {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		h.Write(b[:])
	}
	return h.Sum(nil)
}

// Sign signs the update as its participant.
func (u *Update) Sign(k Signer) error {
	u.Participant = k.ID()
	sig, err := k.Sign(u.signingBytes())
	if err != nil {
		return fmt.Errorf("sign update: %w", err)
	}
	u.Sig = sig
	return nil
}

// Verify checks the participant's signature.
func (u *Update) Verify(verify Verifier) error {
	if err := verify(u.Participant, u.signingBytes(), u.Sig); err != nil {
		return fmt.Errorf("%w: update signature of %s: %v", ErrInvalid, u.Participant, err)
	}
	return nil
}

// Encode writes the update: magic, header length (uint32 LE), JSON header, value count
// (uint32 LE), then the values as little-endian float32.
func (u *Update) Encode() []byte {
	head, _ := json.Marshal(u)
	out := make([]byte, 0, len(updateMagic)+8+len(head)+4*len(u.Delta))
	out = append(out, updateMagic...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(head)))
	out = append(out, head...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(u.Delta)))
	for _, v := range u.Delta {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

// DecodeUpdate parses an encoded update holding at most maxValues values. It checks the
// format, not the signature or the round (see Verify and Collector.Add).
func DecodeUpdate(b []byte, maxValues int) (*Update, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: update: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if !bytes.HasPrefix(b, updateMagic) {
		return nil, bad("does not start with %q", updateMagic)
	}
	b = b[len(updateMagic):]
	if len(b) < 4 {
		return nil, bad("truncated before the header length")
	}
	hl := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if hl > MaxUpdateHeader || int(hl) > len(b) {
		return nil, bad("header of %d bytes (limit %d, %d left)", hl, MaxUpdateHeader, len(b))
	}
	var u Update
	dec := json.NewDecoder(bytes.NewReader(b[:hl]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		return nil, bad("header: %v", err)
	}
	if dec.More() {
		return nil, bad("data after the header")
	}
	b = b[hl:]
	if len(b) < 4 {
		return nil, bad("truncated before the value count")
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if int64(n) > int64(maxValues) {
		return nil, bad("%d values, limit %d", n, maxValues)
	}
	if int64(len(b)) != 4*int64(n) {
		return nil, bad("%d bytes of values for %d values", len(b), n)
	}
	u.Delta = make([]float32, n)
	for i := range u.Delta {
		v := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, bad("value %d is not finite", i)
		}
		u.Delta[i] = v
	}
	switch {
	case u.Job == "" || len(u.Job) > 64:
		return nil, bad("job %q", u.Job)
	case u.Round < 1 || u.Round > MaxRounds:
		return nil, bad("round %d", u.Round)
	case u.Samples < 1:
		return nil, bad("%d samples: an update must come from training on at least one", u.Samples)
	case math.IsNaN(u.TrainLoss) || math.IsInf(u.TrainLoss, 0) || u.TrainLoss < 0:
		return nil, bad("train loss %g", u.TrainLoss)
	case math.IsNaN(u.Seconds) || u.Seconds < 0 || u.Seconds > 1e7:
		return nil, bad("seconds %g", u.Seconds)
	}
	return &u, nil
}

// Float64s widens the delta for aggregation.
func (u *Update) Float64s() []float64 {
	out := make([]float64, len(u.Delta))
	for i, v := range u.Delta {
		out[i] = float64(v)
	}
	return out
}

// Float32s narrows a delta for sending.
func Float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
