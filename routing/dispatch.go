package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CallFunc asks one candidate; the router measures it.
type CallFunc func(ctx context.Context, c Candidate) (Response, error)

// Attempt records one try of a dispatch.
type Attempt struct {
	Expert  string  `json:"expert"`
	Peer    string  `json:"peer"`
	Hedge   bool    `json:"hedge,omitempty"`
	Millis  float64 `json:"ms"`
	Error   string  `json:"error,omitempty"`
	Won     bool    `json:"won,omitempty"`
	Started float64 `json:"started_ms"` // after the dispatch began
}

// Answer is a dispatch's result.
type Answer struct {
	Response
	Candidate Candidate `json:"candidate"`
	Attempts  []Attempt `json:"attempts"`
}

// ErrStalled marks an attempt that got no answer within its own time limit: the peer
// accepted, or looked reachable, and said nothing. One stall opens the peer's breaker.
var ErrStalled = errors.New("provider stalled")

// DefaultHedgeDelay is when the next candidate is asked too while the current one has no
// latency statistics yet (micro-experts answer in microseconds; a second is a stall).
const DefaultHedgeDelay = time.Second

// lossAllowance is what an attempt is given beyond its p95 for one retransmission.
const lossAllowance = 300 * time.Millisecond

// ErrNoCandidate is returned when nothing can answer.
var ErrNoCandidate = errors.New("no expert can answer this query")

// Dispatch asks the ranked candidates in order until one answers, within ctx's deadline:
// a failure or timeout moves on to the next (failover), and when the current one is slower than
// its recent p95 the next is asked too (a hedge) and the first answer wins. maxAttempts bounds
// the candidates tried (0: all).
func (r *Router) Dispatch(ctx context.Context, ranked []Scored, maxAttempts int, call CallFunc) (Answer, error) {
	if len(ranked) == 0 {
		return Answer{}, ErrNoCandidate
	}
	if maxAttempts <= 0 || maxAttempts > len(ranked) {
		maxAttempts = len(ranked)
	}
	if maxAttempts == 1 {
		return r.dispatchOne(ctx, ranked[0].Candidate, call)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the losers of a hedge
	type result struct {
		i    int
		resp Response
		err  error
		rtt  time.Duration
	}
	results := make(chan result, maxAttempts)
	start := time.Now()
	attempts := make([]Attempt, 0, maxAttempts)
	launched := make([]time.Time, maxAttempts)
	launch := func(i int, hedge bool) {
		c := ranked[i].Candidate
		launched[i] = time.Now()
		attempts = append(attempts, Attempt{Expert: c.Expert, Peer: c.Peer, Hedge: hedge, Started: ms(time.Since(start))})
		if !c.Local {
			r.Begin(c.Peer)
		}
		// The last candidate has the whole deadline: its limit would only fail the query
		// early, with no one left to move on to.
		_, known := r.HedgeDelay(c.Peer)
		limit := time.Now().Add(r.attemptTimeout(ctx, c))
		if i == maxAttempts-1 {
			limit = time.Now().Add(time.Hour)
			if d, ok := ctx.Deadline(); ok {
				limit = d
			}
		}
		actx, acancel := context.WithDeadline(ctx, limit)
		go func() {
			defer acancel()
			t0 := time.Now()
			resp, err := call(actx, c)
			if err != nil && ctx.Err() == nil && !time.Now().Before(limit) {
				// Slower than its own record is a failure like any other; silent with no
				// record at all is how a provider that died looks (a stall).
				err = fmt.Errorf("no answer within %s: %w", time.Since(t0).Round(time.Millisecond), context.DeadlineExceeded)
				if !known {
					err = fmt.Errorf("no answer within %s: %w (%w)", time.Since(t0).Round(time.Millisecond), ErrStalled, context.DeadlineExceeded)
				}
			}
			results <- result{i: i, resp: resp, err: err, rtt: time.Since(t0)}
		}()
	}
	next, running := 0, 0
	launch(next, false)
	next, running = 1, 1
	// Whatever is still running when Dispatch returns is cancelled; its results are collected
	// so every Begin gets its End.
	defer func() {
		if running == 0 {
			return
		}
		// A loser with no statistics that has said nothing for DefaultHedgeDelay stalled:
		// counting it so keeps the next queries off a provider that died silently.
		now := time.Now()
		stalled := make([]bool, maxAttempts)
		for i := range next {
			c := ranked[i].Candidate
			if _, known := r.HedgeDelay(c.Peer); !c.Local && !known && now.Sub(launched[i]) >= DefaultHedgeDelay {
				stalled[i] = true
			}
		}
		go func(n int) {
			for ; n > 0; n-- {
				res := <-results
				c := ranked[res.i].Candidate
				if stalled[res.i] && errors.Is(res.err, context.Canceled) {
					r.End(c.Peer, res.rtt, fmt.Errorf("outrun by a hedge after %s: %w", res.rtt.Round(time.Millisecond), ErrStalled), time.Now())
					continue
				}
				r.finish(c, res.rtt, res.err)
			}
		}(running)
	}()
	var errs []string
	for running > 0 {
		var hedge <-chan time.Time
		if next < maxAttempts && !ranked[next-1].Local {
			// Without a p95 of its own, a peer is hedged after DefaultHedgeDelay: a provider
			// that died silently (a QUIC peer sends nothing when killed) costs a second, not
			// half of the query's deadline.
			d, ok := r.HedgeDelay(ranked[next-1].Peer)
			if !ok {
				d = DefaultHedgeDelay
			}
			hedge = time.After(d)
		}
		select {
		case res := <-results:
			running--
			c := ranked[res.i].Candidate
			a := attemptFor(attempts, c)
			a.Millis = ms(res.rtt)
			r.finish(c, res.rtt, res.err)
			if res.err == nil {
				a.Won = true
				return Answer{Response: res.resp, Candidate: c, Attempts: attempts}, nil
			}
			a.Error = res.err.Error()
			errs = append(errs, fmt.Sprintf("%s on %s: %v", short(c.Expert), short(c.Peer), res.err))
			if ctx.Err() != nil {
				break
			}
			if running == 0 && next < maxAttempts {
				launch(next, false)
				next++
				running++
			}
		case <-hedge:
			launch(next, true)
			next++
			running++
		case <-ctx.Done():
			return Answer{Attempts: attempts}, fmt.Errorf("query: %w (tried %s)", ctx.Err(), strings.Join(errs, "; "))
		}
	}
	return Answer{Attempts: attempts}, fmt.Errorf("query failed on every candidate: %s", strings.Join(errs, "; "))
}

// dispatchOne asks a lone candidate inline: with nothing to fail over or hedge to, the
// goroutine and channel of the general path would only add latency.
func (r *Router) dispatchOne(ctx context.Context, c Candidate, call CallFunc) (Answer, error) {
	if !c.Local {
		r.Begin(c.Peer)
	}
	t0 := time.Now()
	resp, err := call(ctx, c)
	rtt := time.Since(t0)
	r.finish(c, rtt, err)
	a := Attempt{Expert: c.Expert, Peer: c.Peer, Millis: ms(rtt), Won: err == nil}
	if err != nil {
		a.Error = err.Error()
		return Answer{Attempts: []Attempt{a}}, fmt.Errorf("query failed on the only candidate: %s on %s: %w", short(c.Expert), short(c.Peer), err)
	}
	return Answer{Response: resp, Candidate: c, Attempts: []Attempt{a}}, nil
}

// finish records the end of a call to c: abandoned when it was cancelled, measured otherwise.
func (r *Router) finish(c Candidate, rtt time.Duration, err error) {
	switch {
	case c.Local:
	case errors.Is(err, context.Canceled):
		r.Abandon(c.Peer)
	default:
		r.End(c.Peer, rtt, err, time.Now())
	}
}

// attemptTimeout bounds one attempt so a peer that accepts and never answers cannot use up the
// whole deadline: four times its recent p95 (at least p95 + lossAllowance) once that is known,
// otherwise half of the time left, so at least one more candidate can be tried. The last
// candidate is not bounded by it (Dispatch gives it the deadline).
func (r *Router) attemptTimeout(ctx context.Context, c Candidate) time.Duration {
	left := time.Hour
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	if c.Local {
		return left
	}
	if p95, ok := r.HedgeDelay(c.Peer); ok {
		// One lost packet costs a retransmission timeout (at least 200 ms in Linux TCP): a
		// limit below p95 plus that turns every loss into a failure.
		return min(left, max(4*p95, p95+lossAllowance))
	}
	return left / 2
}

func attemptFor(as []Attempt, c Candidate) *Attempt {
	for i := range as {
		if as[i].Expert == c.Expert && as[i].Peer == c.Peer && as[i].Millis == 0 && as[i].Error == "" {
			return &as[i]
		}
	}
	return &Attempt{}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func short(s string) string {
	if len(s) > 12 {
		return "…" + s[len(s)-8:]
	}
	return s
}
