package mesh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

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
	var err error
	if a.topic, err = n.PubSub.Join(TopicAdverts); err != nil {
		return nil, fmt.Errorf("join %s: %w", TopicAdverts, err)
	}
	if a.sub, err = a.topic.Subscribe(); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", TopicAdverts, err)
	}
	ctx, a.cancel = context.WithCancel(ctx)
	a.wg.Add(2)
	go a.receive(ctx)
	go a.refresh(ctx)
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
		a.n.Metrics.AdvertsReceived.Inc()
		changed, err := a.table.Apply(adv, time.Now())
		if err != nil {
			a.n.Metrics.AdvertsRejected.WithLabelValues(advert.Reason(err)).Inc()
		}
		if changed {
			a.n.Metrics.TableSize.Set(float64(a.table.Len()))
		}
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

func (a *Adverts) publish(ctx context.Context, s advert.Service, withdraw bool) error {
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
		return fmt.Errorf("advert for %s: %w", s.ID, err)
	}
	if len(data) > a.n.cfg.AdvertMaxBytes {
		return fmt.Errorf("advert for %s: %d bytes is over the %d-byte limit", s.ID, len(data), a.n.cfg.AdvertMaxBytes)
	}
	if err := a.topic.Publish(ctx, data); err != nil {
		return fmt.Errorf("publish advert for %s: %w", s.ID, err)
	}
	a.n.Metrics.AdvertsSent.Inc()
	return nil
}

// Serve starts advertising a service and publishes its advert at once.
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
	return a.publish(ctx, s, true)
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

// Table is the remote advert table.
func (a *Adverts) Table() *advert.Table { return a.table }

// close withdraws every served advert, gives the withdrawals time to leave, stops the loops and
// persists the table.
func (a *Adverts) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	served := a.Served()
	if len(served) > 0 {
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
	a.cancel()
	a.sub.Cancel()
	a.wg.Wait()
	errs = append(errs, a.topic.Close())
	if a.store != nil {
		errs = append(errs, a.table.Flush(ctx, a.store))
	}
	return errors.Join(errs...)
}
