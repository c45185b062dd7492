package routing

import (
	"math"
	"time"
)

// Spot checks: a provider's answer is a claim too. Every provider of one expert ID holds the
// same weights (the ID is the manifest's CID, which names the weights' CID), so every honest
// provider gives the same output for the same input. The node checks the first FirstChecks
// answers of each (provider, expert) and a random share after that against a reference it
// computes itself, and bans a provider whose answer differs, for that expert, for BanFor.

// Spot-check settings.
const (
	// FirstChecks answers of each (provider, expert) are always checked, so a lying provider is
	// caught within its first FirstChecks answers (a provider that lies only later is caught at
	// the random rate).
	FirstChecks = 3
	// BanFor is how long a provider caught answering wrongly is skipped for that expert.
	BanFor = time.Hour
)

type pairKey struct{ peer, expert string }

// ShouldSpotCheck says whether this answer of peer for expert is to be checked; roll is a
// uniform random number in [0, 1) (the caller draws it, so the decision is testable).
func (r *Router) ShouldSpotCheck(peer, expert string, roll float64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := pairKey{peer, expert}
	if r.checked[k] < FirstChecks {
		r.checked[k]++
		return true
	}
	return roll < r.spotRate
}

// SetSpotRate sets the share of answers checked after the first FirstChecks (0 to 1).
func (r *Router) SetSpotRate(rate float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spotRate = min(1, max(0, rate))
}

// Ban skips peer as a provider of expert until the given time.
func (r *Router) Ban(peer, expert string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bans) >= maxBans {
		for k, u := range r.bans {
			if !u.After(until) { // drop the soonest-ending ones first, roughly
				delete(r.bans, k)
			}
		}
	}
	r.bans[pairKey{peer, expert}] = until
}

// Banned reports whether peer is banned as a provider of expert at now.
func (r *Router) Banned(peer, expert string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bannedLocked(peer, expert, now)
}

func (r *Router) bannedLocked(peer, expert string, now time.Time) bool {
	u, ok := r.bans[pairKey{peer, expert}]
	return ok && now.Before(u)
}

// maxBans bounds the ban table (a ban is per provider and expert).
const maxBans = 65536

// SameAnswer reports whether two outputs agree within the rounding that different builds of
// the same forward pass can cause: |a−b| ≤ 1e-4 + 1e-3·|b| for every element. A provider that
// alters an answer to change its meaning differs by far more.
func SameAnswer(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		if math.IsNaN(x) || math.IsNaN(y) || math.Abs(x-y) > 1e-4+1e-3*math.Abs(y) {
			return false
		}
	}
	return true
}
