// Command expertfetch measures `meshnode expert fetch` as users see it: two meshnode daemons as
// processes on loopback, A holding 100K-parameter (400 KB) experts, B fetching each one through
// its local API (fetch, check against the CIDs, install). Half of A's experts are served, so B
// has their adverts (which name the weights) when it fetches; the other half are only held, so
// B knows nothing but the expert's ID. It writes a markdown section. Run it through
// bench/blobs.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meshnode/meshnode/bench/internal/procs"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

func main() {
	bin := flag.String("bin", "bin/meshnode", "meshnode binary")
	n := flag.Int("experts", 100, "experts fetched of each kind (advertised, not advertised)")
	gap := flag.Duration("gap", 50*time.Millisecond, "pause between fetches")
	out := flag.String("out", "", "file to append the markdown section to (default: stdout)")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "expertfetch: -experts must be at least 1")
		os.Exit(2)
	}
	if err := run(*bin, *n, *gap, *out); err != nil {
		fmt.Fprintln(os.Stderr, "expertfetch:", err)
		os.Exit(1)
	}
}

// sample is one fetch: the API call's wall time as the caller sees it, and the time the daemon
// reports for the transfer.
type sample struct{ call, transfer time.Duration }

func run(bin string, n int, gap time.Duration, out string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "expertfetch")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("preset: development\nmesh:\n  listen: [/ip4/127.0.0.1/tcp/0]\n  mdns: false\n"), 0o644); err != nil {
		return err
	}
	ds, err := procs.Init(bin, dir, cfg, 2)
	if err != nil {
		return err
	}
	defer procs.KillAll(ds)
	ids, params, err := addExperts(ctx, ds[0].Repo, 2*n)
	if err != nil {
		return err
	}
	if err := procs.StartChain(bin, ds); err != nil {
		return err
	}
	a, b := ds[0].Client, ds[1].Client
	// Only served experts: a node hands a hosted expert to no peer until it serves it, so the
	// other half shows the refusal (checked below), not a second way to fetch.
	served, held := ids[:n], ids[n:]
	for _, id := range served {
		if err := a.Post(ctx, api.PathServe, api.ServeRequest{Ref: id}, nil); err != nil {
			return fmt.Errorf("serve %s: %w", id, err)
		}
	}
	if err := waitAdverts(ctx, b, served, 30*time.Second); err != nil {
		return err
	}
	results := map[string][]sample{}
	for _, kind := range []struct {
		name string
		ids  []string
	}{{"advertised", served}} {
		for _, id := range kind.ids {
			time.Sleep(gap) // pacing, not synchronisation
			t0 := time.Now()
			var info api.BlobInfo
			if err := b.Post(ctx, api.PathExpertFetch, map[string]string{"cid": id}, &info); err != nil {
				return fmt.Errorf("fetch %s: %w", id, err)
			}
			call := time.Since(t0)
			if info.CID != id || info.Size < 390_000 {
				return fmt.Errorf("fetch %s: daemon reported %+v", id, info)
			}
			results[kind.name] = append(results[kind.name], sample{call, time.Duration(info.Seconds * float64(time.Second))})
		}
		fmt.Fprintf(os.Stderr, "expertfetch: %d %s experts fetched\n", len(kind.ids), kind.name)
	}
	refused := 0
	for _, id := range held[:min(5, len(held))] {
		var info api.BlobInfo
		if err := b.Post(ctx, api.PathExpertFetch, map[string]any{"cid": id, "timeout_ms": 2000}, &info); err != nil {
			refused++
		}
	}
	if refused != min(5, len(held)) {
		return fmt.Errorf("node B fetched %d of %d experts A holds but does not serve", min(5, len(held))-refused, min(5, len(held)))
	}
	var w io.Writer = os.Stdout
	if out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	fmt.Fprintf(w, "\n## `meshnode expert fetch` between two daemons\n\n")
	fmt.Fprintf(w, "Run: `expertfetch -experts %d -gap %s` on %s. Two meshnode daemons as processes on 127.0.0.1; A holds\n", n, gap, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(w, "%d distinct experts of %d parameters (784-126-10, about 400 KB of weights) and serves half of them; B\n", 2*n, params)
	fmt.Fprintf(w, "fetches each through its API, %s apart: fetch, check manifest and weights against their CIDs, install.\n", gap)
	fmt.Fprintf(w, "\"call\" is the API call as a client sees it; \"transfer\" is the part the daemon reports as the fetch.\n")
	fmt.Fprintf(w, "An advertised expert's advert names its weights, so manifest and weights are asked for at once. Fetches of\n")
	fmt.Fprintf(w, "%d experts A holds but does not serve were refused, as they must be.\n\n", refused)
	fmt.Fprintf(w, "| expert | fetches | call p50 | call p99 | call max | transfer p50 | transfer p99 |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	var budget strings.Builder
	for _, kind := range []string{"advertised", "not advertised"} {
		s := results[kind]
		calls := make([]time.Duration, len(s))
		transfers := make([]time.Duration, len(s))
		for i := range s {
			calls[i], transfers[i] = s[i].call, s[i].transfer
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s |\n", kind, len(s), ms(pct(calls, 50)), ms(pct(calls, 99)), ms(pct(calls, 100)),
			ms(pct(transfers, 50)), ms(pct(transfers, 99)))
		verdict := "met"
		if pct(calls, 50) >= 20*time.Millisecond {
			verdict = "**not met**"
		}
		fmt.Fprintf(&budget, "| 400 KB expert fetch p50 < 20 ms, %s, API call | %s | %s |\n", kind, ms(pct(calls, 50)), verdict)
	}
	fmt.Fprintf(w, "\n| budget | measured | |\n| --- | --- | --- |\n%s", budget.String())
	return nil
}

// addExperts stores k distinct 784-126-10 experts in the repo (before its daemon starts) and
// returns their IDs and the parameter count.
func addExperts(ctx context.Context, repo string, k int) ([]string, int, error) {
	r, err := node.Open(repo)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	st, err := r.Store()
	if err != nil {
		return nil, 0, err
	}
	labels := make([]string, 10)
	for i := range labels {
		labels[i] = fmt.Sprint(i)
	}
	var ids []string
	params := 0
	for i := range k {
		net, err := experts.NewNetwork(experts.MLP(784, []int{126}, "relu", 10, experts.OutputSoftmax), uint64(i+1))
		if err != nil {
			return nil, 0, err
		}
		params = net.ParamCount()
		m := &experts.Manifest{Name: fmt.Sprintf("fetchbench-%03d", i), Domains: []string{"bench"},
			Input:  experts.InputSpec{Kind: experts.InputVector},
			Output: experts.OutputSpec{Kind: experts.OutputClasses, Labels: labels}}
		c, err := st.AddNetwork(ctx, m, net, r.Identity)
		if err != nil {
			return nil, 0, fmt.Errorf("add expert %d: %w", i, err)
		}
		ids = append(ids, c.String())
	}
	return ids, params, nil
}

// waitAdverts waits until c's remote table lists every expert in ids.
func waitAdverts(ctx context.Context, c *api.Client, ids []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var entries []advert.Entry
		if err := c.Get(ctx, api.PathRemote, &entries); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if e.Weights != "" {
				seen[e.ID] = true
			}
		}
		missing := 0
		for _, id := range ids {
			if !seen[id] {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s B still lacks the adverts of %d of %d served experts", limit, missing, len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
