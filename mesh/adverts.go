package mesh

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/mesh/advert"
)

// Adverts publishes this node's adverts and keeps the table of everyone else's.
type Adverts struct {
	n     *Node
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	table *advert.Table
	store ds.Datastore // nil: the table is not persisted
	disc  *discovery
	ctx   context.Context // ends when the node closes: background lookups stop

	mu      sync.Mutex
	served  map[string]advert.Service
	lastSeq uint64
	load    func() float64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newAdverts(ctx context.Context, n *Node, d ds.Batching) (*Adverts, error) {
	a := &Adverts{n: n, table: advert.NewTable(), served: map[string]advert.Service{}, load: func() float64 { return 0 }}
	if d != nil {
		a.store = namespace.Wrap(d, ds.NewKey("/adverts"))
		loaded, err := a.table.Load(ctx, a.store, time.Now())
		if err != nil {
			return nil, err
		}
		n.log.Info("advert table loaded", "entries", loaded)
	}
	if err := n.PubSub.RegisterTopicValidator(TopicAdverts, a.validate); err != nil {
		return nil, fmt.Errorf("register advert validator: %w", err)
	}
	ctx, a.cancel = context.WithCancel(ctx)
	a.ctx = ctx
	a.disc = newDiscovery(a)
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.disc.run(ctx) }()
	go a.refresh(ctx)
	if n.cfg.DHTOnly {
		return a, nil
	}
	var err error
	if a.topic, err = n.PubSub.Join(TopicAdverts); err != nil {
		a.cancel()
		return nil, fmt.Errorf("join %s: %w", TopicAdverts, err)
	}
	if a.sub, err = a.topic.Subscribe(); err != nil {
		a.cancel()
		return nil, fmt.Errorf("subscribe %s: %w", TopicAdverts, err)
	}
	a.wg.Add(1)
	go a.receive(ctx)
	return a, nil
}

// validate is the topic validator: it runs before a message is delivered or forwarded. Valid
// adverts are accepted (and handed to the receive loop decoded); anything else is rejected,
// which also counts against the sender's gossip score.
func (a *Adverts) validate(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if msg.GetFrom() == a.n.Host.ID() {
		return pubsub.ValidationAccept
	}
	adv, err := advert.Decode(msg.Data, msg.GetFrom(), time.Now(), a.n.cfg.AdvertMaxBytes)
	if err != nil {
		a.n.Metrics.AdvertsRejected.WithLabelValues(advert.Reason(err)).Inc()
		a.n.log.Debug("advert rejected", "from", msg.GetFrom(), "err", err)
		return pubsub.ValidationReject
	}
	if err := a.table.Admits(adv); err != nil {
		// Not the forwarder's fault (its table may differ): dropped and not forwarded. Its
		// author pays when it went over its own limit.
		a.n.Metrics.AdvertsRejected.WithLabelValues(advert.Reason(err)).Inc()
		if errors.Is(err, advert.ErrProviderFull) {
			a.n.Penalise(msg.GetFrom())
		}
		a.n.log.Debug("advert ignored", "from", msg.GetFrom(), "err", err)
		return pubsub.ValidationIgnore
	}
	msg.ValidatorData = adv
	return pubsub.ValidationAccept
}

func (a *Adverts) receive(ctx context.Context) {
	defer a.wg.Done()
	for {
		msg, err := a.sub.Next(ctx)
		if err != nil {
			return // the subscription ends with the node
		}
		adv, ok := msg.ValidatorData.(*advert.Advert)
		if !ok || msg.GetFrom() == a.n.Host.ID() {
			continue
		}
		a.apply(adv)
	}
}

// apply records a validated advert from a peer, heard by gossip or pulled.
func (a *Adverts) apply(adv *advert.Advert) {
	a.n.Metrics.AdvertsReceived.Inc()
	changed, err := a.table.Apply(adv, time.Now())
	if err != nil {
		a.n.Metrics.AdvertsRejected.WithLabelValues(advert.Reason(err)).Inc()
	}
	if changed {
		a.n.Metrics.TableSize.Set(float64(a.table.Len()))
	}
}

// refresh republishes served adverts every AdvertRefresh, and sweeps and persists the table
// every second.
func (a *Adverts) refresh(ctx context.Context) {
	defer a.wg.Done()
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	republish := time.NewTicker(a.n.cfg.AdvertRefresh)
	defer republish.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-republish.C:
			if a.topic == nil {
				continue // DHT only: pulls get fresh adverts
			}
			for _, s := range a.Served() {
				if err := a.publish(ctx, s, false); err != nil && ctx.Err() == nil {
					a.n.log.Warn("republish advert", "id", s.ID, "err", err)
				}
			}
		case now := <-sweep.C:
			a.table.Sweep(now)
			a.n.Metrics.TableSize.Set(float64(a.table.Len()))
			if a.store != nil {
				if err := a.table.Flush(ctx, a.store); err != nil && ctx.Err() == nil {
					a.n.log.Warn("persist advert table", "err", err)
				}
			}
		}
	}
}

func (a *Adverts) nextSeq() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Time-based so a restarted node's adverts still supersede its earlier ones.
	a.lastSeq = max(a.lastSeq+1, uint64(time.Now().UnixNano()))
	return a.lastSeq
}

// encode renders this node's advert (or withdrawal) of s, fresh: its time is now and its
// sequence number the next.
func (a *Adverts) encode(s advert.Service, withdraw bool) ([]byte, error) {
	a.mu.Lock()
	load := a.load
	a.mu.Unlock()
	adv := advert.Advert{V: advert.Version, Provider: a.n.Host.ID().String(), ID: s.ID, Withdraw: withdraw,
		Time: time.Now().UnixMilli(), TTL: a.n.cfg.AdvertTTL.Milliseconds(), Seq: a.nextSeq()}
	if !withdraw {
		adv.Weights, adv.Name, adv.Domains, adv.Spec, adv.Params = s.Weights, s.Name, s.Domains, s.Spec, s.Params
		adv.Quality, adv.Price, adv.Load = s.Quality, s.Price, min(max(load(), 0), 1)
	}
	data, err := adv.Encode()
	if err != nil {
		return nil, fmt.Errorf("advert for %s: %w", s.ID, err)
	}
	if len(data) > a.n.cfg.AdvertMaxBytes {
		return nil, fmt.Errorf("advert for %s: %d bytes is over the %d-byte limit", s.ID, len(data), a.n.cfg.AdvertMaxBytes)
	}
	return data, nil
}

// publish gossips this node's advert (or withdrawal) of s; without gossip (DHT only) it only
// checks that the advert can be encoded.
func (a *Adverts) publish(ctx context.Context, s advert.Service, withdraw bool) error {
	data, err := a.encode(s, withdraw)
	if err != nil || a.topic == nil {
		return err
	}
	if err := a.topic.Publish(ctx, data); err != nil {
		return fmt.Errorf("publish advert for %s: %w", s.ID, err)
	}
	a.n.Metrics.AdvertsSent.Inc()
	return nil
}

// Serve starts advertising a service: its advert is gossiped at once, and the DHT keys of its
// domains and ID are provided in the background (retried until they are).
func (a *Adverts) Serve(ctx context.Context, s advert.Service) error {
	a.mu.Lock()
	a.served[s.ID] = s
	a.mu.Unlock()
	if err := a.publish(ctx, s, false); err != nil {
		a.mu.Lock()
		delete(a.served, s.ID)
		a.mu.Unlock()
		return err
	}
	a.disc.provide(s)
	return nil
}

// Unserve stops advertising a service and publishes its withdrawal.
func (a *Adverts) Unserve(ctx context.Context, id string) error {
	a.mu.Lock()
	s, ok := a.served[id]
	delete(a.served, id)
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("unserve %s: this node does not serve it", id)
	}
	err := a.publish(ctx, s, true)
	a.disc.pushWithdrawals(ctx, []advert.Service{s})
	return err
}

// LookupDomain makes the table hold what the mesh serves in domain: unless it was looked up
// within the advert refresh interval, providers of the domain are found in the DHT and their
// adverts pulled. It waits for the lookup (until a first advert arrives, at most 3 s, or ctx)
// only when wait is set and the table holds no advert of the domain yet; otherwise the lookup
// runs in the background. With gossip on, only a waiting lookup runs.
func (a *Adverts) LookupDomain(ctx context.Context, domain string, wait bool) {
	a.lookup(ctx, DomainKey(domain), domain, "", wait, func(e advert.Entry) bool { return slices.Contains(e.Domains, domain) })
}

// LookupExpert is LookupDomain for one expert, found under its ID.
func (a *Adverts) LookupExpert(ctx context.Context, id string, wait bool) {
	key, err := cid.Decode(id)
	if err != nil {
		return // not a CID: nobody provides it
	}
	a.lookup(ctx, key, "", id, wait, func(e advert.Entry) bool { return e.ID == id })
}

// lookup runs a discovery lookup; it waits only when asked and the table holds no advert
// matching it. With gossip on, gossip keeps the table current, so a lookup runs only when a
// caller waits for one (nothing matching is held), never in the background.
func (a *Adverts) lookup(ctx context.Context, key cid.Cid, domain, id string, wait bool, match func(advert.Entry) bool) {
	held := a.holds(match)
	if a.topic != nil && (held || !wait) {
		return
	}
	a.disc.lookup(ctx, key, domain, id, wait && !held)
}

// holds says whether the table has a live advert for which match is true.
func (a *Adverts) holds(match func(advert.Entry) bool) bool {
	return slices.ContainsFunc(a.table.List(time.Now()), match)
}

// Served lists the services this node advertises, sorted by ID.
func (a *Adverts) Served() []advert.Service {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]advert.Service, 0, len(a.served))
	for _, s := range a.served {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SetLoad sets the function that reports this node's current load in [0, 1].
func (a *Adverts) SetLoad(f func() float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.load = f
}

// List returns the table's live adverts at now.
func (a *Adverts) List(now time.Time) []advert.Entry { return a.table.List(now) }

// Table is the remote advert table.
func (a *Adverts) Table() *advert.Table { return a.table }

// close withdraws every served advert, gives the withdrawals time to leave, stops the loops and
// persists the table.
func (a *Adverts) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	served := a.Served()
	if len(served) > 0 && a.topic != nil {
		// gossipsub has no flush, and a message can be lost in the moment a stream opens: send
		// each withdrawal twice, half the grace period apart, and give the second time to leave.
		for round := 0; round < 2; round++ {
			for _, s := range served {
				err := a.publish(ctx, s, true)
				if round == 0 {
					errs = append(errs, err)
				}
			}
			select {
			case <-time.After(a.n.cfg.WithdrawGrace / 2):
			case <-ctx.Done():
			}
		}
	}
	if len(served) > 0 {
		a.disc.pushWithdrawals(ctx, served)
	}
	a.cancel()
	if a.sub != nil {
		a.sub.Cancel()
	}
	a.wg.Wait()
	a.disc.client.Close()
	if a.topic != nil {
		errs = append(errs, a.topic.Close())
	}
	if a.store != nil {
		errs = append(errs, a.table.Flush(ctx, a.store))
	}
	return errors.Join(errs...)
}
