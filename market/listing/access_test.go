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

	a := ComputeAccess(b, listings, publisherOf, nil)
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
	a = ComputeAccess(b, listings, publisherOf, nil)
	if !a.Allowed[expertCID]["B"] || len(a.Allowed[expertCID]) != 1 {
		t.Fatalf("allowed %v, want only the buyer of the publisher's listing", a.Allowed[expertCID])
	}

	// A node that does not hold the manifest cannot tell the publisher: nothing is paid there.
	none := ComputeAccess(b, listings, func(string) (string, bool) { return "", false }, nil)
	if len(none.Paid) != 0 || len(none.Allowed) != 0 {
		t.Fatalf("without the manifest: paid %v, allowed %v", none.Paid, none.Allowed)
	}
}

// TestAccessFollowsTheForkPoint: a buyer caught double spending keeps what it paid for
// before its fork point (that payment stands) and loses the access a payment at or after it
// gave (the payment is refused, its receipt counts for nothing).
func TestAccessFollowsTheForkPoint(t *testing.T) {
	ring := testkeys.Ring{}
	s, cheat := ring.New("S", 1), ring.New("C", 2)
	b := ledger.NewBook(ledger.Policy{Genesis: 1000}, ring.Verify)
	before := newListing(t, s, nil)
	after := newListing(t, s, func(l *Listing) { l.Expert = "bafyreiotherexpertxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" })
	listings := map[string]*Listing{before.ID(): before, after.ID(): after}
	publisherOf := func(string) (string, bool) { return "S", true }
	buy(t, b, cheat, s, before)
	pay := buy(t, b, cheat, s, after)
	a := ComputeAccess(b, listings, publisherOf, nil)
	if !a.Allowed[before.Expert]["C"] || !a.Allowed[after.Expert]["C"] {
		t.Fatal("a receipted buyer has no access")
	}
	twin := *pay
	twin.To, twin.Amount, twin.Listing, twin.Sig = "S", 1, "", nil
	if err := twin.Sign(cheat); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Prove(pay, &twin); err != nil {
		t.Fatal(err)
	}
	a = ComputeAccess(b, listings, publisherOf, nil)
	if !a.Allowed[before.Expert]["C"] {
		t.Fatal("a purchase before the fork point lost its access")
	}
	if a.Allowed[after.Expert]["C"] {
		t.Fatal("a payment refused for double spending still opens its expert")
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

// TestSellerClockFixesThePurchaseTime: the seller takes a payment only when its time is near
// the seller's own clock and within the listing's life. A payment backdated to before the
// expiry does not buy an expired listing.
func TestSellerClockFixesThePurchaseTime(t *testing.T) {
	ring := testkeys.Ring{}
	l := newListing(t, ring.New("alice", 1), nil)
	exp := time.UnixMilli(l.Expires)
	for name, tc := range map[string]struct {
		pay, now time.Time
		want     error
	}{
		"fresh":               {now.Add(time.Minute), now, nil},
		"a little clock skew": {now.Add(-time.Minute), now, nil},
		"signed just before expiry, sent just after": {exp.Add(-time.Second), exp.Add(time.Minute), nil},
		"backdated to before expiry":                 {exp.Add(-time.Second), exp.Add(time.Hour), ErrStale},
		"signed at expiry":                           {exp, exp.Add(time.Second), ErrExpired},
		"from the future":                            {now.Add(time.Hour), now, ErrStale},
		"before the listing was published":           {time.UnixMilli(l.Time).Add(-time.Hour), time.UnixMilli(l.Time).Add(-time.Hour), ErrMalformed},
	} {
		err := l.AcceptsPurchase(tc.pay.UnixMilli(), tc.now)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
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

// TestLiftedListingOpensItsExpert: a paid listing withdrawn as free no longer puts its expert
// behind a paywall; withdrawn as closed (or not at all), it does.
func TestLiftedListingOpensItsExpert(t *testing.T) {
	ring := testkeys.Ring{}
	s := ring.New("S", 1)
	b := ledger.NewBook(ledger.Policy{Genesis: 1000}, ring.Verify)
	l := newListing(t, s, func(l *Listing) { l.Price = 10 })
	listings := map[string]*Listing{l.ID(): l}
	publisherOf := func(string) (string, bool) { return "S", true }
	if !ComputeAccess(b, listings, publisherOf, nil).Paid[expertCID] {
		t.Fatal("a paid listing does not protect its expert")
	}
	if ComputeAccess(b, listings, publisherOf, map[string]bool{l.ID(): true}).Paid[expertCID] {
		t.Fatal("a listing withdrawn as free still protects its expert")
	}
	w := &Withdrawal{V: Version, Listing: l.ID(), Free: true, Time: now.UnixMilli()}
	if err := w.Sign(s); err != nil {
		t.Fatal(err)
	}
	if err := w.Verify(ring.Verify, now); err != nil || !w.Withdraws(l) {
		t.Fatalf("the seller's withdrawal: %v, withdraws %v", err, w.Withdraws(l))
	}
	forged := *w
	forged.Free = false
	if err := forged.Verify(ring.Verify, now); !errors.Is(err, ErrForged) {
		t.Fatalf("an altered withdrawal: %v, want ErrForged", err)
	}
	other := &Withdrawal{V: Version, Listing: l.ID(), Time: now.UnixMilli()}
	if err := other.Sign(ring.New("M", 2)); err != nil {
		t.Fatal(err)
	}
	if other.Withdraws(l) {
		t.Fatal("someone else's withdrawal withdraws the seller's listing")
	}
	if back, err := DecodeWithdrawal(w.Encode()); err != nil || back.Listing != l.ID() {
		t.Fatalf("round trip: %v", err)
	}
}
