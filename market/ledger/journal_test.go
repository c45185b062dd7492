package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"

	ds "github.com/ipfs/go-datastore"

	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/internal/testkeys"
)

// openStore opens a real badger store in a temp dir; reopen closes and opens it again, as a
// restarted node would.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestJournalReplaysTheBookAfterReopen(t *testing.T) {
	ctx := context.Background()
	ring := testkeys.Ring{}
	issuer, alice, bob, carol := ring.New("issuer", 1), ring.New("alice", 2), ring.New("bob", 3), ring.New("carol", 5)
	policy := Policy{Issuers: map[string]bool{"issuer": true}}
	dir := t.TempDir()
	st := openStore(t, dir)
	j := OpenJournal(st.Datastore("/ledger"))
	b := NewBook(policy, ring.Verify)
	add := func(e *Entry) {
		t.Helper()
		mustAdd(t, b, e)
		if err := j.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	add(signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 100 }))
	pay := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 40, "L1" })
	add(pay)
	add(signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L1" }))
	x := signed(t, b, carol, KindPayment, func(e *Entry) { e.To, e.Amount = "bob", 1 })
	y := signed(t, b, carol, KindPayment, func(e *Entry) { e.To, e.Amount = "alice", 1 })
	d, err := b.Prove(x, y)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.SaveProof(ctx, *d); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openStore(t, dir)
	defer st.Close()
	back := NewBook(policy, ring.Verify)
	n, err := OpenJournal(st.Datastore("/ledger")).Load(ctx, back)
	if err != nil || n != 3 {
		t.Fatalf("load: %d entries, %v", n, err)
	}
	if back.Balance("alice") != 60 || back.Balance("bob") != 40 || !back.Refuses("carol") {
		t.Fatalf("reloaded book: alice %d bob %d, carol refused %v", back.Balance("alice"), back.Balance("bob"), back.Refuses("carol"))
	}
	if back.ReceiptOf(pay.ID()) == nil {
		t.Fatal("the receipt did not survive the reopen")
	}
}

func TestJournalRefusesTamperedRecords(t *testing.T) {
	ctx := context.Background()
	ring := testkeys.Ring{}
	alice := ring.New("alice", 2)
	policy := Policy{Genesis: 10}
	for name, tamper := range map[string]func(d ds.Datastore, first, second *Entry){
		"changed entry": func(d ds.Datastore, first, _ *Entry) {
			c := *first
			c.Amount = 9 // the signature no longer matches
			_ = d.Put(ctx, jEntries.ChildString(first.ID()), c.Encode())
		},
		"entry under another ID": func(d ds.Datastore, first, second *Entry) {
			_ = d.Put(ctx, jEntries.ChildString(first.ID()), second.Encode())
		},
		"lost entry": func(d ds.Datastore, first, _ *Entry) { _ = d.Delete(ctx, jEntries.ChildString(first.ID())) },
		"gap":        func(d ds.Datastore, _, _ *Entry) { _ = d.Delete(ctx, jLog.ChildString(logKey(0))) },
	} {
		t.Run(name, func(t *testing.T) {
			st := openStore(t, t.TempDir())
			defer st.Close()
			d := st.Datastore("/ledger")
			j := OpenJournal(d)
			b := NewBook(policy, ring.Verify)
			first := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount = "bob", 2 })
			mustAdd(t, b, first)
			second := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount = "bob", 3 })
			mustAdd(t, b, second)
			if err := j.Append(ctx, first, second); err != nil {
				t.Fatal(err)
			}
			tamper(d, first, second)
			_, err := OpenJournal(d).Load(ctx, NewBook(policy, ring.Verify))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestClosureLetsAnotherBookVerifyAPayment(t *testing.T) {
	ring := testkeys.Ring{}
	issuer, alice, bob, carol := ring.New("issuer", 1), ring.New("alice", 2), ring.New("bob", 3), ring.New("carol", 5)
	policy := Policy{Issuers: map[string]bool{"issuer": true}}
	b := NewBook(policy, ring.Verify)
	// alice earns from carol (whose credits come from the issuer), then pays bob.
	mustAdd(t, b, signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "carol", 50 }))
	p1 := signed(t, b, carol, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "alice", 30, "L0" })
	mustAdd(t, b, p1)
	mustAdd(t, b, signed(t, b, alice, KindReceipt, func(e *Entry) { e.Ref, e.Listing = p1.ID(), "L0" }))
	unrelated := signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "bob", 5 })
	mustAdd(t, b, unrelated)
	p2 := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 25, "L1" })
	mustAdd(t, b, p2)
	receipt := signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = p2.ID(), "L1" })
	mustAdd(t, b, receipt)

	// The closure of bob's receipt: the receipt, alice's payment and what justifies it.
	closure := b.Closure(receipt.ID())
	seller := NewBook(policy, ring.Verify)
	// Without the closure, the seller cannot count the payment.
	if _, err := seller.Add(p2); err != nil || seller.Status(p2.ID()) != StatusWaiting {
		t.Fatalf("a payment without its chain: %v, verdict %s; want it to wait", err, seller.Status(p2.ID()))
	}
	for _, e := range closure {
		if e.ID() == unrelated.ID() {
			// the issuer's chain up to carol's grant is needed, and its later entries are part
			// of the issuer's chain before nothing we need: must not be sent
			t.Fatal("closure carries an entry the payment does not depend on")
		}
		mustAdd(t, seller, e)
	}
	if !seller.Has(receipt.ID()) || seller.Status(p2.ID()) != StatusOK || seller.Balance("alice") != 5 || seller.Balance("bob") != 25 {
		t.Fatalf("seller's view: has %v, alice %d bob %d", seller.Has(p2.ID()), seller.Balance("alice"), seller.Balance("bob"))
	}
	// Adding the closure again changes nothing.
	for _, e := range closure {
		mustAdd(t, seller, e)
	}
	if seller.Len() != len(closure) {
		t.Fatalf("seller holds %d entries after a replay, want %d", seller.Len(), len(closure))
	}
}

func TestProveNeedsARealConflict(t *testing.T) {
	ring := testkeys.Ring{}
	alice, bob := ring.New("alice", 2), ring.New("bob", 3)
	b := NewBook(Policy{Genesis: 10}, ring.Verify)
	x := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount = "bob", 1 })
	y := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount = "carol", 1 })
	other := signed(t, b, bob, KindPayment, func(e *Entry) { e.To, e.Amount = "carol", 1 })
	forged := *y
	forged.Amount = 2
	for name, pair := range map[string][2]*Entry{
		"same entry":    {x, x},
		"two authors":   {x, other},
		"forged second": {x, &forged},
		"missing one":   {x, nil},
	} {
		if _, err := b.Prove(pair[0], pair[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	if b.Refuses("alice") || b.Refuses("bob") {
		t.Fatal("a non-proof refused a key")
	}
	d, err := b.Prove(x, y)
	if err != nil || d.Author != "alice" || !strings.HasPrefix(d.AID, "bag") || !b.Refuses("alice") {
		t.Fatalf("a real double spend: %+v %v", d, err)
	}
}

func TestPendingAndRefusedCredits(t *testing.T) {
	ring := testkeys.Ring{}
	alice, bob, carol := ring.New("alice", 2), ring.New("bob", 3), ring.New("carol", 5)
	b := NewBook(Policy{Genesis: 100}, ring.Verify)
	p1 := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 10, "L1" })
	mustAdd(t, b, p1)
	p2 := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 20, "L2" })
	mustAdd(t, b, p2)
	mustAdd(t, b, signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = p1.ID(), "L1" }))
	if p := b.Pending("alice"); len(p) != 1 || p[0].ID() != p2.ID() {
		t.Fatalf("pending: %v, want only the unreceipted payment", p)
	}
	if b.Balance("bob") != 110 {
		t.Fatalf("bob holds %d, want 100+10 (the payment he receipted)", b.Balance("bob"))
	}
	mustAdd(t, b, signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = p2.ID(), "L2" }))
	pc := signed(t, b, carol, KindPayment, func(e *Entry) { e.To, e.Amount = "bob", 50 })
	mustAdd(t, b, pc)
	mustAdd(t, b, signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref = pc.ID() }))
	if b.Balance("bob") != 180 {
		t.Fatalf("bob holds %d, want 100+10+20+50", b.Balance("bob"))
	}
	twin := *pc
	twin.To, twin.Sig = "alice", nil
	if err := twin.Sign(carol); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Prove(pc, &twin); err != nil {
		t.Fatal(err)
	}
	// Credits from a key caught double spending no longer count.
	if b.Balance("bob") != 130 || b.Balance("carol") != 0 {
		t.Fatalf("after carol is refused: bob %d carol %d, want 130 and 0", b.Balance("bob"), b.Balance("carol"))
	}
}

// TestChangedRulesApplyToNewEntries: the issuer and genesis rules are journaled with the
// entries they judged. A node restarted with other rules still loads (the old journal was
// "corrupt" under the new rules before), keeps the old entries' verdicts, and judges new ones
// by the new rules.
func TestChangedRulesApplyToNewEntries(t *testing.T) {
	ctx := context.Background()
	ring := testkeys.Ring{}
	issuer, alice, bob := ring.New("issuer", 1), ring.New("alice", 2), ring.New("bob", 3)
	dir := t.TempDir()
	open := func(p Policy) (*store.Store, *Journal, *Book) {
		st := openStore(t, dir)
		j := OpenJournal(st.Datastore("/ledger"))
		b := NewBook(p, ring.Verify)
		if _, err := j.Load(ctx, b); err != nil {
			t.Fatalf("load: %v", err)
		}
		if err := j.UseRules(ctx, b, Rules{Issuers: p.Issuers, Genesis: p.Genesis}); err != nil {
			t.Fatal(err)
		}
		return st, j, b
	}
	commit := func(j *Journal, b *Book, e *Entry) {
		t.Helper()
		mustAdd(t, b, e)
		if err := j.Commit(ctx, b, e); err != nil {
			t.Fatal(err)
		}
	}
	st, j, b := open(Policy{Issuers: map[string]bool{"issuer": true}, Genesis: 100})
	commit(j, b, signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 50 }))
	commit(j, b, signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount = "bob", 120 }))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The issuer is retired and new keys start with nothing.
	st, j, b = open(Policy{Genesis: 0})
	if b.Balance("alice") != 30 {
		t.Fatalf("after the rule change alice holds %d, want 100+50-120 as before", b.Balance("alice"))
	}
	late := signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 50 })
	commit(j, b, late)
	first := signed(t, b, bob, KindPayment, func(e *Entry) { e.To, e.Amount = "alice", 1 })
	commit(j, b, first)
	if b.Status(late.ID()) != StatusVoid || b.Status(first.ID()) != StatusUnfunded || b.Balance("alice") != 30 {
		t.Fatalf("new entries under the new rules: grant %s, bob's first payment %s, alice %d",
			b.Status(late.ID()), b.Status(first.ID()), b.Balance("alice"))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened under the new rules, the book is the same: each entry keeps its rules.
	st, _, b = open(Policy{Genesis: 0})
	defer st.Close()
	if b.Len() != 4 || b.Balance("alice") != 30 || b.Status(late.ID()) != StatusVoid || b.Status(first.ID()) != StatusUnfunded {
		t.Fatalf("reopened: %d entries, alice %d, grant %s, bob's payment %s", b.Len(), b.Balance("alice"), b.Status(late.ID()), b.Status(first.ID()))
	}
}

// TestJournalLoadsUnderLowerLimits: a node restarted with smaller ledger limits than its
// journal holds starts; the entries past the limits are left out (a sync brings them back
// once there is room).
func TestJournalLoadsUnderLowerLimits(t *testing.T) {
	ctx := context.Background()
	ring := testkeys.Ring{}
	alice := ring.New("alice", 2)
	st := openStore(t, t.TempDir())
	defer st.Close()
	j := OpenJournal(st.Datastore("/ledger"))
	b := NewBook(Policy{Genesis: 1000}, ring.Verify)
	for range 5 {
		e := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount = "bob", 1 })
		mustAdd(t, b, e)
		if err := j.Commit(ctx, b, e); err != nil {
			t.Fatal(err)
		}
	}
	small := NewBook(Policy{Genesis: 1000, Limits: Limits{PerKey: 3, WaitingPerKey: 1}}, ring.Verify)
	if _, err := OpenJournal(st.Datastore("/ledger")).Load(ctx, small); err != nil {
		t.Fatalf("load under lower limits: %v", err)
	}
	if small.Len() != 3 || small.Balance("alice") != 997 {
		t.Fatalf("loaded %d entries, alice %d; want the first 3 and 997", small.Len(), small.Balance("alice"))
	}
}
