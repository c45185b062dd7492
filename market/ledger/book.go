package ledger

import (
	"bytes"
	"fmt"
	"sort"
)

// Policy is who may create credits.
type Policy struct {
	// Issuers are the keys whose grants create credits.
	Issuers map[string]bool
	// Genesis is the balance every key starts with (the development preset's "each new node
	// starts with a balance", so a local mesh can trade out of the box). 0: none; credits then
	// come only from issuers.
	Genesis uint64
	// Key, when set, judges every key an entry names (author and recipient): the node requires
	// the canonical spelling of a peer ID, so one key cannot run several chains under different
	// spellings. nil: any non-empty string.
	Key func(key string) error
}

// DoubleSpend is the proof that a key signed two different entries with one sequence number.
type DoubleSpend struct {
	Author string `json:"author"`
	Seq    uint64 `json:"seq"`
	A, B   *Entry `json:"-"`
	AID    string `json:"a"`
	BID    string `json:"b"`
}

// Book holds entries from any number of chains and judges them. It is not safe for concurrent
// use; callers serialise.
type Book struct {
	policy   Policy
	verify   Verifier
	chains   map[string][]*Entry // author -> entries by seq (index seq-1)
	byID     map[string]*Entry
	refused  map[string]DoubleSpend
	order    []*Entry            // every held entry, in the order it was accepted
	receipts map[string]*Entry   // payment ID -> its receipt
	incoming map[string][]*Entry // key -> grants and payments to it
	pos      map[*Entry]int      // held entry -> index in order
	ids      map[*Entry]string   // held entry -> its ID (computed once)
	spent    map[string]uint64   // key -> sum of its payments
}

// NewBook returns an empty book.
func NewBook(p Policy, verify Verifier) *Book {
	return &Book{policy: p, verify: verify, chains: map[string][]*Entry{}, byID: map[string]*Entry{}, refused: map[string]DoubleSpend{},
		receipts: map[string]*Entry{}, incoming: map[string][]*Entry{}, pos: map[*Entry]int{}, ids: map[*Entry]string{}, spent: map[string]uint64{}}
}

// Add checks an entry against the rules and the entries before it in its chain, and appends
// it. Entries of a chain must arrive in order. A second, different entry for a sequence
// number already held records a double spend (returned) and refuses the key from then on.
func (b *Book) Add(e *Entry) (*DoubleSpend, error) {
	if err := e.checkShape(b.verify); err != nil {
		return nil, err
	}
	if b.policy.Key != nil {
		for _, k := range []string{e.Author, e.To} {
			if k == "" {
				continue
			}
			if err := b.policy.Key(k); err != nil {
				return nil, fmt.Errorf("%w: key %q: %v", ErrInvalid, k, err)
			}
		}
	}
	if ds, ok := b.refused[e.Author]; ok {
		return &ds, fmt.Errorf("%w: %s is refused for double spending at sequence %d", ErrInvalid, e.Author, ds.Seq)
	}
	chain := b.chains[e.Author]
	if e.Seq <= uint64(len(chain)) {
		old := chain[e.Seq-1]
		if bytes.Equal(old.Encode(), e.Encode()) {
			return nil, nil // already held
		}
		ds := DoubleSpend{Author: e.Author, Seq: e.Seq, A: old, B: e, AID: old.ID(), BID: e.ID()}
		b.refused[e.Author] = ds
		return &ds, fmt.Errorf("%w: double spend by %s at sequence %d (%s and %s)", ErrInvalid, e.Author, e.Seq, ds.AID, ds.BID)
	}
	if e.Seq != uint64(len(chain))+1 {
		return nil, fmt.Errorf("%w: %s entry %d arrives before entry %d", ErrInvalid, e.Author, e.Seq, len(chain)+1)
	}
	if len(chain) > 0 && e.Prev != b.ids[chain[len(chain)-1]] {
		return nil, fmt.Errorf("%w: %s entry %d does not link to entry %d", ErrInvalid, e.Author, e.Seq, e.Seq-1)
	}
	switch e.Kind {
	case KindGrant:
		if !b.policy.Issuers[e.Author] {
			return nil, fmt.Errorf("%w: %s is not an issuer; only issuers grant credits", ErrInvalid, e.Author)
		}
	case KindPayment:
		if bal := b.Balance(e.Author); bal < e.Amount {
			return nil, fmt.Errorf("%w: %s pays %d with a balance of %d", ErrInvalid, e.Author, e.Amount, bal)
		}
	case KindReceipt:
		p, ok := b.byID[e.Ref]
		if !ok || p.Kind != KindPayment || p.To != e.Author || p.Listing != e.Listing {
			return nil, fmt.Errorf("%w: receipt of %s names %s, which is no payment to it for %q", ErrInvalid, e.Author, e.Ref, e.Listing)
		}
		if b.receipted(e.Ref) {
			return nil, fmt.Errorf("%w: payment %s already has a receipt", ErrInvalid, e.Ref)
		}
	}
	b.chains[e.Author] = append(chain, e)
	id := e.ID()
	b.byID[id], b.ids[e], b.pos[e] = e, id, len(b.order)
	b.order = append(b.order, e)
	switch e.Kind {
	case KindReceipt:
		b.receipts[e.Ref] = e
	case KindGrant, KindPayment:
		b.incoming[e.To] = append(b.incoming[e.To], e)
		if e.Kind == KindPayment {
			b.spent[e.Author] += e.Amount
		}
	}
	return nil, nil
}

// Undo removes entries the book accepted last, newest first, as if they had never been added:
// a caller whose journal write failed rolls the book back to what the journal holds. Every
// entry must be held and entries must be, together, the newest the book accepted (in the order
// they were added). Double-spend records are not undone (their proofs are journaled apart).
func (b *Book) Undo(entries ...*Entry) error {
	if len(entries) > len(b.order) {
		return fmt.Errorf("undo %d ledger entries: the book holds %d", len(entries), len(b.order))
	}
	tail := b.order[len(b.order)-len(entries):]
	for i, e := range entries {
		if tail[i] != e {
			return fmt.Errorf("undo ledger entries: entry %d of %s is not among the newest accepted", e.Seq, e.Author)
		}
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		id := b.ids[e]
		b.order = b.order[:len(b.order)-1]
		chain := b.chains[e.Author]
		if len(chain) == 1 {
			delete(b.chains, e.Author)
		} else {
			b.chains[e.Author] = chain[:len(chain)-1]
		}
		delete(b.byID, id)
		delete(b.ids, e)
		delete(b.pos, e)
		switch e.Kind {
		case KindReceipt:
			delete(b.receipts, e.Ref)
		case KindGrant, KindPayment:
			in := b.incoming[e.To]
			if len(in) == 1 {
				delete(b.incoming, e.To)
			} else {
				b.incoming[e.To] = in[:len(in)-1]
			}
			if e.Kind == KindPayment {
				if b.spent[e.Author] -= e.Amount; b.spent[e.Author] == 0 {
					delete(b.spent, e.Author)
				}
			}
		}
	}
	return nil
}

func (b *Book) receipted(payment string) bool { return b.receipts[payment] != nil }

// Balance is what key holds: the genesis allowance, plus grants and payments to it, minus its
// payments. A refused key's balance is 0.
func (b *Book) Balance(key string) uint64 {
	if _, ok := b.refused[key]; ok {
		return 0
	}
	in := b.policy.Genesis
	for _, e := range b.incoming[key] {
		if _, bad := b.refused[e.Author]; !bad {
			in += e.Amount
		}
	}
	if out := b.spent[key]; out < in {
		return in - out
	}
	return 0
}

// Head is the last entry of key's chain (nil if it has none).
func (b *Book) Head(key string) *Entry {
	c := b.chains[key]
	if len(c) == 0 {
		return nil
	}
	return c[len(c)-1]
}

// Next prepares key's next entry: sequence and previous link filled in.
func (b *Book) Next(key, kind string) *Entry {
	e := &Entry{Author: key, Seq: 1, Kind: kind}
	if h := b.Head(key); h != nil {
		e.Seq, e.Prev = h.Seq+1, b.ids[h]
	}
	return e
}

// History lists every entry that involves key (written by it or naming it), in chain order
// per author, authors sorted.
func (b *Book) History(key string) []*Entry {
	authors := make([]string, 0, len(b.chains))
	for a := range b.chains {
		authors = append(authors, a)
	}
	sort.Strings(authors)
	var out []*Entry
	for _, a := range authors {
		for _, e := range b.chains[a] {
			if a == key || e.To == key || (e.Kind == KindReceipt && b.byID[e.Ref] != nil && b.byID[e.Ref].Author == key) {
				out = append(out, e)
			}
		}
	}
	return out
}

// Refused lists the keys caught double spending.
func (b *Book) Refused() []DoubleSpend {
	var out []DoubleSpend
	for _, d := range b.refused {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Author < out[j].Author })
	return out
}
