package fedjob

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/meshnode/meshnode/distill/federated/fedavg"
	"github.com/meshnode/meshnode/distill/federated/secagg"
)

// A secure round's input is the participant's clipped update times its weight, then the
// weight and its training loss times the weight: the coordinator learns only the sums, from
// which it takes the weighted mean. Under differential privacy every weight is 1 and the loss
// is left out (the noise covers the update only).
const (
	// MaxSecureWeight caps a participant's weight (its sample count) in a secure round.
	MaxSecureWeight = 1 << 20
	// maxSecureLoss caps the training loss a participant adds to the sum.
	maxSecureLoss = 100
)

// SecureBound is the largest absolute value of a secure input's entries under spec.
func SecureBound(spec *Spec) float64 {
	if spec.NoiseStd > 0 {
		return max(spec.ClipNorm, 1)
	}
	return max(spec.ClipNorm, maxSecureLoss) * MaxSecureWeight
}

// SecureInput is a participant's input to a secure round, quantized for a roster of n.
func SecureInput(spec *Spec, n int, delta []float64, samples int, loss float64) ([]uint64, error) {
	x := make([]float64, len(delta)+2)
	norm := 0.0
	for _, v := range delta {
		norm += v * v
	}
	norm = math.Sqrt(norm)
	w := float64(min(max(samples, 1), MaxSecureWeight))
	if spec.NoiseStd > 0 {
		w = 1
	}
	k := w
	if norm > spec.ClipNorm {
		k = w * spec.ClipNorm / norm
	}
	for i, v := range delta {
		x[i] = v * k
	}
	x[len(delta)] = w
	if spec.NoiseStd == 0 {
		x[len(delta)+1] = min(max(loss, 0), maxSecureLoss) * w
	}
	bound := SecureBound(spec)
	scale, err := secagg.Scale(n, bound)
	if err != nil {
		return nil, err
	}
	return secagg.Quantize(x, scale, bound)
}

// Secure round steps, in order.
const (
	phaseAdvert = iota
	phaseDealing
	phaseMasked
	phaseReveal
	phaseDone
)

var phaseSteps = []string{StepAdvert, StepDealing, StepMasked, StepReveal}

// ErrRoundFailed is returned when a secure round cannot go on (too few participants at a
// step); the round opens again.
var ErrRoundFailed = errors.New("secure round failed")

type secureAccount struct{ seconds, fetch float64 }

// SecureRound is the coordinator's side of one secure round: it gathers each step's
// messages, says when a step closes (everyone expected has answered, or its deadline), and at
// the end computes the round's aggregate from the sum alone. Not safe for concurrent use.
type SecureRound struct {
	spec       *Spec
	job        string
	round      int
	instance   int64
	params     int
	started    time.Time
	phase      int
	phaseStart time.Time
	roster     map[string]bool
	adverts    map[string]SignedAdvert
	account    map[string]secureAccount
	srv        *secagg.Server
	masked     map[string][]uint64
	reveals    map[string][]secagg.Reveal
	dealt      map[string]bool
	survivors  []string
	bytes      int64 // received in accepted messages
	sent       int64 // in answers to participants
	dropped    int
	changed    chan struct{}
}

// NewSecureRound opens a secure round of the job at started for a model of params values;
// roster holds the participants the job accepted before.
func NewSecureRound(spec *Spec, round, params int, started time.Time, roster []string) *SecureRound {
	r := &SecureRound{spec: spec, job: spec.ID(), round: round, params: params, started: started, phaseStart: started,
		roster: map[string]bool{}, adverts: map[string]SignedAdvert{}, account: map[string]secureAccount{},
		masked: map[string][]uint64{}, reveals: map[string][]secagg.Reveal{}, dealt: map[string]bool{},
		changed: make(chan struct{})}
	r.instance = r.Deadline().UnixMilli()
	for _, p := range roster {
		r.roster[p] = true
	}
	return r
}

// Round is the round being collected; Instance names this opening of it (its deadline).
func (r *SecureRound) Round() int      { return r.round }
func (r *SecureRound) Instance() int64 { return r.instance }

// Deadline is the advertising step's deadline: the round's deadline in its announcement.
func (r *SecureRound) Deadline() time.Time { return r.started.Add(r.spec.Deadline()) }

// Changed is closed when the round moves to its next step.
func (r *SecureRound) Changed() <-chan struct{} { return r.changed }

// Count is the number of participants still in the round.
func (r *SecureRound) Count() int {
	switch r.phase {
	case phaseAdvert:
		return len(r.adverts)
	case phaseDealing:
		return len(r.dealt)
	default:
		return len(r.masked)
	}
}

// Roster lists every participant the job has accepted, sorted.
func (r *SecureRound) Roster() []string { return sortedKeys(r.roster) }

func (r *SecureRound) config() secagg.Config {
	return secagg.Config{Session: SecureSession(r.job, r.round, r.instance), Degree: r.spec.SecAggNeighbours,
		Threshold: r.spec.SecAggThreshold}
}

// Add takes a verified participant's message (not a poll) of size bytes on the wire.
func (r *SecureRound) Add(from string, m *SecureMsg, size int, now time.Time) error {
	err := r.add(from, m, now)
	if err != nil {
		r.dropped++
		return err
	}
	r.bytes += int64(size)
	return nil
}

func (r *SecureRound) add(from string, m *SecureMsg, now time.Time) error {
	if m.Job != r.job || m.Round != r.round || m.Instance != r.instance {
		return fmt.Errorf("%w: job %s round %d (instance %d) is collecting", ErrWrongRound, r.job, r.round, r.instance)
	}
	if r.phase >= len(phaseSteps) || m.Step != phaseSteps[r.phase] {
		return fmt.Errorf("%w: step %s arrived while the round is at another", ErrLate, m.Step)
	}
	switch r.phase {
	case phaseAdvert:
		switch {
		case now.After(r.Deadline()):
			return fmt.Errorf("%w (%s late)", ErrLate, now.Sub(r.Deadline()).Round(time.Millisecond))
		case m.Advert.ID != from:
			return fmt.Errorf("%w: advert for %s from %s", ErrInvalid, m.Advert.ID, from)
		case r.adverts[from].ID != "":
			return ErrDuplicate
		case !r.roster[from] && len(r.roster) >= r.spec.MaxParticipants:
			return fmt.Errorf("%w (%d)", ErrFull, r.spec.MaxParticipants)
		}
		r.adverts[from] = *m.Advert
		r.account[from] = secureAccount{m.Seconds, m.FetchSeconds}
	case phaseDealing:
		if r.dealt[from] {
			return ErrDuplicate
		}
		if err := r.srv.AddDealing(from, m.Dealing); err != nil {
			return err
		}
		r.dealt[from] = true
	case phaseMasked:
		switch {
		case !r.dealt[from]:
			return fmt.Errorf("%w: %s did not deal", ErrInvalid, from)
		case r.masked[from] != nil:
			return ErrDuplicate
		case len(m.Masked) != r.params+2:
			return fmt.Errorf("%w: %d values for a model of %d parameters", ErrShape, len(m.Masked), r.params)
		}
		r.masked[from] = m.Masked
	case phaseReveal:
		switch {
		case r.masked[from] == nil:
			return fmt.Errorf("%w: %s sent no masked input", ErrInvalid, from)
		case r.reveals[from] != nil:
			return ErrDuplicate
		case len(m.Reveals) > MaxSecAggNeighbours+1:
			return fmt.Errorf("%w: %d reveals", ErrInvalid, len(m.Reveals))
		}
		r.reveals[from] = m.Reveals
	}
	return nil
}

// Result answers a poll for the result of step (StepAdvert: the roster; StepDealing: what
// was dealt to from; StepMasked: who sent masked input). ok is false while the step is open.
func (r *SecureRound) Result(from, step string) (SecureReply, bool) {
	i := slices.Index(phaseSteps, step)
	if r.phase <= i {
		return SecureReply{Code: ReplyPending}, false
	}
	switch step {
	case StepAdvert:
		if r.adverts[from].ID == "" {
			return SecureReply{Code: ReplyLate, Error: "not on this round's roster"}, true
		}
		out := make([]SignedAdvert, 0, len(r.adverts))
		for _, id := range sortedKeys(r.adverts) {
			out = append(out, r.adverts[id])
		}
		return SecureReply{Code: ReplyAccepted, Roster: out}, true
	case StepDealing:
		if !r.dealt[from] {
			return SecureReply{Code: ReplyLate, Error: "did not deal in time"}, true
		}
		return SecureReply{Code: ReplyAccepted, Deliveries: r.srv.Deliveries(from)}, true
	default:
		if r.masked[from] == nil {
			return SecureReply{Code: ReplyLate, Error: "sent no masked input in time"}, true
		}
		return SecureReply{Code: ReplyAccepted, Survivors: slices.Clone(r.survivors)}, true
	}
}

// Due reports whether the current step should close now, and the next time to ask otherwise.
func (r *SecureRound) Due(now time.Time) (bool, time.Time) {
	switch r.phase {
	case phaseAdvert:
		soft, hard := r.started.Add(r.spec.SoftDeadline()), r.Deadline()
		switch {
		case !now.Before(hard):
			return true, hard
		case len(r.adverts) >= r.spec.MinParticipants && !now.Before(soft):
			return true, soft
		case len(r.adverts) >= r.spec.MinParticipants:
			return false, soft
		}
		return false, hard
	case phaseDone:
		return false, now.Add(time.Hour)
	}
	var expected, got int
	switch r.phase {
	case phaseDealing:
		expected, got = len(r.adverts), len(r.dealt)
	case phaseMasked:
		expected, got = len(r.dealt), len(r.masked)
	case phaseReveal:
		expected, got = len(r.masked), len(r.reveals)
	}
	end := r.phaseStart.Add(r.spec.SecAggPhase())
	if got >= expected || !now.Before(end) {
		return true, end
	}
	return false, end
}

// Advance closes the current step. It fails with ErrRoundFailed when too few participants are
// left to go on (the round then opens again); after the last step the round is done.
func (r *SecureRound) Advance(now time.Time) error {
	need := max(r.spec.MinParticipants, 2)
	switch r.phase {
	case phaseAdvert:
		if len(r.adverts) < need {
			return fmt.Errorf("%w: %d adverts, quorum %d", ErrRoundFailed, len(r.adverts), need)
		}
		ads := make([]secagg.Advert, 0, len(r.adverts))
		for _, id := range sortedKeys(r.adverts) {
			ads = append(ads, r.adverts[id].Advert)
			r.roster[id] = true
		}
		srv, err := secagg.NewServer(r.config(), ads, r.params+2)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrRoundFailed, err)
		}
		r.srv = srv
	case phaseDealing:
		if len(r.dealt) < 2 {
			return fmt.Errorf("%w: %d participants dealt", ErrRoundFailed, len(r.dealt))
		}
	case phaseMasked:
		if len(r.masked) < 2 {
			return fmt.Errorf("%w: %d participants sent masked input", ErrRoundFailed, len(r.masked))
		}
		r.survivors = sortedKeys(r.masked)
	case phaseReveal:
	default:
		return fmt.Errorf("%w: the round is over", ErrRoundFailed)
	}
	r.phase++
	r.phaseStart = now
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// Member reports whether from advertised in this round.
func (r *SecureRound) Member(from string) bool { return r.adverts[from].ID != "" }

// CountSent adds an answer's size to the round's accounting.
func (r *SecureRound) CountSent(n int) { r.sent += int64(n) }

// Bytes is what the round received in accepted messages and sent in answers.
func (r *SecureRound) Bytes() (received, sent int64) { return r.bytes, r.sent }

// Done reports whether every step has closed.
func (r *SecureRound) Done() bool { return r.phase == phaseDone }

// Aggregate unmasks the sum and returns the round's aggregate update with its accounting:
// the weighted mean of the clipped updates, or under differential privacy their plain mean
// with Gaussian noise of z·ClipNorm added to the sum from noise.
func (r *SecureRound) Aggregate(noise fedavg.NoiseSource) ([]float64, Result, error) {
	if !r.Done() {
		return nil, Result{}, errors.New("secure round: aggregate before the last step closed")
	}
	sum, err := r.srv.Sum(r.masked, r.reveals)
	if err != nil {
		return nil, Result{}, fmt.Errorf("%w: %v", ErrRoundFailed, err)
	}
	scale, err := secagg.Scale(len(r.adverts), SecureBound(r.spec))
	if err != nil {
		return nil, Result{}, err
	}
	x := secagg.Dequantize(sum, scale)
	delta, weight, loss := x[:r.params], x[r.params], x[r.params+1]
	res := Result{Participants: slices.Clone(r.survivors), Bytes: r.bytes, Dropped: r.dropped + len(r.adverts) - len(r.survivors)}
	if r.spec.NoiseStd > 0 {
		if noise == nil {
			return nil, Result{}, errors.New("secure round: differential privacy without a noise source")
		}
		fedavg.AddNoise(delta, r.spec.NoiseStd*r.spec.ClipNorm, noise)
		weight = float64(len(r.survivors))
	}
	if !(weight >= 1) {
		return nil, Result{}, fmt.Errorf("%w: the weights sum to %g", ErrRoundFailed, weight)
	}
	for i := range delta {
		delta[i] /= weight
	}
	res.Samples = int(math.Round(weight))
	if r.spec.NoiseStd == 0 {
		res.TrainLoss = loss / weight
	}
	for _, p := range r.survivors {
		a := r.account[p]
		res.TrainSeconds += a.seconds
		res.MaxTrain = max(res.MaxTrain, a.seconds)
		res.FetchSeconds += a.fetch
	}
	n := float64(len(r.survivors))
	res.TrainSeconds /= n
	res.FetchSeconds /= n
	return delta, res, nil
}
