// Command scale measures discovery at mesh scale: it starts N real libp2p mesh nodes
// (mesh.New: TCP on 127.0.0.1, DHT, gossipsub, the advert table) in this one process, each
// serving a few experts across a set of domains, churns them (a share of the nodes replaced
// every minute, half by a graceful stop and half by a crash), and reports per-node discovery
// traffic and messages, connections, memory, the time from serve to the expert being found
// from other nodes, and the success and latency of queries routed by what discovery found.
//
// The experts are adverts of synthetic CIDs and a query is answered by a one-line stream
// handler: what is measured is discovery and reaching the provider, not running a network.
// Run it through bench/scale.sh, which writes bench/results/scale.md and scale.png.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var o options
	flag.IntVar(&o.Nodes, "n", 100, "nodes to start")
	flag.IntVar(&o.Domains, "domains", 20, "domains the experts are spread over")
	flag.IntVar(&o.Experts, "experts", 3, "experts each node serves")
	flag.Float64Var(&o.Churn, "churn", 0.10, "share of the nodes replaced per minute")
	flag.DurationVar(&o.Warmup, "warmup", 0, "time for the mesh to form and the first provides to settle before measuring (default 60 s + 0.4 s per node)")
	flag.IntVar(&o.ConnLow, "conn-low", 0, "connection manager low watermark (default: the mesh's)")
	flag.IntVar(&o.ConnHigh, "conn-high", 0, "connection manager high watermark (default: the mesh's)")
	flag.DurationVar(&o.Measure, "measure", 60*time.Second, "measurement window")
	flag.DurationVar(&o.QueryEvery, "query-every", 20*time.Second, "each node sends a query this often, on average")
	flag.IntVar(&o.Watchers, "watchers", 5, "nodes that time each newly served expert")
	flag.BoolVar(&o.DHTOnly, "dht-only", false, "discovery by DHT lookups and pulls only, without advert gossip")
	flag.StringVar(&o.Transport, "transport", "tcp", "tcp or quic (a TCP connection costs a file descriptor at each end; QUIC costs more CPU)")
	flag.Int64Var(&o.Seed, "seed", 1, "random seed")
	flag.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the measurement window to this file")
	out := flag.String("out", "", "append the result as one JSON line to this file")
	plot := flag.String("plot", "", "instead of running, read the JSON lines in -out and write a report: this PNG and the markdown file given by -md")
	md := flag.String("md", "", "markdown report (with -plot)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: scale [flags]\n\nexample:\n  scale -n 300 -measure 60s -out bench/results/scale.jsonl\n  scale -plot bench/results/scale.png -md bench/results/scale.md -out bench/results/scale.jsonl\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(o, *out, *plot, *md); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(o options, out, plotPath, md string) error {
	if plotPath != "" {
		if out == "" || md == "" {
			return errors.New("-plot needs -out (the results) and -md")
		}
		return report(out, plotPath, md)
	}
	if o.Nodes < 4 {
		return errors.New("-n must be at least 4")
	}
	if o.Warmup == 0 {
		// Every node starts at once and provides its keys: a storm a real mesh never sees,
		// which takes about this long to settle on 2 cores.
		o.Warmup = time.Minute + time.Duration(o.Nodes)*400*time.Millisecond
	}
	ctx := context.Background()
	res, err := measure(ctx, o)
	if err != nil {
		return err
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	if out == "" {
		return nil
	}
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(append(line, '\n'))
	return err
}
