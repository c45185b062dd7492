package routing

import (
	"errors"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// Candidate is an expert that could answer a query, here or on a peer.
type Candidate struct {
	Expert  string   `json:"expert"`
	Peer    string   `json:"peer"` // the provider; equal to the router's own ID for local experts
	Local   bool     `json:"local"`
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
	Spec    string   `json:"spec"`
	Quality float64  `json:"quality"` // evaluated quality in [0, 1]
	Load    float64  `json:"load"`    // the provider's advertised load in [0, 1]
	Price   uint64   `json:"price"`
}

// Scored is a candidate with its score (higher is better) and the parts it is made of.
type Scored struct {
	Candidate
	Score     float64 `json:"score"`
	LatencyMS float64 `json:"latency_ms"` // the estimate used
}

// Weights combine a candidate's properties into its score:
//
//	score = Quality·quality + Domain·[domain matches] − Latency·latency/(latency + LatencyScale)
//	        − Load·(advertised load + in-flight/Capacity) − Price·price/(price + PriceScale) + Local·[local]
//
// Each penalty is squashed into [0, 1), so no single property can dominate without bound.
type Weights struct {
	Quality, Domain, Latency, Load, Price, Local float64
	LatencyScale                                 time.Duration
	PriceScale                                   float64
	Capacity                                     float64 // in-flight requests a peer takes before counting as fully loaded
}

// DefaultWeights prefer quality first, then nearness: a local expert is worth about 15 ms of
// latency, and an unknown remote peer is assumed 2 ms away until measured.
func DefaultWeights() Weights {
	return Weights{Quality: 1, Domain: 0.5, Latency: 0.3, Load: 0.2, Price: 0.2, Local: 0.05,
		LatencyScale: 10 * time.Millisecond, PriceScale: 10, Capacity: 32}
}

// Breaker settings: after FailuresToOpen consecutive failures, or one stall (ErrStalled), a
// peer is skipped for Cooldown,
// then one request probes it (half-open); success closes the breaker.
const (
	FailuresToOpen = 3
	Cooldown       = 5 * time.Second
	unknownLatency = 2 * time.Millisecond
	ewmaAlpha      = 0.2
	latencyWindow  = 64
)

// peerStats are what the router has observed of one peer.
type peerStats struct {
	ewma      float64 // seconds
	samples   []float64
	next      int
	p95Cache  time.Duration // recomputed when a sample arrives
	inflight  int
	failures  int
	openUntil time.Time
}

// Router scores candidates and keeps per-peer statistics. It is safe for concurrent use and
// reads no clock: callers pass the time.
type Router struct {
	self     string
	weights  Weights
	mu       sync.Mutex
	peers    map[string]*peerStats
	checked  map[pairKey]int       // spot checks begun per (provider, expert), up to FirstChecks
	bans     map[pairKey]time.Time // (provider, expert) -> skipped until
	spotRate float64
}

// NewRouter returns a router for the node whose peer ID is self.
func NewRouter(self string, w Weights) *Router {
	return &Router{self: self, weights: w, peers: map[string]*peerStats{}, checked: map[pairKey]int{},
		bans: map[pairKey]time.Time{}, spotRate: DefaultSpotRate}
}

// DefaultSpotRate is the share of answers checked after a provider's first FirstChecks.
const DefaultSpotRate = 0.02

// trusted is how many measured answers make the router trust its own measurement of a peer
// over the load the peer advertises.
const trusted = 8

func (r *Router) stats(p string) *peerStats {
	s, ok := r.peers[p]
	if !ok {
		s = &peerStats{}
		r.peers[p] = s
	}
	return s
}

// Rank scores the candidates for a query in domain (empty: any) at now, drops those behind an
// open breaker and those banned for the expert, and returns the rest best first. Ties keep the
// candidates' order.
//
// What providers claim counts for less than what the router measured: a remote expert's
// quality is the lower median of its providers' claims (they all hold the same weights, so
// one provider cannot rank itself above the others by claiming more, nor, among three or more,
// drag the expert down by claiming less), and a peer's advertised load
// fades out as the router's own measurements of it accumulate (gone after trusted answers).
//
// A provider that has not yet given FirstChecks answers for an expert is ranked as if it
// answered at once: each new provider is tried (its first answers are the ones always spot
// checked), so a liar cannot hide behind an honest provider that happens to be faster, and a
// faster new provider is found. The cost is bounded: FirstChecks answers per provider, and
// none after a failure (a provider that stalls is tried once, not until its breaker opens).
func (r *Router) Rank(cands []Candidate, domain string, now time.Time) []Scored {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.weights
	claims := map[string][]float64{} // expert -> its remote providers' claims
	for _, c := range cands {
		if !c.Local {
			claims[c.Expert] = append(claims[c.Expert], c.Quality)
		}
	}
	quality := make(map[string]float64, len(claims))
	for e, q := range claims {
		slices.Sort(q)
		quality[e] = q[(len(q)-1)/2] // the lower median
	}
	out := make([]Scored, 0, len(cands))
	for _, c := range cands {
		var lat time.Duration
		var inflight int
		claimedLoad := c.Load
		if !c.Local {
			s := r.stats(c.Peer)
			if now.Before(s.openUntil) || r.bannedLocked(c.Peer, c.Expert, now) {
				continue
			}
			lat, inflight = s.latency(), s.inflight
			if r.checked[pairKey{c.Peer, c.Expert}] < FirstChecks && s.failures == 0 {
				lat = 0 // explored: its first answers are the ones always checked
			}
			claimedLoad *= 1 - float64(min(len(s.samples), trusted))/trusted
			c.Quality = quality[c.Expert]
		}
		score := w.Quality * c.Quality
		if domain != "" && slices.Contains(c.Domains, domain) {
			score += w.Domain
		}
		score -= w.Latency * squash(lat.Seconds(), w.LatencyScale.Seconds())
		score -= w.Load * (claimedLoad + float64(inflight)/w.Capacity)
		score -= w.Price * squash(float64(c.Price), w.PriceScale)
		if c.Local {
			score += w.Local
		}
		out = append(out, Scored{Candidate: c, Score: score, LatencyMS: lat.Seconds() * 1000})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out
}

func squash(x, scale float64) float64 {
	if x <= 0 {
		return 0
	}
	return x / (x + scale)
}

func (s *peerStats) latency() time.Duration {
	if s.ewma == 0 {
		return unknownLatency
	}
	return time.Duration(s.ewma * float64(time.Second))
}

// p95 is the 95th percentile of the recent latencies, and whether there are enough samples.
func (s *peerStats) p95() (time.Duration, bool) {
	return s.p95Cache, len(s.samples) >= 8
}

func (s *peerStats) updateP95() {
	if len(s.samples) < 8 {
		return
	}
	var buf [latencyWindow]float64
	sorted := buf[:len(s.samples)]
	copy(sorted, s.samples)
	slices.Sort(sorted)
	s.p95Cache = time.Duration(sorted[int(math.Ceil(0.95*float64(len(sorted))))-1] * float64(time.Second))
}

// Begin counts a request to p as in flight.
func (r *Router) Begin(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats(p).inflight++
}

// Abandon ends an in-flight request to p whose answer is no longer wanted (the loser of a
// hedge, or a call cancelled by its caller): it counts neither as a success nor a failure.
func (r *Router) Abandon(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats(p)
	s.inflight = max(0, s.inflight-1)
}

// End records how a request to p went: its round-trip time on success, or a failure.
func (r *Router) End(p string, rtt time.Duration, err error, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats(p)
	s.inflight = max(0, s.inflight-1)
	if err != nil {
		s.failures++
		if s.failures >= FailuresToOpen || errors.Is(err, ErrStalled) {
			s.openUntil = now.Add(Cooldown)
		}
		return
	}
	s.failures, s.openUntil = 0, time.Time{}
	x := rtt.Seconds()
	if s.ewma == 0 {
		s.ewma = x
	} else {
		s.ewma = ewmaAlpha*x + (1-ewmaAlpha)*s.ewma
	}
	if len(s.samples) < latencyWindow {
		s.samples = append(s.samples, x)
	} else {
		s.samples[s.next] = x
		s.next = (s.next + 1) % latencyWindow
	}
	s.updateP95()
}

// HedgeDelay is how long to wait for p before also asking the next candidate: its recent p95,
// or ok=false while there are too few samples to know it.
func (r *Router) HedgeDelay(p string) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats(p).p95()
}

// PeerStat is a snapshot of one peer's statistics.
type PeerStat struct {
	Peer      string  `json:"peer"`
	LatencyMS float64 `json:"latency_ms"`
	P95MS     float64 `json:"p95_ms"`
	InFlight  int     `json:"in_flight"`
	Failures  int     `json:"failures"`
	Open      bool    `json:"breaker_open"`
}

// Stats returns a snapshot of every peer's statistics at now.
func (r *Router) Stats(now time.Time) []PeerStat {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []PeerStat
	for p, s := range r.peers {
		p95, _ := s.p95()
		out = append(out, PeerStat{Peer: p, LatencyMS: s.latency().Seconds() * 1000, P95MS: p95.Seconds() * 1000,
			InFlight: s.inflight, Failures: s.failures, Open: now.Before(s.openUntil)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}
