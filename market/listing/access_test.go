package listing

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/meshnode/meshnode/internal/testkeys"
	"github.com/meshnode/meshnode/market/ledger"
)

func entry(t *testing.T, b *ledger.Book, k testkeys.Key, kind string, fill func(*ledger.Entry)) *ledger.Entry {
	t.Helper()
	e := b.Next(k.ID(), kind)
	fill(e)
	if err := e.Sign(k); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add(e); err != nil {
		t.Fatal(err)
	}
	return e
}

// buy has buyer pay seller for l and seller receipt it.
func buy(t *testing.T, b *ledger.Book, buyer, seller testkeys.Key, l *Listing) *ledger.Entry {
	t.Helper()
	pay := entry(t, b, buyer, ledger.KindPayment, func(e *ledger.Entry) { e.To, e.Amount, e.Listing = seller.ID(), l.Price, l.ID() })
	entry(t, b, seller, ledger.KindReceipt, func(e *ledger.Entry) { e.Ref, e.Listing = pay.ID(), l.ID() })
	return pay
}

// TestAccessCountsOnlyThePublishersListings: S publishes expert E and lists it at 100. M lists
// E too, at 1, "sells" it to its second key M2 and receipts that. Before the fix, any priced
// listing marked E paid and any receipt by a listing's seller opened E: M2 got S's blocks
// (bypass), and M listing a free expert locked everyone out of it (lockout).
func TestAccessCountsOnlyThePublishersListings(t *testing.T) {
	ring := testkeys.Ring{}
	s, m, m2, buyer := ring.New("S", 1), ring.New("M", 2), ring.New("M2", 3), ring.New("B", 4)
	b := ledger.NewBook(ledger.Policy{Genesis: 1000}, ring.Verify)
	const free = "bafyreifreeexpertxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	publishers := map[string]string{expertCID: "S", free: "S"}
	publisherOf := func(e string) (string, bool) { p, ok := publishers[e]; return p, ok }

	real := newListing(t, s, func(l *Listing) { l.Price = 100 })
	fake := newListing(t, m, func(l *Listing) { l.Price = 1 })
	squat := newListing(t, m, func(l *Listing) { l.Expert, l.Price = free, 1 })
	listings := map[string]*Listing{real.ID(): real, fake.ID(): fake, squat.ID(): squat}
	buy(t, b, m2, m, fake)
	buy(t, b, m2, m, squat)

	a := ComputeAccess(b, listings, publisherOf)
	if a.Allowed[expertCID]["M2"] {
		t.Fatal("a receipt for a non-publisher's listing opens the publisher's paid expert")
	}
	if !a.Paid[expertCID] {
		t.Fatal("the publisher's priced listing does not protect its expert")
	}
	if a.Paid[free] {
		t.Fatal("a non-publisher's priced listing locks a free expert")
	}

	buy(t, b, buyer, s, real)
	a = ComputeAccess(b, listings, publisherOf)
	if !a.Allowed[expertCID]["B"] || len(a.Allowed[expertCID]) != 1 {
		t.Fatalf("allowed %v, want only the buyer of the publisher's listing", a.Allowed[expertCID])
	}

	// A node that does not hold the manifest cannot tell the publisher: nothing is paid there.
	none := ComputeAccess(b, listings, func(string) (string, bool) { return "", false })
	if len(none.Paid) != 0 || len(none.Allowed) != 0 {
		t.Fatalf("without the manifest: paid %v, allowed %v", none.Paid, none.Allowed)
	}
}

// TestAccessSkipsRefusedPayers: a buyer caught double spending loses access its receipt gave.
func TestAccessSkipsRefusedPayers(t *testing.T) {
	ring := testkeys.Ring{}
	s, cheat := ring.New("S", 1), ring.New("C", 2)
	b := ledger.NewBook(ledger.Policy{Genesis: 1000}, ring.Verify)
	l := newListing(t, s, nil)
	listings := map[string]*Listing{l.ID(): l}
	publisherOf := func(string) (string, bool) { return "S", true }
	buy(t, b, cheat, s, l)
	if !ComputeAccess(b, listings, publisherOf).Allowed[expertCID]["C"] {
		t.Fatal("a receipted buyer has no access")
	}
	x := b.Next("C", ledger.KindPayment)
	x.To, x.Amount = "S", 1
	y := b.Next("C", ledger.KindPayment)
	y.To, y.Amount = "S", 2
	for _, e := range []*ledger.Entry{x, y} {
		if err := e.Sign(cheat); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Prove(x, y); err != nil {
		t.Fatal(err)
	}
	if ComputeAccess(b, listings, publisherOf).Allowed[expertCID]["C"] {
		t.Fatal("a key refused for double spending keeps access through its receipt")
	}
}

func TestListingLifetimeIsBounded(t *testing.T) {
	ring := testkeys.Ring{}
	alice := ring.New("alice", 1)
	forever := newListing(t, alice, func(l *Listing) { l.Expires = now.Add(100 * 365 * 24 * time.Hour).UnixMilli() })
	if err := forever.Verify(ring.Verify, now); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a listing that lives a century: %v, want ErrMalformed", err)
	}
	year := newListing(t, alice, func(l *Listing) { l.Expires = now.Add(365 * 24 * time.Hour).UnixMilli() })
	if err := year.Verify(ring.Verify, now); err != nil {
		t.Fatalf("a listing that lives a year: %v", err)
	}
}

// TestPaymentSignedBeforeExpiryIsAccepted: a payment signed while the listing was live is
// taken after the listing expired (a resend after a lost answer); one signed after expiry, or
// in the future, is not.
func TestPaymentSignedBeforeExpiryIsAccepted(t *testing.T) {
	ring := testkeys.Ring{}
	l := newListing(t, ring.New("alice", 1), nil)
	exp := time.UnixMilli(l.Expires)
	later := exp.Add(10 * time.Minute)
	if err := l.AcceptsPayment(exp.Add(-time.Second).UnixMilli(), later); err != nil {
		t.Fatalf("payment signed before expiry, resent after: %v", err)
	}
	if err := l.AcceptsPayment(exp.UnixMilli(), later); !errors.Is(err, ErrExpired) {
		t.Fatalf("payment signed at expiry: %v, want ErrExpired", err)
	}
	if err := l.AcceptsPayment(now.Add(time.Hour).UnixMilli(), now); !errors.Is(err, ErrExpired) && !errors.Is(err, ErrStale) {
		t.Fatalf("payment from the future: %v", err)
	}
	if err := l.AcceptsPayment(now.Add(time.Minute).UnixMilli(), now); err != nil {
		t.Fatalf("payment with a little clock skew: %v", err)
	}
	if err := l.AcceptsPayment(now.Add(-time.Hour).UnixMilli(), now); err == nil {
		t.Fatal("payment signed before the listing was published is accepted")
	}
}

func review(t *testing.T, k testkeys.Key, at time.Time, acc float64, payment string) *Review {
	t.Helper()
	r := &Review{V: Version, Listing: "L", Expert: expertCID, Payment: payment, Dataset: "iris:test", Accuracy: acc, Time: at.UnixMilli()}
	if err := r.Sign(k); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReviewsResistSybils: one review per reviewer (the latest), verified reviews displace
// unverified ones when full, and only verified reviews count in the mean.
func TestReviewsResistSybils(t *testing.T) {
	ring := testkeys.Ring{}
	verified := func(r *Review) bool { return r.Payment != "" }
	var s Reviews
	const limit = 4
	for i := range limit {
		k := ring.New(fmt.Sprintf("sybil%d", i), byte(10+i))
		if ok, _ := s.Add(review(t, k, now.Add(time.Duration(i)*time.Second), 0, ""), limit, verified); !ok {
			t.Fatalf("sybil review %d not kept while there is room", i)
		}
	}
	buyer := ring.New("buyer", 1)
	ok, dropped := s.Add(review(t, buyer, now.Add(time.Minute), 0.9, "pay1"), limit, verified)
	if !ok || len(dropped) != 1 || dropped[0].Reviewer != "sybil0" {
		t.Fatalf("a verified review on a full set: kept %v, dropped %v; want the oldest unverified dropped", ok, dropped)
	}
	if ok, _ := s.Add(review(t, ring.New("sybil9", 30), now.Add(2*time.Minute), 0, ""), limit, verified); !ok {
		t.Fatal("an unverified review does not displace an older unverified one")
	}
	if mean, n := s.Mean(verified); n != 1 || mean != 0.9 {
		t.Fatalf("mean %v over %d reviews, want 0.9 over the 1 verified", mean, n)
	}
	// The same reviewer again: the latest replaces the earlier, an older one is ignored.
	ok, dropped = s.Add(review(t, buyer, now.Add(3*time.Minute), 0.7, "pay1"), limit, verified)
	if !ok || len(dropped) != 1 || dropped[0].Accuracy != 0.9 || s.Len() != limit {
		t.Fatalf("a newer review by the same reviewer: kept %v, dropped %v, %d held", ok, dropped, s.Len())
	}
	if ok, _ := s.Add(review(t, buyer, now, 0.1, "pay1"), limit, verified); ok {
		t.Fatal("an older review by the same reviewer replaced its latest")
	}
	// Full of verified reviews: an unverified one is refused.
	var full Reviews
	for i := range limit {
		full.Add(review(t, ring.New(fmt.Sprintf("b%d", i), byte(40+i)), now, 1, "p"), limit, verified)
	}
	if ok, _ := full.Add(review(t, ring.New("late", 60), now.Add(time.Hour), 0, ""), limit, verified); ok {
		t.Fatal("an unverified review displaced a verified one")
	}
}
