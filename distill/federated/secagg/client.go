package secagg

import (
	"crypto/ecdh"
	"fmt"
	"io"
	"slices"

	"github.com/cloudflare/circl/group"
)

// Client is one participant's side of one round. Its secrets live in memory only and die
// with it: a participant that restarts has dropped out of the round. Its steps must be
// called in order, each once.
type Client struct {
	id  string
	cfg Config
	rnd io.Reader

	cipherKey, maskKey *ecdh.PrivateKey
	maskSecret         group.Scalar // the mask key is derived from it, so it can be shared
	selfSecret         group.Scalar // the self mask's seed is derived from it

	r      *roster
	held   map[string][2]group.Scalar // dealer → the (mask, self) shares it dealt this client
	paired []string                   // the neighbours this client masked with
	step   int
}

// NewClient starts a participant's round; rnd must be a cryptographic source
// (crypto/rand.Reader).
func NewClient(rnd io.Reader, id string, cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := &Client{id: id, cfg: cfg, rnd: rnd}
	var err error
	if c.cipherKey, err = curve.GenerateKey(rnd); err != nil {
		return nil, fmt.Errorf("secagg: cipher key: %w", err)
	}
	c.maskSecret = scalar.RandomNonZeroScalar(rnd)
	c.selfSecret = scalar.RandomNonZeroScalar(rnd)
	if c.maskKey, err = keyOfSecret(c.maskSecret, cfg.Session); err != nil {
		return nil, err
	}
	return c, nil
}

// Advert is this participant's public keys, for the coordinator to pass on.
func (c *Client) Advert() Advert {
	return Advert{ID: c.id, CipherKey: c.cipherKey.PublicKey().Bytes(), MaskKey: c.maskKey.PublicKey().Bytes()}
}

func (c *Client) next(step int, what string) error {
	if c.step != step {
		return fmt.Errorf("secagg: %s out of order (step %d, want %d)", what, c.step, step)
	}
	c.step++
	return nil
}

// ShareKeys takes the round's roster (the adverts the coordinator gathered, whose signatures
// the caller checked) and deals this participant's secrets among its neighbours.
func (c *Client) ShareKeys(roster []Advert) (*Dealing, error) {
	if err := c.next(0, "share keys"); err != nil {
		return nil, err
	}
	r, err := newRoster(c.cfg, roster)
	if err != nil {
		return nil, err
	}
	mine, ok := r.adverts[c.id]
	if !ok || !slices.Equal(mine.CipherKey, c.Advert().CipherKey) || !slices.Equal(mine.MaskKey, c.Advert().MaskKey) {
		return nil, invalid("the roster does not carry this participant's own keys")
	}
	c.r = r
	nb := r.nb[c.id]
	t := r.threshold(c.id)
	indexes := []int{r.index[c.id]}
	for _, v := range nb {
		indexes = append(indexes, r.index[v])
	}
	maskShares, maskCommit, err := deal(c.rnd, c.maskSecret, t, indexes)
	if err != nil {
		return nil, err
	}
	selfShares, selfCommit, err := deal(c.rnd, c.selfSecret, t, indexes)
	if err != nil {
		return nil, err
	}
	c.held = map[string][2]group.Scalar{c.id: {maskShares[0], selfShares[0]}}
	d := &Dealing{Commit: Commitments{Mask: maskCommit, Self: selfCommit}}
	for i, v := range nb {
		pub, err := publicKey(r.adverts[v].CipherKey, "cipher key of "+v)
		if err != nil {
			return nil, err
		}
		aead, err := boxKey(c.cipherKey, pub, c.cfg.Session)
		if err != nil {
			return nil, err
		}
		plain, err := sharePlain(maskShares[i+1], selfShares[i+1])
		if err != nil {
			return nil, err
		}
		box, err := seal(c.rnd, aead, plain, boxAAD(c.cfg.Session, c.id, v))
		if err != nil {
			return nil, err
		}
		d.Shares = append(d.Shares, SealedShare{From: c.id, To: v, Box: box})
	}
	return d, nil
}

func sharePlain(mask, self group.Scalar) ([]byte, error) {
	a, err := mask.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b, err := self.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

// Mask opens the shares dealt to this participant, checks each against its dealer's
// commitments, and masks x (its quantized update) with its self mask and a pairwise mask for
// every neighbour that dealt to it. A bad share is an error naming its dealer: the
// participant then leaves the round rather than mask with a neighbour it could not help
// unmask.
func (c *Client) Mask(delivered []Delivery, x []uint64) ([]uint64, error) {
	if err := c.next(1, "mask"); err != nil {
		return nil, err
	}
	r := c.r
	for _, d := range delivered {
		if d.From == c.id || !r.isNeighbour(c.id, d.From) {
			return nil, invalid("a share from %s, who is not a neighbour", d.From)
		}
		if _, dup := c.held[d.From]; dup {
			return nil, invalid("two shares from %s", d.From)
		}
		mask, self, err := c.openShare(d)
		if err != nil {
			return nil, fmt.Errorf("%w: share from %s: %v", ErrInvalid, d.From, err)
		}
		c.held[d.From] = [2]group.Scalar{mask, self}
		c.paired = append(c.paired, d.From)
	}
	slices.Sort(c.paired)
	if t := r.threshold(c.id); len(c.paired)+1 < t {
		return nil, invalid("only %d neighbours dealt shares; %d are needed to unmask this participant", len(c.paired), t-1)
	}
	y := slices.Clone(x)
	seed, err := selfSeed(c.selfSecret, c.cfg.Session)
	if err != nil {
		return nil, err
	}
	addMask(y, seed, 1)
	for _, v := range c.paired {
		pub, err := publicKey(r.adverts[v].MaskKey, "mask key of "+v)
		if err != nil {
			return nil, err
		}
		s, err := pairSeed(c.maskKey, pub, c.cfg.Session)
		if err != nil {
			return nil, err
		}
		addMask(y, s, pairSign(c.id, v))
	}
	return y, nil
}

func (c *Client) openShare(d Delivery) (group.Scalar, group.Scalar, error) {
	t := c.r.threshold(d.From)
	mc, err := parseCommitment(d.Commit.Mask, t)
	if err != nil {
		return nil, nil, err
	}
	sc, err := parseCommitment(d.Commit.Self, t)
	if err != nil {
		return nil, nil, err
	}
	pub, err := publicKey(c.r.adverts[d.From].CipherKey, "cipher key")
	if err != nil {
		return nil, nil, err
	}
	aead, err := boxKey(c.cipherKey, pub, c.cfg.Session)
	if err != nil {
		return nil, nil, err
	}
	plain, err := open(aead, d.Box, boxAAD(c.cfg.Session, d.From, c.id))
	if err != nil {
		return nil, nil, fmt.Errorf("open: %w", err)
	}
	if len(plain) != 2*scalarSize {
		return nil, nil, fmt.Errorf("%d bytes inside", len(plain))
	}
	mask, err := parseScalar(plain[:scalarSize])
	if err != nil {
		return nil, nil, err
	}
	self, err := parseScalar(plain[scalarSize:])
	if err != nil {
		return nil, nil, err
	}
	idx := c.r.index[c.id]
	if !verifyShare(mask, idx, t, mc) || !verifyShare(self, idx, t, sc) {
		return nil, nil, fmt.Errorf("does not match its dealer's commitments")
	}
	return mask, self, nil
}

// Unmask answers the coordinator's list of who sent masked input: for itself and every
// neighbour it paired with, the share of the self mask's seed if that one sent input, of the
// mask key's secret if not. It never reveals both for one neighbour, and refuses a list too
// short to keep its own update hidden.
func (c *Client) Unmask(survivors []string) ([]Reveal, error) {
	if err := c.next(2, "unmask"); err != nil {
		return nil, err
	}
	alive := map[string]bool{}
	for _, s := range survivors {
		alive[s] = true
	}
	if !alive[c.id] {
		return nil, invalid("the survivors do not include this participant")
	}
	n := 1
	for _, v := range c.paired {
		if alive[v] {
			n++
		}
	}
	if t := c.r.threshold(c.id); n < t {
		return nil, invalid("%d of this participant's neighbourhood survived; revealing would need %d", n, t)
	}
	out := make([]Reveal, 0, len(c.paired)+1)
	for _, v := range append([]string{c.id}, c.paired...) {
		sh := c.held[v]
		value, kind := sh[0], false
		if alive[v] {
			value, kind = sh[1], true
		}
		b, err := value.MarshalBinary()
		if err != nil {
			return nil, err
		}
		out = append(out, Reveal{Owner: v, Self: kind, Value: b})
	}
	return out, nil
}
