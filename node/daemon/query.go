package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/routing"
)

// loaded is an expert ready to run.
type loaded struct {
	manifest *experts.Manifest
	net      *experts.Network
}

// engine answers queries: it runs hosted experts for local and remote callers, and routes this
// node's queries to the best local or remote expert.
type engine struct {
	d        *Daemon
	router   *routing.Router
	client   *rpc.Client
	inflight atomic.Int64
	capacity float64
	checker  *spotChecker
	decodes  chan struct{} // image decodes running at once (each up to 8 MiB)

	mu      sync.Mutex
	cache   map[string]*loaded // hosted experts loaded so far (bounded by maxCached)
	gate    *routing.Gate
	metrics *queryMetrics
	// hosted caches the local candidates (the store's experts), refreshed every hostedTTL.
	hosted     []routing.Candidate
	hostedTime time.Time
}

// hostedTTL bounds how stale the cached list of hosted experts may be.
const hostedTTL = 2 * time.Second

const maxCached = 64

// maxDecodes bounds the query images decoded at once: a flood of images costs a peer its
// turn, not the node its memory.
const maxDecodes = 4

func newEngine(d *Daemon) *engine {
	e := &engine{d: d, cache: map[string]*loaded{}, capacity: 64, gate: routing.NewGate(), metrics: newQueryMetrics(d.registry),
		router: routing.NewRouter(d.Mesh.Host.ID().String(), routing.DefaultWeights()),
		client: rpc.NewClient(d.Mesh.Host, routing.QueryProtocol, 4<<20, 64)}
	rpc.Serve(d.Mesh.Host, routing.QueryProtocol, e.serve, rpc.ServerOptions{
		MaxRequest: 1 << 20, PeerRate: d.Repo.Config.Query.PeerRate, PeerBurst: d.Repo.Config.Query.PeerBurst,
		// Half a core per peer on average: no single stranger can take the node's CPU.
		PeerBusy: 0.5, Logger: d.log,
	})
	d.Mesh.Adverts.SetLoad(func() float64 { return float64(e.inflight.Load()) / e.capacity })
	if rate := d.Repo.Config.Query.SpotCheckRate; rate > 0 {
		e.router.SetSpotRate(rate)
	}
	e.checker = newSpotChecker(e)
	e.decodes = make(chan struct{}, maxDecodes)
	return e
}

// load returns a hosted expert, loading it on first use.
func (e *engine) load(ctx context.Context, id string) (*loaded, error) {
	e.mu.Lock()
	l, ok := e.cache[id]
	e.mu.Unlock()
	if ok {
		return l, nil
	}
	c, err := cid.Decode(id)
	if err != nil {
		return nil, fmt.Errorf("expert %q is not a CID", id)
	}
	st, err := e.d.Repo.Store()
	if err != nil {
		return nil, err
	}
	m, err := st.GetExpert(ctx, c)
	if err != nil {
		return nil, err
	}
	n, err := st.LoadNetwork(ctx, m)
	if err != nil {
		return nil, err
	}
	l = &loaded{manifest: m, net: n}
	e.mu.Lock()
	if len(e.cache) >= maxCached {
		for k := range e.cache { // evict any one; experts are cheap to reload
			delete(e.cache, k)
			break
		}
	}
	e.cache[id] = l
	e.mu.Unlock()
	return l, nil
}

// run answers a request with a hosted expert.
func (e *engine) run(ctx context.Context, req routing.Request) (routing.Response, error) {
	if !req.Deadline.IsZero() && time.Now().After(req.Deadline) {
		return routing.Response{}, fmt.Errorf("deadline expired %s ago", time.Since(req.Deadline).Round(time.Millisecond))
	}
	e.inflight.Add(1)
	defer e.inflight.Add(-1)
	l, err := e.load(ctx, req.Expert)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return routing.Response{}, fmt.Errorf("unknown expert %s: this node does not host it", req.Expert)
		}
		return routing.Response{}, err
	}
	return answer(ctx, l, req, e.decodes)
}

// answer runs a loaded expert on a request's input; slots, when not nil, bounds the image
// decodes running at once.
func answer(ctx context.Context, l *loaded, req routing.Request, slots chan struct{}) (routing.Response, error) {
	var x []float64
	var err error
	if req.Vector != nil {
		v := make([]float64, len(req.Vector))
		for i, f := range req.Vector {
			v[i] = float64(f)
		}
		x, err = l.manifest.Input.FromVector(v)
	} else if req.Image != nil {
		if slots != nil { // decoding costs memory: a few at a time
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
				return routing.Response{}, fmt.Errorf("waiting to decode the image: %w", ctx.Err())
			}
		}
		x, err = node.ImageFeaturesLimited(l.manifest.Input, bytes.NewReader(req.Image), false, node.ImagePixelLimit(l.manifest.Input))
	} else {
		x, err = l.manifest.Input.FromText(req.Text)
	}
	if err != nil {
		return routing.Response{}, err
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return routing.Response{}, errors.New("input has a value that is not finite")
		}
	}
	t0 := time.Now()
	y, err := l.net.Predict(x)
	if err != nil {
		return routing.Response{}, err
	}
	resp := routing.Response{Expert: req.Expert, Output: make([]float32, len(y)), Compute: time.Since(t0)}
	best := 0
	for i, v := range y {
		resp.Output[i] = float32(v)
		if v > y[best] {
			best = i
		}
	}
	if l.manifest.Output.Kind == experts.OutputClasses {
		resp.Label = l.manifest.Output.Labels[best]
	}
	return resp, nil
}

// serve is the stream handler of the query protocol.
func (e *engine) serve(ctx context.Context, from peer.ID, data []byte) ([]byte, error) {
	req, err := routing.DecodeRequest(data)
	if err != nil {
		return nil, err
	}
	if !e.d.exposure.current().Answers(req.Expert) { // hosted is not exposed: only served experts answer peers
		e.metrics.served.WithLabelValues("refused").Inc()
		return nil, fmt.Errorf("unknown expert %s: this node does not serve it", req.Expert)
	}
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	resp, err := e.run(ctx, req)
	if err != nil {
		e.metrics.served.WithLabelValues("error").Inc()
		return nil, err
	}
	e.metrics.served.WithLabelValues("ok").Inc()
	return routing.EncodeResponse(resp), nil
}

// candidates lists who could answer: the hosted expert (or hosted experts of the domain) and
// the remote table's providers of it (or of the domain).
func (e *engine) candidates(ctx context.Context, expert, domain string) ([]routing.Candidate, error) {
	hosted, err := e.hostedCandidates(ctx)
	if err != nil {
		return nil, err
	}
	var out []routing.Candidate
	load := float64(e.inflight.Load()) / e.capacity
	for _, h := range hosted {
		if (expert != "" && h.Expert != expert) || (expert == "" && !slices.Contains(h.Domains, domain)) {
			continue
		}
		h.Load = load
		out = append(out, h)
	}
	for _, a := range e.d.Mesh.Adverts.Table().List(time.Now()) {
		if (expert != "" && a.ID != expert) || (expert == "" && !slices.Contains(a.Domains, domain)) {
			continue
		}
		out = append(out, routing.Candidate{Expert: a.ID, Peer: a.Provider, Name: a.Name, Domains: a.Domains,
			Spec: a.Spec, Quality: a.Quality, Load: a.Load, Price: a.Price})
	}
	return out, nil
}

// hostedCandidates lists this node's experts as candidates, from a cache at most hostedTTL old.
func (e *engine) hostedCandidates(ctx context.Context) ([]routing.Candidate, error) {
	e.mu.Lock()
	if time.Since(e.hostedTime) < hostedTTL {
		h := e.hosted
		e.mu.Unlock()
		return h, nil
	}
	e.mu.Unlock()
	st, err := e.d.Repo.Store()
	if err != nil {
		return nil, err
	}
	list, err := st.ListExperts(ctx)
	if err != nil {
		return nil, err
	}
	self := e.d.Mesh.Host.ID().String()
	var out []routing.Candidate
	for _, h := range list {
		m, err := st.GetExpert(ctx, h.ID)
		if err != nil {
			continue
		}
		s := node.ServiceOf(h.ID, m)
		out = append(out, routing.Candidate{Expert: s.ID, Peer: self, Local: true, Name: s.Name, Domains: s.Domains,
			Spec: s.Spec, Quality: s.Quality})
	}
	e.mu.Lock()
	e.hosted, e.hostedTime = out, time.Now()
	e.mu.Unlock()
	return out, nil
}

// resolveRemoteName finds the one expert of that name in the remote table.
func (e *engine) resolveRemoteName(name string) (string, error) {
	var found []string
	for _, a := range e.d.Mesh.Adverts.Table().List(time.Now()) {
		if a.Name == name && !slices.Contains(found, a.ID) {
			found = append(found, a.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no expert named %q on the mesh either", name)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%d experts on the mesh are named %q; name one by ID: %v", len(found), name, found)
}

// invalidateHosted drops the cached hosted candidates (an expert was installed).
func (e *engine) invalidateHosted() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hostedTime = time.Time{}
}

// call asks one candidate, locally or over the query protocol.
func (e *engine) call(ctx context.Context, c routing.Candidate, req routing.Request) (routing.Response, error) {
	req.Expert = c.Expert
	if c.Local {
		return e.run(ctx, req)
	}
	p, err := peer.Decode(c.Peer)
	if err != nil {
		return routing.Response{}, fmt.Errorf("provider %q: %w", c.Peer, err)
	}
	data, err := e.client.Call(ctx, p, routing.EncodeRequest(req))
	if err != nil {
		return routing.Response{}, err
	}
	resp, err := routing.DecodeResponse(data)
	if err != nil {
		return routing.Response{}, err
	}
	if resp.Expert != c.Expert {
		return routing.Response{}, fmt.Errorf("provider answered with expert %s, not %s", resp.Expert, c.Expert)
	}
	return resp, nil
}

// Query routes one query of this node: to the named expert or the best of a domain, failing
// over and hedging across candidates; with K > 1, to the K best distinct experts with the same
// interface, mixing their outputs by gate weights.
func (e *engine) Query(ctx context.Context, q node.QueryRequest) (*node.QueryAnswer, error) {
	t0 := time.Now()
	a, err := e.query(ctx, q)
	outcome, answerer := "ok", "none"
	if err != nil {
		outcome = "error"
	} else {
		answerer = "remote"
		if a.Candidate.Local {
			answerer = "local"
		}
		for _, at := range a.Attempts {
			if at.Error != "" {
				e.metrics.failover.Inc()
			}
			if at.Hedge {
				e.metrics.hedged.Inc()
			}
		}
	}
	e.metrics.routed.WithLabelValues(outcome, answerer).Observe(time.Since(t0).Seconds())
	return a, err
}

func (e *engine) query(ctx context.Context, q node.QueryRequest) (*node.QueryAnswer, error) {
	if q.Expert != "" && q.Domain != "" {
		return nil, errors.New("query: name an expert or a domain, not both")
	}
	var gated map[string]float64
	switch {
	case q.Expert == "" && q.Domain == "" && q.Text == "":
		return nil, errors.New("query: name an expert or a domain (only a text query can go without: the gating expert picks its domain)")
	case q.Expert == "" && q.Domain == "":
		domain, probs, err := e.chooseDomain(ctx, q.Text)
		if err != nil {
			return nil, err
		}
		q.Domain, gated = domain, probs
	case q.Domain != "" && q.Text != "":
		e.gate.Observe(q.Text, q.Domain) // the caller's choice of domain teaches the gate
	}
	if q.Expert != "" {
		st, err := e.d.Repo.Store()
		if err != nil {
			return nil, err
		}
		if _, err := cid.Decode(q.Expert); err != nil { // a name: hosted experts first, then the mesh's
			id, err := st.Resolve(ctx, q.Expert)
			if err != nil {
				remote, rerr := e.resolveRemoteName(q.Expert)
				if rerr != nil {
					return nil, fmt.Errorf("%w; %v", err, rerr)
				}
				q.Expert = remote
			} else {
				q.Expert = id.String()
			}
		}
	}
	timeout := time.Duration(q.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	req := routing.Request{Vector: q.Vector, Text: q.Text, Image: q.Image, Deadline: deadline}
	cands, err := e.candidates(ctx, q.Expert, q.Domain)
	if err != nil {
		return nil, err
	}
	ranked := e.router.Rank(cands, q.Domain, time.Now())
	if len(ranked) == 0 {
		return nil, fmt.Errorf("query: no local or remote expert for %s", orStr(q.Expert, "domain "+q.Domain))
	}
	call := func(ctx context.Context, c routing.Candidate) (routing.Response, error) { return e.call(ctx, c, req) }
	t0 := time.Now()
	if q.K <= 1 {
		ans, err := e.router.Dispatch(ctx, ranked, 0, call)
		if err != nil {
			return nil, err
		}
		e.checker.maybeCheck(req, ans)
		return &node.QueryAnswer{Answer: ans, Domain: q.Domain, Gate: gated, Micros: time.Since(t0).Microseconds()}, nil
	}
	mix, err := e.router.Mix(ctx, ranked, q.K, call)
	if err != nil {
		return nil, err
	}
	return &node.QueryAnswer{Answer: mix.Answer, Mixture: mix.Parts, Domain: q.Domain, Gate: gated, Micros: time.Since(t0).Microseconds()}, nil
}

// chooseDomain asks the gating expert, after telling it the domains the node knows now: each
// domain's expert names, from the hosted experts and the remote table.
func (e *engine) chooseDomain(ctx context.Context, text string) (string, map[string]float64, error) {
	seeds := map[string][]string{}
	add := func(domains []string, name string) {
		for _, d := range domains {
			if !slices.Contains(seeds[d], name) {
				seeds[d] = append(seeds[d], name)
			}
		}
	}
	hosted, err := e.hostedCandidates(ctx)
	if err != nil {
		return "", nil, err
	}
	for _, h := range hosted {
		add(h.Domains, h.Name)
	}
	for _, a := range e.d.Mesh.Adverts.Table().List(time.Now()) {
		add(a.Domains, a.Name)
	}
	for d := range seeds {
		slices.Sort(seeds[d])
	}
	e.gate.SetDomains(seeds)
	d, probs, err := e.gate.Choose(ctx, text)
	if err != nil {
		return "", nil, fmt.Errorf("query: choose a domain: %w", err)
	}
	return d, probs, nil
}

var gateKey = ds.NewKey("/gate/feedback")

// loadGate restores the gating expert's feedback from the database.
func (e *engine) loadGate(ctx context.Context) error {
	st, err := e.d.Repo.Store()
	if err != nil {
		return err
	}
	b, err := st.Datastore("/").Get(ctx, gateKey)
	if errors.Is(err, ds.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load gate feedback: %w", err)
	}
	var exs []routing.GateExample
	if err := json.Unmarshal(b, &exs); err != nil {
		return fmt.Errorf("load gate feedback: %w", err)
	}
	for _, ex := range exs {
		e.gate.Observe(ex.Text, ex.Domain)
	}
	return nil
}

// saveGate stores the gating expert's feedback.
func (e *engine) saveGate(ctx context.Context) error {
	st, err := e.d.Repo.Store()
	if err != nil {
		return err
	}
	b, err := json.Marshal(e.gate.Feedback())
	if err != nil {
		return err
	}
	if err := st.Datastore("/").Put(ctx, gateKey, b); err != nil {
		return fmt.Errorf("save gate feedback: %w", err)
	}
	return nil
}

func orStr(s, d string) string {
	if s != "" {
		return s
	}
	return d
}
