package secagg

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Config is what every party of a round agrees on before it starts.
type Config struct {
	// Session names the round (job, round and its instance); it salts every key, so nothing
	// carries over between rounds.
	Session []byte
	// Degree is the number of neighbours each participant masks with and shares its secrets
	// among (SecAgg+); 0, or at least the roster's size less one, means everyone (SecAgg).
	Degree int
	// Threshold is the share of a neighbourhood (the participant included) whose shares rebuild
	// one of its secrets, in (0.5, 1]. Up to the rest may drop out after masking.
	Threshold float64
}

// ErrInvalid marks input that breaks the protocol's rules (from a peer or the coordinator).
var ErrInvalid = errors.New("secure aggregation")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// MaxRoster bounds a round's roster.
const MaxRoster = 10000

// roster is a round's adverts with the neighbourhood graph and thresholds.
type roster struct {
	cfg     Config
	ids     []string // sorted
	index   map[string]int
	adverts map[string]Advert
	nb      map[string][]string
}

func (c Config) check() error {
	if len(c.Session) == 0 || len(c.Session) > 256 {
		return invalid("session of %d bytes", len(c.Session))
	}
	if !(c.Threshold > 0.5 && c.Threshold <= 1) {
		return invalid("threshold %g outside (0.5, 1]", c.Threshold)
	}
	if c.Degree < 0 || c.Degree > MaxRoster {
		return invalid("degree %d", c.Degree)
	}
	return nil
}

func newRoster(cfg Config, adverts []Advert) (*roster, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if len(adverts) < 2 || len(adverts) > MaxRoster {
		return nil, invalid("roster of %d participants (need 2 to %d)", len(adverts), MaxRoster)
	}
	r := &roster{cfg: cfg, index: map[string]int{}, adverts: map[string]Advert{}}
	for _, a := range adverts {
		if a.ID == "" || len(a.ID) > 128 {
			return nil, invalid("participant ID %q", a.ID)
		}
		if _, dup := r.adverts[a.ID]; dup {
			return nil, invalid("%s advertised twice", a.ID)
		}
		if _, err := publicKey(a.CipherKey, "cipher key of "+a.ID); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if _, err := publicKey(a.MaskKey, "mask key of "+a.ID); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		r.adverts[a.ID] = a
		r.ids = append(r.ids, a.ID)
	}
	slices.Sort(r.ids)
	for i, id := range r.ids {
		r.index[id] = i
	}
	r.nb = neighbourhoods(cfg.Session, r.ids, cfg.Degree)
	return r, nil
}

// threshold is how many shares rebuild a secret of id: the configured share of its
// neighbourhood (itself included), at least 2.
func (r *roster) threshold(id string) int {
	m := len(r.nb[id]) + 1
	t := int(math.Ceil(r.cfg.Threshold*float64(m) - 1e-9))
	return min(max(t, 2), m)
}

func (r *roster) isNeighbour(a, b string) bool {
	_, ok := slices.BinarySearch(r.nb[a], b)
	return ok
}

func (r *roster) has(id string) bool {
	_, ok := r.index[id]
	return ok
}
