package marketsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshnode/meshnode/internal/dstest"
	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

type testKey struct {
	k  crypto.PrivKey
	id string
}

func newKey(t *testing.T) testKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{k, id.String()}
}

func (k testKey) ID() string                      { return k.id }
func (k testKey) Sign(msg []byte) ([]byte, error) { return k.k.Sign(msg) }

// nopExposure rebuilds nothing.
type nopExposure struct{}

func (nopExposure) Refresh(context.Context) error { return nil }

// handle is a minimal version of the daemon's wrapper: the value as JSON, or the error's
// message with the status of its kind.
func handle(f func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			http.Error(w, err.Error(), api.KindOf(err).Status)
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}
}

// testMarket is a market without a network: its own key, a map datastore for its records and
// its journal (whose writes fail while fail is set), nothing to publish to.
func testMarket(t *testing.T) (*Service, testKey, *atomic.Bool, ds.Batching) {
	t.Helper()
	self := newKey(t)
	fail := &atomic.Bool{}
	jstore := dssync.MutexWrap(ds.NewMapDatastore())
	m := &Service{log: slog.New(slog.DiscardHandler), self: self.id, verify: node.VerifyPeerSignature, exposure: nopExposure{},
		store: dssync.MutexWrap(ds.NewMapDatastore()), closed: true,
		book:    ledger.NewBook(ledger.Policy{Genesis: 1000, Key: canonicalPeer}, node.VerifyPeerSignature),
		journal: ledger.OpenJournal(dstest.Failing{Batching: jstore, Fail: fail}), listings: map[string]*listing.Listing{}, mine: map[string]bool{},
		sellers: map[string]int{}, listingLimit: maxListings, reviews: map[string]*listing.Reviews{}, myRevs: map[string]bool{},
		withdrawn: map[string]*listing.Withdrawal{}}
	m.metrics = newMetrics(prometheus.NewRegistry(), m)
	return m, self, fail, jstore
}

const testExpert = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"

func signedListing(t *testing.T, k testKey, price uint64, at time.Time, life time.Duration) *listing.Listing {
	t.Helper()
	l := &listing.Listing{V: listing.Version, Expert: testExpert, Name: fmt.Sprintf("x%d", at.UnixNano()), Domains: []string{"iris"},
		Price: price, Time: at.UnixMilli(), Expires: at.Add(life).UnixMilli()}
	if err := l.Sign(k); err != nil {
		t.Fatal(err)
	}
	return l
}

func entry(t *testing.T, m *Service, k testKey, kind string, fill func(*ledger.Entry)) *ledger.Entry {
	t.Helper()
	e := m.book.Next(k.id, kind)
	fill(e)
	if err := e.Sign(k); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestMarketLedgerWriteFailureKeepsJournalLoadable: a gossiped bundle whose journal write fails
// leaves nothing in the book, a later bundle is journaled in order, and the journal loads (a
// restart works). Before the fix the book kept the unjournaled entries and Load failed with
// ErrCorrupt.
func TestMarketLedgerWriteFailureKeepsJournalLoadable(t *testing.T) {
	ctx := context.Background()
	m, _, fail, jstore := testMarket(t)
	alice, bob := newKey(t), newKey(t)
	p1 := entry(t, m, alice, ledger.KindPayment, func(e *ledger.Entry) { e.To, e.Amount, e.Listing = bob.id, 10, "L1" })
	fail.Store(true)
	if _, _, _, err := m.ingestLocked(ctx, []*ledger.Entry{p1}); err == nil {
		t.Fatal("ingest on a failing disk succeeded")
	}
	if m.book.Has(p1.ID()) {
		t.Fatal("the book holds an entry its journal lacks")
	}
	fail.Store(false)
	rc := entry(t, m, bob, ledger.KindReceipt, func(e *ledger.Entry) { e.Ref, e.Listing = p1.ID(), "L1" })
	// The same bundle again (gossip repeats), with the receipt after it.
	added, _, _, err := m.ingestLocked(ctx, []*ledger.Entry{p1, rc})
	if err != nil || len(added) != 2 {
		t.Fatalf("ingest after the disk recovered: %d added, %v", len(added), err)
	}
	b := ledger.NewBook(ledger.Policy{Genesis: 1000, Key: canonicalPeer}, node.VerifyPeerSignature)
	if n, err := ledger.OpenJournal(jstore).Load(ctx, b); err != nil || n != 2 {
		t.Fatalf("journal after a failed write: %d entries, %v", n, err)
	}

	// Import answers a journal failure as the node's fault (500), bad entries as the caller's (400).
	p2 := entry(t, m, alice, ledger.KindPayment, func(e *ledger.Entry) { e.To, e.Amount, e.Listing = bob.id, 5, "L2" })
	fail.Store(true)
	_, err = m.Import(ctx, []*ledger.Entry{p2})
	if err == nil || errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("import on a failing disk: %v, want a server error", err)
	}
	fail.Store(false)
	bad := *p2
	bad.Amount = 6 // the signature no longer matches
	if _, err = m.Import(ctx, []*ledger.Entry{&bad}); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("import of a forged entry: %v, want a bad request", err)
	}
}

// TestMarketRefusesNonCanonicalKeys: an entry naming a key in another spelling of a peer ID
// is refused.
func TestMarketRefusesNonCanonicalKeys(t *testing.T) {
	m, _, _, _ := testMarket(t)
	alice, bob := newKey(t), newKey(t)
	id, _ := peer.Decode(bob.id)
	alias := peer.ToCid(id).String() // the CID spelling decodes to the same key
	if alias == bob.id {
		t.Fatal("no second spelling")
	}
	p := entry(t, m, alice, ledger.KindPayment, func(e *ledger.Entry) { e.To, e.Amount = alias, 1 })
	if _, _, _, err := m.ingestLocked(context.Background(), []*ledger.Entry{p}); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("payment to a non-canonical key: %v, want ErrInvalid", err)
	}
}

// TestMarketListingTableBounds: a seller has at most maxSellerListings listings held; a full
// table first drops expired listings and otherwise refuses with a 503; expired listings are
// dropped at runtime (not only at a restart) unless a ledger entry names them.
func TestMarketListingTableBounds(t *testing.T) {
	ctx := context.Background()
	m, _, _, _ := testMarket(t)
	now := time.Now()
	spam := newKey(t)
	for i := range maxSellerListings {
		if _, err := m.keepListingLocked(ctx, signedListing(t, spam, 1, now.Add(time.Duration(i)*time.Millisecond), time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := m.keepListingLocked(ctx, signedListing(t, spam, 1, now.Add(time.Second), time.Hour))
	if !errors.Is(err, api.ErrUnavailable) || !errors.Is(err, errSpam) {
		t.Fatalf("listing %d of one seller: %v, want api.ErrUnavailable caused by the seller's own spam (the validator penalises it)", maxSellerListings+1, err)
	}
	rec := httptest.NewRecorder()
	handle(func(*http.Request) (any, error) { return nil, err })(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("a full table answers %d, want 503", rec.Code)
	}
	honest := newKey(t)
	if _, err := m.keepListingLocked(ctx, signedListing(t, honest, 1, now, time.Hour)); err != nil {
		t.Fatalf("another seller's listing: %v", err)
	}

	// Expired listings go at runtime; one a payment names stays.
	old := newKey(t)
	gone := signedListing(t, old, 1, now.Add(-3*listingRetention), time.Hour)
	named := signedListing(t, old, 2, now.Add(-3*listingRetention), time.Hour)
	for _, l := range []*listing.Listing{gone, named} {
		if _, err := m.keepListingLocked(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	buyer := newKey(t)
	pay := entry(t, m, buyer, ledger.KindPayment, func(e *ledger.Entry) { e.To, e.Amount, e.Listing = old.id, 2, named.ID() })
	if _, _, _, err := m.ingestLocked(ctx, []*ledger.Entry{pay}); err != nil {
		t.Fatal(err)
	}
	if n := m.evictExpiredLocked(ctx, now, listingRetention); n != 1 || m.listings[gone.ID()] != nil || m.listings[named.ID()] == nil {
		t.Fatalf("evicted %d; gone held %v, named held %v", n, m.listings[gone.ID()] != nil, m.listings[named.ID()] != nil)
	}
	if has, _ := m.store.(ds.Datastore).Has(ctx, mkListings.ChildString(gone.ID())); has {
		t.Fatal("the dropped listing is still stored")
	}
}

// TestMarketFullListingTableEvictsTheLargestSeller: in a full table, a seller with few listings
// gets in at the cost of the seller holding the most (its soonest-expiring listing no receipt
// names); the largest seller cannot take the room back, and equals do not evict each other.
func TestMarketFullListingTableEvictsTheLargestSeller(t *testing.T) {
	ctx := context.Background()
	m, _, _, _ := testMarket(t)
	m.listingLimit = 10
	m.lastFullSweep = time.Now() // no expired listings to sweep: the eviction rule decides
	now := time.Now()
	spam, a, b := newKey(t), newKey(t), newKey(t)
	var first *listing.Listing
	for i := range 9 {
		l := signedListing(t, spam, 1, now.Add(time.Duration(i)*time.Millisecond), time.Hour+time.Duration(i)*time.Minute)
		if i == 0 {
			first = l
		}
		if _, err := m.keepListingLocked(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.keepListingLocked(ctx, signedListing(t, a, 1, now, time.Hour)); err != nil {
		t.Fatalf("a's listing in a table with room: %v", err)
	}
	if _, err := m.keepListingLocked(ctx, signedListing(t, b, 1, now, time.Hour)); err != nil {
		t.Fatalf("b's listing in a full table: %v, want the largest seller to make room", err)
	}
	if m.listings[first.ID()] != nil || m.sellers[spam.id] != 8 || len(m.listings) != 10 {
		t.Fatalf("after b got in: spam's soonest-expiring listing held %v, spam holds %d, %d listings",
			m.listings[first.ID()] != nil, m.sellers[spam.id], len(m.listings))
	}
	if _, err := m.keepListingLocked(ctx, signedListing(t, spam, 1, now.Add(time.Second), time.Hour)); !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("the largest seller's new listing in a full table: %v, want api.ErrUnavailable", err)
	}
	// Two sellers of one listing each: neither may push out the other.
	m2, _, _, _ := testMarket(t)
	m2.listingLimit, m2.lastFullSweep = 2, time.Now()
	for _, k := range []testKey{a, b} {
		if _, err := m2.keepListingLocked(ctx, signedListing(t, k, 1, now, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m2.keepListingLocked(ctx, signedListing(t, spam, 1, now, time.Hour)); !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("a third seller in a table of two single listings: %v, want api.ErrUnavailable", err)
	}
}

// TestMarketReviewsNeedAKnownListing: a review of a listing this node does not know, or naming
// another expert than the listing's, is not kept.
func TestMarketReviewsNeedAKnownListing(t *testing.T) {
	ctx := context.Background()
	m, _, _, _ := testMarket(t)
	seller, reviewer := newKey(t), newKey(t)
	l := signedListing(t, seller, 0, time.Now(), time.Hour)
	if _, err := m.keepListingLocked(ctx, l); err != nil {
		t.Fatal(err)
	}
	review := func(listingID, expert string) *listing.Review {
		r := &listing.Review{V: listing.Version, Listing: listingID, Expert: expert, Dataset: "iris", Accuracy: 0.5, Time: time.Now().UnixMilli()}
		if err := r.Sign(reviewer); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if ok, err := m.keepReviewLocked(ctx, review("bafyreiunknownlisting", testExpert)); ok || err == nil {
		t.Fatal("kept a review of an unknown listing")
	}
	if ok, err := m.keepReviewLocked(ctx, review(l.ID(), "bafyreianotherexpert")); ok || err == nil {
		t.Fatal("kept a review naming another expert")
	}
	if ok, err := m.keepReviewLocked(ctx, review(l.ID(), testExpert)); !ok || err != nil {
		t.Fatalf("a review of a known listing: kept %v, %v", ok, err)
	}
	v := m.viewLocked(l, time.Now(), nil)
	if len(v.Reviews) != 1 || v.ReviewMean != 0 {
		t.Fatalf("view: %d reviews, mean %v; want 1 review and no verified mean", len(v.Reviews), v.ReviewMean)
	}
}

// TestSellerRefusesWhatItsClockAndBookDoNotBack: the seller's own clock and book decide a sale.
// A payment backdated into a listing's life does not buy it after it expired (the buyer signs
// the time; before, a backdated payment bought an expired listing), nor a live one; an
// unfunded payment and a withdrawn listing are refused too. Nothing is receipted.
func TestSellerRefusesWhatItsClockAndBookDoNotBack(t *testing.T) {
	ctx := context.Background()
	m, self, _, _ := testMarket(t)
	now := time.Now()
	expired := signedListing(t, self, 10, now.Add(-2*time.Hour), time.Hour)
	live := signedListing(t, self, 10, now.Add(-2*time.Hour), 4*time.Hour)
	dear := signedListing(t, self, 5000, now.Add(-time.Minute), time.Hour)
	gone := signedListing(t, self, 10, now.Add(-time.Minute), time.Hour)
	for _, l := range []*listing.Listing{expired, live, dear, gone} {
		if _, err := m.keepListingLocked(ctx, l); err != nil {
			t.Fatal(err)
		}
		m.mine[l.ID()] = true
	}
	w := &listing.Withdrawal{V: listing.Version, Listing: gone.ID(), Time: now.UnixMilli()}
	if err := w.Sign(self); err != nil {
		t.Fatal(err)
	}
	if _, err := m.keepWithdrawalLocked(ctx, w); err != nil {
		t.Fatal(err)
	}
	buyer := newKey(t)
	pay := func(l *listing.Listing, at time.Time) *ledger.Entry {
		e := m.book.Next(buyer.id, ledger.KindPayment)
		e.To, e.Amount, e.Listing, e.Time = self.id, l.Price, l.ID(), at.UnixMilli()
		if err := e.Sign(buyer); err != nil {
			t.Fatal(err)
		}
		return e
	}
	for name, tc := range map[string]struct {
		l    *listing.Listing
		at   time.Time
		want string
	}{
		"backdated into an expired listing's life": {expired, now.Add(-90 * time.Minute), "before the seller's clock"},
		"signed after the listing expired":         {expired, now, "after the listing expired"},
		"backdated, listing live":                  {live, now.Add(-time.Hour), "before the seller's clock"},
		"beyond the buyer's balance":               {dear, now, "unfunded"},
		"a withdrawn listing":                      {gone, now, "withdrawn"},
	} {
		p := pay(tc.l, tc.at)
		rc, _, _, err := m.sell(ctx, &listing.PurchaseRequest{Listing: tc.l.ID(), Entries: []*ledger.Entry{p}})
		if rc != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: receipt %v, %v; want a refusal mentioning %q", name, rc != nil, err, tc.want)
		}
		if m.book.ReceiptOf(p.ID()) != nil {
			t.Errorf("%s: the payment has a receipt", name)
		}
		if m.book.Has(p.ID()) {
			if err := m.book.Undo(p); err != nil { // the next case signs the same sequence
				t.Fatal(err)
			}
		}
	}
}

// New names every required dependency that is missing.
func TestNewNamesMissingDeps(t *testing.T) {
	_, err := New(context.Background(), Deps{})
	if err == nil {
		t.Fatal("New with no deps: no error")
	}
	for _, name := range []string{"Store", "Evaluator", "Records", "Journal", "Signer", "Host", "PubSub", "Penaliser",
		"Exposure", "Blobs", "Registerer"} {
		if !strings.Contains(err.Error(), "deps: "+name+" is nil") {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
