package ledger

import (
	"bytes"
	"fmt"
	"sort"
)

// Check validates what an entry shows on its own: its fields and its author's signature. It
// says nothing of the entry's place in a chain (see Book.Add).
func (e *Entry) Check(verify Verifier) error { return e.checkShape(verify) }

// IDOf returns the ID of a held entry (cached) or computes it.
func (b *Book) IDOf(e *Entry) string {
	if a := b.accounts[e.Author]; a != nil && e.Seq >= 1 && e.Seq <= uint64(len(a.chain)) && a.chain[e.Seq-1].e == e {
		return a.chain[e.Seq-1].id
	}
	return e.ID()
}

// Has reports whether the book holds the entry with this ID in a chain.
func (b *Book) Has(id string) bool { return b.byID[id] != nil }

// Get returns the chain entry with this ID, or nil.
func (b *Book) Get(id string) *Entry {
	if h := b.byID[id]; h != nil {
		return h.e
	}
	return nil
}

// ReceiptOf returns the receipt that acknowledges payment (the first its payee wrote for it),
// or nil. It counts only when the payment is funded: see Status.
func (b *Book) ReceiptOf(payment string) *Entry {
	p := b.byID[payment]
	if p == nil {
		return nil
	}
	if r := b.firstReceipt(p); r != nil {
		return r.e
	}
	return nil
}

// Refuses reports whether key was caught double spending.
func (b *Book) Refuses(key string) bool {
	a := b.accounts[key]
	return a != nil && a.fork != nil
}

// Fork returns key's double-spend proof, or nil.
func (b *Book) Fork(key string) *DoubleSpend {
	if a := b.accounts[key]; a != nil && a.fork != nil {
		d := *a.fork
		return &d
	}
	return nil
}

// Len is the number of entries held in chains.
func (b *Book) Len() int { return b.linked }

// Waiting is the number of entries held back for a missing predecessor.
func (b *Book) Waiting() int { return b.waiting }

// Entries lists every chain entry, authors sorted, each chain in order: an order in which
// another book can add them.
func (b *Book) Entries() []*Entry {
	out := make([]*Entry, 0, b.linked)
	for _, k := range b.authors() {
		for _, h := range b.accounts[k].chain {
			out = append(out, h.e)
		}
	}
	return out
}

// Chain returns key's chain, entry 1 first.
func (b *Book) Chain(key string) []*Entry {
	a := b.accounts[key]
	if a == nil {
		return nil
	}
	out := make([]*Entry, len(a.chain))
	for i, h := range a.chain {
		out[i] = h.e
	}
	return out
}

// Pending returns key's funded payments whose receipt has not arrived, oldest first.
func (b *Book) Pending(key string) []*Entry {
	a := b.accounts[key]
	if a == nil {
		return nil
	}
	var out []*Entry
	for _, h := range a.chain {
		if h.e.Kind == KindPayment && h.status == StatusOK {
			if r := b.firstReceipt(h); r == nil || r.status != StatusOK {
				out = append(out, h.e)
			}
		}
	}
	return out
}

// Closure returns the entries another book needs to judge the entries named by ids as this
// one does: for each, its chain up to it; for every payment among them, the grants to its
// author and the payments its author's earlier receipts name; and so on, recursively. They
// come author by author, each chain in order (any order is fine for a book: entries wait for
// their predecessors, verdicts do not depend on arrival). Unknown IDs are skipped.
func (b *Book) Closure(ids ...string) []*Entry {
	need := map[string]uint64{}
	credited := map[string]bool{} // authors whose grants were taken
	var work []*held
	want := func(author string, seq uint64) {
		a := b.accounts[author]
		if a == nil || seq <= need[author] {
			return
		}
		work = append(work, a.chain[need[author]:seq]...)
		need[author] = seq
	}
	for _, id := range ids {
		if h := b.byID[id]; h != nil {
			want(h.e.Author, h.e.Seq)
		}
	}
	for len(work) > 0 {
		h := work[len(work)-1]
		work = work[:len(work)-1]
		switch h.e.Kind {
		case KindReceipt:
			if p := b.byID[h.e.Ref]; p != nil {
				want(p.e.Author, p.e.Seq)
			}
		case KindPayment:
			if !credited[h.e.Author] {
				credited[h.e.Author] = true
				for _, g := range b.grants[h.e.Author] {
					want(g.e.Author, g.e.Seq)
				}
			}
		}
	}
	authors := make([]string, 0, len(need))
	for k := range need {
		authors = append(authors, k)
	}
	sort.Strings(authors)
	var out []*Entry
	for _, k := range authors {
		for _, h := range b.accounts[k].chain[:need[k]] {
			out = append(out, h.e)
		}
	}
	return out
}

// Prove records a double spend shown by two entries: both validly signed by one author, with
// one sequence number, and different. From then on the author is refused from that sequence
// (a lower one than a proof already held replaces it). A pair that proves nothing is an error
// wrapping ErrInvalid. A proof that adds nothing (the author is already refused from that
// sequence or below) returns nil and no error.
func (b *Book) Prove(x, y *Entry) (*DoubleSpend, error) {
	if x == nil || y == nil {
		return nil, fmt.Errorf("%w: a double-spend proof needs two entries", ErrInvalid)
	}
	for _, e := range []*Entry{x, y} {
		if err := e.checkShape(b.verify); err != nil {
			return nil, fmt.Errorf("double-spend proof: %w", err)
		}
	}
	if x.Author != y.Author || x.Seq != y.Seq || bytes.Equal(x.Encode(), y.Encode()) {
		return nil, fmt.Errorf("%w: double-spend proof: the entries must be different and share author and sequence number", ErrInvalid)
	}
	if b.policy.Key != nil {
		if err := b.policy.Key(x.Author); err != nil {
			return nil, fmt.Errorf("%w: double-spend proof: key %q: %v", ErrInvalid, x.Author, err)
		}
	}
	a := b.accounts[x.Author]
	if a != nil && a.fork != nil && a.fork.Seq <= x.Seq {
		return nil, nil
	}
	// A proof of a key the book holds nothing of costs two entries of room, like any stranger's.
	stranger := a == nil || len(a.chain) == 0 && len(a.waiting) == 0
	if stranger && x.Author != b.limits.Own && b.linked+2*b.forks >= b.limits.Entries {
		return nil, fmt.Errorf("%w: a double-spend proof of %s, a key it holds no entry of: the book holds %d entries and %d proofs",
			ErrFull, x.Author, b.linked, b.forks)
	}
	if a == nil {
		a = b.account(x.Author)
	}
	ds := DoubleSpend{Author: x.Author, Seq: x.Seq, A: x, B: y, AID: x.ID(), BID: y.ID()}
	b.fork(a, ds)
	b.settle()
	return &ds, nil
}
