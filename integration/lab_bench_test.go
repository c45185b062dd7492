package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/internal/netlab"
)

// TestLabNetworkBench measures the mesh on the lab's links and writes bench/results/network.md.
// It is a benchmark, not a check: it runs only when MESHNODE_LAB_BENCH names the report to
// write (make bench-network), and fails only when the mesh does not work at all.
func TestLabNetworkBench(t *testing.T) {
	out := os.Getenv("MESHNODE_LAB_BENCH")
	if out == "" {
		t.Skip("a benchmark: set MESHNODE_LAB_BENCH=FILE (make bench-network)")
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Network lab: the mesh over latency, loss, rate limits and NATs\n\n")
	fmt.Fprintf(&md, "Measured %s by `make bench-network` (integration.TestLabNetworkBench) on this machine's\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&md, "network lab (`internal/netlab`: namespaces, veth, a router namespace, iptables NAT; delay by an\n")
	fmt.Fprintf(&md, "NFQUEUE delayer because this kernel has no netem, loss by iptables' statistic match, rate by tbf).\n")
	fmt.Fprintf(&md, "Every node is a `meshnode daemon` process in its own namespace.\n\n")

	// MESHNODE_LAB_BENCH_SECTIONS (comma-separated) runs some of them: rtt, hedge, adverts,
	// fetch, holepunch.
	sections := map[string]func(*testing.T, *strings.Builder){"rtt": benchQueryRTT, "hedge": benchHedgeLoss,
		"adverts": benchAdverts, "fetch": benchFetchRate, "holepunch": benchHolePunch}
	only := os.Getenv("MESHNODE_LAB_BENCH_SECTIONS")
	for _, name := range []string{"rtt", "hedge", "adverts", "fetch", "holepunch"} {
		if only == "" || slices.Contains(strings.Split(only, ","), name) {
			// A subtest each, so each section's labs and daemons are gone before the next.
			t.Run(name, func(t *testing.T) { sections[name](t, &md) })
		}
	}
	if err := os.WriteFile(out, []byte(md.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}

// apiClient talks to a lab node's API from this process: its connections are dialed inside
// the node's namespace, where the API listens on loopback.
func (n *labNode) apiClient() *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := n.host.Do(func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
		MaxIdleConnsPerHost: 4,
	}}
}

// apiPost posts a JSON body to the node's API and decodes the answer.
func (n *labNode) apiPost(c *http.Client, path string, body, out any) error {
	tok, err := os.ReadFile(filepath.Join(n.repo, "api.token"))
	if err != nil {
		return err
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, n.d.API+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s: status %d: %s", path, resp.StatusCode, e.Error)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// labPair is a querier and providers of one expert on public sites with the given link.
func labPair(t *testing.T, name string, providers int, link netlab.Link) (q *labNode, ps []*labNode, id string) {
	t.Helper()
	lab := newLab(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var nodes []*labNode
	for i := range providers + 1 {
		h, err := lab.AddPublic(ctx, fmt.Sprintf("%s%d", name, i), link)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, initLabNode(t, h, "public"))
	}
	q, ps = nodes[0], nodes[1:]
	id, _ = labExpert(t, ps[0], "iris-"+name, []float64{5.9, 3.0, 5.1, 1.8})
	file := filepath.Join(t.TempDir(), "e.safetensors")
	cli(t, ps[0].repo, "expert", "export", id, file)
	for _, p := range ps[1:] {
		cli(t, p.repo, "expert", "import", file)
	}
	q.start(t)
	for _, p := range ps {
		p.start(t, q.addr(t))
		if _, err := p.cli("expert", "serve", id); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range ps {
		waitFor(t, 30*time.Second, "the querier sees "+p.name, func() (bool, error) { return q.hasRemote(id, p.d.PeerID) })
	}
	return q, ps, id
}

// queryLatencies runs n sequential queries through q's API and returns their latencies as the
// client measured them.
func queryLatencies(t *testing.T, q *labNode, id string, n int) []time.Duration {
	t.Helper()
	c := q.apiClient()
	body := map[string]any{"expert": id, "vector": []float64{5.9, 3.0, 5.1, 1.8}, "timeout_ms": 10000}
	var lat []time.Duration
	for i := range n + 5 {
		var a answer
		start := time.Now()
		if err := q.apiPost(c, "/api/v1/query", body, &a); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if i >= 5 { // the first few dial and warm the router's statistics
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	return lat
}

func pct(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func benchQueryRTT(t *testing.T, md *strings.Builder) {
	fmt.Fprintf(md, "## Query latency against the round-trip time\n\n")
	fmt.Fprintf(md, "One querier and one provider on public sites; each site's one-way delay is RTT/4 (two links\n")
	fmt.Fprintf(md, "each way). 200 sequential queries of a 35-parameter iris expert through the querier's API, after 5\n")
	fmt.Fprintf(md, "warm-up queries; latency as the API client measured it (loopback HTTP included).\n\n")
	fmt.Fprintf(md, "| RTT (ms) | p50 (ms) | p99 (ms) | p50 / RTT | p99 / RTT |\n|---|---|---|---|---|\n")
	for _, rtt := range []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond} {
		q, _, id := labPair(t, fmt.Sprintf("r%d", rtt.Milliseconds()), 1, netlab.Link{Delay: rtt / 4})
		lat := queryLatencies(t, q, id, 200)
		p50, p99 := pct(lat, 0.5), pct(lat, 0.99)
		fmt.Fprintf(md, "| %d | %s | %s | %.2f | %.2f |\n", rtt.Milliseconds(), ms(p50), ms(p99), float64(p50)/float64(rtt), float64(p99)/float64(rtt))
		t.Logf("RTT %s: p50 %s p99 %s", rtt, p50, p99)
	}
	fmt.Fprintln(md)
}

func benchHedgeLoss(t *testing.T, md *strings.Builder) {
	fmt.Fprintf(md, "## Hedging at 1%% loss\n\n")
	fmt.Fprintf(md, "RTT 50 ms and 1%% loss on each site's link, each direction (a packet crosses two links: about\n")
	fmt.Fprintf(md, "2%% end to end). With one provider a lost packet waits for TCP's retransmission; with two, the\n")
	fmt.Fprintf(md, "router asks the second when the first is slower than its recent p95 (a hedge), and the first\n")
	fmt.Fprintf(md, "answer wins. 300 sequential queries each.\n\n")
	fmt.Fprintf(md, "| providers | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---|---|\n")
	for _, n := range []int{1, 2} {
		q, _, id := labPair(t, fmt.Sprintf("h%d", n), n, netlab.Link{Delay: 12500 * time.Microsecond, Loss: 0.01})
		lat := queryLatencies(t, q, id, 300)
		fmt.Fprintf(md, "| %d | %s | %s | %s | %s |\n", n, ms(pct(lat, 0.5)), ms(pct(lat, 0.9)), ms(pct(lat, 0.99)), ms(lat[len(lat)-1]))
		t.Logf("%d providers at 1%% loss: p50 %s p99 %s", n, pct(lat, 0.5), pct(lat, 0.99))
	}
	fmt.Fprintln(md)
}

func benchFetchRate(t *testing.T, md *strings.Builder) {
	const size = 64 << 20
	const rateMbit = 100.0
	lab := newLab(t, "fetch")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// 12.5 ms one-way per site: 50 ms RTT; 100 Mbit/s on both sites' links.
	link := netlab.Link{Delay: 12500 * time.Microsecond, RateMbit: rateMbit}
	var nodes []*labNode
	for i := range 2 {
		h, err := lab.AddPublic(ctx, fmt.Sprintf("f%d", i), link)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, initLabNode(t, h, "public"))
	}
	src, dst := nodes[0], nodes[1]
	file := filepath.Join(t.TempDir(), "blob.bin")
	data := make([]byte, size)
	_, _ = rand.Read(data)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tcpMbit := rawTCPMbit(t, src.host, dst.host, size)
	src.start(t)
	dst.start(t, src.addr(t))
	var put struct {
		CID string `json:"cid"`
	}
	if err := src.json(&put, "blob", "put", file); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := dst.cli("blob", "get", put.CID, "--output", filepath.Join(t.TempDir(), "got.bin")); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	linkTime := time.Duration(float64(size*8) / (rateMbit * 1e6) * float64(time.Second))
	got := float64(size*8) / took.Seconds() / 1e6
	fmt.Fprintf(md, "## A 64 MiB fetch over a 50 ms, 100 Mbit/s link\n\n")
	fmt.Fprintf(md, "`meshnode blob get` of a 64 MiB random blob (UnixFS, 1 MiB chunks) over bitswap; both sites'\n")
	fmt.Fprintf(md, "links shaped to 100 Mbit/s with tbf and 12.5 ms one-way each (50 ms RTT). Time includes the\n")
	fmt.Fprintf(md, "CLI's start and the write to disk.\n\n")
	fmt.Fprintf(md, "The reference is one plain TCP stream carrying the same 64 MiB over the same link, measured in\n")
	fmt.Fprintf(md, "the same lab just before (what the link and its shaping give one connection).\n\n")
	fmt.Fprintf(md, "| bytes | time (s) | Mbit/s | link's time at 100 Mbit/s (s) | share of the link's rate | plain TCP on the link (Mbit/s) | share of plain TCP |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(md, "| %d | %.2f | %.1f | %.2f | %.2f | %.1f | %.2f |\n\n", size, took.Seconds(), got, linkTime.Seconds(), got/rateMbit, tcpMbit, got/tcpMbit)
	t.Logf("64 MiB fetch: %s (%.1f Mbit/s)", took, got)
}

func benchHolePunch(t *testing.T, md *strings.Builder) {
	const trials = 5
	fmt.Fprintf(md, "## Hole punching per NAT behaviour\n\n")
	fmt.Fprintf(md, "Per trial: a fresh lab with four public nodes (10 ms one-way links), two homes behind NATs of\n")
	fmt.Fprintf(md, "the same behaviour; one home queries an expert on the other (through the relay), then waits up\n")
	fmt.Fprintf(md, "to 30 s for a direct connection. Time from the first query's answer to the direct connection.\n\n")
	fmt.Fprintf(md, "| NAT behaviour | trials | direct | success rate | time to direct, median (s) |\n|---|---|---|---|---|\n")
	for _, kind := range []netlab.NATKind{netlab.EndpointIndependent, netlab.Symmetric} {
		direct := 0
		var times []time.Duration
		for trial := range trials {
			ok, took := holePunchTrial(t, fmt.Sprintf("hp%d%d", kind, trial), kind)
			if ok {
				direct++
				times = append(times, took)
			}
		}
		med := "-"
		if len(times) > 0 {
			slices.Sort(times)
			med = fmt.Sprintf("%.2f", times[len(times)/2].Seconds())
		}
		fmt.Fprintf(md, "| %s | %d | %d | %.0f%% | %s |\n", kind, trials, direct, 100*float64(direct)/trials, med)
	}
	fmt.Fprintln(md)
}

// holePunchTrial runs one trial in a lab of its own (removed before it returns).
func holePunchTrial(t *testing.T, name string, kind netlab.NATKind) (bool, time.Duration) {
	var ok bool
	var took time.Duration
	t.Run(name, func(t *testing.T) {
		lab := newLab(t, name)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		link := netlab.Link{Delay: 10 * time.Millisecond}
		var boot []string
		for i := range 4 {
			h, err := lab.AddPublic(ctx, fmt.Sprintf("p%d", i), link)
			if err != nil {
				t.Fatal(err)
			}
			n := initLabNode(t, h, "public")
			n.start(t, boot...)
			boot = append(boot, n.addrs()...)
		}
		var homes []*labNode
		for _, s := range []string{"a", "b"} {
			nat, err := lab.AddNAT(ctx, "n"+s, kind, link)
			if err != nil {
				t.Fatal(err)
			}
			h, err := nat.AddHost(ctx, "h"+s)
			if err != nil {
				t.Fatal(err)
			}
			homes = append(homes, initLabNode(t, h, "auto"))
		}
		input := []float64{5.9, 3.0, 5.1, 1.8}
		id, _ := labExpert(t, homes[1], "iris-hp", input)
		for _, h := range homes {
			h.start(t, boot...)
		}
		for _, h := range homes {
			waitFor(t, 90*time.Second, h.name+" private", func() (bool, error) {
				st, err := h.status()
				return err == nil && st.Reachability == "Private" && strings.Contains(strings.Join(st.Addrs, " "), "/p2p-circuit"), err
			})
		}
		if _, err := homes[1].cli("expert", "serve", id); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "advert", func() (bool, error) { return homes[0].hasRemote(id, homes[1].d.PeerID) })
		if _, err := homes[0].query(id, input, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for time.Since(start) < 30*time.Second {
			if p, conn, err := homes[0].peer(homes[1].d.PeerID); err == nil && conn && !p.Relayed {
				ok, took = true, time.Since(start)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	return ok, took
}

// rawTCPMbit sends n bytes over one plain TCP connection from src to dst (sockets made in
// their namespaces) and returns the rate the receiver saw.
func rawTCPMbit(t *testing.T, src, dst *netlab.Host, n int64) float64 {
	t.Helper()
	var ln net.Listener
	if err := src.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", src.IP.String()+":5001")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1<<20)
		for sent := int64(0); sent < n; {
			k, err := c.Write(buf[:min(int64(len(buf)), n-sent)])
			if err != nil {
				return
			}
			sent += int64(k)
		}
	}()
	var c net.Conn
	if err := dst.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", src.IP.String()+":5001", 10*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	start := time.Now()
	got, err := io.CopyN(io.Discard, c, n)
	if err != nil {
		t.Fatalf("plain TCP reference: %d of %d bytes: %v", got, n, err)
	}
	return float64(n*8) / time.Since(start).Seconds() / 1e6
}

func benchAdverts(t *testing.T, md *strings.Builder) {
	const n = 30
	lab := newLab(t, "adv")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var nodes []*labNode
	for i := range n {
		// 12.5 ms one-way per site: 50 ms RTT between any two nodes.
		h, err := lab.AddPublic(ctx, fmt.Sprintf("a%d", i), netlab.Link{Delay: 12500 * time.Microsecond})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, initLabNode(t, h, "public"))
	}
	id, _ := labExpert(t, nodes[n-1], "iris-adv", []float64{5.9, 3.0, 5.1, 1.8})
	nodes[0].start(t)
	for i, nd := range nodes[1:] {
		// Each bootstraps to the first node and to the one started before it.
		nd.start(t, nodes[0].addr(t), nodes[i].addr(t))
	}
	time.Sleep(15 * time.Second) // gossipsub meshes form over a few heartbeats
	if _, err := nodes[n-1].cli("expert", "serve", id); err != nil {
		t.Fatal(err)
	}
	var delays []time.Duration
	for _, nd := range nodes[:n-1] {
		var e struct {
			Time     int64     `json:"time"`
			Received time.Time `json:"received"`
		}
		waitFor(t, 30*time.Second, nd.name+" has the advert", func() (bool, error) {
			var entries []struct {
				ID       string    `json:"id"`
				Time     int64     `json:"time"`
				Received time.Time `json:"received"`
			}
			if err := nd.json(&entries, "expert", "list", "--remote"); err != nil {
				return false, err
			}
			i := slices.IndexFunc(entries, func(x struct {
				ID       string    `json:"id"`
				Time     int64     `json:"time"`
				Received time.Time `json:"received"`
			}) bool {
				return x.ID == id
			})
			if i < 0 {
				return false, nil
			}
			e.Time, e.Received = entries[i].Time, entries[i].Received
			return true, nil
		})
		delays = append(delays, e.Received.Sub(time.UnixMilli(e.Time)))
	}
	slices.Sort(delays)
	fmt.Fprintf(md, "## Advert propagation across 30 nodes at 50 ms RTT\n\n")
	fmt.Fprintf(md, "30 daemons on public sites, 12.5 ms one-way each (50 ms between any two), each bootstrapped to\n")
	fmt.Fprintf(md, "the first and to the one started before it; gossip on (the default). One serves an expert; per\n")
	fmt.Fprintf(md, "other node, the advert's arrival in its table minus its publication time (one clock).\n\n")
	fmt.Fprintf(md, "| nodes | p50 (ms) | p99 (ms) | max (ms) | one RTT (ms) |\n|---|---|---|---|---|\n")
	fmt.Fprintf(md, "| %d | %s | %s | %s | 50 |\n\n", n, ms(pct(delays, 0.5)), ms(pct(delays, 0.99)), ms(delays[len(delays)-1]))
	t.Logf("advert across %d nodes at 50 ms RTT: p50 %s p99 %s", n, pct(delays, 0.5), pct(delays, 0.99))
}
