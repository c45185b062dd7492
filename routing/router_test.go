package routing

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

func TestRankPrefersQualityThenNearness(t *testing.T) {
	r := NewRouter("me", DefaultWeights())
	for i := 0; i < 10; i++ {
		r.Begin("far")
		r.End("far", 40*time.Millisecond, nil, t0)
		r.Begin("near")
		r.End("near", time.Millisecond, nil, t0)
	}
	explored(r, "far", "a")
	explored(r, "near", "a", "b", "c")
	cands := []Candidate{
		{Expert: "a", Peer: "far", Quality: 0.9},
		{Expert: "a", Peer: "near", Quality: 0.9},
		{Expert: "b", Peer: "near", Quality: 0.5},
		{Expert: "a", Peer: "me", Local: true, Quality: 0.9},
		{Expert: "c", Peer: "near", Quality: 0.9, Domains: []string{"vision"}},
	}
	got := r.Rank(cands, "vision", t0)
	order := []string{}
	for _, s := range got {
		order = append(order, s.Expert+"@"+s.Peer)
	}
	want := []string{"c@near", "a@me", "a@near", "a@far", "b@near"}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("rank order %v, want %v", order, want)
		}
	}
}

// explored records FirstChecks answers of peer for each expert (the router's exploration ends).
func explored(r *Router, peer string, experts ...string) {
	for _, e := range experts {
		for range FirstChecks {
			r.ShouldSpotCheck(peer, e, 1)
		}
	}
}

// TestRankExploresNewProviders: a provider with fewer than FirstChecks answers for an expert
// is tried before a faster one that has them (those answers are the ones spot checked), and
// takes its measured place afterwards.
func TestRankExploresNewProviders(t *testing.T) {
	r := NewRouter("me", DefaultWeights())
	for range 10 {
		for p, rtt := range map[string]time.Duration{"known": time.Millisecond, "new": 20 * time.Millisecond} {
			r.Begin(p)
			r.End(p, rtt, nil, t0)
		}
	}
	explored(r, "known", "a")
	cands := []Candidate{{Expert: "a", Peer: "known", Quality: 0.9}, {Expert: "a", Peer: "new", Quality: 0.9}}
	for i := range FirstChecks + 1 {
		got := r.Rank(cands, "", t0)
		want := "new"
		if i == FirstChecks {
			want = "known"
		}
		if got[0].Peer != want {
			t.Fatalf("ranking %d: %s first, want %s", i, got[0].Peer, want)
		}
		r.ShouldSpotCheck(got[0].Peer, "a", 1) // the answer it gives
	}
	// A new provider that fails is explored no further.
	r.Begin("stalls")
	r.End("stalls", 0, errors.New("no answer"), t0)
	if got := r.Rank([]Candidate{cands[0], {Expert: "a", Peer: "stalls", Quality: 0.9}}, "", t0); got[0].Peer != "known" {
		t.Fatalf("a provider that failed its first try still ranks first")
	}
	// A local expert still comes before an unexplored remote one.
	local := append(cands, Candidate{Expert: "a", Peer: "me", Local: true, Quality: 0.9})
	if got := r.Rank(append(local, Candidate{Expert: "a", Peer: "newer", Quality: 0.9}), "", t0); got[0].Peer != "me" {
		t.Fatalf("%s ranked before the local expert", got[0].Peer)
	}
}

func TestBreakerOpensAndCloses(t *testing.T) {
	r := NewRouter("me", DefaultWeights())
	c := []Candidate{{Expert: "a", Peer: "flaky", Quality: 1}}
	for i := 0; i < FailuresToOpen; i++ {
		r.Begin("flaky")
		r.End("flaky", 0, errors.New("reset"), t0)
	}
	if got := r.Rank(c, "", t0.Add(time.Second)); len(got) != 0 {
		t.Fatal("a peer with an open breaker is still ranked")
	}
	if got := r.Rank(c, "", t0.Add(Cooldown+time.Millisecond)); len(got) != 1 {
		t.Fatal("the breaker did not half-open after the cooldown")
	}
	r.Begin("flaky")
	r.End("flaky", time.Millisecond, nil, t0.Add(Cooldown+time.Second))
	if s := r.Stats(t0.Add(Cooldown + time.Second)); s[0].Open || s[0].Failures != 0 {
		t.Fatalf("a success did not close the breaker: %+v", s)
	}
}

func ranked(peers ...string) []Scored {
	var out []Scored
	for _, p := range peers {
		out = append(out, Scored{Candidate: Candidate{Expert: "x", Peer: p}})
	}
	return out
}

// A peer that accepts and never answers, with no statistics yet, is left behind either way:
// by its attempt limit (half the time left) when that comes before DefaultHedgeDelay, by a
// hedge otherwise. Either way it counts as a stall and its breaker opens.
func TestDispatchFailsOverAndTimesOutStalledPeers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline time.Duration
		hedge    bool // the good peer is reached by a hedge, not by failover
	}{
		{"attempt limit first", 1200 * time.Millisecond, false}, // limit ≈ 0.6 s < 1 s
		{"hedge first", 10 * time.Second, true},                 // limit ≈ 5 s > 1 s
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRouter("me", DefaultWeights())
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			ans, err := r.Dispatch(ctx, ranked("dead", "stalled", "good"), 0, func(ctx context.Context, c Candidate) (Response, error) {
				switch c.Peer {
				case "dead":
					return Response{}, errors.New("connection refused")
				case "stalled":
					<-ctx.Done() // accepts and never answers
					return Response{}, ctx.Err()
				}
				return Response{Expert: "x", Label: "ok"}, nil
			})
			if err != nil {
				t.Fatalf("dispatch: %v", err)
			}
			if ans.Candidate.Peer != "good" || len(ans.Attempts) != 3 || ans.Attempts[0].Error == "" || ans.Attempts[2].Hedge != tc.hedge {
				t.Fatalf("answer %+v", ans)
			}
			if tc.hedge && ans.Attempts[2].Started < 900 {
				t.Fatalf("hedged after %.0f ms, before DefaultHedgeDelay (%s)", ans.Attempts[2].Started, DefaultHedgeDelay)
			}
			if !tc.hedge && !strings.Contains(ans.Attempts[1].Error, ErrStalled.Error()) {
				t.Fatalf("the stalled attempt's error %q does not say it stalled", ans.Attempts[1].Error)
			}
			// A stall opens the breaker, so the next query does not start with it. (A hedge's
			// losers are collected after Dispatch returns.)
			for i := 0; ; i++ {
				if slices.ContainsFunc(r.Stats(time.Now()), func(s PeerStat) bool { return s.Peer == "stalled" && s.Open }) {
					break
				}
				if i == 100 {
					t.Fatalf("the stalled peer's breaker is closed: %+v", r.Stats(time.Now()))
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestOneStallOpensTheBreaker(t *testing.T) {
	r := NewRouter("me", DefaultWeights())
	r.Begin("quiet")
	r.End("quiet", 0, fmt.Errorf("no answer within 5s: %w", ErrStalled), t0)
	if s := r.Stats(t0); len(s) != 1 || !s[0].Open {
		t.Fatalf("one stall left the breaker closed: %+v", s)
	}
	r.Begin("refused")
	r.End("refused", 0, errors.New("connection refused"), t0)
	for _, s := range r.Stats(t0) {
		if s.Peer == "refused" && s.Open {
			t.Fatalf("one refusal opened the breaker: %+v", s)
		}
	}
}

func TestDispatchHedgesASlowPeer(t *testing.T) {
	r := NewRouter("me", DefaultWeights())
	for i := 0; i < 20; i++ { // "slow" usually answers in 1 ms
		r.Begin("slow")
		r.End("slow", time.Millisecond, nil, t0)
	}
	var calls atomic.Int32
	ans, err := r.Dispatch(context.Background(), ranked("slow", "fast"), 0, func(ctx context.Context, c Candidate) (Response, error) {
		calls.Add(1)
		if c.Peer == "slow" {
			select { // this time it hangs far beyond its p95
			case <-ctx.Done():
				return Response{}, ctx.Err()
			case <-time.After(5 * time.Second):
			}
		}
		return Response{Expert: "x"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Candidate.Peer != "fast" || !ans.Attempts[1].Hedge || calls.Load() != 2 {
		t.Fatalf("no hedge: %+v", ans)
	}
}

func TestDispatchReportsEveryFailure(t *testing.T) {
	r := NewRouter("me", DefaultWeights())
	_, err := r.Dispatch(context.Background(), ranked("a", "b"), 0, func(ctx context.Context, c Candidate) (Response, error) {
		return Response{}, errors.New("boom " + c.Peer)
	})
	if err == nil || !contains(err.Error(), "boom a") || !contains(err.Error(), "boom b") {
		t.Fatalf("got %v", err)
	}
	if _, err := r.Dispatch(context.Background(), nil, 0, nil); !errors.Is(err, ErrNoCandidate) {
		t.Fatalf("no candidates: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestMixGatesByScore(t *testing.T) {
	r := NewRouter("me", DefaultWeights())
	rk := []Scored{
		{Candidate: Candidate{Expert: "a", Peer: "p1", Spec: "s"}, Score: 1.0},
		{Candidate: Candidate{Expert: "b", Peer: "p2", Spec: "s"}, Score: 0.9},
		{Candidate: Candidate{Expert: "c", Peer: "p3", Spec: "other"}, Score: 0.95},
	}
	m, err := r.Mix(context.Background(), rk, 3, func(ctx context.Context, c Candidate) (Response, error) {
		if c.Expert == "a" {
			return Response{Expert: "a", Output: []float32{1, 0}}, nil
		}
		return Response{Expert: c.Expert, Output: []float32{0, 1}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Parts) != 2 {
		t.Fatalf("the mixture took an expert of another interface: %+v", m.Parts)
	}
	wantA := 1 / (1 + math.Exp(-0.1/GateTemperature))
	if math.Abs(m.Parts[0].Gate-wantA) > 1e-9 || math.Abs(float64(m.Answer.Output[0])-wantA) > 1e-6 {
		t.Fatalf("gates %+v, output %v; want gate of a %.4f", m.Parts, m.Answer.Output, wantA)
	}
}

// TestDispatchEndsEveryAttempt: the losers of a hedge are collected, so in-flight counts return
// to zero and no peer is charged a failure for being cancelled.
func TestDispatchEndsEveryAttempt(t *testing.T) {
	r := NewRouter("me", DefaultWeights())
	for i := 0; i < 20; i++ {
		r.Begin("slow")
		r.End("slow", time.Millisecond, nil, t0)
	}
	_, err := r.Dispatch(context.Background(), ranked("slow", "fast"), 0, func(ctx context.Context, c Candidate) (Response, error) {
		if c.Peer == "slow" {
			<-ctx.Done()
			return Response{}, ctx.Err()
		}
		return Response{Expert: "x"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		stats := r.Stats(time.Now())
		busy := false
		for _, s := range stats {
			busy = busy || s.InFlight != 0
			if s.Failures != 0 {
				t.Fatalf("a cancelled hedge loser was charged a failure: %+v", s)
			}
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("in-flight counts never returned to zero: %+v", stats)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRankTrustsMeasurementsOverClaims(t *testing.T) {
	now := time.Unix(1000, 0)
	r := NewRouter("self", DefaultWeights())
	// Two providers of one expert: the liar claims top quality and no load.
	cands := []Candidate{
		{Expert: "x", Peer: "honest", Quality: 0.8, Load: 0.1},
		{Expert: "x", Peer: "liar", Quality: 1, Load: 0},
	}
	ranked := r.Rank(cands, "", now)
	for _, s := range ranked {
		if s.Quality != 0.8 {
			t.Fatalf("%s scored with quality %v; want the lower median of the claims, 0.8", s.Peer, s.Quality)
		}
	}
	// Once measured, advertised load no longer counts: the liar measured slow loses.
	for range trusted {
		r.Begin("honest")
		r.End("honest", time.Millisecond, nil, now)
		r.Begin("liar")
		r.End("liar", 40*time.Millisecond, nil, now)
	}
	if got := r.Rank(cands, "", now)[0].Peer; got != "honest" {
		t.Fatalf("best after measuring: %s, want honest", got)
	}
	// A banned provider is not ranked for that expert, and still is for others.
	r.Ban("honest", "x", now.Add(BanFor))
	for _, s := range r.Rank(append(cands, Candidate{Expert: "y", Peer: "honest"}), "", now) {
		if s.Peer == "honest" && s.Expert == "x" {
			t.Fatal("a banned provider was ranked for the expert it is banned for")
		}
	}
	if len(r.Rank([]Candidate{{Expert: "y", Peer: "honest"}}, "", now)) != 1 {
		t.Fatal("a ban for one expert removed the provider for another")
	}
	if r.Banned("honest", "x", now.Add(BanFor)) {
		t.Fatal("the ban outlived BanFor")
	}
}

func TestSpotCheckSchedule(t *testing.T) {
	r := NewRouter("self", DefaultWeights())
	r.SetSpotRate(0.1)
	for i := range FirstChecks {
		if !r.ShouldSpotCheck("p", "x", 0.99) {
			t.Fatalf("answer %d of a new provider was not checked", i+1)
		}
	}
	if r.ShouldSpotCheck("p", "x", 0.5) {
		t.Fatal("checked after the first answers with a roll above the rate")
	}
	if !r.ShouldSpotCheck("p", "x", 0.05) {
		t.Fatal("not checked with a roll below the rate")
	}
	if !r.ShouldSpotCheck("p", "y", 0.99) {
		t.Fatal("the first answer for another expert was not checked")
	}
}

func TestSameAnswer(t *testing.T) {
	cases := []struct {
		a, b []float32
		want bool
	}{
		{[]float32{0.1, 0.9}, []float32{0.1, 0.9}, true},
		{[]float32{0.1, 0.9}, []float32{0.10001, 0.89999}, true},
		{[]float32{0.1, 0.9}, []float32{0.9, 0.1}, false},
		{[]float32{0.1, 0.9}, []float32{0.1}, false},
		{[]float32{float32(math.NaN())}, []float32{0}, false},
	}
	for _, c := range cases {
		if got := SameAnswer(c.a, c.b); got != c.want {
			t.Errorf("SameAnswer(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// A lossy link makes a known-fast peer slow now and then (a retransmission): the last
// candidate left is given the whole deadline, not cut at its own limit.
func TestDispatchGivesTheLastCandidateTheDeadline(t *testing.T) {
	r := NewRouter("me", DefaultWeights())
	for _, p := range []string{"refuses", "slow-now"} {
		for i := 0; i < 20; i++ { // both usually answer in 1 ms
			r.Begin(p)
			r.End(p, time.Millisecond, nil, t0)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ans, err := r.Dispatch(ctx, ranked("refuses", "slow-now"), 0, func(ctx context.Context, c Candidate) (Response, error) {
		if c.Peer == "refuses" {
			return Response{}, errors.New("connection refused")
		}
		select {
		case <-time.After(500 * time.Millisecond): // past 4×p95 and p95 + lossAllowance
			return Response{Expert: "x", Label: "ok"}, nil
		case <-ctx.Done():
			return Response{}, ctx.Err()
		}
	})
	if err != nil || ans.Candidate.Peer != "slow-now" {
		t.Fatalf("the last candidate was cut short: %+v %v", ans, err)
	}
}
