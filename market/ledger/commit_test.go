package ledger

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/meshnode/meshnode/internal/dstest"
	"github.com/meshnode/meshnode/internal/testkeys"
)

// TestFailedJournalWriteLeavesBookAndJournalInStep: an entry whose journal write fails is not
// kept in the book either, so entries after it are journaled in an order the journal can
// replay, and the journal still loads (before the fix the book kept the unjournaled entry,
// later entries were logged without it, and Load failed with ErrCorrupt: a node that would not
// start).
func TestFailedJournalWriteLeavesBookAndJournalInStep(t *testing.T) {
	ctx := context.Background()
	ring := testkeys.Ring{}
	issuer, alice, bob := ring.New("issuer", 1), ring.New("alice", 2), ring.New("bob", 3)
	policy := Policy{Issuers: map[string]bool{"issuer": true}}
	var fail atomic.Bool
	raw := dssync.MutexWrap(ds.NewMapDatastore())
	j := OpenJournal(dstest.Failing{Batching: raw, Fail: &fail})
	b := NewBook(policy, ring.Verify)
	commit := func(es ...*Entry) error {
		t.Helper()
		for _, e := range es {
			mustAdd(t, b, e)
		}
		return j.Commit(ctx, b, es...)
	}
	if err := commit(signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 100 })); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	lost := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 40, "L1" })
	if err := commit(lost); !errors.Is(err, dstest.ErrDisk) {
		t.Fatalf("commit on a failing disk: %v, want the write error", err)
	}
	if b.Has(lost.ID()) || b.Balance("alice") != 100 || b.Balance("bob") != 0 || b.Len() != 1 {
		t.Fatalf("after a failed write the book holds the payment (has %v, alice %d, bob %d, %d entries)",
			b.Has(lost.ID()), b.Balance("alice"), b.Balance("bob"), b.Len())
	}
	fail.Store(false)
	// The node signs its next entry again with the free sequence number and goes on.
	pay := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 30, "L2" })
	if pay.Seq != 1 {
		t.Fatalf("next payment has sequence %d, want 1 (the failed one was undone)", pay.Seq)
	}
	rc := signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L2" })
	if err := commit(pay, rc); err != nil {
		t.Fatal(err)
	}
	// A batch that fails is undone whole, the receipt included.
	fail.Store(true)
	p2 := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 5, "L3" })
	r2 := signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = p2.ID(), "L3" })
	mustAdd(t, b, p2)
	mustAdd(t, b, r2)
	if err := j.Commit(ctx, b, p2, r2); err == nil {
		t.Fatal("commit on a failing disk succeeded")
	}
	if b.Has(p2.ID()) || b.Has(r2.ID()) || b.ReceiptOf(p2.ID()) != nil || len(b.Pending("alice")) != 0 {
		t.Fatal("a failed batch left entries in the book")
	}
	fail.Store(false)

	again := NewBook(policy, ring.Verify)
	n, err := OpenJournal(raw).Load(ctx, again)
	if err != nil {
		t.Fatalf("load after a failed write: %v", err)
	}
	if n != 3 || again.Balance("alice") != 70 || again.Balance("bob") != 30 || again.ReceiptOf(pay.ID()) == nil {
		t.Fatalf("reloaded %d entries, alice %d, bob %d; want 3, 70, 30", n, again.Balance("alice"), again.Balance("bob"))
	}
}

func TestUndoRefusesEntriesThatAreNotTheNewest(t *testing.T) {
	ring := testkeys.Ring{}
	issuer := ring.New("issuer", 1)
	b := NewBook(Policy{Issuers: map[string]bool{"issuer": true}}, ring.Verify)
	g1 := signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 1 })
	mustAdd(t, b, g1)
	mustAdd(t, b, signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 2 }))
	if err := b.Undo(g1); err == nil {
		t.Fatal("undid an entry with a newer one after it")
	}
	if b.Len() != 2 || b.Balance("alice") != 3 {
		t.Fatal("a refused undo changed the book")
	}
}

// TestBookRequiresCanonicalKeys: with a key rule, an entry naming a key in a non-canonical
// spelling (author or recipient) is refused, so one key cannot run two chains.
func TestBookRequiresCanonicalKeys(t *testing.T) {
	ring := testkeys.Ring{}
	issuer := ring.New("issuer", 1)
	ring["ISSUER"] = ring["issuer"] // one key, two spellings
	lower := func(k string) error {
		if k != strings.ToLower(k) {
			return errors.New("not canonical")
		}
		return nil
	}
	b := NewBook(Policy{Issuers: map[string]bool{"issuer": true, "ISSUER": true}, Key: lower}, ring.Verify)
	mustAdd(t, b, signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 1 }))
	alias := b.Next("ISSUER", KindGrant)
	alias.To, alias.Amount = "alice", 1
	if err := alias.Sign(renamed{issuer, "ISSUER"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add(alias); !errors.Is(err, ErrInvalid) {
		t.Fatalf("second chain under another spelling: %v, want ErrInvalid", err)
	}
	to := signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "ALICE", 1 })
	if _, err := b.Add(to); !errors.Is(err, ErrInvalid) {
		t.Fatalf("grant to a non-canonical key: %v, want ErrInvalid", err)
	}
}

type renamed struct {
	testkeys.Key
	id string
}

func (r renamed) ID() string { return r.id }
