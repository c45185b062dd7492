package fedjob

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/meshnode/meshnode/distill/federated/secagg"
)

// secureMagic starts every encoded secure-aggregation message.
var secureMagic = []byte("MNSA1")

// Steps of a secure round, as participants send them.
const (
	StepAdvert  = "advert"  // the participant's keys; it has trained
	StepDealing = "dealing" // its sealed shares
	StepMasked  = "masked"  // its masked update
	StepReveal  = "reveal"  // its shares of its neighbours' secrets
	StepPoll    = "poll"    // asks for the result of the step named in Poll
)

// Limits on secure messages.
const (
	MaxSecureHeader = 4 << 20 // a dealing or a delivery, with commitments
	MaxSecureReply  = 8 << 20
)

// SignedAdvert is a participant's keys for one round, signed by it: participants check every
// advert of the roster, so a coordinator cannot slip in keys of its own.
type SignedAdvert struct {
	secagg.Advert
	Sig []byte `json:"sig"`
}

// SecureMsg is what a participant sends the coordinator in a secure round. The sender is the
// authenticated peer the message arrives from.
type SecureMsg struct {
	Job      string `json:"job"`
	Round    int    `json:"round"`
	Instance int64  `json:"instance"` // the round's deadline (Unix ms): a reopened round is another
	Step     string `json:"step"`
	Poll     string `json:"poll,omitempty"`

	Advert       *SignedAdvert `json:"advert,omitempty"`
	Seconds      float64       `json:"seconds,omitempty"` // local training time, with the advert
	FetchSeconds float64       `json:"fetch_seconds,omitempty"`

	Dealing *secagg.Dealing `json:"dealing,omitempty"`
	Reveals []secagg.Reveal `json:"reveals,omitempty"`
	Masked  []uint64        `json:"-"` // binary, after the header
}

// SecureReply is the coordinator's answer: a code, and for a poll whose step has closed its
// result.
type SecureReply struct {
	Code       string            `json:"code"`
	Error      string            `json:"error,omitempty"`
	Roster     []SignedAdvert    `json:"roster,omitempty"`
	Deliveries []secagg.Delivery `json:"deliveries,omitempty"`
	Survivors  []string          `json:"survivors,omitempty"`
}

// ReplyPending answers a poll whose step is still open.
const ReplyPending = "pending"

// SecureSession names a round instance for package secagg: every key of the round is salted
// with it.
func SecureSession(job string, round int, instance int64) []byte {
	h := sha256.Sum256([]byte("meshnode secure round\x00" + job + "\x00" + strconv.Itoa(round) + "\x00" + strconv.FormatInt(instance, 10)))
	return h[:]
}

// AdvertBytes is what a participant signs for its advert in a round instance.
func AdvertBytes(job string, round int, instance int64, a secagg.Advert) []byte {
	b := append(SecureSession(job, round, instance), a.ID...)
	b = append(b, 0)
	b = append(b, a.CipherKey...)
	return append(b, a.MaskKey...)
}

// SignAdvert signs a participant's advert for a round instance.
func SignAdvert(k Signer, job string, round int, instance int64, a secagg.Advert) (*SignedAdvert, error) {
	sig, err := k.Sign(AdvertBytes(job, round, instance, a))
	if err != nil {
		return nil, fmt.Errorf("sign advert: %w", err)
	}
	return &SignedAdvert{Advert: a, Sig: sig}, nil
}

// VerifyRoster checks every advert of a roster: signed by the participant it names, for this
// round instance.
func VerifyRoster(verify Verifier, job string, round int, instance int64, roster []SignedAdvert) error {
	if len(roster) > MaxParticipants {
		return fmt.Errorf("%w: roster of %d adverts", ErrInvalid, len(roster))
	}
	for _, a := range roster {
		if err := verify(a.ID, AdvertBytes(job, round, instance, a.Advert), a.Sig); err != nil {
			return fmt.Errorf("%w: advert of %s: %v", ErrInvalid, a.ID, err)
		}
	}
	return nil
}

// Encode writes the message: magic, header length (uint32 LE), JSON header, value count
// (uint32 LE), the masked values as little-endian uint64.
func (m *SecureMsg) Encode() []byte {
	head, _ := json.Marshal(m)
	out := make([]byte, 0, len(secureMagic)+8+len(head)+8*len(m.Masked))
	out = append(out, secureMagic...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(head)))
	out = append(out, head...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(m.Masked)))
	for _, v := range m.Masked {
		out = binary.LittleEndian.AppendUint64(out, v)
	}
	return out
}

// IsSecureMsg tells a secure-aggregation message from an update.
func IsSecureMsg(b []byte) bool { return bytes.HasPrefix(b, secureMagic) }

// DecodeSecureMsg parses a message of at most maxValues masked values, checking its format
// (not whether it fits the round: SecureRound does that).
func DecodeSecureMsg(b []byte, maxValues int) (*SecureMsg, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: secure message: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if !IsSecureMsg(b) {
		return nil, bad("does not start with %q", secureMagic)
	}
	b = b[len(secureMagic):]
	var m SecureMsg
	n, b, err := decodeFrame(b, MaxSecureHeader, &m)
	if err != nil {
		return nil, bad("%v", err)
	}
	if int64(n) > int64(maxValues) || int64(len(b)) != 8*int64(n) {
		return nil, bad("%d values in %d bytes (limit %d values)", n, len(b), maxValues)
	}
	if n > 0 {
		m.Masked = make([]uint64, n)
		for i := range m.Masked {
			m.Masked[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
	}
	switch {
	case m.Job == "" || len(m.Job) > 64:
		return nil, bad("job %q", m.Job)
	case m.Round < 1 || m.Round > MaxRounds:
		return nil, bad("round %d", m.Round)
	case !(m.Seconds >= 0 && m.Seconds <= 1e7) || !(m.FetchSeconds >= 0 && m.FetchSeconds <= 1e7):
		return nil, bad("seconds %g, fetch seconds %g", m.Seconds, m.FetchSeconds)
	}
	want := map[string]bool{StepAdvert: m.Advert != nil, StepDealing: m.Dealing != nil, StepMasked: n > 0,
		StepReveal: m.Reveals != nil, StepPoll: m.Poll != ""}
	has, ok := want[m.Step]
	if !ok || !has {
		return nil, bad("step %q without its content", m.Step)
	}
	if m.Step == StepPoll && m.Poll != StepAdvert && m.Poll != StepDealing && m.Poll != StepMasked {
		return nil, bad("poll for %q", m.Poll)
	}
	return &m, nil
}

// DecodeSecureReply parses a coordinator's reply.
func DecodeSecureReply(b []byte) (*SecureReply, error) {
	if len(b) > MaxSecureReply {
		return nil, fmt.Errorf("%w: secure reply of %d bytes", ErrInvalid, len(b))
	}
	var r SecureReply
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: secure reply: %v", ErrInvalid, err)
	}
	if len(r.Roster) > MaxParticipants || len(r.Survivors) > MaxParticipants || len(r.Deliveries) > MaxParticipants {
		return nil, fmt.Errorf("%w: secure reply lists more than %d participants", ErrInvalid, MaxParticipants)
	}
	return &r, nil
}
