package secagg

import (
	"fmt"
	"slices"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
)

// Server is the coordinator's side of one round: it routes the sealed shares it cannot open,
// and from the masked inputs and enough revealed shares computes their sum, and nothing about
// any single input. It is not safe for concurrent use.
type Server struct {
	r       *roster
	dim     int
	commits map[string][2]secretsharing.SecretCommitment // dealer → (mask, self)
	boxes   map[string][]Delivery                        // recipient → what was dealt to it
}

// NewServer starts a round over the gathered adverts (whose signatures the caller checked),
// for inputs of dim values.
func NewServer(cfg Config, adverts []Advert, dim int) (*Server, error) {
	r, err := newRoster(cfg, adverts)
	if err != nil {
		return nil, err
	}
	if dim < 1 {
		return nil, invalid("inputs of %d values", dim)
	}
	return &Server{r: r, dim: dim, commits: map[string][2]secretsharing.SecretCommitment{}, boxes: map[string][]Delivery{}}, nil
}

// Roster is the round's adverts, sorted by ID: what every participant is told.
func (s *Server) Roster() []Advert {
	out := make([]Advert, len(s.r.ids))
	for i, id := range s.r.ids {
		out[i] = s.r.adverts[id]
	}
	return out
}

// Dealt lists who dealt, sorted.
func (s *Server) Dealt() []string {
	out := make([]string, 0, len(s.commits))
	for id := range s.commits {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// AddDealing takes the dealing of a roster member: its commitments and one sealed share for
// each of its neighbours.
func (s *Server) AddDealing(from string, d *Dealing) error {
	r := s.r
	if !r.has(from) {
		return invalid("%s is not on the round's roster", from)
	}
	if _, dup := s.commits[from]; dup {
		return invalid("%s dealt twice", from)
	}
	t := r.threshold(from)
	mc, err := parseCommitment(d.Commit.Mask, t)
	if err != nil {
		return invalid("dealing of %s: mask commitment: %v", from, err)
	}
	sc, err := parseCommitment(d.Commit.Self, t)
	if err != nil {
		return invalid("dealing of %s: self commitment: %v", from, err)
	}
	nb := r.nb[from]
	if len(d.Shares) != len(nb) {
		return invalid("%s dealt %d shares to its %d neighbours", from, len(d.Shares), len(nb))
	}
	seen := map[string]bool{}
	for _, sh := range d.Shares {
		switch {
		case sh.From != from:
			return invalid("%s sent a share dealt by %s", from, sh.From)
		case !r.isNeighbour(from, sh.To) || seen[sh.To]:
			return invalid("%s dealt a share to %s, not a neighbour or twice", from, sh.To)
		case len(sh.Box) > 256:
			return invalid("%s dealt a share of %d bytes", from, len(sh.Box))
		}
		seen[sh.To] = true
	}
	s.commits[from] = [2]secretsharing.SecretCommitment{mc, sc}
	for _, sh := range d.Shares {
		s.boxes[sh.To] = append(s.boxes[sh.To], Delivery{From: from, Commit: d.Commit, Box: sh.Box})
	}
	return nil
}

// Deliveries is what to pass to a participant after the sharing step: the shares its
// neighbours dealt it.
func (s *Server) Deliveries(to string) []Delivery { return slices.Clone(s.boxes[to]) }

// Sum removes the masks from the masked inputs (sender → values) using the revealed shares
// (revealer → its reveals) and returns the sum of the inputs. Senders must have dealt; a
// reveal that is not on its owner's commitment, comes from outside the owner's
// neighbourhood, or is of the wrong kind is left out. It fails, naming the participant, when
// some secret has fewer valid shares than its threshold.
func (s *Server) Sum(masked map[string][]uint64, reveals map[string][]Reveal) ([]uint64, error) {
	r := s.r
	sum := make([]uint64, s.dim)
	for id, y := range masked {
		if _, ok := s.commits[id]; !ok {
			return nil, invalid("masked input from %s, who did not deal", id)
		}
		if len(y) != s.dim {
			return nil, invalid("masked input from %s has %d values, want %d", id, len(y), s.dim)
		}
		for i, v := range y {
			sum[i] += v
		}
	}
	shares := map[string][]secretsharing.Share{} // owner → valid shares of the secret it needs
	for from, rs := range reveals {
		if _, ok := s.commits[from]; !ok {
			continue
		}
		used := map[string]bool{}
		for _, rv := range rs {
			_, sent := masked[rv.Owner]
			c, dealt := s.commits[rv.Owner]
			if !dealt || rv.Self != sent || used[rv.Owner] || rv.Owner != from && !r.isNeighbour(rv.Owner, from) {
				continue
			}
			v, err := parseScalar(rv.Value)
			if err != nil {
				continue
			}
			commit := c[0]
			if rv.Self {
				commit = c[1]
			}
			if !verifyShare(v, r.index[from], r.threshold(rv.Owner), commit) {
				continue
			}
			used[rv.Owner] = true
			shares[rv.Owner] = append(shares[rv.Owner], secretsharing.Share{ID: shareID(r.index[from]), Value: v})
		}
	}
	for _, owner := range s.Dealt() {
		_, sent := masked[owner]
		t := r.threshold(owner)
		if len(shares[owner]) < t {
			what := "mask key"
			if sent {
				what = "self mask"
			}
			return nil, fmt.Errorf("secagg: %d valid shares of %s's %s, %d needed", len(shares[owner]), owner, what, t)
		}
		secret, err := secretsharing.Recover(uint(t-1), shares[owner])
		if err != nil {
			return nil, fmt.Errorf("secagg: rebuild %s's secret: %w", owner, err)
		}
		if sent {
			if err := s.removeSelfMask(sum, secret); err != nil {
				return nil, err
			}
			continue
		}
		if err := s.removePairMasks(sum, owner, secret, masked); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

func (s *Server) removeSelfMask(sum []uint64, secret group.Scalar) error {
	seed, err := selfSeed(secret, s.r.cfg.Session)
	if err != nil {
		return err
	}
	addMask(sum, seed, -1)
	return nil
}

// removePairMasks takes out of sum the pairwise masks that the senders among a dropped
// participant's neighbours added for it.
func (s *Server) removePairMasks(sum []uint64, dropped string, secret group.Scalar, masked map[string][]uint64) error {
	key, err := keyOfSecret(secret, s.r.cfg.Session)
	if err != nil {
		return err
	}
	if !slices.Equal(key.PublicKey().Bytes(), s.r.adverts[dropped].MaskKey) {
		return fmt.Errorf("secagg: the secret rebuilt for %s does not match its mask key", dropped)
	}
	for _, v := range s.r.nb[dropped] {
		if _, sent := masked[v]; !sent {
			continue
		}
		pub, err := publicKey(s.r.adverts[v].MaskKey, "mask key of "+v)
		if err != nil {
			return err
		}
		seed, err := pairSeed(key, pub, s.r.cfg.Session)
		if err != nil {
			return err
		}
		addMask(sum, seed, -pairSign(v, dropped))
	}
	return nil
}
