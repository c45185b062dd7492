package node

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MarketConfig is the expert market's ledger policy and timings. Every node of one mesh must
// use the same genesis and issuers, or their books disagree about balances.
type MarketConfig struct {
	// Genesis is the balance in credits every key starts with. The development preset grants
	// 1000 so a local mesh can trade out of the box; elsewhere it is 0 and credits enter only
	// through issuers. Anyone can make keys: with a genesis grant, credits are free to mint.
	Genesis uint64 `yaml:"genesis"`
	// Issuers are the peer IDs whose signed grants create credits.
	Issuers []string `yaml:"issuers"`
	// Republish is how often this node republishes its live listings and its reviews
	// (gossipsub has no history: a peer that joins later hears them at the next round).
	Republish time.Duration `yaml:"republish"`
	// DefaultExpiry is how long a listing lives when 'market publish' is given no --expires.
	DefaultExpiry time.Duration `yaml:"default_expiry"`
	// Sync is how often this node compares its ledger with a random peer's and fetches the
	// entries it lacks (it also syncs with every peer it connects to, and when an entry arrives
	// before the ones it follows).
	Sync time.Duration `yaml:"sync"`
	// Ledger bounds the entries other keys can make this node hold. This node's own trades
	// are never refused for room.
	Ledger LedgerLimits `yaml:"ledger"`
}

// LedgerLimits bound the ledger book (see ledger.Limits).
type LedgerLimits struct {
	// Entries is the most chain entries held, all keys together (about 1 KiB of memory each).
	Entries int `yaml:"entries"`
	// PerKey is the most entries of one key's chain.
	PerKey int `yaml:"per_key"`
	// Waiting is the most entries held back for a missing predecessor, all keys together;
	// WaitingPerKey, of one key. Entries past these wait for a sync to bring them again.
	Waiting       int `yaml:"waiting"`
	WaitingPerKey int `yaml:"waiting_per_key"`
}

// defaultMarket: no free credits; listings republished every 10 s (a joining peer sees the
// market within seconds at a few hundred bytes per listing per round) and valid for 30 days;
// the ledger synced with a random peer every minute and bounded at 200,000 entries.
func defaultMarket() MarketConfig {
	return MarketConfig{Republish: 10 * time.Second, DefaultExpiry: 30 * 24 * time.Hour, Sync: time.Minute,
		Ledger: LedgerLimits{Entries: 200_000, PerKey: 20_000, Waiting: 4096, WaitingPerKey: 64}}
}

func (m MarketConfig) validate() error {
	for _, id := range m.Issuers {
		if _, err := peer.Decode(id); err != nil {
			return fmt.Errorf("config market.issuers: %q is not a peer ID: %w", id, err)
		}
	}
	if m.Republish < time.Second || m.Republish > time.Hour {
		return fmt.Errorf("config market.republish %s: outside [1s, 1h]", m.Republish)
	}
	if m.Sync < time.Second || m.Sync > 24*time.Hour {
		return fmt.Errorf("config market.sync %s: outside [1s, 24h]", m.Sync)
	}
	l := m.Ledger
	if l.Entries < 1000 || l.PerKey < 100 || l.Waiting < 16 || l.WaitingPerKey < 1 || l.PerKey > l.Entries || l.WaitingPerKey > l.Waiting {
		return fmt.Errorf("config market.ledger: entries ≥ 1000, per_key ≥ 100 (≤ entries), waiting ≥ 16, waiting_per_key ≥ 1 (≤ waiting); got %+v", l)
	}
	if m.DefaultExpiry < time.Minute {
		return fmt.Errorf("config market.default_expiry %s: must be at least 1m", m.DefaultExpiry)
	}
	return nil
}
