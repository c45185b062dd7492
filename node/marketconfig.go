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
}

// defaultMarket: no free credits; listings republished every 10 s (a joining peer sees the
// market within seconds at a few hundred bytes per listing per round) and valid for 30 days.
func defaultMarket() MarketConfig {
	return MarketConfig{Republish: 10 * time.Second, DefaultExpiry: 30 * 24 * time.Hour}
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
	if m.DefaultExpiry < time.Minute {
		return fmt.Errorf("config market.default_expiry %s: must be at least 1m", m.DefaultExpiry)
	}
	return nil
}
