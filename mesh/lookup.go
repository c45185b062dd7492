package mesh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multihash"

	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/mesh/rpc"
)

// Discovery beyond gossip. A node that serves an expert provides the DHT keys of its domains
// and of its ID, and answers pulls of its adverts on PullProtocol; a node that wants a
// domain's experts (or one expert) finds providers of the key in the DHT and pulls their
// adverts into its table. What a node pays grows with what it serves and looks up, not with
// the size of the mesh; gossip (unless Config.DHTOnly) adds live updates on top.

// PullProtocol is the advert exchange: a pull (a domain or an expert ID in, the provider's own
// adverts of it out) or a push of withdrawals to the peers that pulled.
const PullProtocol = protocol.ID("/meshnode/adverts/1.0.0")

const (
	// lookupProviders is how many providers of a key one lookup pulls from.
	lookupProviders = 8
	// lookupTimeout bounds a lookup: the DHT walk and the pulls.
	lookupTimeout = 3 * time.Second
	// A lookup stands for Config.AdvertRefresh: one within it is not repeated (nor waited for,
	// once the table holds something for it). One that found nothing stands for
	// lookupEmptyFresh only (the provider may still be providing).
	lookupEmptyFresh = time.Second
	// maxLookedUp bounds the keys whose last lookup is remembered.
	maxLookedUp = 4096
	// maxPullers bounds the peers remembered as having pulled (they get withdrawals pushed).
	maxPullers = 256
	// maxPullResponse bounds one pull's answer: a provider's limit of adverts at their limit
	// of bytes would be larger, but 256 KiB is far more than an honest node serves.
	maxPullResponse = 256 << 10
	// provideTimeout bounds one DHT provide; provideRetry is how long a failed one waits.
	provideTimeout = time.Minute
	provideRetry   = 5 * time.Second
	// provideWorkers is how many provides run at once.
	provideWorkers = 4
	// reprovideEvery re-provides served keys well within the DHT's record lifetime (48 h).
	reprovideEvery = 12 * time.Hour
)

// pullMessage is one message of PullProtocol: a request names a domain or an expert ID (a
// pull), or carries adverts (a push of withdrawals); a pull's answer carries adverts.
type pullMessage struct {
	Domain  string            `json:"domain,omitempty"`
	ID      string            `json:"id,omitempty"`
	Adverts []json.RawMessage `json:"adverts,omitempty"`
}

// DomainKey is the DHT key under which the providers of a domain are found.
func DomainKey(domain string) cid.Cid {
	h, _ := multihash.Sum([]byte("/meshnode/domain/"+domain), multihash.SHA2_256, -1) // SHA2-256 always exists
	return cid.NewCidV1(cid.Raw, h)
}

// discovery is the DHT side of the adverts: what this node provides, what it looked up and
// who pulled from it.
type discovery struct {
	a      *Adverts
	client *rpc.Client
	queue  chan cid.Cid // keys to provide

	mu        sync.Mutex
	provided  map[cid.Cid]time.Time // served keys and when they were last provided
	providing map[cid.Cid]bool      // keys queued or being provided
	looked    map[string]time.Time  // lookup key → until when its last lookup stands
	inflight  map[string]*lookupRun // lookups running
	pullers   map[peer.ID]time.Time // peers that pulled, and when last
}

func newDiscovery(a *Adverts) *discovery {
	d := &discovery{a: a, client: rpc.NewClient(a.n.basic, PullProtocol, maxPullResponse, 16), queue: make(chan cid.Cid, 1024),
		provided: map[cid.Cid]time.Time{}, providing: map[cid.Cid]bool{}, looked: map[string]time.Time{}, inflight: map[string]*lookupRun{}, pullers: map[peer.ID]time.Time{}}
	rpc.Serve(a.n.Host, PullProtocol, d.handle, rpc.ServerOptions{MaxRequest: 64 << 10, PeerRate: 5, PeerBurst: 20, Logger: a.n.log})
	return d
}

// keysOf are the DHT keys a served expert is found under: its ID (first: a query naming the
// expert finds it soonest) and its domains'.
func keysOf(s advert.Service) []cid.Cid {
	out := make([]cid.Cid, 0, len(s.Domains)+1)
	if id, err := cid.Decode(s.ID); err == nil {
		out = append(out, id)
	}
	for _, d := range s.Domains {
		out = append(out, DomainKey(d))
	}
	return out
}

// provide queues the keys of a newly served expert.
func (d *discovery) provide(s advert.Service) {
	for _, k := range keysOf(s) {
		d.mu.Lock()
		_, done := d.provided[k]
		if !done {
			d.provided[k] = time.Time{}
			d.providing[k] = true
		}
		d.mu.Unlock()
		if !done {
			select {
			case d.queue <- k:
			default: // full: the next pass picks it up
				d.mu.Lock()
				delete(d.providing, k)
				d.mu.Unlock()
			}
		}
	}
}

// run provides queued keys, a few at a time, and queues the served ones that are due (never
// provided, failed, or old), until ctx ends.
func (d *discovery) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for range provideWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case k := <-d.queue:
					d.provideOne(ctx, k)
				}
			}
		}()
	}
	t := time.NewTicker(provideRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, k := range d.due(now) {
				select {
				case d.queue <- k:
				default: // full: the next pass takes it
					d.mu.Lock()
					delete(d.providing, k)
					d.mu.Unlock()
				}
			}
		}
	}
}

// due lists the served keys that were never provided, failed, or are due for a re-provide,
// and are not being provided; keys of experts no longer served are forgotten.
func (d *discovery) due(now time.Time) []cid.Cid {
	want := map[cid.Cid]bool{}
	for _, s := range d.a.Served() {
		for _, k := range keysOf(s) {
			want[k] = true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []cid.Cid
	for k, at := range d.provided {
		switch {
		case !want[k]:
			delete(d.provided, k)
		case d.providing[k]:
		case now.Sub(at) >= reprovideEvery:
			d.providing[k] = true
			out = append(out, k)
		}
	}
	return out
}

func (d *discovery) provideOne(ctx context.Context, k cid.Cid) {
	pctx, cancel := context.WithTimeout(ctx, provideTimeout)
	defer cancel()
	// A node that has just started serves before it knows any DHT peer: wait for one rather
	// than fail and retry a pass later.
	for d.a.n.DHT.RoutingTable().Size() == 0 && pctx.Err() == nil {
		select {
		case <-pctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	err := d.a.n.DHT.Provide(pctx, k, true)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.providing, k)
	if _, ok := d.provided[k]; !ok {
		return // no longer served
	}
	if err != nil {
		d.a.n.Metrics.Provides.WithLabelValues("failed").Inc()
		// Retried on the next pass: the zero time is always due.
		d.provided[k] = time.Time{}
		if ctx.Err() == nil {
			d.a.n.log.Debug("provide discovery key", "key", k, "err", err)
		}
		return
	}
	d.provided[k] = time.Now()
	d.a.n.Metrics.Provides.WithLabelValues("ok").Inc()
}

// handle answers a pull with this node's own adverts of the domain or expert, or applies a
// push of withdrawals from their provider.
func (d *discovery) handle(ctx context.Context, from peer.ID, req []byte) ([]byte, error) {
	m, err := decodePull(req)
	if err != nil {
		return nil, err
	}
	if len(m.Adverts) > 0 {
		return nil, d.applyPush(from, m.Adverts)
	}
	if (m.Domain == "") == (m.ID == "") {
		return nil, errors.New("advert exchange: name a domain or an expert ID, not both")
	}
	d.rememberPuller(from)
	var out pullMessage
	size := 0
	for _, s := range d.a.Served() {
		if (m.ID != "" && s.ID != m.ID) || (m.Domain != "" && !slices.Contains(s.Domains, m.Domain)) {
			continue
		}
		data, err := d.a.encode(s, false)
		if err != nil {
			return nil, err
		}
		if size += len(data); size > maxPullResponse-1024 {
			break
		}
		out.Adverts = append(out.Adverts, data)
	}
	return json.Marshal(out)
}

// applyPush applies withdrawals a provider pushed: each must be its own and a withdrawal.
func (d *discovery) applyPush(from peer.ID, raw []json.RawMessage) error {
	for _, r := range raw {
		adv, err := advert.Decode(r, from, time.Now(), d.a.n.cfg.AdvertMaxBytes)
		if err != nil {
			d.a.n.Metrics.AdvertsRejected.WithLabelValues(advert.Reason(err)).Inc()
			return fmt.Errorf("advert exchange: %w", err)
		}
		if !adv.Withdraw {
			return errors.New("advert exchange: only withdrawals are pushed")
		}
		d.a.apply(adv)
	}
	return nil
}

func (d *discovery) rememberPuller(p peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.pullers[p]; !ok && len(d.pullers) >= maxPullers {
		var oldest peer.ID
		var at time.Time
		for q, t := range d.pullers {
			if oldest == "" || t.Before(at) {
				oldest, at = q, t
			}
		}
		delete(d.pullers, oldest)
	}
	d.pullers[p] = time.Now()
}

// pushWithdrawals sends the withdrawals of services to every peer that pulled within the
// advert TTL (their tables may hold the adverts), in parallel, within ctx.
func (d *discovery) pushWithdrawals(ctx context.Context, services []advert.Service) {
	var msg pullMessage
	for _, s := range services {
		data, err := d.a.encode(s, true)
		if err != nil {
			continue
		}
		msg.Adverts = append(msg.Adverts, data)
	}
	if len(msg.Adverts) == 0 {
		return
	}
	req, err := json.Marshal(msg)
	if err != nil {
		return
	}
	d.mu.Lock()
	var peers []peer.ID
	for p, at := range d.pullers {
		if time.Since(at) < d.a.n.cfg.AdvertTTL {
			peers = append(peers, p)
		}
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, p := range peers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := d.client.Call(ctx, p, req); err != nil {
				d.a.n.log.Debug("push withdrawals", "peer", p, "err", err)
			}
		}()
	}
	wg.Wait()
}

// lookupRun is one running lookup: first closes when its first advert is applied, done when
// it ends.
type lookupRun struct {
	first, done chan struct{}
	once        sync.Once
}

func (r *lookupRun) found() { r.once.Do(func() { close(r.first) }) }

// lookup finds providers of key in the DHT and pulls their adverts (those of domain or id)
// into the table, unless the key's last lookup still stands. With wait set it returns once
// the lookup has applied a first advert or ended (or ctx ends); otherwise at once, the lookup
// running in the background. Concurrent lookups of one key share one walk.
func (d *discovery) lookup(ctx context.Context, key cid.Cid, domain, id string, wait bool) {
	name := key.String()
	d.mu.Lock()
	if until, ok := d.looked[name]; ok && time.Now().Before(until) {
		d.mu.Unlock()
		return
	}
	run, running := d.inflight[name]
	if !running && d.a.ctx.Err() != nil {
		d.mu.Unlock()
		return // the node is closing: no new walk
	}
	if !running {
		run = &lookupRun{first: make(chan struct{}), done: make(chan struct{})}
		d.inflight[name] = run
		d.a.wg.Add(1)
		go func() {
			defer d.a.wg.Done()
			fresh, result := lookupEmptyFresh, "empty"
			if d.walk(key, domain, id, run) > 0 {
				fresh, result = d.a.n.cfg.AdvertRefresh, "found"
			}
			d.a.n.Metrics.Lookups.WithLabelValues(result).Inc()
			d.mu.Lock()
			delete(d.inflight, name)
			if _, ok := d.looked[name]; !ok && len(d.looked) >= maxLookedUp {
				clear(d.looked)
			}
			d.looked[name] = time.Now().Add(fresh)
			d.mu.Unlock()
			close(run.done)
		}()
	}
	d.mu.Unlock()
	if !wait {
		return
	}
	select {
	case <-run.first:
	case <-run.done:
	case <-ctx.Done():
	}
}

// walk is one lookup: providers from the DHT, each pulled as it is found. A lookup of one
// expert ends with the first provider that has it; a domain's pulls up to lookupProviders. It
// returns how many adverts the pulls applied.
func (d *discovery) walk(key cid.Cid, domain, id string, run *lookupRun) int {
	ctx, cancel := context.WithTimeout(d.a.ctx, lookupTimeout)
	defer cancel()
	req, err := json.Marshal(pullMessage{Domain: domain, ID: id})
	if err != nil {
		return 0
	}
	self := d.a.n.Host.ID()
	var (
		wg      sync.WaitGroup
		applied atomic.Int64
	)
	for ai := range d.a.n.DHT.FindProvidersAsync(ctx, key, lookupProviders+1) {
		if ai.ID == self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n := d.pull(ctx, ai, req); n > 0 {
				applied.Add(int64(n))
				run.found()
				if id != "" {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	return int(applied.Load())
}

// pull asks a provider for its adverts, at the addresses its provider record gave, and
// applies the valid ones (each must be its own); it returns how many it applied.
func (d *discovery) pull(ctx context.Context, ai peer.AddrInfo, req []byte) int {
	p := ai.ID
	if len(ai.Addrs) > 0 {
		d.a.n.basic.Peerstore().AddAddrs(p, ai.Addrs, peerstore.TempAddrTTL)
	}
	resp, err := d.client.Call(ctx, p, req)
	if err != nil {
		d.a.n.log.Debug("pull adverts", "peer", p, "err", err)
		return 0
	}
	m, err := decodePull(resp)
	if err != nil {
		d.a.n.log.Debug("pull adverts: bad answer", "peer", p, "err", err)
		return 0
	}
	n := 0
	for _, r := range m.Adverts {
		adv, err := advert.Decode(r, p, time.Now(), d.a.n.cfg.AdvertMaxBytes)
		if err != nil || adv.Withdraw {
			if err != nil {
				d.a.n.Metrics.AdvertsRejected.WithLabelValues(advert.Reason(err)).Inc()
			}
			continue
		}
		d.a.apply(adv)
		n++
	}
	return n
}

// decodePull parses one PullProtocol message: JSON with no unknown fields, at most
// advert.DefaultPerProvider adverts, a domain tag and an ID of at most 128 bytes.
func decodePull(data []byte) (pullMessage, error) {
	var m pullMessage
	if err := strictJSON(data, &m); err != nil {
		return pullMessage{}, fmt.Errorf("advert exchange: %w", err)
	}
	if len(m.Adverts) > advert.DefaultPerProvider {
		return pullMessage{}, fmt.Errorf("advert exchange: %d adverts, at most %d", len(m.Adverts), advert.DefaultPerProvider)
	}
	if len(m.Domain) > 128 || len(m.ID) > 128 {
		return pullMessage{}, errors.New("advert exchange: domain or ID over 128 bytes")
	}
	return m, nil
}

// strictJSON decodes one JSON value with no unknown fields and nothing after it.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the message")
	}
	return nil
}
