package ledger

import (
	"bytes"
	"fmt"
	"sort"
)

// Policy is who may create credits, how keys are spelled and how much a book holds.
type Policy struct {
	// Issuers are the keys whose grants create credits (the rules in force from the book's
	// creation; SetRules changes them for entries added later).
	Issuers map[string]bool
	// Genesis is the balance a key starts with (the development preset's "each new node starts
	// with a balance", so a local mesh can trade out of the box). 0: none; credits then come
	// only from issuers.
	Genesis uint64
	// Key, when set, judges every key an entry names (author and recipient): the node requires
	// the canonical spelling of a peer ID, so one key cannot run several chains under different
	// spellings. nil: any non-empty string.
	Key func(key string) error
	// Limits bound what the book holds; zero fields take the defaults (DefaultLimits).
	Limits Limits
}

// Rules are the issuer and genesis rules one epoch of a book judges its entries by.
type Rules struct {
	Issuers map[string]bool `json:"issuers,omitempty"`
	Genesis uint64          `json:"genesis"`
}

// Equal reports whether two rule sets say the same.
func (r Rules) Equal(o Rules) bool {
	if r.Genesis != o.Genesis {
		return false
	}
	n := 0
	for k, v := range r.Issuers {
		if v {
			if !o.Issuers[k] {
				return false
			}
			n++
		}
	}
	for _, v := range o.Issuers {
		if v {
			n--
		}
	}
	return n == 0
}

// Limits bound a book. Entries by Own, to Own, and receipts of Own's payments are never
// refused for room: a node always keeps its own trades.
type Limits struct {
	Entries       int    // entries held in chains, all keys together
	PerKey        int    // entries of one key's chain
	Waiting       int    // entries held back for a missing predecessor, all keys together
	WaitingPerKey int    // entries of one key held back
	Own           string // this node's key
}

// DefaultLimits are the bounds a zero Limits field takes.
var DefaultLimits = Limits{Entries: 200_000, PerKey: 20_000, Waiting: 4096, WaitingPerKey: 64}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.Entries > 0 {
		d.Entries = l.Entries
	}
	if l.PerKey > 0 {
		d.PerKey = l.PerKey
	}
	if l.Waiting > 0 {
		d.Waiting = l.Waiting
	}
	if l.WaitingPerKey > 0 {
		d.WaitingPerKey = l.WaitingPerKey
	}
	d.Own = l.Own
	return d
}

// MaxAmount bounds a grant or payment, so no sum a book keeps can overflow.
const MaxAmount = 1_000_000_000_000

// DoubleSpend is the proof that a key signed two different entries with one sequence number.
type DoubleSpend struct {
	Author string `json:"author"`
	Seq    uint64 `json:"seq"`
	A, B   *Entry `json:"-"`
	AID    string `json:"a"`
	BID    string `json:"b"`
}

// Status is a book's verdict on an entry.
type Status int

// Verdicts. Only StatusOK entries move credits.
const (
	StatusUnknown  Status = iota // not held
	StatusWaiting                // held back: an earlier entry of its chain is missing
	StatusOK                     // a grant by an issuer, a funded payment, a receipt of a funded payment
	StatusVoid                   // in its chain, moves nothing: a grant by a non-issuer, a receipt of no funded payment to its author, a second receipt
	StatusUnfunded               // a payment its author's balance did not cover when it was made
)

func (s Status) String() string {
	return [...]string{"unknown", "waiting", "ok", "void", "unfunded"}[s]
}

// held is an entry in a chain, with the book's verdict on it.
type held struct {
	e      *Entry
	id     string
	epoch  int
	status Status
	// net is what the chain's receipts credited minus what its funded payments spent, up to
	// and including this entry (grants and genesis apart: they count at every position).
	net int64
}

// account is one key: its chain, what waits to join it, its fork and the grants to it.
type account struct {
	key     string
	chain   []*held          // linked entries, index seq-1
	waiting map[uint64]*held // entries past the chain's end, waiting for a predecessor
	fork    *DoubleSpend     // lowest sequence with two different entries
	granted int64            // sum of the StatusOK grants to this key
	dirty   uint64           // lowest sequence whose verdict must be recomputed (0: none)
}

// Outcome is what adding one entry did.
type Outcome struct {
	// Linked are the entries that joined their chain: the entry and any entries that waited
	// for it, in sequence order. Empty for a duplicate or an entry that waits.
	Linked []*Entry
	// Waiting is set when the entry is held back for a missing predecessor.
	Waiting bool
	// Proof is a new double-spend proof the entry made.
	Proof *DoubleSpend
	// Dropped are chain entries the proof's fork point removed (at or after it).
	Dropped []*Entry
}

// Book holds entries from any number of chains and judges them. Its verdicts and balances are
// a function of the set of entries and proofs it holds (and of the rules each entry was added
// under), not of the order they came in. It is not safe for concurrent use; callers
// serialise.
type Book struct {
	policy   Policy
	limits   Limits
	verify   Verifier
	epochs   []Rules
	accounts map[string]*account
	byID     map[string]*held   // linked entries
	refs     map[string][]*held // payment ID -> linked receipts naming it (any author)
	grants   map[string][]*held // key -> linked grants to it
	dirty    map[*account]bool  // accounts with verdicts to recompute
	linked   int                // entries in chains
	waiting  int                // entries held back
	batching bool               // AddAll: verdicts are settled at the end
	forks    int                // keys refused for double spending (each proof holds two entries)
}

// NewBook returns an empty book judging entries by p's issuers and genesis.
func NewBook(p Policy, verify Verifier) *Book {
	return &Book{policy: p, limits: p.Limits.withDefaults(), verify: verify, epochs: []Rules{{Issuers: p.Issuers, Genesis: p.Genesis}},
		accounts: map[string]*account{}, byID: map[string]*held{}, refs: map[string][]*held{}, grants: map[string][]*held{},
		dirty: map[*account]bool{}}
}

// SetRules makes r the rules for entries added from now on; entries already held keep the
// rules they were added under. It returns the epoch number.
func (b *Book) SetRules(r Rules) int {
	b.epochs = append(b.epochs, r)
	return len(b.epochs) - 1
}

// Rules returns the rules entries are added under now.
func (b *Book) Rules() Rules { return b.epochs[len(b.epochs)-1] }

func (b *Book) account(key string) *account {
	a := b.accounts[key]
	if a == nil {
		a = &account{key: key, waiting: map[uint64]*held{}}
		b.accounts[key] = a
	}
	return a
}

// Add checks an entry (its fields, keys and signature) and takes it into the book: it joins
// its author's chain when it follows the chain's last entry, or waits (bounded) for the entries
// before it. A second, different entry for a sequence number already held is a proof of double
// spending: the author is refused from that sequence on (entries before it stand). A duplicate
// changes nothing. Whether a payment is funded, a grant by an issuer or a receipt of a funded
// payment is a verdict (Status), not an error: entries are judged together, whatever order
// they came in.
func (b *Book) Add(e *Entry) (Outcome, error) {
	if err := e.checkShape(b.verify); err != nil {
		return Outcome{}, err
	}
	if b.policy.Key != nil {
		for _, k := range []string{e.Author, e.To} {
			if k == "" {
				continue
			}
			if err := b.policy.Key(k); err != nil {
				return Outcome{}, fmt.Errorf("%w: key %q: %v", ErrInvalid, k, err)
			}
		}
	}
	a := b.account(e.Author)
	if a.fork != nil && e.Seq >= a.fork.Seq {
		return Outcome{}, fmt.Errorf("%w: %s from sequence %d", ErrRefused, e.Author, a.fork.Seq)
	}
	if old := b.entryAt(a, e.Seq); old != nil {
		if bytes.Equal(old.Encode(), e.Encode()) {
			return Outcome{}, nil // already held
		}
		ds := DoubleSpend{Author: e.Author, Seq: e.Seq, A: old, B: e, AID: old.ID(), BID: e.ID()}
		out := Outcome{Proof: &ds, Dropped: b.fork(a, ds)}
		b.maybeSettle()
		return out, fmt.Errorf("%w: double spend by %s at sequence %d (%s and %s)", ErrInvalid, e.Author, e.Seq, ds.AID, ds.BID)
	}
	n := uint64(len(a.chain))
	if e.Seq > n+1 {
		if err := b.room(e, true); err != nil {
			b.forgetIfEmpty(a)
			return Outcome{}, err
		}
		a.waiting[e.Seq] = &held{e: e, id: e.ID(), epoch: len(b.epochs) - 1, status: StatusWaiting}
		b.waiting++
		return Outcome{Waiting: true}, nil
	}
	if n > 0 && e.Prev != a.chain[n-1].id {
		return Outcome{}, fmt.Errorf("%w: %s entry %d does not link to entry %d", ErrInvalid, e.Author, e.Seq, e.Seq-1)
	}
	if err := b.room(e, false); err != nil {
		b.forgetIfEmpty(a)
		return Outcome{}, err
	}
	out := Outcome{Linked: []*Entry{e}}
	b.link(a, &held{e: e, id: e.ID(), epoch: len(b.epochs) - 1})
	for {
		next := a.waiting[uint64(len(a.chain))+1]
		if next == nil {
			break
		}
		delete(a.waiting, next.e.Seq)
		b.waiting--
		if next.e.Prev != a.chain[len(a.chain)-1].id || b.room(next.e, false) != nil {
			break // never links (or no room): forgotten, a sync may bring it again
		}
		b.link(a, next)
		out.Linked = append(out.Linked, next.e)
	}
	b.maybeSettle()
	return out, nil
}

// AddAll adds entries as Add does, one by one, and judges them together at the end: a change
// that re-judges a chain's tail (a payment arriving after the receipts that name it) costs
// once per batch, not once per entry, so a peer cannot make a sync quadratic by the order it
// sends entries in.
func (b *Book) AddAll(entries []*Entry) ([]Outcome, []error) {
	outs, errs := make([]Outcome, len(entries)), make([]error, len(entries))
	b.batching = true
	for i, e := range entries {
		outs[i], errs[i] = b.Add(e)
	}
	b.batching = false
	b.settle()
	return outs, errs
}

func (b *Book) maybeSettle() {
	if !b.batching {
		b.settle()
	}
}

// forgetIfEmpty drops an account that holds nothing (made for an entry that was then refused),
// so refused entries of new keys leave no trace.
func (b *Book) forgetIfEmpty(a *account) {
	if len(a.chain) == 0 && len(a.waiting) == 0 && a.fork == nil && a.granted == 0 && a.dirty == 0 {
		delete(b.accounts, a.key)
	}
}

// entryAt returns the entry a holds at seq, in its chain or waiting.
func (b *Book) entryAt(a *account, seq uint64) *Entry {
	if seq <= uint64(len(a.chain)) {
		return a.chain[seq-1].e
	}
	if w := a.waiting[seq]; w != nil {
		return w.e
	}
	return nil
}

// room refuses an entry the limits have no room for (own trades always have room).
func (b *Book) room(e *Entry, wait bool) error {
	if b.own(e) {
		return nil
	}
	a := b.accounts[e.Author]
	switch {
	case wait && b.waiting >= b.limits.Waiting:
		return fmt.Errorf("%w: %d entries already wait for their predecessors, the limit", ErrFull, b.waiting)
	case wait && a != nil && len(a.waiting) >= b.limits.WaitingPerKey:
		return fmt.Errorf("%w: %d entries of %s already wait for their predecessors, the limit", ErrFull, len(a.waiting), e.Author)
	case !wait && b.linked >= b.limits.Entries:
		return fmt.Errorf("%w: the book holds %d entries, the limit", ErrFull, b.linked)
	case !wait && a != nil && len(a.chain) >= b.limits.PerKey:
		return fmt.Errorf("%w: %s's chain holds %d entries, the limit", ErrFull, e.Author, len(a.chain))
	}
	return nil
}

func (b *Book) own(e *Entry) bool {
	o := b.limits.Own
	if o == "" {
		return false
	}
	if e.Author == o || e.To == o {
		return true
	}
	p := b.byID[e.Ref]
	return e.Kind == KindReceipt && p != nil && p.e.Author == o
}

// link appends h to a's chain and indexes it.
func (b *Book) link(a *account, h *held) {
	a.chain = append(a.chain, h)
	b.linked++
	b.byID[h.id] = h
	switch h.e.Kind {
	case KindReceipt:
		b.refs[h.e.Ref] = append(b.refs[h.e.Ref], h)
	case KindGrant:
		b.grants[h.e.To] = append(b.grants[h.e.To], h)
		h.status = StatusVoid
		if b.epochs[h.epoch].Issuers[h.e.Author] {
			h.status = StatusOK
			to := b.account(h.e.To)
			to.granted += int64(h.e.Amount)
			b.markDirty(to, 1)
		}
	}
	b.markDirty(a, h.e.Seq)
}

// unlink removes a's last chain entry and what depends on it.
func (b *Book) unlink(a *account) *held {
	h := a.chain[len(a.chain)-1]
	a.chain = a.chain[:len(a.chain)-1]
	b.linked--
	delete(b.byID, h.id)
	switch h.e.Kind {
	case KindReceipt:
		b.refs[h.e.Ref] = without(b.refs[h.e.Ref], h)
		if len(b.refs[h.e.Ref]) == 0 {
			delete(b.refs, h.e.Ref)
		}
	case KindGrant:
		b.grants[h.e.To] = without(b.grants[h.e.To], h)
		if len(b.grants[h.e.To]) == 0 {
			delete(b.grants, h.e.To)
		}
		if h.status == StatusOK {
			to := b.account(h.e.To)
			to.granted -= int64(h.e.Amount)
			b.markDirty(to, 1)
		}
	case KindPayment:
		for _, r := range b.refs[h.id] {
			b.markDirty(b.accounts[r.e.Author], r.e.Seq)
		}
	}
	return h
}

func without(hs []*held, h *held) []*held {
	for i, x := range hs {
		if x == h {
			return append(hs[:i:i], hs[i+1:]...)
		}
	}
	return hs
}

// fork records a double spend (keeping the lowest fork point) and drops the author's entries
// from it on. It returns the dropped entries.
func (b *Book) fork(a *account, ds DoubleSpend) []*Entry {
	if a.fork != nil && a.fork.Seq <= ds.Seq {
		return nil
	}
	if a.fork == nil {
		b.forks++
	}
	a.fork = &ds
	for seq := range a.waiting {
		if seq >= ds.Seq {
			delete(a.waiting, seq)
			b.waiting--
		}
	}
	var dropped []*Entry
	for uint64(len(a.chain)) >= ds.Seq {
		dropped = append(dropped, b.unlink(a).e)
	}
	return dropped
}

func (b *Book) markDirty(a *account, seq uint64) {
	if seq == 0 {
		seq = 1
	}
	if a.dirty == 0 || seq < a.dirty {
		a.dirty = seq
	}
	b.dirty[a] = true
}

// Undo removes entries the book linked last, newest first, as if they had never been added:
// a caller whose journal write failed rolls the book back to what the journal holds. Each
// entry must be, when its turn comes, the last of its chain. Double-spend records are not
// undone (their proofs are journaled apart).
func (b *Book) Undo(entries ...*Entry) error {
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		a := b.accounts[e.Author]
		if a == nil || len(a.chain) == 0 || a.chain[len(a.chain)-1].e != e {
			b.settle()
			return fmt.Errorf("undo ledger entries: entry %d of %s is not the last of its chain", e.Seq, e.Author)
		}
		b.unlink(a)
	}
	b.settle()
	return nil
}

// Balance is what key may spend: the genesis allowance of its first entry's rules, plus the
// grants to it and the payments its receipts acknowledge, minus its funded payments. A refused
// key's balance is 0.
func (b *Book) Balance(key string) uint64 {
	a := b.accounts[key]
	if a == nil {
		return b.Rules().Genesis
	}
	if a.fork != nil {
		return 0
	}
	if v := b.base(a) + b.net(a, uint64(len(a.chain))); v > 0 {
		return uint64(v)
	}
	return 0
}

// base is what a key holds at every position of its chain: genesis and grants.
func (b *Book) base(a *account) int64 {
	g := b.Rules().Genesis
	if len(a.chain) > 0 {
		g = b.epochs[a.chain[0].epoch].Genesis
	}
	return int64(g) + a.granted
}

// net is the chain's receipts minus payments up to and including seq.
func (b *Book) net(a *account, seq uint64) int64 {
	if seq == 0 {
		return 0
	}
	return a.chain[seq-1].net
}

// Head is the last entry of key's chain (nil if it has none).
func (b *Book) Head(key string) *Entry {
	a := b.accounts[key]
	if a == nil || len(a.chain) == 0 {
		return nil
	}
	return a.chain[len(a.chain)-1].e
}

// Next prepares key's next entry: sequence and previous link filled in.
func (b *Book) Next(key, kind string) *Entry {
	e := &Entry{Author: key, Seq: 1, Kind: kind}
	if a := b.accounts[key]; a != nil && len(a.chain) > 0 {
		h := a.chain[len(a.chain)-1]
		e.Seq, e.Prev = h.e.Seq+1, h.id
	}
	return e
}

// authors lists the keys with a chain, sorted.
func (b *Book) authors() []string {
	out := make([]string, 0, len(b.accounts))
	for k, a := range b.accounts {
		if len(a.chain) > 0 {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// History lists every entry that involves key (written by it or naming it), in chain order
// per author, authors sorted.
func (b *Book) History(key string) []*Entry {
	var out []*Entry
	for _, k := range b.authors() {
		for _, h := range b.accounts[k].chain {
			e := h.e
			if k == key || e.To == key || (e.Kind == KindReceipt && b.byID[e.Ref] != nil && b.byID[e.Ref].e.Author == key) {
				out = append(out, e)
			}
		}
	}
	return out
}

// Refused lists the keys caught double spending.
func (b *Book) Refused() []DoubleSpend {
	var out []DoubleSpend
	for _, a := range b.accounts {
		if a.fork != nil {
			out = append(out, *a.fork)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Author < out[j].Author })
	return out
}
