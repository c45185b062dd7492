package marketsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
	depslib "github.com/meshnode/meshnode/node/daemon/internal/deps"
)

// Market wire names.
const (
	// Topic carries listings, reviews, ledger entries and double-spend proofs.
	Topic = "/meshnode/market/1"
	// Protocol is the purchase stream: a payment (with the entries that justify it) in,
	// the seller's countersigned receipt out.
	Protocol = protocol.ID("/meshnode/market/1.0.0")
)

// Store is the part of the expert store the market uses (an *store.Store): the experts this
// node lists, and the publishers of the paid experts it holds. Its methods are called
// concurrently (from the API and the exposure's rebuilds), so they must be safe for that.
type Store interface {
	// Resolve turns the ID or name of a hosted expert into its ID.
	Resolve(ctx context.Context, ref string) (cid.Cid, error)
	// GetExpert reads a hosted expert's manifest.
	GetExpert(ctx context.Context, id cid.Cid) (*experts.Manifest, error)
}

// Evaluator measures a hosted expert for a review (a *node.Repo); called from the API.
type Evaluator interface {
	// EvalExpert evaluates the expert ref (an ID or a name) on the test part of the catalog's
	// data set ds, truncated to limit samples when limit > 0.
	EvalExpert(ctx context.Context, cat dataset.Catalog, ref, ds string, limit int) (*api.EvalReport, error)
}

// RecordStore keeps the market's records across restarts: the listings, reviews and
// withdrawals heard, which of them are this node's, and the experts it bought (a go-datastore
// Datastore of its own namespace). Used concurrently (under the service's lock and outside
// it), so it must be safe for that.
type RecordStore interface {
	Get(ctx context.Context, key ds.Key) ([]byte, error)
	Put(ctx context.Context, key ds.Key, value []byte) error
	Delete(ctx context.Context, key ds.Key) error
	Query(ctx context.Context, q dsq.Query) (dsq.Results, error)
}

// Signer is this node's identity (a *node.Identity): it signs listings, reviews, withdrawals
// and this node's ledger entries (grants, payments, receipts).
type Signer = depslib.Signer

// PubSub is the mesh's gossip (a *pubsub.PubSub), on which the service joins Topic.
type PubSub = depslib.PubSub

// Penaliser lowers a peer's gossip score for spam that is not invalid (a *mesh.Node): here, a
// listing from a seller over its own limit of the listing table. Called from Topic's
// validator, concurrently.
type Penaliser interface {
	// Penalise lowers p's gossip score for one message beyond its author's limit.
	Penalise(p peer.ID)
}

// Exposure is what this node shows to peers, as the market needs it. Refresh is called from
// the API, the receive loop, the ledger sync and Protocol's handlers, never with the service's
// lock held; the rebuild it starts calls Restrictions.
type Exposure interface {
	// Refresh rebuilds what is exposed (a listing, a receipt or a purchase changed who may
	// fetch a paid expert).
	Refresh(ctx context.Context) error
}

// Blobs moves experts for the market (a *blobsvc.Service); called from the API.
type Blobs interface {
	// Announce queues a root's announcement in the DHT (a listed expert and its weights, so
	// buyers find the seller). It never blocks.
	Announce(c cid.Cid)
	// FetchExpert pulls a bought expert's manifest and weights from the mesh, checks both
	// against their CIDs and installs the expert.
	FetchExpert(ctx context.Context, id cid.Cid) (api.BlobInfo, error)
}

// Deps is what New needs. Every interface and value in it is shared with the caller, who
// keeps ownership: the service closes none of them, and the caller closes them after Close.
type Deps struct {
	// Store holds the experts this node lists and the paid ones it holds. Required.
	Store Store
	// Evaluator evaluates a bought expert for a review. Required.
	Evaluator Evaluator
	// Records keeps the market's records (the store's "/market" namespace). Required.
	Records RecordStore
	// Journal holds the ledger's journal (the store's "/ledger" namespace): New loads the book
	// from it, and every entry the book takes is written to it. Required.
	Journal ds.Batching
	// Signer is this node's identity. Required.
	Signer Signer
	// Host is this node's libp2p host: its ID is this node's key in the ledger; the service
	// handles Protocol and LedgerSyncProtocol on it (from New until Close), calls sellers and
	// syncs with peers over it. It must find the addresses of a peer it does not know (the
	// mesh's routed host: the DHT). Required.
	Host host.Host
	// PubSub is the gossip the service joins Topic on (and validates it), in New. Required.
	PubSub PubSub
	// Penaliser lowers the gossip score of sellers over their own limit. Required.
	Penaliser Penaliser
	// Exposure is rebuilt when who may fetch a paid expert changes. Required.
	Exposure Exposure
	// Blobs announces listed experts and fetches bought ones. Required.
	Blobs Blobs
	// Config is the repo's market settings: the ledger's policy (genesis, issuers, limits),
	// the republish and sync intervals, a listing's default lifetime. New copies it.
	Config node.MarketConfig
	// Registerer takes the service's metrics once, in New. Required.
	Registerer prometheus.Registerer
	// Logger receives the market's lines (nil: discarded).
	Logger *slog.Logger
}

// Service is the daemon's side of the expert market: the ledger book (journaled in badger),
// the listings and reviews heard on the market topic (persisted), the purchase protocol, and
// the paid experts it hands to the exposure table (Restrictions). Its methods are safe for
// concurrent use until Close.
//
// Lock order: the exposure's rebuild lock (held while it calls Restrictions) before mu;
// nothing is taken under mu (publishing and Exposure.Refresh happen after mu is released).
type Service struct {
	self        string // this node's peer ID: its key in the ledger
	verify      func(string, []byte, []byte) error
	expertStore Store
	evaluator   Evaluator
	signer      Signer
	host        host.Host
	penaliser   Penaliser
	exposure    Exposure
	blobs       Blobs
	cfg         node.MarketConfig // read only
	log         *slog.Logger
	topic       *pubsub.Topic
	sub         *pubsub.Subscription
	client      *rpc.Client
	sync        *ledgerSync
	store       RecordStore // listings, mine, reviews
	metrics     *metrics

	mu       sync.Mutex
	book     *ledger.Book
	journal  *ledger.Journal
	listings map[string]*listing.Listing // by ID: everyone's, expired ones included (receipts name them)
	mine     map[string]bool             // IDs of this node's listings
	sellers  map[string]int              // seller -> how many of its listings are held
	// listingLimit is maxListings (smaller in tests); lastFullSweep is when a full table last
	// scanned for expired listings.
	listingLimit  int
	lastFullSweep time.Time
	reviews       map[string]*listing.Reviews    // by listing ID
	withdrawn     map[string]*listing.Withdrawal // by listing ID: withdrawn by their sellers
	myRevs        map[string]bool                // IDs of this node's reviews

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	spreadMu sync.Mutex // guards closed and wg.Add
	closed   bool
}

// New loads the ledger book from its journal and the market's records, joins Topic
// (validating what arrives), serves Protocol and LedgerSyncProtocol on the host, and starts
// the receive loop, the republisher and the ledger sync. Close stops them.
func New(ctx context.Context, deps Deps) (*Service, error) {
	if err := deps.check(); err != nil {
		return nil, fmt.Errorf("start market service: %w", err)
	}
	cfg := deps.Config
	cfg.Issuers = slices.Clone(cfg.Issuers)
	log := depslib.Logger(deps.Logger)
	issuers := map[string]bool{}
	for _, k := range cfg.Issuers {
		issuers[k] = true
	}
	self := deps.Host.ID().String()
	lim := ledger.Limits{Entries: cfg.Ledger.Entries, PerKey: cfg.Ledger.PerKey, Waiting: cfg.Ledger.Waiting, WaitingPerKey: cfg.Ledger.WaitingPerKey, Own: self}
	m := &Service{self: self, verify: node.VerifyPeerSignature, expertStore: deps.Store, evaluator: deps.Evaluator,
		signer: deps.Signer, host: deps.Host, penaliser: deps.Penaliser, exposure: deps.Exposure,
		blobs: deps.Blobs, cfg: cfg, log: log, store: deps.Records,
		book:     ledger.NewBook(ledger.Policy{Issuers: issuers, Genesis: cfg.Genesis, Key: canonicalPeer, Limits: lim}, node.VerifyPeerSignature),
		journal:  ledger.OpenJournal(deps.Journal),
		listings: map[string]*listing.Listing{}, mine: map[string]bool{}, sellers: map[string]int{}, listingLimit: maxListings,
		reviews: map[string]*listing.Reviews{}, myRevs: map[string]bool{}, withdrawn: map[string]*listing.Withdrawal{}}
	n, err := m.journal.Load(ctx, m.book)
	if err != nil {
		return nil, fmt.Errorf("load ledger: %w", err)
	}
	if old := m.book.Rules(); !old.Equal(ledger.Rules{Issuers: issuers, Genesis: cfg.Genesis}) {
		log.Warn("market.genesis or market.issuers changed: entries journaled from now on are judged by the new rules, earlier ones keep theirs",
			"genesis_was", old.Genesis, "genesis", cfg.Genesis, "issuers_were", len(old.Issuers), "issuers", len(issuers))
	}
	if err := m.journal.UseRules(ctx, m.book, ledger.Rules{Issuers: issuers, Genesis: cfg.Genesis}); err != nil {
		return nil, fmt.Errorf("load ledger: %w", err)
	}
	if err := m.loadMarket(ctx); err != nil {
		return nil, err
	}
	if err := m.loadWithdrawals(ctx); err != nil {
		return nil, err
	}
	log.Info("market loaded", "ledger_entries", n, "listings", len(m.listings))
	m.metrics = newMetrics(deps.Registerer, m)
	if err := deps.PubSub.RegisterTopicValidator(Topic, m.validate); err != nil {
		return nil, fmt.Errorf("register market validator: %w", err)
	}
	if m.topic, err = deps.PubSub.Join(Topic); err != nil {
		return nil, fmt.Errorf("join %s: %w", Topic, err)
	}
	if m.sub, err = m.topic.Subscribe(); err != nil {
		m.topic.Close()
		return nil, fmt.Errorf("subscribe %s: %w", Topic, err)
	}
	if m.sync, err = newLedgerSync(m); err != nil {
		m.sub.Cancel()
		m.topic.Close()
		return nil, err
	}
	m.client = rpc.NewClient(m.host, Protocol, 1<<20, 4)
	rpc.Serve(m.host, Protocol, m.serveBuy, rpc.ServerOptions{MaxRequest: 1 << 20, PeerRate: 50, PeerBurst: 100, PeerBusy: 0.5, Logger: log})
	ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(3)
	go m.receive(ctx)
	go m.republish(ctx, cfg.Republish)
	go func() {
		defer m.wg.Done()
		m.sync.run(ctx, cfg.Sync)
	}()
	return m, nil
}

// check says which required dependencies are missing.
func (d Deps) check() error {
	return depslib.Missing(
		depslib.Required{Name: "Store", IsNil: d.Store == nil},
		depslib.Required{Name: "Evaluator", IsNil: d.Evaluator == nil},
		depslib.Required{Name: "Records", IsNil: d.Records == nil},
		depslib.Required{Name: "Journal", IsNil: d.Journal == nil},
		depslib.Required{Name: "Signer", IsNil: d.Signer == nil},
		depslib.Required{Name: "Host", IsNil: d.Host == nil},
		depslib.Required{Name: "PubSub", IsNil: d.PubSub == nil},
		depslib.Required{Name: "Penaliser", IsNil: d.Penaliser == nil},
		depslib.Required{Name: "Exposure", IsNil: d.Exposure == nil},
		depslib.Required{Name: "Blobs", IsNil: d.Blobs == nil},
		depslib.Required{Name: "Registerer", IsNil: d.Registerer == nil},
	)
}

// Close stops serving Protocol, stops the receive loop, the republisher, the ledger sync and
// the messages still spreading, and waits for them; then it leaves Topic, closes the purchase
// and sync clients and stops serving LedgerSyncProtocol. Closing a nil service does nothing.
func (m *Service) Close() error {
	if m == nil {
		return nil
	}
	m.host.RemoveStreamHandler(Protocol)
	m.spreadMu.Lock()
	m.closed = true
	m.spreadMu.Unlock()
	m.cancel()
	m.sub.Cancel()
	m.wg.Wait()
	return errors.Join(m.topic.Close(), m.client.Close(), m.sync.close())
}

// CountDeniedPaid counts one block request for a paid expert refused to a peer without a
// receipt (the exposure's request filter calls it; meshnode_market_blocks_denied_total).
func (m *Service) CountDeniedPaid() { m.metrics.denied.Inc() }

// expert finds a hosted expert by ID or name: its ID and its manifest.
func (m *Service) expert(ctx context.Context, ref string) (cid.Cid, *experts.Manifest, error) {
	id, err := m.expertStore.Resolve(ctx, ref)
	if err != nil {
		return cid.Undef, nil, err
	}
	man, err := m.expertStore.GetExpert(ctx, id)
	if err != nil {
		return cid.Undef, nil, err
	}
	return id, man, nil
}

// Keys of the market's own records.
var (
	mkListings = ds.NewKey("/listings")
	mkMine     = ds.NewKey("/mine")
	mkReviews  = ds.NewKey("/reviews")
	mkMyRevs   = ds.NewKey("/myreviews")
)

// canonicalPeer accepts a key only in the canonical spelling of a peer ID, so one key cannot
// appear (and run a ledger chain, or sell) under several spellings.
func canonicalPeer(k string) error {
	id, err := peer.Decode(k)
	if err != nil {
		return fmt.Errorf("not a peer ID: %w", err)
	}
	if id.String() != k {
		return fmt.Errorf("not the canonical spelling of peer ID %s", id)
	}
	return nil
}

func (m *Service) query(ctx context.Context, prefix ds.Key) ([]dsq.Entry, error) {
	res, err := m.store.Query(ctx, dsq.Query{Prefix: prefix.String()})
	if err != nil {
		return nil, fmt.Errorf("read market records %s: %w", prefix, err)
	}
	out, err := res.Rest()
	if err != nil {
		return nil, fmt.Errorf("read market records %s: %w", prefix, err)
	}
	return out, nil
}

// Bounds on what peers can make this node keep: listings (each signed by its seller, but keys
// are free), listings per seller and reviews per listing.
const (
	maxListings       = 10000
	maxSellerListings = 256
	maxReviews        = 256
)

// listingRetention is how long another node's expired listing is kept (when no ledger entry
// names it): long enough to show why a recent purchase failed, short enough that the table
// does not grow without bound.
const listingRetention = 24 * time.Hour

// loadMarket reads the persisted listings, reviews and flags. A record that no longer decodes
// is skipped with a warning: these are copies of gossip, not the ledger. Other nodes'
// listings expired for longer than listingRetention are dropped.
func (m *Service) loadMarket(ctx context.Context) error {
	named := map[string]bool{} // listings the ledger names: kept for the access table
	for _, e := range m.book.Entries() {
		named[e.Listing] = true
	}
	recs, err := m.query(ctx, mkListings)
	if err != nil {
		return err
	}
	for _, r := range recs {
		l, err := listing.DecodeListing(r.Value)
		if err == nil {
			err = l.VerifySignature(m.verify)
		}
		if err != nil {
			m.log.Warn("skip a stored listing", "key", r.Key, "err", err)
			continue
		}
		if time.Since(time.UnixMilli(l.Expires)) > listingRetention && !named[l.ID()] && l.Seller != m.self {
			if err := m.store.Delete(ctx, ds.NewKey(r.Key)); err != nil {
				return fmt.Errorf("drop expired listing: %w", err)
			}
			continue
		}
		m.listings[l.ID()] = l
		m.sellers[l.Seller]++
	}
	recs, err = m.query(ctx, mkReviews)
	if err != nil {
		return err
	}
	for _, r := range recs {
		var rv listing.Review
		err := json.Unmarshal(r.Value, &rv)
		if err == nil {
			err = rv.Verify(m.verify, time.Now())
		}
		if err != nil {
			m.log.Warn("skip a stored review", "key", r.Key, "err", err)
			continue
		}
		if _, err := m.keepReviewLocked(ctx, &rv); err != nil {
			m.log.Warn("drop a stored review", "key", r.Key, "err", err)
			if err := m.store.Delete(ctx, ds.NewKey(r.Key)); err != nil {
				return fmt.Errorf("drop a stored review: %w", err)
			}
		}
	}
	for _, set := range []struct {
		k ds.Key
		m map[string]bool
	}{{mkMine, m.mine}, {mkMyRevs, m.myRevs}} {
		recs, err := m.query(ctx, set.k)
		if err != nil {
			return err
		}
		for _, r := range recs {
			set.m[ds.NewKey(r.Key).BaseNamespace()] = true
		}
	}
	return nil
}

// reviewVerifiedLocked reports whether a review is a verified purchase: it names a payment by
// its reviewer for its listing, and that payment has a receipt.
func (m *Service) reviewVerifiedLocked(r *listing.Review) bool {
	pay := m.book.Get(r.Payment)
	return pay != nil && pay.Kind == ledger.KindPayment && pay.Author == r.Reviewer && pay.Listing == r.Listing &&
		m.receiptedLocked(r.Payment)
}

// receiptedLocked reports whether a payment is funded and its payee's receipt counts.
func (m *Service) receiptedLocked(payment string) bool {
	rc := m.book.ReceiptOf(payment)
	return rc != nil && m.book.Status(m.book.IDOf(rc)) == ledger.StatusOK
}

// keepListingLocked stores a verified listing; it reports whether it was new. Another node's
// listing is refused with api.ErrUnavailable when its seller holds maxSellerListings already (spam set:
// the seller's own doing). When the whole table is full, expired listings no receipt names go
// first (one scan a minute at most); then the seller holding the most listings loses its
// soonest-expiring one that no receipt names, to a newcomer that would still hold fewer;
// otherwise the newcomer is refused. So keys made by the thousand can fill at most the room
// sellers with few listings do not claim.
func (m *Service) keepListingLocked(ctx context.Context, l *listing.Listing) (bool, error) {
	id := l.ID()
	if m.listings[id] != nil {
		return false, nil
	}
	if err := canonicalPeer(l.Seller); err != nil {
		return false, fmt.Errorf("keep listing %s: seller: %w", id, err)
	}
	if err := m.roomLocked(ctx, l.Seller, true); err != nil {
		return false, fmt.Errorf("keep listing %s: %w", id, err)
	}
	if err := m.store.Put(ctx, mkListings.ChildString(id), l.Encode()); err != nil {
		return false, fmt.Errorf("keep listing %s: %w", id, err)
	}
	m.listings[id] = l
	m.sellers[l.Seller]++
	return true, nil
}

// roomLocked finds room for one more listing of seller, as keepListingLocked says, making it
// when take is set; with take unset it only tells whether there would be room (after the
// eviction of expired listings, which it may do).
func (m *Service) roomLocked(ctx context.Context, seller string, take bool) error {
	if seller == m.self {
		return nil
	}
	if n := m.sellers[seller]; n >= maxSellerListings {
		return api.ErrUnavailable.Wrap(fmt.Errorf("seller %s already has %d listings here, the limit: %w", seller, n, errSpam))
	}
	if len(m.listings) < m.listingLimit {
		return nil
	}
	if now := time.Now(); now.Sub(m.lastFullSweep) >= time.Minute {
		m.lastFullSweep = now
		m.evictExpiredLocked(ctx, now, 0)
		if len(m.listings) < m.listingLimit {
			return nil
		}
	}
	largest, most := "", 0
	for s, n := range m.sellers {
		if s != m.self && (n > most || (n == most && s > largest)) {
			largest, most = s, n
		}
	}
	if m.sellers[seller]+1 >= most {
		return api.ErrUnavailable.Wrap(fmt.Errorf("the listing table is full (%d listings) and seller %s would hold %d, no fewer than the largest seller's %d; try again later",
			len(m.listings), seller, m.sellers[seller]+1, most))
	}
	if !take {
		return nil // the victim search below reads the whole book: only when room is taken
	}
	named := map[string]bool{}
	for _, e := range m.book.Entries() {
		named[e.Listing] = true
	}
	var victim *listing.Listing
	for id, l := range m.listings {
		if l.Seller == largest && !m.mine[id] && !named[id] && (victim == nil || l.Expires < victim.Expires) {
			victim = l
		}
	}
	if victim == nil {
		return api.ErrUnavailable.Wrap(fmt.Errorf("the listing table is full (%d listings) and receipts name every listing of its largest seller; try again later", len(m.listings)))
	}
	return m.dropListingLocked(ctx, victim)
}

// errSpam marks a refusal the sender caused itself (it went over its own limit).
var errSpam = errors.New("over the sender's own limit")

// evictExpiredLocked drops other nodes' listings that expired more than retention ago and that
// no ledger entry names (receipts name their listing: the access table needs it), with their
// reviews. It returns how many it dropped.
func (m *Service) evictExpiredLocked(ctx context.Context, now time.Time, retention time.Duration) int {
	var named map[string]bool
	n := 0
	for id, l := range m.listings {
		if l.Seller == m.self || m.mine[id] || now.Sub(time.UnixMilli(l.Expires)) <= retention {
			continue
		}
		if named == nil {
			named = map[string]bool{}
			for _, e := range m.book.Entries() {
				named[e.Listing] = true
			}
		}
		if named[id] {
			continue
		}
		if err := m.dropListingLocked(ctx, l); err != nil {
			m.log.Warn("drop expired listing", "listing", id, "err", err)
			continue
		}
		n++
	}
	return n
}

// dropListingLocked forgets another node's listing and its reviews.
func (m *Service) dropListingLocked(ctx context.Context, l *listing.Listing) error {
	id := l.ID()
	if err := m.store.Delete(ctx, mkListings.ChildString(id)); err != nil {
		return fmt.Errorf("drop listing %s: %w", id, err)
	}
	delete(m.listings, id)
	if m.withdrawn[id] != nil {
		if err := m.store.Delete(ctx, mkWithdrawn.ChildString(id)); err != nil {
			m.log.Warn("drop the withdrawal of a dropped listing", "listing", id, "err", err)
		}
		delete(m.withdrawn, id)
	}
	if m.sellers[l.Seller]--; m.sellers[l.Seller] <= 0 {
		delete(m.sellers, l.Seller)
	}
	if set := m.reviews[id]; set != nil {
		for _, r := range set.All() {
			if err := m.store.Delete(ctx, mkReviews.ChildString(id).ChildString(r.ID())); err != nil {
				m.log.Warn("drop review of a dropped listing", "review", r.ID(), "err", err)
			}
		}
		delete(m.reviews, id)
	}
	return nil
}

// keepReviewLocked keeps a verified review of a listing this node knows (and of that listing's
// expert): at most one per reviewer (its latest) and maxReviews per listing, verified
// purchases first. It reports whether the review was kept.
func (m *Service) keepReviewLocked(ctx context.Context, r *listing.Review) (bool, error) {
	l := m.listings[r.Listing]
	if l == nil {
		return false, fmt.Errorf("review %s: %w %s", r.ID(), ErrUnknownListing, r.Listing)
	}
	if r.Expert != l.Expert {
		return false, fmt.Errorf("review %s names expert %s; listing %s sells %s", r.ID(), r.Expert, r.Listing, l.Expert)
	}
	set := m.reviews[r.Listing]
	if set == nil {
		set = &listing.Reviews{}
		m.reviews[r.Listing] = set
	}
	ok, dropped := set.Add(r, maxReviews, m.reviewVerifiedLocked)
	if !ok {
		return false, nil
	}
	for _, d := range dropped {
		if err := m.store.Delete(ctx, mkReviews.ChildString(d.Listing).ChildString(d.ID())); err != nil {
			m.log.Warn("drop a displaced review", "review", d.ID(), "err", err)
		}
	}
	b, _ := json.Marshal(r) // plain struct, cannot fail
	if err := m.store.Put(ctx, mkReviews.ChildString(r.Listing).ChildString(r.ID()), b); err != nil {
		return true, fmt.Errorf("keep review %s: %w", r.ID(), err)
	}
	return true, nil
}

// ingestLocked adds entries to the book and journals the ones that joined their chains (with
// any that waited for them) in one batch. A double spend among them is recorded (journaled
// proof, then spread). It returns the entries journaled, the new proofs and the first error
// (entries after an error are still tried). Entries that wait for a predecessor are not
// journaled until they join; waiting reports whether any did (a sync may bring the rest).
func (m *Service) ingestLocked(ctx context.Context, entries []*ledger.Entry) (added []*ledger.Entry, proofs []ledger.DoubleSpend, waiting bool, first error) {
	valid := make([]*ledger.Entry, 0, len(entries))
	for _, e := range entries {
		if e != nil {
			valid = append(valid, e)
		}
	}
	outs, errs := m.book.AddAll(valid)
	for i, e := range valid {
		out, err := outs[i], errs[i]
		if d := out.Proof; d != nil {
			proofs = append(proofs, *d)
			if perr := m.journal.SaveProof(ctx, *d); perr != nil && first == nil {
				first = perr
			}
			m.metrics.doubleSpends.Inc()
			m.log.Warn("double spend detected", "author", d.Author, "seq", d.Seq, "a", d.AID, "b", d.BID)
		}
		if err != nil && first == nil {
			first = fmt.Errorf("entry %d of %s (%s): %w", e.Seq, e.Author, e.ID(), err)
		}
		waiting = waiting || out.Waiting
		added = append(added, out.Linked...)
	}
	// A proof later in the batch may have dropped entries linked earlier in it.
	kept := added[:0]
	for _, e := range added {
		if m.book.Has(m.book.IDOf(e)) {
			kept = append(kept, e)
		}
	}
	if err := m.journal.Commit(ctx, m.book, kept...); err != nil {
		return nil, proofs, waiting, err // the book forgot them too: a later delivery adds them again
	}
	return kept, proofs, waiting, first
}

// bundle is the gossip message that spreads entries: the closure of ids when it fits in one
// message, else the entries alone.
func (m *Service) bundleLocked(ids []string, entries []*ledger.Entry) *listing.Message {
	if c := m.book.Closure(ids...); len(c) <= listing.MaxEntries {
		msg := &listing.Message{Kind: listing.KindEntries, Entries: c}
		if len(msg.Encode()) < listing.MaxMessageBytes-1024 {
			return msg
		}
	}
	if len(entries) > listing.MaxEntries {
		entries = entries[len(entries)-listing.MaxEntries:]
	}
	return &listing.Message{Kind: listing.KindEntries, Entries: entries}
}

func proofMessage(d ledger.DoubleSpend) *listing.Message {
	return &listing.Message{Kind: listing.KindProof, Entries: []*ledger.Entry{d.A, d.B}}
}

// publish sends a message on the market topic with a fresh time.
func (m *Service) publish(ctx context.Context, msg *listing.Message) error {
	msg.Sent = time.Now().UnixMilli()
	if err := m.topic.Publish(ctx, msg.Encode()); err != nil {
		return fmt.Errorf("publish market %s: %w", msg.Kind, err)
	}
	m.metrics.sent.WithLabelValues(msg.Kind).Inc()
	return nil
}

// spread publishes messages in the background (after a reply has gone out); failures are
// logged: gossip is best effort, the ledger does not depend on it.
func (m *Service) spread(msgs ...*listing.Message) {
	if len(msgs) == 0 {
		return
	}
	m.spreadMu.Lock()
	defer m.spreadMu.Unlock()
	if m.closed {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, msg := range msgs {
			if err := m.publish(ctx, msg); err != nil {
				m.log.Warn("spread market message", "kind", msg.Kind, "err", err)
			}
		}
	}()
}
