package fedjob

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
)

// Job states carried by announcements.
const (
	StateRound   = "round"   // the round named is collecting updates
	StateDone    = "done"    // every round closed; Model is the final version
	StateStopped = "stopped" // the coordinator stopped the job early; Model is the last version
)

// MaxAnnouncementBytes bounds an announcement on the gossip topic.
const MaxAnnouncementBytes = 16 << 10

// MaxAddrs bounds the coordinator addresses an announcement carries.
const MaxAddrs = 16

// maxClockSkew is how far in the future an announcement may claim to be issued.
const maxClockSkew = 30 * time.Second

// AnnouncementTTL is how long an announcement stays fresh: the coordinator republishes the
// current one far more often than this while a job runs.
const AnnouncementTTL = 2 * time.Minute

// Announcement is what a coordinator gossips about its job: the spec (so a node that missed
// the start learns the job from any announcement), the round being collected with the model
// it starts from and its deadline, and the last closed round's figures.
type Announcement struct {
	Spec  Spec   `json:"spec"`
	State string `json:"state"`
	Round int    `json:"round"` // 1-based; for done/stopped, the rounds closed
	Model string `json:"model"` // CID of the expert version the round starts from (or the final one)
	// Weights is the CID of Model's weights blob, so a participant asks for the manifest and the
	// weights together. A hint: the manifest fetched by its CID is what decides.
	Weights  string        `json:"weights,omitempty"`
	Deadline int64         `json:"deadline"` // Unix ms: updates after this are dropped
	Last     *RoundSummary `json:"last,omitempty"`
	// Addrs are the coordinator's current multiaddrs, so participants reach it for updates
	// even after it restarted on new ports.
	Addrs  []string `json:"addrs,omitempty"`
	Issued int64    `json:"issued"` // Unix ms
	Sig    []byte   `json:"sig,omitempty"`
}

func (a *Announcement) signingBytes() []byte {
	c := *a
	c.Sig = nil
	b, _ := json.Marshal(c)
	return b
}

// Sign signs the announcement as the job's coordinator.
func (a *Announcement) Sign(k Signer) error {
	if k.ID() != a.Spec.Coordinator {
		return fmt.Errorf("sign announcement: %s does not coordinate job %s", k.ID(), a.Spec.ID())
	}
	sig, err := k.Sign(a.signingBytes())
	if err != nil {
		return fmt.Errorf("sign announcement: %w", err)
	}
	a.Sig = sig
	return nil
}

// Encode is the announcement's wire form.
func (a *Announcement) Encode() []byte {
	b, _ := json.Marshal(a)
	return b
}

// DecodeAnnouncement parses and checks an announcement received from peer from: size, schema,
// the spec's and the announcement's signatures (both by the coordinator, who must be the
// sender) and freshness.
func DecodeAnnouncement(data []byte, from string, now time.Time, verify Verifier) (*Announcement, error) {
	if len(data) > MaxAnnouncementBytes {
		return nil, fmt.Errorf("%w: announcement of %d bytes, limit %d", ErrInvalid, len(data), MaxAnnouncementBytes)
	}
	var a Announcement
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%w: announcement: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the announcement", ErrInvalid)
	}
	if err := a.Spec.Check(verify); err != nil {
		return nil, err
	}
	if a.Spec.Coordinator != from {
		return nil, fmt.Errorf("%w: announcement of job %s coordinated by %s arrived from %s", ErrInvalid, a.Spec.ID(), a.Spec.Coordinator, from)
	}
	switch a.State {
	case StateRound:
		if a.Round < 1 || a.Round > a.Spec.Rounds {
			return nil, fmt.Errorf("%w: round %d of a %d-round job", ErrInvalid, a.Round, a.Spec.Rounds)
		}
	case StateDone, StateStopped:
		if a.Round < 0 || a.Round > a.Spec.Rounds {
			return nil, fmt.Errorf("%w: %d rounds closed of a %d-round job", ErrInvalid, a.Round, a.Spec.Rounds)
		}
	default:
		return nil, fmt.Errorf("%w: unknown job state %q", ErrInvalid, a.State)
	}
	if _, err := cid.Decode(a.Model); err != nil {
		return nil, fmt.Errorf("%w: model %q is not a CID", ErrInvalid, a.Model)
	}
	if a.Weights != "" {
		if _, err := cid.Decode(a.Weights); err != nil {
			return nil, fmt.Errorf("%w: weights %q is not a CID", ErrInvalid, a.Weights)
		}
	}
	if len(a.Addrs) > MaxAddrs {
		return nil, fmt.Errorf("%w: %d coordinator addresses, limit %d", ErrInvalid, len(a.Addrs), MaxAddrs)
	}
	for _, ad := range a.Addrs {
		if len(ad) == 0 || len(ad) > 256 || ad[0] != '/' {
			return nil, fmt.Errorf("%w: coordinator address %q is not a multiaddr", ErrInvalid, ad)
		}
	}
	if a.Last != nil {
		if err := a.Last.check(); err != nil {
			return nil, err
		}
	}
	issued := time.UnixMilli(a.Issued)
	if issued.After(now.Add(maxClockSkew)) {
		return nil, fmt.Errorf("%w: announcement issued %s in the future", ErrInvalid, issued.Sub(now))
	}
	if now.Sub(issued) > AnnouncementTTL {
		return nil, fmt.Errorf("%w: announcement issued %s ago (TTL %s)", ErrInvalid, now.Sub(issued).Round(time.Second), AnnouncementTTL)
	}
	if err := verify(a.Spec.Coordinator, a.signingBytes(), a.Sig); err != nil {
		return nil, fmt.Errorf("%w: announcement signature: %v", ErrInvalid, err)
	}
	return &a, nil
}

// RoundSummary is what one closed round produced and cost.
type RoundSummary struct {
	Round        int      `json:"round"`
	Model        string   `json:"model"`                  // CID of the version the round made
	Parent       string   `json:"parent"`                 // CID of the version it started from
	Participants []string `json:"participants,omitempty"` // left out of announcements (size)
	Updates      int      `json:"updates"`                // accepted updates
	Samples      int      `json:"samples"`
	Accuracy     float64  `json:"accuracy"` // on the coordinator's held-out data
	Loss         float64  `json:"loss"`
	TrainLoss    float64  `json:"train_loss"`    // participants' mean, weighted by samples
	UpdateBytes  int64    `json:"update_bytes"`  // received for this round's accepted updates
	ModelBytes   int64    `json:"model_bytes"`   // the round's model weights, fetched by each participant
	Dropped      int      `json:"dropped"`       // late, duplicate or refused updates
	Seconds      float64  `json:"seconds"`       // from the round's start to its new version
	TrainSeconds float64  `json:"train_seconds"` // participants' mean local training time
	// MaxTrainSeconds is the slowest participant's local training time: the part of the
	// round that training alone would take when participants train side by side.
	MaxTrainSeconds float64 `json:"max_train_seconds"`
	// CloseSeconds is the coordinator's share: aggregating, evaluating and storing the version.
	CloseSeconds float64 `json:"close_seconds"`
	// FetchSeconds is the participants' mean time from hearing of the round to training.
	FetchSeconds float64 `json:"fetch_seconds"`
	Started      int64   `json:"started"` // Unix ms
	// Epsilon is the differential-privacy ε spent after this round, at the spec's δ.
	Epsilon float64 `json:"epsilon,omitempty"`
	// Secure is the secure-aggregation accounting of the round (nil for plain rounds).
	Secure *SecureSummary `json:"secure,omitempty"`
}

// SecureSummary is what secure aggregation cost a round: the time from the advertising
// step's close to the unmasked aggregate (dealing, masking, revealing, unmasking), the
// coordinator's time unmasking, and the bytes of every step it received and answered.
type SecureSummary struct {
	Seconds       float64 `json:"seconds"`
	UnmaskSeconds float64 `json:"unmask_seconds"`
	ReceivedBytes int64   `json:"received_bytes"`
	SentBytes     int64   `json:"sent_bytes"`
}

func (r *RoundSummary) check() error {
	if r.Round < 1 || r.Round > MaxRounds || len(r.Participants) > MaxParticipants || r.Updates < 0 || r.Samples < 0 ||
		r.UpdateBytes < 0 || r.ModelBytes < 0 || r.Dropped < 0 {
		return fmt.Errorf("%w: round summary out of range", ErrInvalid)
	}
	if _, err := cid.Decode(r.Model); err != nil {
		return fmt.Errorf("%w: round summary model %q is not a CID", ErrInvalid, r.Model)
	}
	return nil
}
