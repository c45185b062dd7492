package ledger

import (
	"bytes"
	"errors"
	"fmt"
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

// baseBook: the issuer grants alice 50; alice pays bob 20, receipted.
func baseBook(t *testing.T, ring testkeys.Ring) (*Book, *Entry, *Entry) {
	t.Helper()
	issuer, alice, bob := ring.New("issuer", 1), ring.New("alice", 2), ring.New("bob", 3)
	b := NewBook(Policy{Issuers: map[string]bool{"issuer": true}}, ring.Verify)
	grant := signed(t, b, issuer, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 50 })
	mustAdd(t, b, grant)
	pay := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 20, "L1" })
	mustAdd(t, b, pay)
	mustAdd(t, b, signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L1" }))
	return b, grant, pay
}

func TestRejectedEntriesChangeNothing(t *testing.T) {
	ring := testkeys.Ring{}
	alice := ring.New("alice", 2)
	cases := map[string]struct {
		make func(b *Book, grant *Entry) *Entry
		want string
	}{
		"forged signature": {func(b *Book, _ *Entry) *Entry {
			e := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 5, "L2" })
			e.Amount = 1 // changed after signing
			return e
		}, "signature"},
		"broken link": {func(b *Book, grant *Entry) *Entry {
			return signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Prev = "bob", 5, grant.ID() })
		}, "does not link"},
		"amount over the limit": {func(b *Book, _ *Entry) *Entry {
			return signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount = "bob", MaxAmount+1 })
		}, "over the limit"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b, grant, _ := baseBook(t, ring)
			if _, err := b.Add(tc.make(b, grant)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid mentioning %q", err, tc.want)
			}
			if b.Balance("alice") != 30 || b.Balance("bob") != 20 || b.Len() != 3 {
				t.Fatalf("a rejected entry changed the book: alice %d bob %d, %d entries", b.Balance("alice"), b.Balance("bob"), b.Len())
			}
		})
	}
}

// TestVerdictsMoveNothing: entries that are validly signed and link, but break a rule of
// money, join their chain (so the chain goes on) and move nothing.
func TestVerdictsMoveNothing(t *testing.T) {
	ring := testkeys.Ring{}
	alice, bob, mallory := ring.New("alice", 2), ring.New("bob", 3), ring.New("mallory", 4)
	cases := map[string]struct {
		make func(b *Book, pay *Entry) *Entry
		want Status
	}{
		"beyond the balance": {func(b *Book, _ *Entry) *Entry {
			return signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 31, "L2" })
		}, StatusUnfunded},
		"replayed receipt": {func(b *Book, pay *Entry) *Entry {
			return signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L1" })
		}, StatusVoid},
		"receipt by another": {func(b *Book, pay *Entry) *Entry {
			return signed(t, b, mallory, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L1" })
		}, StatusVoid},
		"receipt for another listing": {func(b *Book, pay *Entry) *Entry {
			return signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L9" })
		}, StatusVoid},
		"self-made money": {func(b *Book, _ *Entry) *Entry {
			return signed(t, b, mallory, KindGrant, func(e *Entry) { e.To, e.Amount = "alice", 1000 })
		}, StatusVoid},
		"skipped sequence": {func(b *Book, _ *Entry) *Entry {
			return signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Seq = "bob", 1, 9 })
		}, StatusWaiting},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b, _, pay := baseBook(t, ring)
			e := tc.make(b, pay)
			if _, err := b.Add(e); err != nil {
				t.Fatal(err)
			}
			if got := b.Status(e.ID()); got != tc.want {
				t.Fatalf("verdict %s, want %s", got, tc.want)
			}
			if b.Balance("alice") != 30 || b.Balance("bob") != 20 {
				t.Fatalf("the entry moved money: alice %d bob %d", b.Balance("alice"), b.Balance("bob"))
			}
		})
	}
}

// TestCreditsCountFromTheReceipt: a payment leaves its payer at once, and reaches its payee at
// the payee's receipt: a payment the payee spends on is one it acknowledged before.
func TestCreditsCountFromTheReceipt(t *testing.T) {
	ring := testkeys.Ring{}
	alice, bob := ring.New("alice", 2), ring.New("bob", 3)
	b := NewBook(Policy{Genesis: 10}, ring.Verify)
	pay := signed(t, b, alice, KindPayment, func(e *Entry) { e.To, e.Amount, e.Listing = "bob", 10, "L1" })
	mustAdd(t, b, pay)
	early := signed(t, b, bob, KindPayment, func(e *Entry) { e.To, e.Amount = "alice", 15 })
	mustAdd(t, b, early)
	if b.Balance("alice") != 0 || b.Balance("bob") != 10 || b.Status(early.ID()) != StatusUnfunded {
		t.Fatalf("before the receipt: alice %d bob %d, bob's payment %s", b.Balance("alice"), b.Balance("bob"), b.Status(early.ID()))
	}
	mustAdd(t, b, signed(t, b, bob, KindReceipt, func(e *Entry) { e.Ref, e.Listing = pay.ID(), "L1" }))
	late := signed(t, b, bob, KindPayment, func(e *Entry) { e.To, e.Amount = "alice", 15 })
	mustAdd(t, b, late)
	if b.Balance("bob") != 5 || b.Status(early.ID()) != StatusUnfunded || b.Status(late.ID()) != StatusOK {
		t.Fatalf("after the receipt: bob %d, early %s, late %s", b.Balance("bob"), b.Status(early.ID()), b.Status(late.ID()))
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

// TestRefusedEntriesOfStrangersLeaveNoTrace: a flood of new keys whose entries a full book
// refuses, and of double-spend proofs of keys it holds nothing of, does not grow the book.
func TestRefusedEntriesOfStrangersLeaveNoTrace(t *testing.T) {
	ring := testkeys.Ring{}
	b := NewBook(Policy{Genesis: 10, Limits: Limits{Entries: 2, Waiting: 1}}, ring.Verify)
	for i := range 2 {
		k := ring.New(fmt.Sprintf("fill%d", i), byte(10+i))
		mustAdd(t, b, signed(t, b, k, KindPayment, func(e *Entry) { e.To, e.Amount = "x", 1 }))
	}
	early := ring.New("early", 30)
	mustAdd(t, b, signed(t, b, early, KindPayment, func(e *Entry) { e.To, e.Amount, e.Seq, e.Prev = "x", 1, 5, "p" }))
	before := len(b.accounts)
	for i := range 50 {
		k := ring.New(fmt.Sprintf("sybil%d", i), byte(40+i))
		linkable := signed(t, b, k, KindPayment, func(e *Entry) { e.To, e.Amount = "x", 1 })
		waiting := signed(t, b, k, KindPayment, func(e *Entry) { e.To, e.Amount, e.Seq, e.Prev = "x", 1, 3, "p" })
		for _, e := range []*Entry{linkable, waiting} {
			if _, err := b.Add(e); !errors.Is(err, ErrFull) {
				t.Fatalf("a stranger's entry in a full book: %v, want ErrFull", err)
			}
		}
		twin := *linkable
		twin.Amount, twin.Sig = 2, nil
		_ = twin.Sign(k)
		if _, err := b.Prove(linkable, &twin); !errors.Is(err, ErrFull) {
			t.Fatalf("a stranger's proof in a full book: %v, want ErrFull", err)
		}
	}
	if len(b.accounts) != before || b.Len() != 2 || b.Waiting() != 1 {
		t.Fatalf("after the flood: %d accounts (was %d), %d entries, %d waiting", len(b.accounts), before, b.Len(), b.Waiting())
	}
}
