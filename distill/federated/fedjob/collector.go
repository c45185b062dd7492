package fedjob

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/meshnode/meshnode/distill/federated/fedavg"
)

// Reasons an update is refused by a collector.
var (
	ErrWrongRound = errors.New("update for another job or round")
	ErrLate       = errors.New("update arrived after the round's deadline")
	ErrDuplicate  = errors.New("participant already sent an update this round")
	ErrFull       = errors.New("job has its maximum number of participants")
	ErrShape      = errors.New("update has the wrong number of values")
)

// Collector gathers one round's updates and says when the round closes: once the quorum
// (MinParticipants) has arrived and the soft deadline has passed, or at the hard deadline
// whatever has arrived. It is not safe for concurrent use.
type Collector struct {
	spec    *Spec
	job     string
	round   int
	params  int
	started time.Time
	roster  map[string]bool // every participant the job has accepted so far
	updates map[string]*Update
	bytes   int64
	dropped int
}

// NewCollector opens round of the job at started, for updates of params values. roster holds
// the participants the job accepted in earlier rounds (they keep their places).
func NewCollector(spec *Spec, round, params int, started time.Time, roster []string) *Collector {
	c := &Collector{spec: spec, job: spec.ID(), round: round, params: params, started: started,
		roster: map[string]bool{}, updates: map[string]*Update{}}
	for _, p := range roster {
		c.roster[p] = true
	}
	return c
}

// Round is the round being collected.
func (c *Collector) Round() int { return c.round }

// Started is when the round opened.
func (c *Collector) Started() time.Time { return c.started }

// Deadline is the round's hard deadline.
func (c *Collector) Deadline() time.Time { return c.started.Add(c.spec.Deadline()) }

// Add accepts a verified update of size bytes on the wire, or says why not (the update is
// then counted as dropped).
func (c *Collector) Add(u *Update, size int, now time.Time) error {
	err := c.accept(u, now)
	if err != nil {
		c.dropped++
		return err
	}
	c.roster[u.Participant] = true
	c.updates[u.Participant] = u
	c.bytes += int64(size)
	return nil
}

func (c *Collector) accept(u *Update, now time.Time) error {
	switch {
	case u.Job != c.job || u.Round != c.round:
		return fmt.Errorf("%w: job %s round %d is collecting, not job %s round %d", ErrWrongRound, c.job, c.round, u.Job, u.Round)
	case now.After(c.Deadline()):
		return fmt.Errorf("%w (%s late)", ErrLate, now.Sub(c.Deadline()).Round(time.Millisecond))
	case c.updates[u.Participant] != nil:
		return ErrDuplicate
	case !c.roster[u.Participant] && len(c.roster) >= c.spec.MaxParticipants:
		return fmt.Errorf("%w (%d)", ErrFull, c.spec.MaxParticipants)
	case len(u.Delta) != c.params:
		return fmt.Errorf("%w: %d values for a model of %d parameters", ErrShape, len(u.Delta), c.params)
	}
	return nil
}

// Count is the number of updates accepted.
func (c *Collector) Count() int { return len(c.updates) }

// Due reports whether the round should close now, and the next time to ask otherwise.
func (c *Collector) Due(now time.Time) (bool, time.Time) {
	soft, hard := c.started.Add(c.spec.SoftDeadline()), c.Deadline()
	if !now.Before(hard) {
		return true, hard
	}
	if len(c.updates) >= c.spec.MinParticipants {
		if !now.Before(soft) {
			return true, soft
		}
		return false, soft
	}
	return false, hard
}

// Roster lists every participant the job has accepted, sorted.
func (c *Collector) Roster() []string { return sortedKeys(c.roster) }

// Result is a closed round's input to aggregation and its accounting.
type Result struct {
	Updates      []fedavg.Update
	Participants []string
	Samples      int
	TrainLoss    float64 // weighted by samples
	TrainSeconds float64 // mean
	MaxTrain     float64 // slowest participant's
	FetchSeconds float64 // mean time participants took to fetch and load the model
	Bytes        int64
	Dropped      int
}

// Close returns the round's updates in participant order (so aggregation is deterministic).
func (c *Collector) Close() Result {
	r := Result{Participants: sortedKeys(c.updates), Bytes: c.bytes, Dropped: c.dropped}
	for _, p := range r.Participants {
		u := c.updates[p]
		r.Updates = append(r.Updates, fedavg.Update{Participant: p, Delta: u.Float64s(), Samples: u.Samples})
		r.Samples += u.Samples
		r.TrainLoss += u.TrainLoss * float64(u.Samples)
		r.TrainSeconds += u.Seconds
		r.MaxTrain = max(r.MaxTrain, u.Seconds)
		r.FetchSeconds += u.FetchSeconds
	}
	if r.Samples > 0 {
		r.TrainLoss /= float64(r.Samples)
	}
	if n := len(r.Participants); n > 0 {
		r.TrainSeconds /= float64(n)
		r.FetchSeconds /= float64(n)
	}
	return r
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
