// Command meshbench measures advert propagation: it starts N meshnode daemons as processes on
// 127.0.0.1, each bootstrapped to the previous one, serves an expert on the first, and reports
// the time until every node lists it (p50 and p99 over repeated trials, from the arrival times
// the nodes record) and the gossip bytes each node sent per advert. Run it through
// bench/mesh.sh, which writes bench/results/mesh.md.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshnode/meshnode/bench/internal/procs"
	"github.com/meshnode/meshnode/node/api"
)

func main() {
	bin := flag.String("meshnode", "bin/meshnode", "meshnode binary")
	nodes := flag.Int("n", 10, "daemons to start")
	trials := flag.Int("trials", 20, "serve/withdraw cycles to time")
	out := flag.String("out", "", "append a markdown table row to this file")
	flag.Parse()
	if err := run(*bin, *nodes, *trials, *out); err != nil {
		fmt.Fprintln(os.Stderr, "meshbench:", err)
		os.Exit(1)
	}
}

func run(bin string, n, trials int, out string) error {
	dir, err := os.MkdirTemp("", "meshbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("preset: development\nmesh:\n  listen: [/ip4/127.0.0.1/tcp/0]\n  mdns: false\n  advert_ttl: 60s\n  advert_refresh: 20s\n"), 0o644); err != nil {
		return err
	}
	ds, err := procs.Init(bin, dir, cfg, n)
	if err != nil {
		return err
	}
	defer procs.KillAll(ds)
	if err := procs.Run(bin, "--repo", ds[0].Repo, "expert", "train", "--dataset", "iris", "--hidden", "4", "--epochs", "1", "--name", "bench"); err != nil {
		return err
	}
	if err := procs.StartChain(bin, ds); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d daemons up; letting the gossip mesh form\n", n)
	time.Sleep(3 * time.Second) // heartbeats (1 s) graft the mesh; nothing is measured yet
	ctx := context.Background()
	before, err := gossipBytes(ctx, ds)
	if err != nil {
		return err
	}
	sentBefore, err := metric(ctx, ds[0], "meshnode_adverts_sent_total")
	if err != nil {
		return err
	}
	var lat []time.Duration
	for k := 0; k < trials; k++ {
		t0 := time.Now()
		if err := ds[0].Client.Post(ctx, api.PathServe, api.ServeRequest{Ref: "bench"}, nil); err != nil {
			return err
		}
		last, err := waitAll(ctx, ds[1:], true)
		if err != nil {
			return fmt.Errorf("trial %d: %w", k, err)
		}
		lat = append(lat, last.Sub(t0))
		if err := ds[0].Client.Post(ctx, api.PathUnserve, api.ServeRequest{Ref: "bench"}, nil); err != nil {
			return err
		}
		if _, err := waitAll(ctx, ds[1:], false); err != nil {
			return fmt.Errorf("trial %d withdrawal: %w", k, err)
		}
	}
	time.Sleep(2 * time.Second) // libp2p's byte counters are swept into totals once a second
	after, err := gossipBytes(ctx, ds)
	if err != nil {
		return err
	}
	sentAfter, err := metric(ctx, ds[0], "meshnode_adverts_sent_total")
	if err != nil {
		return err
	}
	adverts := sentAfter - sentBefore
	var perNode []float64
	for i := range ds {
		perNode = append(perNode, (after[i]-before[i])/adverts)
	}
	sort.Float64s(perNode)
	peers := 0.0
	for _, d := range ds {
		var st api.StatusInfo
		if err := d.Client.Get(ctx, api.PathStatus, &st); err != nil {
			return err
		}
		peers += float64(st.Peers)
	}
	slices.Sort(lat)
	row := fmt.Sprintf("| %d | %d | %.1f | %s | %s | %s | %.0f | %.0f | %.0f |", n, trials, peers/float64(n),
		ms(pct(lat, 50)), ms(pct(lat, 99)), ms(lat[len(lat)-1]), adverts, mean(perNode), perNode[len(perNode)-1])
	fmt.Println(row)
	if out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintln(f, row)
	}
	return nil
}

// waitAll polls every node until each lists the expert (present) or none does, and returns
// the latest arrival time the nodes recorded.
func waitAll(ctx context.Context, ds []*procs.Daemon, present bool) (time.Time, error) {
	deadline := time.Now().Add(60 * time.Second)
	var last time.Time
	pending := slices.Clone(ds)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			return last, fmt.Errorf("%d nodes still waiting after 60s", len(pending))
		}
		var still []*procs.Daemon
		for _, d := range pending {
			var entries []struct {
				Name     string    `json:"name"`
				Received time.Time `json:"received"`
			}
			if err := d.Client.Get(ctx, api.PathRemote, &entries); err != nil {
				return last, err
			}
			found := false
			for _, e := range entries {
				if e.Name == "bench" {
					found = true
					if e.Received.After(last) {
						last = e.Received
					}
				}
			}
			if found != present {
				still = append(still, d)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	return last, nil
}

func gossipBytes(ctx context.Context, ds []*procs.Daemon) ([]float64, error) {
	var out []float64
	for _, d := range ds {
		v, err := metric(ctx, d, "meshnode_gossip_sent_bytes_total")
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// metric reads one unlabelled sample from the daemon's /metrics.
func metric(ctx context.Context, d *procs.Daemon, name string) (float64, error) {
	b, err := os.ReadFile(filepath.Join(d.Repo, api.APIFile))
	if err != nil {
		return 0, err
	}
	tok, err := os.ReadFile(filepath.Join(d.Repo, "api.token"))
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSpace(string(b))+api.PathMetrics, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

func pct(d []time.Duration, p float64) time.Duration {
	i := int(float64(len(d)-1) * p / 100)
	return d[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
