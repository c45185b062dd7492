package ledger

import (
	"bytes"
	"fmt"
)

// Check validates what an entry shows on its own: its fields and its author's signature. It
// says nothing of the entry's place in a chain (see Book.Add).
func (e *Entry) Check(verify Verifier) error { return e.checkShape(verify) }

// IDOf returns the ID of a held entry (cached) or computes it.
func (b *Book) IDOf(e *Entry) string {
	if id, ok := b.ids[e]; ok {
		return id
	}
	return e.ID()
}

// Has reports whether the book holds the entry with this ID.
func (b *Book) Has(id string) bool { return b.byID[id] != nil }

// Get returns the held entry with this ID, or nil.
func (b *Book) Get(id string) *Entry { return b.byID[id] }

// ReceiptOf returns the receipt that acknowledges payment, or nil.
func (b *Book) ReceiptOf(payment string) *Entry { return b.receipts[payment] }

// Refuses reports whether key was caught double spending.
func (b *Book) Refuses(key string) bool {
	_, ok := b.refused[key]
	return ok
}

// Len is the number of entries held.
func (b *Book) Len() int { return len(b.order) }

// Entries lists every held entry in the order the book accepted them: an order in which
// another book can add them (each entry's dependencies come before it).
func (b *Book) Entries() []*Entry { return append([]*Entry(nil), b.order...) }

// Chain returns key's chain, entry 1 first.
func (b *Book) Chain(key string) []*Entry { return append([]*Entry(nil), b.chains[key]...) }

// Pending returns key's payments that have no receipt yet, oldest first.
func (b *Book) Pending(key string) []*Entry {
	var out []*Entry
	for _, e := range b.chains[key] {
		if e.Kind == KindPayment && b.receipts[b.ids[e]] == nil {
			out = append(out, e)
		}
	}
	return out
}

// Closure returns the entries another book needs to accept the entries named by ids: for each,
// its chain up to it, and, recursively, the chains of every key that credited an author in
// the set before one of its payments (its balance depends on them) and of every payment a receipt names. They come in the
// book's acceptance order, so adding them one by one to a book that holds a subset succeeds.
// Unknown IDs are skipped.
func (b *Book) Closure(ids ...string) []*Entry {
	need := map[string]uint64{}
	credited := map[string]int{} // author -> credits considered up to this position (+1)
	var work []*Entry
	want := func(author string, seq uint64) {
		if seq <= need[author] {
			return
		}
		work = append(work, b.chains[author][need[author]:seq]...)
		need[author] = seq
	}
	for _, id := range ids {
		if e := b.byID[id]; e != nil {
			want(e.Author, e.Seq)
		}
	}
	for len(work) > 0 {
		e := work[len(work)-1]
		work = work[:len(work)-1]
		if e.Kind == KindReceipt {
			if p := b.byID[e.Ref]; p != nil {
				want(p.Author, p.Seq)
			}
		}
		if e.Kind == KindPayment && credited[e.Author] < b.pos[e]+1 {
			// The payer's balance just before the payment: every credit it had by then.
			credited[e.Author] = b.pos[e] + 1
			for _, in := range b.incoming[e.Author] {
				if b.pos[in] < b.pos[e] {
					want(in.Author, in.Seq)
				}
			}
		}
	}
	var out []*Entry
	for _, e := range b.order {
		if e.Seq <= need[e.Author] {
			out = append(out, e)
		}
	}
	return out
}

// Prove records a double spend shown by two entries: both validly signed by one author, with
// one sequence number, and different. From then on the author is refused. A pair that proves
// nothing is an error wrapping ErrInvalid.
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
	if ds, ok := b.refused[x.Author]; ok {
		return &ds, nil
	}
	ds := DoubleSpend{Author: x.Author, Seq: x.Seq, A: x, B: y, AID: x.ID(), BID: y.ID()}
	b.refused[x.Author] = ds
	return &ds, nil
}
