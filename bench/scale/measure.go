package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meshnode/meshnode/mesh"
)

// options are one run's parameters.
type options struct {
	Nodes, Domains, Experts int
	Churn                   float64
	Warmup, Measure         time.Duration
	QueryEvery              time.Duration
	ConnLow, ConnHigh       int
	Transport               string // "quic" or "tcp"
	DHTOnly                 bool
	Watchers                int
	Seed                    int64
}

// listen is the address every node listens on. QUIC by default: its connections share each
// node's one UDP socket, where TCP spends a file descriptor per connection end and a process
// has 20,000.
func (o options) listen() string {
	if o.Transport == "tcp" {
		return "/ip4/127.0.0.1/tcp/0"
	}
	return "/ip4/127.0.0.1/udp/0/quic-v1"
}

// result is one run's measurements. Per-node rates are over the nodes that lived through the
// whole measurement window.
type result struct {
	Date           string  `json:"date"`
	Cores          int     `json:"cores"`
	Nodes          int     `json:"nodes"`
	Domains        int     `json:"domains"`
	Experts        int     `json:"experts_per_node"`
	Churn          float64 `json:"churn_per_minute"`
	QueryEvery     float64 `json:"query_every_seconds"` // per node
	MeasureSeconds float64 `json:"measure_seconds"`
	WarmupSeconds  float64 `json:"warmup_seconds"`
	Discovery      string  `json:"discovery"` // what discovery the nodes ran (mesh config)
	Transport      string  `json:"transport"`

	DiscoveryBytes summary `json:"discovery_bytes_per_second"` // gossip + DHT streams, in + out
	GossipBytes    summary `json:"gossip_bytes_per_second"`
	DHTBytes       summary `json:"dht_bytes_per_second"`
	AllBytes       summary `json:"all_stream_bytes_per_second"`
	AdvertsIn      summary `json:"adverts_received_per_second"`
	Conns          summary `json:"connections"`        // every 5 s during the window
	IdleConns      summary `json:"connections_idle"`   // at the end of the warm-up, before churn and queries
	CPUPerNode     float64 `json:"cpu_share_per_node"` // process CPU time / wall time / nodes (1 = a whole core)
	HeapMiB        float64 `json:"heap_mib_per_node"`
	RSSMiB         float64 `json:"rss_mib_per_node"`

	// Discovery's own counts over the run, summed over the nodes alive at its end.
	Provides map[string]float64 `json:"provides"`
	Lookups  map[string]float64 `json:"lookups"`

	Replaced      int            `json:"replaced"`
	FoundMs       summary        `json:"found_ms"` // serve → listed by a watcher
	NotFound      int            `json:"not_found_in_10s"`
	Queries       int            `json:"queries"`
	Answered      int            `json:"answered"`
	QueryMs       summary        `json:"query_ms"`
	QueryFailures map[string]int `json:"query_failures,omitempty"`
}

// summary describes a sample.
type summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func summarise(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	q := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return summary{N: len(s), Mean: sum / float64(len(s)), P50: q(0.5), P99: q(0.99), Max: s[len(s)-1]}
}

// bench is a running mesh and what has been measured of it.
type bench struct {
	o   options
	cfg mesh.Config

	rngMu sync.Mutex
	rng   *rand.Rand

	mu       sync.Mutex
	nodes    []*benchNode
	found    []float64
	notFound int
	queries  int
	answered int
	queryMs  []float64
	failures map[string]int
	conns    []float64
}

func (b *bench) intn(n int) int {
	b.rngMu.Lock()
	defer b.rngMu.Unlock()
	return b.rng.IntN(n)
}

func (b *bench) domain() string { return "domain-" + strconv.Itoa(b.intn(b.o.Domains)) }

// live lists the running nodes.
func (b *bench) live() []*benchNode {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(b.nodes), func(n *benchNode) bool { return !n.live() })
}

func measure(ctx context.Context, o options) (result, error) {
	b := &bench{o: o, rng: rand.New(rand.NewPCG(uint64(o.Seed), 0)), failures: map[string]int{},
		cfg: mesh.Config{ListenAddrs: []string{o.listen()}, DHTOnly: o.DHTOnly, ConnLow: o.ConnLow, ConnHigh: o.ConnHigh}}
	defer b.closeAll()
	if err := b.start(ctx); err != nil {
		return result{}, err
	}
	logf("%d nodes up, each serving %d experts; warming up for %s", o.Nodes, o.Experts, o.Warmup)
	time.Sleep(o.Warmup)

	var idle []float64
	for _, n := range b.live() {
		idle = append(idle, float64(len(n.node.Host.Network().Conns())))
	}
	before := b.counters()
	windowStart, cpuStart := time.Now(), cpuTime()
	logf("measuring for %s", o.Measure)
	wctx, cancel := context.WithTimeout(ctx, o.Measure)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	replaced := 0
	go func() { defer wg.Done(); replaced = b.churn(wctx) }()
	go func() { defer wg.Done(); b.queryLoop(wctx) }()
	go func() { defer wg.Done(); b.sampleConns(wctx) }()
	wg.Wait()
	elapsed := time.Since(windowStart).Seconds()
	cpu := (cpuTime() - cpuStart).Seconds()
	after := b.counters()
	alive := len(b.live())
	heap, rss := memoryPerNode(alive)

	res := result{Date: time.Now().UTC().Format("2006-01-02"), Cores: runtime.NumCPU(), Nodes: o.Nodes, Domains: o.Domains,
		Experts: o.Experts, Churn: o.Churn, QueryEvery: o.QueryEvery.Seconds(), WarmupSeconds: o.Warmup.Seconds(), Transport: o.listen(), MeasureSeconds: elapsed, Replaced: replaced, CPUPerNode: cpu / elapsed / float64(alive), HeapMiB: heap, RSSMiB: rss,
		Discovery: describe(b.cfg)}
	var disc, gossip, dht, all, adv []float64
	for n, a := range after {
		s, ok := before[n]
		if !ok || n.started.After(windowStart) {
			continue
		}
		disc = append(disc, float64(a.gossip+a.dht-s.gossip-s.dht)/elapsed)
		gossip = append(gossip, float64(a.gossip-s.gossip)/elapsed)
		dht = append(dht, float64(a.dht-s.dht)/elapsed)
		all = append(all, float64(a.total-s.total)/elapsed)
		adv = append(adv, (a.adverts-s.adverts)/elapsed)
	}
	res.DiscoveryBytes, res.AllBytes, res.AdvertsIn = summarise(disc), summarise(all), summarise(adv)
	res.IdleConns = summarise(idle)
	res.GossipBytes, res.DHTBytes = summarise(gossip), summarise(dht)
	res.Provides, res.Lookups = map[string]float64{}, map[string]float64{}
	for _, n := range b.live() {
		addCounts(res.Provides, n.node.Metrics.Provides)
		addCounts(res.Lookups, n.node.Metrics.Lookups)
	}
	b.mu.Lock()
	res.Conns, res.FoundMs, res.NotFound = summarise(b.conns), summarise(b.found), b.notFound
	res.Queries, res.Answered, res.QueryMs, res.QueryFailures = b.queries, b.answered, summarise(b.queryMs), b.failures
	b.mu.Unlock()
	return res, nil
}

func describe(c mesh.Config) string {
	if c.DHTOnly {
		return fmt.Sprintf("DHT lookups and pulls, no advert gossip, TTL %s; connections %d-%d", c.AdvertTTL, c.ConnLow, c.ConnHigh)
	}
	return fmt.Sprintf("gossip on one adverts topic (TTL %s, refresh %s) and DHT lookups; connections %d-%d", c.AdvertTTL, c.AdvertRefresh, c.ConnLow, c.ConnHigh)
}

// bootstrapPeers are the addresses of three random running nodes: what a newcomer knows of the
// mesh (three shared bootstrap nodes would each have to take every newcomer's connection).
func (b *bench) bootstrapPeers() []string {
	live := b.live()
	b.rngMu.Lock()
	b.rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	b.rngMu.Unlock()
	var out []string
	for _, n := range live[:min(3, len(live))] {
		out = append(out, n.node.Addrs()...)
	}
	return out
}

// start brings up three seed nodes (never stopped by churn), then the rest, each bootstrapped
// to three random running nodes, and serves the experts.
func (b *bench) start(ctx context.Context) error {
	for range 3 {
		n, err := startNode(ctx, b.cfg, b.bootstrapPeers())
		if err != nil {
			return err
		}
		b.nodes = append(b.nodes, n)
	}
	b.cfg = b.nodes[0].node.Config() // with its defaults, for the report
	b.cfg.ListenAddrs = []string{b.o.listen()}
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
		errs = make(chan error, b.o.Nodes)
	)
	for i := 3; i < b.o.Nodes; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n, err := startNode(ctx, b.cfg, b.bootstrapPeers())
			if err != nil {
				errs <- err
				return
			}
			b.mu.Lock()
			b.nodes = append(b.nodes, n)
			b.mu.Unlock()
		}()
		if i%100 == 0 {
			logf("%d nodes started", i)
		}
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(collect(errs)...); err != nil {
		return err
	}
	time.Sleep(5 * time.Second) // let bootstrap connect before the first adverts
	for _, n := range b.live() {
		if _, err := n.serve(ctx, b.o.Experts, b.domain); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	return nil
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

// churn replaces Churn×N nodes a minute (never a seed), alternating graceful stops and crashes,
// and times how long each newcomer's first expert takes to reach the watchers.
func (b *bench) churn(ctx context.Context) int {
	per := time.Duration(float64(time.Minute) / (b.o.Churn * float64(b.o.Nodes)))
	t := time.NewTicker(per)
	defer t.Stop()
	var watchers sync.WaitGroup
	defer watchers.Wait()
	replaced := 0
	for {
		select {
		case <-ctx.Done():
			return replaced
		case <-t.C:
		}
		live := b.live()
		victim := live[3+b.intn(len(live)-3)] // the seeds come first and are never stopped
		crash := replaced%2 == 1
		go func() {
			if err := victim.stop(crash); err != nil {
				logf("stop node: %v", err)
			}
		}()
		n, err := startNode(context.Background(), b.cfg, b.bootstrapPeers())
		if err != nil {
			logf("start replacement: %v", err)
			continue
		}
		b.mu.Lock()
		b.nodes = append(b.nodes, n)
		b.mu.Unlock()
		replaced++
		// Time the first expert from a random sample of other nodes.
		ws := slices.DeleteFunc(b.live(), func(w *benchNode) bool { return w == n })
		b.rngMu.Lock()
		b.rng.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
		b.rngMu.Unlock()
		ws = ws[:min(len(ws), b.o.Watchers)]
		t0 := time.Now()
		s, err := n.serve(context.Background(), b.o.Experts, b.domain)
		if err != nil {
			logf("serve on replacement: %v", err)
			continue
		}
		for _, w := range ws {
			watchers.Add(1)
			go func() {
				defer watchers.Done()
				b.watch(w, s[0].ID, t0)
			}()
		}
	}
}

// watch polls w's discovery for id until it is found or 10 s have passed.
func (b *bench) watch(w *benchNode, id string, t0 time.Time) {
	deadline := t0.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !w.live() {
			return // stopped by churn meanwhile: no sample
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		ok := w.knows(ctx, id)
		cancel()
		if ok {
			b.mu.Lock()
			b.found = append(b.found, float64(time.Since(t0).Milliseconds()))
			b.mu.Unlock()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.mu.Lock()
	b.notFound++
	b.mu.Unlock()
}

// queryLoop sends a query from a random node to a random domain N times every QueryEvery.
func (b *bench) queryLoop(ctx context.Context) {
	t := time.NewTicker(b.o.QueryEvery / time.Duration(b.o.Nodes))
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		live := b.live()
		from, d := live[b.intn(len(live))], b.domain()
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.query(from, d)
		}()
	}
}

// query routes one query as the query router would: providers of the domain that discovery
// knows, least loaded first, up to three tried, each within 2 s.
func (b *bench) query(from *benchNode, d string) {
	t0 := time.Now()
	lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	ps := from.providers(lctx, d)
	cancel()
	b.rngMu.Lock()
	b.rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	b.rngMu.Unlock()
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Load < ps[j].Load })
	reason := "no provider known"
	ok := false
	for i := 0; i < len(ps) && i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := from.ask(ctx, ps[i].Provider)
		cancel()
		if err == nil {
			ok = true
			break
		}
		reason = failureReason(err)
	}
	if !from.live() {
		return // the querier was stopped mid-query: not a sample
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queries++
	if ok {
		b.answered++
		b.queryMs = append(b.queryMs, float64(time.Since(t0).Microseconds())/1000)
		return
	}
	b.failures[reason]++
}

func failureReason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no addresses"):
		return "no address for the provider"
	case strings.Contains(msg, "deadline"), strings.Contains(msg, "timeout"):
		return "timeout"
	case strings.Contains(msg, "dial"):
		return "dial failed"
	default:
		return "stream failed"
	}
}

// sampleConns records every live node's connection count every 5 s.
func (b *bench) sampleConns(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var cs []float64
		for _, n := range b.live() {
			cs = append(cs, float64(len(n.node.Host.Network().Conns())))
		}
		b.mu.Lock()
		b.conns = append(b.conns, cs...)
		b.mu.Unlock()
	}
}

type counters struct {
	gossip, dht, total int64
	adverts            float64
}

func (b *bench) counters() map[*benchNode]counters {
	out := map[*benchNode]counters{}
	for _, n := range b.live() {
		g, d, t := n.traffic()
		var m dto.Metric
		_ = n.node.Metrics.AdvertsReceived.Write(&m)
		out[n] = counters{gossip: g, dht: d, total: t, adverts: m.GetCounter().GetValue()}
	}
	return out
}

// addCounts adds a counter vector's values, by its one label, to sums.
func addCounts(sums map[string]float64, c *prometheus.CounterVec) {
	ch := make(chan prometheus.Metric, 16)
	go func() { c.Collect(ch); close(ch) }()
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil || len(pb.GetLabel()) == 0 {
			continue
		}
		sums[pb.GetLabel()[0].GetValue()] += pb.GetCounter().GetValue()
	}
}

// memoryPerNode is the Go heap in use and the process's resident memory, divided by n.
func memoryPerNode(n int) (heapMiB, rssMiB float64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapMiB = float64(ms.HeapInuse) / float64(n) / (1 << 20)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return heapMiB, 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			rssMiB = kb / 1024 / float64(n)
		}
	}
	return heapMiB, rssMiB
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (b *bench) closeAll() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, n := range b.live() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = n.stop(false)
		}()
	}
	wg.Wait()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s scale: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
