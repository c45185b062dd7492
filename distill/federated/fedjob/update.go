package fedjob

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// updateMagic starts every encoded update: the format and its version.
var updateMagic = []byte("MNFU1")

// Limits on an update's header: its size, and numbers that sums over a round must not overflow.
const (
	MaxUpdateHeader = 4 << 10
	MaxSamples      = 1 << 31
	MaxLoss         = 1e6
)

// Update is a participant's signed contribution to one round: the change its local training
// made to the round's model (float32, in the order experts.Network.Params uses), how many
// samples it trained on, and its local figures.
type Update struct {
	Job         string  `json:"job"`
	Round       int     `json:"round"`
	Participant string  `json:"participant"`
	Samples     int     `json:"samples"`
	TrainLoss   float64 `json:"train_loss"`
	Seconds     float64 `json:"seconds"` // local training time
	// FetchSeconds is the time from taking the round's announcement to starting to train
	// (fetching and loading the model); informational, for the round's accounting.
	FetchSeconds float64   `json:"fetch_seconds,omitempty"`
	Delta        []float32 `json:"-"`
	Sig          []byte    `json:"sig,omitempty"`
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

// PeekUpdateJob reads only the job ID from an encoded update's header, so a node can refuse
// updates for jobs it does not coordinate before decoding the values or checking signatures.
func PeekUpdateJob(b []byte) (string, error) {
	if !bytes.HasPrefix(b, updateMagic) || len(b) < len(updateMagic)+4 {
		return "", fmt.Errorf("%w: update: no header", ErrInvalid)
	}
	b = b[len(updateMagic):]
	hl := binary.LittleEndian.Uint32(b)
	if hl > MaxUpdateHeader || int(hl) > len(b)-4 {
		return "", fmt.Errorf("%w: update: header of %d bytes", ErrInvalid, hl)
	}
	var h struct {
		Job string `json:"job"`
	}
	if err := json.Unmarshal(b[4:4+hl], &h); err != nil || h.Job == "" || len(h.Job) > 64 {
		return "", fmt.Errorf("%w: update: no job in the header", ErrInvalid)
	}
	return h.Job, nil
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
	var u Update
	n, b, err := decodeFrame(b, MaxUpdateHeader, &u)
	if err != nil {
		return nil, bad("%v", err)
	}
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
	case u.Samples < 1 || u.Samples > MaxSamples:
		return nil, bad("%d samples: an update must come from training on 1 to %d", u.Samples, MaxSamples)
	case !(u.TrainLoss >= 0 && u.TrainLoss <= MaxLoss):
		return nil, bad("train loss %g outside [0, %g]", u.TrainLoss, MaxLoss)
	case !(u.Seconds >= 0 && u.Seconds <= 1e7) || !(u.FetchSeconds >= 0 && u.FetchSeconds <= 1e7):
		return nil, bad("seconds %g, fetch seconds %g", u.Seconds, u.FetchSeconds)
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

// Reply codes a coordinator answers an update with.
const (
	ReplyAccepted  = "accepted"
	ReplyDuplicate = "duplicate"   // already accepted: as good as accepted
	ReplyLate      = "late"        // the round closed or is another: wait for the next
	ReplyFull      = "full"        // the job has its participants: stop taking part
	ReplyShape     = "shape"       // the update does not fit the model: stop taking part
	ReplyUnknown   = "unknown_job" // the node does not coordinate that job
)

// Reply is a coordinator's answer to an update it could decode and verify.
type Reply struct {
	Code  string `json:"code"`
	Error string `json:"error,omitempty"`
}

// ReplyCode maps a collector's refusal to its reply code.
func ReplyCode(err error) string {
	switch {
	case err == nil:
		return ReplyAccepted
	case errors.Is(err, ErrDuplicate):
		return ReplyDuplicate
	case errors.Is(err, ErrFull):
		return ReplyFull
	case errors.Is(err, ErrShape):
		return ReplyShape
	default:
		return ReplyLate
	}
}
