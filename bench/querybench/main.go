// Command querybench measures queries in one run on loopback and writes a markdown table:
// local query latency for 10K- and 100K-parameter experts; remote query latency and
// throughput between two in-process daemons at concurrency 1, 16 and 64; and beside them a
// bare libp2p stream echo and a plain TCP echo of the same payload, so the router's overhead
// shows as ratios. Run it through bench/query.sh.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon"
	"github.com/meshnode/meshnode/routing"
)

func main() {
	dur := flag.Duration("duration", 3*time.Second, "how long each measurement runs")
	out := flag.String("out", "bench/results/query.md", "markdown file to write")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the run")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "querybench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*dur, *out); err != nil {
		fmt.Fprintln(os.Stderr, "querybench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

type result struct {
	name        string
	conc        int
	p50, p99    time.Duration
	opsPerSec   float64
	payloadSize int
}

// measure runs op from conc goroutines for d and returns latency percentiles and throughput.
func measure(name string, conc int, d time.Duration, op func(worker int) error) (result, error) {
	var mu sync.Mutex
	var lats []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := op(w); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, fmt.Errorf("%s: %w", name, firstErr)
	}
	elapsed := time.Since(start)
	slices.Sort(lats)
	return result{name: name, conc: conc, p50: lats[len(lats)/2], p99: lats[len(lats)*99/100],
		opsPerSec: float64(len(lats)) / elapsed.Seconds()}, nil
}

// startNode makes a repo with an expert of the given hidden width and starts its daemon.
func startNode(ctx context.Context, dir string, hidden int, bootstrap []string) (*daemon.Daemon, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("preset: development\nmesh:\n  listen: [/ip4/127.0.0.1/tcp/0]\n  mdns: false\n  max_memory_mib: 2048\nquery:\n  peer_rate: 1000000\n  peer_burst: 1000000\n  streams_per_peer: 256\n"), 0o644); err != nil {
		return nil, "", err
	}
	r, err := node.Init(ctx, filepath.Join(dir, "repo"), node.InitOptions{ConfigFile: cfgFile})
	if err != nil {
		return nil, "", err
	}
	id := ""
	if hidden > 0 {
		net, err := experts.NewNetwork(experts.MLP(784, []int{hidden}, "relu", 10, experts.OutputSoftmax), 1)
		if err != nil {
			return nil, "", err
		}
		labels := make([]string, 10)
		for i := range labels {
			labels[i] = fmt.Sprint(i)
		}
		m := &experts.Manifest{Name: fmt.Sprintf("bench-%d", net.ParamCount()), Domains: []string{"bench"},
			Input:  experts.InputSpec{Kind: experts.InputVector},
			Output: experts.OutputSpec{Kind: experts.OutputClasses, Labels: labels}}
		st, err := r.Store()
		if err != nil {
			return nil, "", err
		}
		c, err := st.AddNetwork(ctx, m, net, r.Identity)
		if err != nil {
			return nil, "", err
		}
		id = c.String()
	}
	d, err := daemon.Start(ctx, r, daemon.Options{Bootstrap: bootstrap})
	return d, id, err
}

func run(dur time.Duration, out string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "querybench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	server, id10k, err := startNode(ctx, filepath.Join(dir, "b"), 12, nil)
	if err != nil {
		return err
	}
	defer server.Close()
	id100k, err := addExpert(ctx, server, 126)
	if err != nil {
		return err
	}
	client, _, err := startNode(ctx, filepath.Join(dir, "a"), 0, server.Mesh.Addrs()[:1])
	if err != nil {
		return err
	}
	defer client.Close()
	for _, id := range []string{id10k, id100k} {
		if _, err := server.Serve(ctx, id); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(client.Mesh.Adverts.Table().Providers(id100k, time.Now())) == 0 || len(client.Mesh.Adverts.Table().Providers(id10k, time.Now())) == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("the client never saw the server's adverts")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	vec := make([]float32, 784)
	for i := range vec {
		vec[i] = rng.Float32()
	}
	payload := routing.EncodeRequest(routing.Request{Expert: id10k, Vector: vec, Deadline: time.Now().Add(time.Hour)})

	var rows []result
	add := func(r result, err error) error {
		if err != nil {
			return err
		}
		r.payloadSize = len(payload)
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "%-28s c=%-3d p50 %8s p99 %8s %9.0f ops/s\n", r.name, r.conc, r.p50, r.p99, r.opsPerSec)
		return nil
	}
	// Local queries through the router on the node that hosts the experts.
	for _, ex := range []struct{ name, id string }{{"local query 10K", id10k}, {"local query 100K", id100k}} {
		q := api.QueryRequest{Expert: ex.id, Vector: vec}
		if err := add(measure(ex.name, 1, dur, func(int) error { _, err := server.Query(ctx, q); return err })); err != nil {
			return err
		}
	}
	// Echo baselines between the same two hosts.
	echo := startEcho(server)
	tcpAddr, stopTCP, err := startTCPEcho()
	if err != nil {
		return err
	}
	defer stopTCP()
	for _, conc := range []int{1, 16, 64} {
		streams, err := openEchoStreams(ctx, client, server.Mesh.Host.ID(), conc)
		if err != nil {
			return err
		}
		if err := add(measure("libp2p stream echo", conc, dur, func(w int) error { return streams[w].roundTrip(payload) })); err != nil {
			return err
		}
		conns, err := openTCP(tcpAddr, conc)
		if err != nil {
			return err
		}
		if err := add(measure("TCP echo", conc, dur, func(w int) error { return conns[w].roundTrip(payload) })); err != nil {
			return err
		}
		for _, ex := range []struct{ name, id string }{{"remote query 10K", id10k}, {"remote query 100K", id100k}} {
			q := api.QueryRequest{Expert: ex.id, Vector: vec}
			if err := add(measure(ex.name, conc, dur, func(int) error {
				a, err := client.Query(ctx, q)
				if err == nil && a.Candidate.Local {
					err = fmt.Errorf("answered locally")
				}
				return err
			})); err != nil {
				return err
			}
		}
		for _, s := range streams {
			s.s.Close()
		}
		for _, c := range conns {
			c.s.Close()
		}
	}
	_ = echo
	return write(out, rows, dur)
}

func addExpert(ctx context.Context, d *daemon.Daemon, hidden int) (string, error) {
	net, err := experts.NewNetwork(experts.MLP(784, []int{hidden}, "relu", 10, experts.OutputSoftmax), 2)
	if err != nil {
		return "", err
	}
	labels := make([]string, 10)
	for i := range labels {
		labels[i] = fmt.Sprint(i)
	}
	m := &experts.Manifest{Name: fmt.Sprintf("bench-%d", net.ParamCount()), Domains: []string{"bench"},
		Input: experts.InputSpec{Kind: experts.InputVector}, Output: experts.OutputSpec{Kind: experts.OutputClasses, Labels: labels}}
	st, err := d.Repo.Store()
	if err != nil {
		return "", err
	}
	var s *store.Store = st
	c, err := s.AddNetwork(ctx, m, net, d.Repo.Identity)
	return c.String(), err
}

const echoProto = "/meshnode/bench/echo/1"

// startEcho answers length-prefixed messages on echoProto with the same bytes, on one
// persistent stream per caller: the bare libp2p cost of a request and its reply.
func startEcho(d *daemon.Daemon) struct{} {
	d.Mesh.Host.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		_ = echoLoop(s)
	})
	return struct{}{}
}

func echoLoop(rw io.ReadWriter) error {
	r := bufio.NewReader(rw)
	w := bufio.NewWriter(rw)
	for {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return err
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		var hdr [binary.MaxVarintLen64]byte
		w.Write(hdr[:binary.PutUvarint(hdr[:], n)])
		w.Write(buf)
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

type echoConn struct {
	s io.ReadWriteCloser
	r *bufio.Reader
	w *bufio.Writer
}

func (c *echoConn) roundTrip(p []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	c.w.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(p)))])
	c.w.Write(p)
	if err := c.w.Flush(); err != nil {
		return err
	}
	n, err := binary.ReadUvarint(c.r)
	if err != nil {
		return err
	}
	_, err = io.CopyN(io.Discard, c.r, int64(n))
	return err
}

func openEchoStreams(ctx context.Context, d *daemon.Daemon, p peer.ID, n int) ([]*echoConn, error) {
	var out []*echoConn
	for i := 0; i < n; i++ {
		s, err := d.Mesh.Host.NewStream(ctx, p, echoProto)
		if err != nil {
			return nil, err
		}
		out = append(out, &echoConn{s: s, r: bufio.NewReader(s), w: bufio.NewWriter(s)})
	}
	return out, nil
}

func startTCPEcho() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = echoLoop(c) }()
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }, nil
}

func openTCP(addr string, n int) ([]*echoConn, error) {
	var out []*echoConn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		out = append(out, &echoConn{s: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)})
	}
	return out, nil
}

func write(path string, rows []result, dur time.Duration) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	find := func(name string, conc int) result {
		for _, r := range rows {
			if r.name == name && r.conc == conc {
				return r
			}
		}
		return result{}
	}
	fmt.Fprintf(f, "# Query latency and throughput\n\nRun: `bash bench/query.sh` on %s, %d cores. Two daemons in one process on 127.0.0.1 (they share the cores);\n", time.Now().UTC().Format("2006-01-02"), runtimeCPUs())
	fmt.Fprintf(f, "each line runs %s. A query carries 784 float32s (%d bytes); the echoes send the same payload and\nget it back on persistent streams / connections. Remote queries go through the router (ranking, dispatch, stats)\nand the query protocol; the 10K expert is 784-12-10, the 100K one 784-126-10.\n\n", dur, rows[0].payloadSize)
	fmt.Fprintln(f, "| what | concurrency | p50 | p99 | ops/s | p50 ÷ libp2p echo p50 |")
	fmt.Fprintln(f, "| --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		ratio := "-"
		if e := find("libp2p stream echo", r.conc); e.p50 > 0 && r.name != "libp2p stream echo" && r.conc > 0 && !isLocal(r.name) {
			ratio = fmt.Sprintf("%.2f×", float64(r.p50)/float64(e.p50))
		}
		fmt.Fprintf(f, "| %s | %d | %s | %s | %.0f | %s |\n", r.name, r.conc, us(r.p50), us(r.p99), r.opsPerSec, ratio)
	}
	q := find("remote query 10K", 1)
	e := find("libp2p stream echo", 1)
	best := 0.0
	for _, c := range []int{1, 16, 64} {
		best = max(best, find("remote query 10K", c).opsPerSec)
	}
	fmt.Fprintf(f, "\nBudgets: remote p50 ≤ 2× the bare libp2p echo at concurrency 1: %.2f×; ≥ 10,000 remote queries/s with the 10K expert: %.0f/s.\n",
		float64(q.p50)/float64(e.p50), best)
	return nil
}

func isLocal(name string) bool { return len(name) >= 5 && name[:5] == "local" }

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Nanoseconds())/1000) }

func runtimeCPUs() int { return runtime.NumCPU() }
