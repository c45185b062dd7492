package ledger

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/internal/testkeys"
)

func signed(t *testing.T, b *Book, k testkeys.Key, kind string, fill func(*Entry)) *Entry {
	t.Helper()
	e := b.Next(k.ID(), kind)
	fill(e)
	if err := e.Sign(k); err != nil {
		t.Fatal(err)
	}
	return e
}

func mustAdd(t *testing.T, b *Book, e *Entry) {
	t.Helper()
	if _, err := b.Add(e); err != nil {
		t.Fatal(err)
	}
}

func TestPurchaseMovesExactlyThePrice(t *testing.T) {
	ring := testkeys.Ring{}
	issuer, alice, bob := ring.New("issuer", 1), ring.New("alice", 2), ring.New("bob", 3)
	b := NewBook(Policy{Issuers: map[string]bool{"issuer": true}}, ring.Verify)
	mustAdd(t, b, signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 100 }))
	pay := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 30, "L1" })
	mustAdd(t, b, pay)
	mustAdd(t, b, signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L1" }))
	if b.Balance("alice") != 70 || b.Balance("bob") != 30 {
		t.Fatalf("balances alice %d bob %d, want 70 and 30", b.Balance("alice"), b.Balance("bob"))
	}
	if h := b.History("alice"); len(h) != 3 {
		t.Fatalf("alice's history has %d entries, want the grant, the payment and its receipt", len(h))
	}
	if h := b.History("bob"); len(h) != 2 {
		t.Fatalf("bob's history has %d entries, want the payment to him and his receipt", len(h))
	}
}

func TestRejectedEntriesChangeNothing(t *testing.T) {
	ring := testkeys.Ring{}
	issuer, alice, bob, mallory := ring.New("issuer", 1), ring.New("alice", 2), ring.New("bob", 3), ring.New("mallory", 4)
	b := NewBook(Policy{Issuers: map[string]bool{"issuer": true}}, ring.Verify)
	grant := signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 50 })
	mustAdd(t, b, grant)
	pay := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 20, "L1" })
	mustAdd(t, b, pay)
	mustAdd(t, b, signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L1" }))

	forged := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 5, "L2" })
	forged.Amount = 1 // changed after signing
	wrongLink := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Prev = "bob", 5, grant.ID() })
	cases := map[string]struct {
		e    *Entry
		want string
	}{
		"beyond the balance": {signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 31, "L2" }), "balance of 30"},
		"forged signature":   {forged, "signature"},
		"replayed receipt":   {signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L1" }), "already has a receipt"},
		"receipt by another": {signed(t, b, mallory, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L1" }), "no payment to it"},
		"self-made money":    {signed(t, b, mallory, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 1000 }), "not an issuer"},
		"broken link":        {wrongLink, "does not link"},
		"skipped sequence":   {signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Seq = "bob", 1, 9 }), "arrives before"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := b.Add(tc.e); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid mentioning %q", err, tc.want)
			}
			if b.Balance("alice") != 30 || b.Balance("bob") != 20 {
				t.Fatalf("a rejected entry moved money: alice %d bob %d", b.Balance("alice"), b.Balance("bob"))
			}
		})
	}
}

func TestDoubleSpendIsProvenAndRefused(t *testing.T) {
	ring := testkeys.Ring{}
	alice := ring.New("alice", 2)
	b := NewBook(Policy{Genesis: 100}, ring.Verify)
	first := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 80, "L1" })
	second := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "carol", 80, "L2" })
	mustAdd(t, b, first)
	if ds, err := b.Add(first); err != nil || ds != nil {
		t.Fatalf("adding the same entry twice: %v %v", ds, err)
	}
	ds, err := b.Add(second)
	if ds == nil || !errors.Is(err, ErrInvalid) || ds.Seq != 1 || ds.AID == ds.BID {
		t.Fatalf("double spend not caught: %+v %v", ds, err)
	}
	// A third node that receives the two entries in the other order reaches the same verdict.
	other := NewBook(Policy{Genesis: 100}, ring.Verify)
	mustAdd(t, other, second)
	if ds, _ := other.Add(first); ds == nil || ds.Author != "alice" {
		t.Fatal("the other order did not prove the double spend")
	}
	if b.Balance("alice") != 0 || len(b.Refused()) != 1 {
		t.Fatalf("refused key keeps a balance of %d", b.Balance("alice"))
	}
	if _, err := b.Add(signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount = "dave", 1 })); err == nil {
		t.Fatal("a refused key's next entry was accepted")
	}
}

func TestDecodeIsStrict(t *testing.T) {
	ring := testkeys.Ring{}
	alice := ring.New("alice", 2)
	b := NewBook(Policy{Genesis: 10}, ring.Verify)
	e := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount = "bob", 1 })
	got, err := Decode(e.Encode())
	if err != nil || got.ID() != e.ID() {
		t.Fatalf("round trip: %v", err)
	}
	for name, in := range map[string][]byte{
		"spaces":  bytes.Replace(e.Encode(), []byte(`,"seq"`), []byte(`, "seq"`), 1),
		"unknown": bytes.Replace(e.Encode(), []byte(`{"author"`), []byte(`{"x":1,"author"`), 1),
		"junk":    []byte("{"),
		"big":     bytes.Repeat([]byte("a"), 9000),
	} {
		if _, err := Decode(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"author":"a","seq":1,"prev":"","kind":"payment","to":"b","amount":1,"time":0}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatal("decoded entry does not re-encode to its bytes")
		}
	})
}
