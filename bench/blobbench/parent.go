package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/experts/store"
)

// runParent imports the blobs into the providers, runs every case in child processes and writes
// the report to out (standard output if empty).
func runParent(ctx context.Context, sizes []int64, small int64, trials, nprov, repeat int, memStore bool, configs []string, out string) error {
	dir, err := os.MkdirTemp("", "blobbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	m := &measurements{args: os.Args[1:], sizes: sizes, small: small, trials: trials, repeat: repeat,
		loadStart: readLoadavg(), runs: map[caseKey][]result{}}
	// Provider stores: every large blob in every store, the small blobs in the first.
	stores := make([]*store.Store, nprov)
	for i := range stores {
		if stores[i], err = store.Open(filepath.Join(dir, fmt.Sprintf("provider%d", i)), store.Options{}); err != nil {
			return err
		}
		defer stores[i].Close()
	}
	profiles := map[string]bool{}
	for _, c := range configs {
		profiles[importProfile(c)] = true
	}
	large := map[string][]cid.Cid{} // by profile
	// Expert-sized blobs (weights) and, for each, a manifest-sized block naming it.
	type smallSet struct{ weights, manifests []string }
	smallBlobs := map[string]*smallSet{}
	for profile := range profiles {
		large[profile] = make([]cid.Cid, len(sizes))
		for j, size := range sizes {
			for i, st := range stores {
				start := time.Now()
				c, err := putBlob(ctx, st, profile, data(uint64(100+j), size))
				if err != nil {
					return fmt.Errorf("import %d bytes: %w", size, err)
				}
				large[profile][j] = c
				logf("imported %s (%s chunking) into provider %d in %.1fs", human(size), profile, i, time.Since(start).Seconds())
			}
		}
		set := &smallSet{}
		for i := range trials {
			w, err := putBlob(ctx, stores[0], profile, data(uint64(1000+i), small))
			if err != nil {
				return fmt.Errorf("import small blob: %w", err)
			}
			m, err := putBlob(ctx, stores[0], "node", manifestLike(w)) // a manifest is one raw block either way
			if err != nil {
				return fmt.Errorf("import manifest-sized block: %w", err)
			}
			set.weights = append(set.weights, w.String())
			set.manifests = append(set.manifests, m.String())
		}
		smallBlobs[profile] = set
	}

	scenario := func(cfgName string, np int, mode string, roots, links []string, rawBytes int64, gap time.Duration, mem bool) (result, error) {
		cfg, err := configByName(cfgName)
		if err != nil {
			return result{}, err
		}
		var addrs []string
		for i := range np {
			n, err := newNode(ctx, stores[i].Blockstore(), cfg)
			if err != nil {
				return result{}, err
			}
			defer n.close()
			n.host.SetStreamHandler(rawProtocol, serveRaw)
			addrs = append(addrs, n.addr())
		}
		return spawn(ctx, job{Config: cfgName, Providers: addrs, Roots: roots, Mode: mode, Links: links, RawBytes: rawBytes,
			GapMillis: gap.Milliseconds(), MemStore: mem})
	}

	stopProfile, err := profileCPU("BLOBBENCH_PARENT_CPUPROFILE") // a debugging aid: profile the providers
	if err != nil {
		return err
	}
	defer stopProfile()

	// Small blobs: isolated fetches (a pause between them, as when a node fetches an expert on
	// demand) and back-to-back fetches from the same peer.
	for _, gap := range []time.Duration{50 * time.Millisecond, 0} {
		for _, cfgName := range configs {
			set := smallBlobs[importProfile(cfgName)]
			modes := []string{"blob", "expert"}
			if cfgName == "tuned" { // boxo has no guided fetch: the node's own
				modes = append(modes, "expert-guided")
			}
			for _, mode := range modes {
				logf("%s: %d fetches of distinct %s %ss, %s apart", cfgName, trials, human(small), mode, gap)
				roots, links := set.weights, []string(nil)
				if mode != "blob" {
					roots, links = set.manifests, set.weights
				}
				res, err := scenario(cfgName, 1, mode, roots, links, 0, gap, false)
				if err != nil {
					return err
				}
				m.latency = append(m.latency, latencyRow{cfgName, mode, gap, res})
			}
		}
	}

	// Large blobs, each case repeated, the configs interleaved so load drifts hit both alike.
	type variant struct {
		providers int
		mem       bool
	}
	variants := []variant{{1, false}}
	if nprov > 1 {
		variants = append(variants, variant{nprov, false})
	}
	if memStore {
		variants = append(variants, variant{1, true})
	}
	for j, size := range sizes {
		for r := range repeat {
			for _, v := range variants {
				for _, cfgName := range configs {
					k := caseKey{size, cfgName, v.providers, v.mem}
					raw := int64(0)
					if v.providers == 1 {
						raw = size
					}
					res, err := scenario(cfgName, v.providers, "blob", []string{large[importProfile(cfgName)][j].String()}, nil, raw, 0, v.mem)
					if err != nil {
						return err
					}
					logf("%s %s from %d provider(s) (in-memory store: %v), run %d: %.1f MiB/s, raw stream %.1f MiB/s, fetcher CPU %.1f ms/MiB, cores busy %.2f, in I/O wait %.2f, VmHWM %.0f MiB (anon %.0f, file %.0f)",
						cfgName, human(size), v.providers, v.mem, r+1, mibps(size, res.Fetch[0]), mibps(size, res.RawSecs),
						1e3*res.CPU/mib(size), res.Busy/res.Fetch[0], res.IOWait/res.Fetch[0], mib(res.VmHWM), mib(res.PeakAnon), mib(res.PeakFile))
					if len(m.runs[k]) == 0 {
						m.order = append(m.order, k)
					}
					m.runs[k] = append(m.runs[k], res)
				}
			}
		}
	}

	m.loadEnd = readLoadavg()
	b := m.report()
	if out == "" {
		_, err = os.Stdout.Write(b)
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	logf("wrote %s", out)
	return nil
}
