package fedjob

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/distill/federated/fedavg"
	"github.com/meshnode/meshnode/experts"
)

// ErrInvalid marks messages that break the job protocol's rules.
var ErrInvalid = errors.New("invalid training message")

// Signer signs as a peer (node.Identity is one).
type Signer interface {
	ID() string
	Sign(msg []byte) ([]byte, error)
}

// Verifier checks that sig is the signature of msg by the peer named author
// (node.VerifyPeerSignature).
type Verifier func(author string, msg, sig []byte) error

// Limits on a spec's numbers: generous for real jobs, small enough that a hostile spec cannot
// make a node loop for days or allocate without bound.
const (
	MaxRounds       = 10000
	MaxParticipants = 1000
	MaxLocalEpochs  = 1000
	MaxDeadline     = 24 * time.Hour
	MinDeadline     = time.Second // rounds that reopen empty do so at most once a second
)

// Spec is a training job, signed by the node that coordinates it. Its ID is the hash of its
// signed fields.
type Spec struct {
	Base        string             `json:"base"` // CID of the expert version training starts from
	Domain      string             `json:"domain"`
	Input       experts.InputSpec  `json:"input"`
	Output      experts.OutputSpec `json:"output"`
	Rounds      int                `json:"rounds"`
	LocalEpochs int                `json:"local_epochs"`
	BatchSize   int                `json:"batch_size"`
	LR          float64            `json:"learning_rate"`
	ProxMu      float64            `json:"prox_mu,omitempty"` // FedProx's μ; 0 is FedAvg
	// LRDecay multiplies the local learning rate every round: round r trains at
	// LR·LRDecay^(r−1). 0 (or 1) keeps it constant.
	LRDecay float64 `json:"lr_decay,omitempty"`
	// Optimizer is the participants' local optimizer: "adam" (the default, also when empty)
	// or "sgd" (with momentum 0.9). Either starts afresh every round.
	Optimizer string `json:"optimizer,omitempty"`
	// ServerMomentum is the coordinator's momentum β over rounds (FedAvgM); 0 is FedAvg.
	ServerMomentum float64 `json:"server_momentum,omitempty"`
	// MinParticipants is the quorum: a round closes early (at the soft deadline) only once this
	// many updates arrived. MaxParticipants caps the distinct peers a job accepts.
	MinParticipants int `json:"min_participants"`
	MaxParticipants int `json:"max_participants"`
	// SoftDeadlineMS and DeadlineMS are measured from a round's start.
	SoftDeadlineMS int64   `json:"soft_deadline_ms"`
	DeadlineMS     int64   `json:"deadline_ms"`
	Aggregator     string  `json:"aggregator"`
	MaxShare       float64 `json:"max_share,omitempty"`
	Trim           float64 `json:"trim,omitempty"`
	Byzantine      int     `json:"byzantine,omitempty"`
	ClipNorm       float64 `json:"clip_norm,omitempty"`
	// NoiseStd is differential privacy's noise multiplier z: the coordinator adds Gaussian
	// noise of standard deviation z·ClipNorm to the sum of the clipped updates, drawn from a
	// generator seeded from its own CSPRNG (nothing in the spec predicts it). Updates then
	// weigh equally. DPDelta is the δ at which ε is reported; TargetEpsilon, when set, ends
	// the job before a round would take ε past it.
	NoiseStd      float64 `json:"noise_std,omitempty"`
	DPDelta       float64 `json:"dp_delta,omitempty"`
	TargetEpsilon float64 `json:"target_epsilon,omitempty"`
	// RecordClipNorm turns on differential privacy for every training record: participants
	// train with DP-SGD (experts.DPSGD), each record's gradient clipped to this norm and
	// Gaussian noise added by the participant itself, so even its raw update is private.
	// RecordNoise is DP-SGD's noise multiplier; 0 with RecordTargetEpsilon makes every
	// participant pick the smallest one that keeps its own records within the target over all
	// rounds, given its own data size. A participant stops before a round would take its ε
	// (at DPDelta) past RecordTargetEpsilon.
	RecordClipNorm      float64 `json:"record_clip_norm,omitempty"`
	RecordNoise         float64 `json:"record_noise,omitempty"`
	RecordTargetEpsilon float64 `json:"record_target_epsilon,omitempty"`
	// SecureAggregation has participants mask their updates so that the coordinator learns
	// only their sum (package secagg); it needs FedAvg and a clipping norm. SecAggNeighbours
	// is each participant's number of neighbours (0: everyone), SecAggThreshold the share of
	// a neighbourhood whose shares rebuild a secret, SecAggPhaseMS each step's deadline after
	// the advertising step closes at the round's deadline.
	SecureAggregation bool    `json:"secure_aggregation,omitempty"`
	SecAggNeighbours  int     `json:"secagg_neighbours,omitempty"`
	SecAggThreshold   float64 `json:"secagg_threshold,omitempty"`
	SecAggPhaseMS     int64   `json:"secagg_phase_ms,omitempty"`
	Seed              uint64  `json:"seed"` // local shuffling
	Coordinator       string  `json:"coordinator"`
	Created           int64   `json:"created"` // Unix milliseconds
	Sig               []byte  `json:"sig,omitempty"`
}

func (s *Spec) signingBytes() []byte {
	c := *s
	c.Sig = nil
	b, _ := json.Marshal(c) // a struct of strings, numbers and slices: cannot fail
	return b
}

// ID names the job: the first 16 bytes of the SHA-256 of its signed fields, in hex.
func (s *Spec) ID() string {
	h := sha256.Sum256(s.signingBytes())
	return hex.EncodeToString(h[:16])
}

// SoftDeadline and Deadline are the round's deadlines as durations.
func (s *Spec) SoftDeadline() time.Duration {
	return time.Duration(s.SoftDeadlineMS) * time.Millisecond
}

// Deadline is the hard deadline of a round, from its start.
func (s *Spec) Deadline() time.Duration { return time.Duration(s.DeadlineMS) * time.Millisecond }

// AggregateConfig is the spec's aggregation settings for fedavg.Aggregate; noise draws the
// differential-privacy noise (nil when the spec has none).
func (s *Spec) AggregateConfig(noise fedavg.NoiseSource) fedavg.Config {
	return fedavg.Config{Aggregator: s.Aggregator, MaxShare: s.MaxShare, Trim: s.Trim, Byzantine: s.Byzantine,
		ClipNorm: s.ClipNorm, NoiseStd: s.NoiseStd, Noise: noise}
}

// Defaults for the privacy settings a spec leaves out.
const (
	DefaultDPDelta         = 1e-5
	DefaultSecAggThreshold = 2.0 / 3
	DefaultSecAggPhase     = 5 * time.Second
	// MaxSecAggNeighbours bounds a neighbourhood: what a participant receives grows with the
	// square of it (shares carry their dealers' commitments).
	MaxSecAggNeighbours = 64
)

// FillPrivacyDefaults sets the privacy defaults a spec leaves out, before it is signed.
func (s *Spec) FillPrivacyDefaults() {
	if (s.NoiseStd > 0 || s.RecordClipNorm > 0) && s.DPDelta == 0 {
		s.DPDelta = DefaultDPDelta
	}
	if s.SecureAggregation {
		if s.SecAggThreshold == 0 {
			s.SecAggThreshold = DefaultSecAggThreshold
		}
		if s.SecAggPhaseMS == 0 {
			s.SecAggPhaseMS = DefaultSecAggPhase.Milliseconds()
		}
	}
}

// RoundLR is the local learning rate of a round (from 1).
func (s *Spec) RoundLR(round int) float64 {
	if s.LRDecay == 0 || round <= 1 {
		return s.LR
	}
	return s.LR * math.Pow(s.LRDecay, float64(round-1))
}

// SecAggPhase is the deadline of each secure-aggregation step after the first.
func (s *Spec) SecAggPhase() time.Duration { return time.Duration(s.SecAggPhaseMS) * time.Millisecond }

// Sign fills in the coordinator and signs the spec.
func (s *Spec) Sign(k Signer) error {
	s.Coordinator = k.ID()
	sig, err := k.Sign(s.signingBytes())
	if err != nil {
		return fmt.Errorf("sign job spec: %w", err)
	}
	s.Sig = sig
	return nil
}

// Check validates the spec's fields and its coordinator's signature.
func (s *Spec) Check(verify Verifier) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: job spec: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if _, err := cid.Decode(s.Base); err != nil {
		return bad("base %q is not a CID", s.Base)
	}
	switch {
	case s.Domain == "" || len(s.Domain) > 64:
		return bad("domain %q must be 1 to 64 characters", s.Domain)
	case s.Input.Dim <= 0 || s.Input.Dim > 1<<20:
		return bad("input dimension %d out of range", s.Input.Dim)
	case s.Output.Dim <= 0 || s.Output.Dim > 1<<16:
		return bad("output dimension %d out of range", s.Output.Dim)
	case len(s.Output.Labels) > 1024:
		return bad("%d output labels, limit 1024", len(s.Output.Labels))
	case s.Rounds < 1 || s.Rounds > MaxRounds:
		return bad("rounds %d must be in 1..%d", s.Rounds, MaxRounds)
	case s.LocalEpochs < 1 || s.LocalEpochs > MaxLocalEpochs:
		return bad("local epochs %d must be in 1..%d", s.LocalEpochs, MaxLocalEpochs)
	case s.BatchSize < 1 || s.BatchSize > 1<<16:
		return bad("batch size %d out of range", s.BatchSize)
	case !(s.LR > 0 && s.LR < 10):
		return bad("learning rate %g must be in (0, 10)", s.LR)
	case !(s.LRDecay >= 0 && s.LRDecay <= 1):
		return bad("learning-rate decay %g must be in (0, 1], or 0 for none", s.LRDecay)
	case s.Optimizer != "" && s.Optimizer != "adam" && s.Optimizer != "sgd":
		return bad("unknown optimizer %q (want adam or sgd)", s.Optimizer)
	case !(s.ServerMomentum >= 0 && s.ServerMomentum < 1):
		return bad("server momentum %g must be in [0, 1)", s.ServerMomentum)
	case !(s.ProxMu >= 0 && s.ProxMu < 1e6):
		return bad("prox_mu %g out of range", s.ProxMu)
	case s.MinParticipants < 1 || s.MinParticipants > MaxParticipants:
		return bad("min participants %d must be in 1..%d", s.MinParticipants, MaxParticipants)
	case s.MaxParticipants < s.MinParticipants || s.MaxParticipants > MaxParticipants:
		return bad("max participants %d must be in %d..%d", s.MaxParticipants, s.MinParticipants, MaxParticipants)
	case time.Duration(s.DeadlineMS)*time.Millisecond < MinDeadline || time.Duration(s.DeadlineMS)*time.Millisecond > MaxDeadline:
		return bad("round deadline %dms must be in [%s, %s]", s.DeadlineMS, MinDeadline, MaxDeadline)
	case s.SoftDeadlineMS < 0 || s.SoftDeadlineMS > s.DeadlineMS:
		return bad("soft deadline %dms must be in 0..%dms", s.SoftDeadlineMS, s.DeadlineMS)
	case !(s.MaxShare >= 0 && s.MaxShare <= 1), !(s.Trim >= 0 && s.Trim < 0.5):
		return bad("max_share %g or trim %g out of range", s.MaxShare, s.Trim)
	case s.Byzantine < 0 || s.Byzantine > MaxParticipants:
		return bad("byzantine %d out of range", s.Byzantine)
	case !(s.ClipNorm >= 0 && s.ClipNorm < 1e12), !(s.NoiseStd >= 0 && s.NoiseStd < 1e6):
		return bad("clip_norm %g or noise_std %g out of range", s.ClipNorm, s.NoiseStd)
	case s.NoiseStd > 0 && s.ClipNorm == 0:
		return bad("differential-privacy noise needs clip_norm")
	case s.NoiseStd > 0 && s.Aggregator != fedavg.FedAvg:
		return bad("differential-privacy noise is calibrated for fedavg, not %s", s.Aggregator)
	case s.NoiseStd > 0 && !(s.DPDelta > 0 && s.DPDelta < 1):
		return bad("dp_delta %g must be in (0, 1)", s.DPDelta)
	case !(s.TargetEpsilon >= 0 && s.TargetEpsilon < 1e6), s.TargetEpsilon > 0 && s.NoiseStd == 0:
		return bad("target_epsilon %g needs noise_std and must be below 1e6", s.TargetEpsilon)
	case !(s.RecordClipNorm >= 0 && s.RecordClipNorm < 1e6), !(s.RecordNoise >= 0 && s.RecordNoise < 1e6),
		!(s.RecordTargetEpsilon >= 0 && s.RecordTargetEpsilon < 1e6):
		return bad("record_clip_norm %g, record_noise %g or record_target_epsilon %g out of range",
			s.RecordClipNorm, s.RecordNoise, s.RecordTargetEpsilon)
	case (s.RecordNoise > 0 || s.RecordTargetEpsilon > 0) && s.RecordClipNorm == 0:
		return bad("record-level differential privacy needs record_clip_norm")
	case s.RecordClipNorm > 0 && s.RecordNoise == 0 && s.RecordTargetEpsilon == 0:
		return bad("record-level differential privacy needs record_noise or record_target_epsilon")
	case s.RecordClipNorm > 0 && !(s.DPDelta > 0 && s.DPDelta < 1):
		return bad("dp_delta %g must be in (0, 1)", s.DPDelta)
	case s.SecureAggregation && (s.Aggregator != fedavg.FedAvg || s.ClipNorm == 0):
		return bad("secure aggregation sums updates: it needs the fedavg aggregator and clip_norm (robust aggregators must see each update)")
	case s.SecureAggregation && s.MinParticipants < 2:
		return bad("secure aggregation needs a quorum of at least 2")
	case s.SecureAggregation && !(s.SecAggThreshold > 0.5 && s.SecAggThreshold <= 1):
		return bad("secagg_threshold %g must be in (0.5, 1]", s.SecAggThreshold)
	case s.SecAggNeighbours < 0 || s.SecAggNeighbours > MaxSecAggNeighbours,
		s.SecureAggregation && s.SecAggNeighbours == 0 && s.MaxParticipants > MaxSecAggNeighbours+1:
		return bad("secagg_neighbours %d: must be 1..%d, and set when more than %d may take part",
			s.SecAggNeighbours, MaxSecAggNeighbours, MaxSecAggNeighbours+1)
	case s.SecureAggregation && (s.SecAggPhase() < MinDeadline || s.SecAggPhase() > MaxDeadline):
		return bad("secagg_phase_ms %d must be in [%s, %s]", s.SecAggPhaseMS, MinDeadline, MaxDeadline)
	}
	known := false
	for _, a := range fedavg.Aggregators() {
		known = known || a == s.Aggregator
	}
	if !known {
		return bad("unknown aggregator %q (want one of %v)", s.Aggregator, fedavg.Aggregators())
	}
	if s.Aggregator == fedavg.MultiKrum && s.MinParticipants < 2*s.Byzantine+3 {
		return bad("multi-krum tolerating %d bad participants needs a quorum of at least %d, not %d",
			s.Byzantine, 2*s.Byzantine+3, s.MinParticipants)
	}
	if s.Coordinator == "" || len(s.Sig) == 0 {
		return bad("not signed")
	}
	if err := verify(s.Coordinator, s.signingBytes(), s.Sig); err != nil {
		return fmt.Errorf("%w: job spec signature: %v", ErrInvalid, err)
	}
	return nil
}
