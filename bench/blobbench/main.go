// Command blobbench measures blob exchange (mesh/blobs) between nodes on loopback: the time to
// fetch a small expert-sized blob, fetch throughput of large blobs with boxo's default settings
// and with the node's tuned settings (from one provider and from several at once), the raw
// throughput of one libp2p stream between the same hosts, and the peak memory of the fetching
// process. The providers run in this process; every fetch runs in a child process (this binary
// with -child), so the child's VmHWM is the fetching node's peak memory alone.
//
//	blobbench -sizes 64MiB,512MiB -small 400KB -trials 200 -providers 3 -repeat 3 -out bench/results/blobs.md
//
// -providers 1 skips the several-providers case; -configs tuned measures one config. The configs:
// "default" is boxo's defaults throughout, its importer's 256 KiB chunks (UnixFS v0 2015)
// included; "default-1mib" is boxo's exchange settings with the node's 1 MiB chunks; "tuned" is
// the node's settings.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ipfs/boxo/blockstore"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh/blobs"
)

// rawProtocol serves a byte stream of a requested length, for the raw stream measurement.
const rawProtocol = "/meshnode/bench/raw/1.0.0"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "blobbench:", err)
		os.Exit(1)
	}
}

func run() error {
	child := flag.Bool("child", false, "run one fetch job read from stdin (used by the parent)")
	sizesFlag := flag.String("sizes", "64MiB,512MiB", "sizes of the large blobs to fetch")
	smallFlag := flag.String("small", "400KB", "size of the expert-sized blob")
	trials := flag.Int("trials", 200, "fetches of distinct small blobs for the latency figures")
	providers := flag.Int("providers", 3, "providers in the several-providers case")
	configs := flag.String("configs", "default,default-1mib,tuned", "configs to measure")
	repeat := flag.Int("repeat", 3, "runs of each large-blob case (the table shows the median)")
	memStore := flag.Bool("memstore", true, "also fetch into an in-memory blockstore, to show what the badger store costs")
	out := flag.String("out", "", "markdown table to write (default: stdout)")
	flag.Parse()
	ctx := context.Background()
	if *child {
		return runChild(ctx)
	}
	sizes, err := parseSizes(*sizesFlag)
	if err != nil {
		return err
	}
	small, err := parseSize(*smallFlag)
	if err != nil {
		return err
	}
	if *trials < 1 || *providers < 1 || *repeat < 1 {
		return errors.New("-trials, -providers and -repeat must be >= 1")
	}
	return runParent(ctx, sizes, small, *trials, *providers, *repeat, *memStore, strings.Split(*configs, ","), *out)
}

// job is what the parent asks a child to do.
type job struct {
	Config    string   `json:"config"`    // "default", "default-1mib" or "tuned"
	Providers []string `json:"providers"` // multiaddrs with /p2p/
	Roots     []string `json:"roots"`     // blobs to fetch, one after the other
	// Mode is what each root is: "blob" (fetched alone), "expert" (a manifest-sized block naming
	// the blob it links to, fetched first and then that blob, as an expert without an advert)
	// or "expert-guided" (the two asked for together, Links giving the guess, as an expert whose
	// advert names its weights).
	Mode      string   `json:"mode"`
	Links     []string `json:"links,omitempty"` // for expert-guided: the blob each root links to
	RawBytes  int64    `json:"raw_bytes"`       // bytes to read over one raw stream from the first provider
	GapMillis int64    `json:"gap_ms"`          // pause between fetches
	MemStore  bool     `json:"mem_store"`       // fetch into an in-memory blockstore instead of badger
}

// result is what a child reports.
type result struct {
	Fetch   []float64 `json:"fetch_seconds"` // per root
	Bytes   int64     `json:"bytes"`         // file bytes of all roots
	RawSecs float64   `json:"raw_seconds"`
	VmHWM   int64     `json:"vmhwm_bytes"` // after the fetches, before the raw stream
	// Peaks of the resident set's parts, sampled every 10 ms during the fetches: anonymous
	// memory (heap, stacks) and file-backed pages (badger's memory-mapped files).
	PeakAnon int64 `json:"peak_rss_anon_bytes"`
	PeakFile int64 `json:"peak_rss_file_bytes"`
	// CPU is the fetching process's user and system CPU time during the fetches, in seconds.
	CPU float64 `json:"cpu_seconds"`
	// Busy and IOWait are the whole machine's CPU time during the fetches (every process: the
	// providers, the fetcher, the kernel's work for them, and anything else running), in
	// core-seconds: busy is time not idle and not waiting for I/O.
	Busy   float64 `json:"machine_busy_seconds"`
	IOWait float64 `json:"machine_iowait_seconds"`
}

// configByName returns the named config. For tuning experiments, the environment variable
// BLOBBENCH_TUNED (JSON of blobs.Config fields, durations in nanoseconds) overrides fields of
// the tuned config, in the providers and in the fetching child alike.
func configByName(name string) (blobs.Config, error) {
	switch name {
	case "default", "default-1mib":
		return blobs.DefaultConfig(), nil
	case "tuned":
		cfg := blobs.TunedConfig()
		if o := os.Getenv("BLOBBENCH_TUNED"); o != "" {
			if err := json.Unmarshal([]byte(o), &cfg); err != nil {
				return cfg, fmt.Errorf("BLOBBENCH_TUNED: %w", err)
			}
		}
		return cfg, nil
	}
	return blobs.Config{}, fmt.Errorf("unknown config %q", name)
}

// importProfile is how a config's blobs are chunked: boxo's importer defaults for "default",
// the node's (store.PutBlob) for the others.
func importProfile(config string) string {
	if config == "default" {
		return "boxo"
	}
	return "node"
}

// putBlob imports a blob into st as the named profile chunks it.
func putBlob(ctx context.Context, st *store.Store, profile string, r io.Reader) (cid.Cid, error) {
	var c cid.Cid
	var err error
	if profile == "boxo" {
		c, _, err = st.PutBlobAs(ctx, r, uio.UnixFS_v0_2015)
	} else {
		c, _, err = st.PutBlob(ctx, r)
	}
	return c, err
}

// node is a host, DHT and exchange over a store.
type node struct {
	host host.Host
	dht  *dht.IpfsDHT
	x    *blobs.Exchange
}

func newNode(ctx context.Context, bs blockstore.Blockstore, cfg blobs.Config) (*node, error) {
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
	)
	if err != nil {
		return nil, fmt.Errorf("new host: %w", err)
	}
	n := &node{host: h}
	n.dht, err = dht.New(h, dht.ProtocolPrefix("/meshnode"), dht.Mode(dht.ModeServer))
	if err != nil {
		n.close()
		return nil, fmt.Errorf("new DHT: %w", err)
	}
	n.x, err = blobs.New(ctx, h, n.dht, bs, cfg)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("new exchange: %w", err)
	}
	return n, nil
}

func (n *node) close() {
	if n.x != nil {
		_ = n.x.Close()
	}
	if n.dht != nil {
		_ = n.dht.Close()
	}
	_ = n.host.Close()
}

func (n *node) addr() string {
	return fmt.Sprintf("%s/p2p/%s", n.host.Addrs()[0], n.host.ID())
}

// serveRaw answers a raw stream: an 8-byte length, then that many bytes back.
func serveRaw(s network.Stream) {
	defer s.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		_ = s.Reset()
		return
	}
	n := int64(binary.BigEndian.Uint64(hdr[:]))
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(int64(len(buf)), n)
		if _, err := s.Write(buf[:k]); err != nil {
			_ = s.Reset()
			return
		}
		n -= k
	}
}

func runParent(ctx context.Context, sizes []int64, small int64, trials, nprov, repeat int, memStore bool, configs []string, out string) error {
	dir, err := os.MkdirTemp("", "blobbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	loadStart, _ := os.ReadFile("/proc/loadavg")
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

	if p := os.Getenv("BLOBBENCH_PARENT_CPUPROFILE"); p != "" { // a debugging aid: profile the providers
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	// Small blobs: isolated fetches (a pause between them, as when a node fetches an expert on
	// demand) and back-to-back fetches from the same peer.
	type latencyRow struct {
		config string
		mode   string
		gap    time.Duration
		res    result
	}
	var latency []latencyRow
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
				latency = append(latency, latencyRow{cfgName, mode, gap, res})
			}
		}
	}

	// Large blobs, each case repeated, the configs interleaved so load drifts hit both alike.
	type key struct {
		size      int64
		config    string
		providers int
		mem       bool // the fetcher writes to an in-memory blockstore
	}
	runs := map[key][]result{}
	var order []key
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
					k := key{size, cfgName, v.providers, v.mem}
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
					if len(runs[k]) == 0 {
						order = append(order, k)
					}
					runs[k] = append(runs[k], res)
				}
			}
		}
	}

	// The tables.
	loadEnd, _ := os.ReadFile("/proc/loadavg")
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Blob exchange (mesh/blobs over boxo bitswap)\n\n")
	fmt.Fprintf(&b, "Run: `%s` on %s, %d cores, %s, loopback TCP (libp2p default security and yamux);\n",
		strings.Join(append([]string{"blobbench"}, os.Args[1:]...), " "), time.Now().UTC().Format("2006-01-02"),
		runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "load average (1, 5, 15 min) %s at the start and %s at the end (other work shares the machine).\n",
		loadavg(loadStart), loadavg(loadEnd))
	fmt.Fprintf(&b, "The providers run in the benchmark process; every fetch runs in a child process with an empty badger\n")
	fmt.Fprintf(&b, "store (experts/store: synced writes), connected to the providers, so its memory is the fetching node's alone.\n")
	fmt.Fprintf(&b, "Budgets: tuned ≥ 2× default and ≥ 1/3 of the raw stream; %s fetch p50 < 20 ms; peak memory < 256 MiB for 512 MiB.\n\n", human(small))

	fmt.Fprintf(&b, "## Time to fetch a %s blob or expert from a connected peer, %d distinct ones\n\n", human(small), trials)
	fmt.Fprintf(&b, "An expert is a manifest-sized block naming its %s weights blob: fetched as `expert fetch` does without an\n", human(small))
	fmt.Fprintf(&b, "advert (the manifest, then the weights it names; tuned: through the exchange's second bitswap client) and\n")
	fmt.Fprintf(&b, "guided, as with an advert or a job announcement naming the weights (both asked for in one request; the\n")
	fmt.Fprintf(&b, "manifest decides). With boxo's 256 KiB chunks a %s blob is a root and two leaves; with the node's 1 MiB\n", human(small))
	fmt.Fprintf(&b, "chunks, one block. Back to back, every fetch waits for boxo's 20 ms between two want messages to a peer\n")
	fmt.Fprintf(&b, "(the cancels a fetch sends once its blocks have arrived are messages too).\n\n")
	fmt.Fprintf(&b, "| config | what | fetches | p50 | p99 | max |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, l := range latency {
		d := slices.Clone(l.res.Fetch)
		slices.Sort(d)
		how := "back to back"
		if l.gap > 0 {
			how = fmt.Sprintf("%d ms apart", l.gap.Milliseconds())
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f ms | %.2f ms | %.2f ms |\n", l.config, l.mode, how, 1e3*quantile(d, 0.5),
			1e3*quantile(d, 0.99), 1e3*d[len(d)-1])
	}

	fmt.Fprintf(&b, "\n## Fetch throughput (median of %d runs; raw = one libp2p stream between the same two hosts, same run)\n\n", repeat)
	fmt.Fprintf(&b, "| blob | config | providers | fetcher's store | median time | MiB/s | runs, MiB/s | × default | raw stream MiB/s | ÷ raw | fetcher CPU, ms/MiB | cores busy (of %d) | cores in I/O wait | VmHWM | peak anon RSS | peak file RSS |\n", runtime.NumCPU())
	fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	medianRate := func(k key) float64 {
		var rates []float64
		for _, r := range runs[k] {
			rates = append(rates, mibps(k.size, r.Fetch[0]))
		}
		slices.Sort(rates)
		return median(rates)
	}
	rawMedian := func(size int64) float64 {
		var rates []float64
		for k, rs := range runs {
			if k.size == size {
				for _, r := range rs {
					if r.RawSecs > 0 {
						rates = append(rates, mibps(size, r.RawSecs))
					}
				}
			}
		}
		slices.Sort(rates)
		return median(rates)
	}
	busyByKey := map[key]float64{} // cores busy, median of the runs
	for _, k := range order {
		rate := medianRate(k)
		var all []string
		var vm, anon, file int64
		var times, cpus, busy, iowait []float64
		for _, r := range runs[k] {
			all = append(all, fmt.Sprintf("%.0f", mibps(k.size, r.Fetch[0])))
			vm, anon, file = max(vm, r.VmHWM), max(anon, r.PeakAnon), max(file, r.PeakFile)
			times = append(times, r.Fetch[0])
			cpus = append(cpus, 1e3*r.CPU/mib(k.size))
			busy = append(busy, r.Busy/r.Fetch[0])
			iowait = append(iowait, r.IOWait/r.Fetch[0])
		}
		slices.Sort(times)
		slices.Sort(cpus)
		slices.Sort(busy)
		slices.Sort(iowait)
		busyByKey[k] = median(busy)
		vsDefault := "-"
		if d := medianRate(key{k.size, "default", k.providers, k.mem}); d > 0 {
			vsDefault = fmt.Sprintf("%.2f", rate/d)
		}
		raw := rawMedian(k.size)
		where := "badger"
		if k.mem {
			where = "in memory"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %.2f s | %.0f | %s | %s | %.0f | %.2f | %.1f | %.2f | %.2f | %.0f MiB | %.0f MiB | %.0f MiB |\n",
			human(k.size), k.config, k.providers, where, median(times), rate, strings.Join(all, ", "), vsDefault, raw,
			rate/raw, median(cpus), median(busy), median(iowait), mib(vm), mib(anon), mib(file))
	}
	fmt.Fprintf(&b, "\nVmHWM is the fetching process's peak resident set; it counts the pages of badger's memory-mapped value log\n")
	fmt.Fprintf(&b, "(file-backed page cache the kernel can reclaim), shown apart as peak file RSS. Peak anon RSS is the process's\n")
	fmt.Fprintf(&b, "own memory (Go heap with its GC headroom, stacks). Both peaks are sampled every 10 ms.\n")
	busyRange := func(config string) (lo, hi float64) { // over the badger rows of config
		lo, hi = math.Inf(1), math.Inf(-1)
		for k, v := range busyByKey {
			if k.config == config && !k.mem {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		return lo, hi
	}
	tlo, thi := busyRange("tuned")
	dlo, dhi := busyRange("default")
	fmt.Fprintf(&b, "\nWhat limits the tuned rate: mostly the machine's CPU. The providers and the fetching process share\n")
	fmt.Fprintf(&b, "its %d cores, and every byte is encrypted, decrypted, hashed by bitswap (sha-256, to derive the CID),\n", runtime.NumCPU())
	fmt.Fprintf(&b, "copied through yamux and protobuf buffers on both sides and into and out of badger's value log, whose\n")
	fmt.Fprintf(&b, "writes are synced. During a tuned fetch into badger %.2f to %.2f of the %d cores are busy (boxo's\n", tlo, thi, runtime.NumCPU())
	fmt.Fprintf(&b, "defaults: %.2f to %.2f, waiting on one synced write per block); the rest is the pipeline's waits:\n", dlo, dhi)
	fmt.Fprintf(&b, "synced writes (I/O wait in the table), and boxo's client, which sends a peer at most one message\n")
	fmt.Fprintf(&b, "of wants every 20 ms. That hold also costs a multi-block fetch about 20 ms at its start (the leaves\n")
	fmt.Fprintf(&b, "can only be asked for once the root has arrived), and, with boxo's one client, an expert fetched by\n")
	fmt.Fprintf(&b, "its ID alone 20 ms (the weights can only be asked for once the manifest has arrived); the tuned\n")
	fmt.Fprintf(&b, "config asks for them through a second client. Into an in-memory blockstore the same fetches run\n")
	fmt.Fprintf(&b, "faster, which is what the synced badger store costs.\n")

	// The budgets, checked against this run.
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	fmt.Fprintf(&b, "\n## Budgets in this run\n\n| budget | measured | |\n| --- | --- | --- |\n")
	for _, size := range sizes {
		t, d := medianRate(key{size, "tuned", 1, false}), medianRate(key{size, "default", 1, false})
		if t > 0 && d > 0 {
			fmt.Fprintf(&b, "| tuned ≥ 2× default, %s | %.2f× | %s |\n", human(size), t/d, mark(t >= 2*d))
		}
		if raw := rawMedian(size); t > 0 && raw > 0 {
			fmt.Fprintf(&b, "| tuned ≥ 1/3 of the raw stream, %s | %.2f | %s |\n", human(size), t/raw, mark(3*t >= raw))
		}
	}
	for _, l := range latency {
		if l.config != "tuned" {
			continue
		}
		d := slices.Clone(l.res.Fetch)
		slices.Sort(d)
		how := "back to back"
		if l.gap > 0 {
			how = "isolated"
		}
		fmt.Fprintf(&b, "| %s %s fetch p50 < 20 ms, %s | %.2f ms | %s |\n", human(small), l.mode, how, 1e3*quantile(d, 0.5), mark(quantile(d, 0.5) < 0.020))
	}
	for _, size := range sizes {
		var vm, anon int64
		for k, rs := range runs {
			if k.size == size && !k.mem {
				for _, r := range rs {
					vm, anon = max(vm, r.VmHWM), max(anon, r.PeakAnon)
				}
			}
		}
		fmt.Fprintf(&b, "| peak memory < 256 MiB, %s: VmHWM | %.0f MiB | %s |\n", human(size), mib(vm), mark(vm < 256<<20))
		fmt.Fprintf(&b, "| peak memory < 256 MiB, %s: anonymous (the process's own) | %.0f MiB | %s |\n", human(size), mib(anon), mark(anon < 256<<20))
	}
	if out == "" {
		_, err = os.Stdout.Write(b.Bytes())
		return err
	}
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		return err
	}
	logf("wrote %s", out)
	return nil
}

func loadavg(b []byte) string {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func median(sorted []float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[len(sorted)/2]
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// spawn runs one job in a child process.
func spawn(ctx context.Context, j job) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	in, err := json.Marshal(j)
	if err != nil {
		return result{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, self, "-child")
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("child (%s): %w", j.Config, err)
	}
	var r result
	if err := json.Unmarshal(outb, &r); err != nil {
		return result{}, fmt.Errorf("child output: %w", err)
	}
	return r, nil
}

func runChild(ctx context.Context) error {
	var j job
	if err := json.NewDecoder(os.Stdin).Decode(&j); err != nil {
		return fmt.Errorf("read job: %w", err)
	}
	cfg, err := configByName(j.Config)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "blobbench-child")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	bs := st.Blockstore()
	if j.MemStore {
		bs = blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	}
	n, err := newNode(ctx, bs, cfg)
	if err != nil {
		return err
	}
	defer n.close()
	var infos []peer.AddrInfo
	for _, a := range j.Providers {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return err
		}
		if err := n.host.Connect(ctx, *ai); err != nil {
			return fmt.Errorf("connect to provider: %w", err)
		}
		infos = append(infos, *ai)
	}

	if p := os.Getenv("BLOBBENCH_CPUPROFILE"); p != "" { // a debugging aid: profile the fetches
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var r result
	cpu0 := cpuSeconds()
	busy0, iowait0 := machineCPU()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			st, err := procStatus()
			if err == nil {
				r.PeakAnon = max(r.PeakAnon, st["RssAnon"])
				r.PeakFile = max(r.PeakFile, st["RssFile"])
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	for i, s := range j.Roots {
		if i > 0 && j.GapMillis > 0 {
			time.Sleep(time.Duration(j.GapMillis) * time.Millisecond) // pacing, not synchronisation
		}
		c, err := cid.Decode(s)
		if err != nil {
			return err
		}
		var last blobs.Progress
		start := time.Now()
		if j.Mode == "expert" || j.Mode == "expert-guided" {
			var guess cid.Cid
			if j.Mode == "expert-guided" {
				if guess, err = cid.Decode(j.Links[i]); err != nil {
					return err
				}
			}
			if err := fetchExpertLike(ctx, n.x, c, guess); err != nil {
				return err
			}
			r.Fetch = append(r.Fetch, time.Since(start).Seconds())
			continue
		}
		trace := os.Getenv("BLOBBENCH_TRACE") != ""
		prev := start
		if err := n.x.Fetch(ctx, c, func(p blobs.Progress) {
			last = p
			if now := time.Now(); trace && now.Sub(prev) > 3*time.Millisecond {
				logf("trace: block %d at %.1f ms after a %.1f ms gap", p.Blocks, 1e3*now.Sub(start).Seconds(), 1e3*now.Sub(prev).Seconds())
				prev = now
			} else {
				prev = now
			}
		}); err != nil {
			return err
		}
		r.Fetch = append(r.Fetch, time.Since(start).Seconds())
		r.Bytes += last.Bytes
	}
	r.CPU = cpuSeconds() - cpu0
	busy1, iowait1 := machineCPU()
	r.Busy, r.IOWait = busy1-busy0, iowait1-iowait0
	close(stop)
	<-sampled
	status, err := procStatus()
	if err != nil {
		return err
	}
	r.VmHWM = status["VmHWM"]
	if j.RawBytes > 0 {
		if r.RawSecs, err = rawStream(ctx, n.host, infos[0].ID, j.RawBytes); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// rawStream reads n bytes over one libp2p stream from p and returns the seconds it took.
func rawStream(ctx context.Context, h host.Host, p peer.ID, n int64) (float64, error) {
	start := time.Now()
	s, err := h.NewStream(ctx, p, rawProtocol)
	if err != nil {
		return 0, fmt.Errorf("open raw stream: %w", err)
	}
	defer s.Close()
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(n))
	if _, err := s.Write(hdr[:]); err != nil {
		return 0, fmt.Errorf("raw stream: %w", err)
	}
	got, err := io.CopyBuffer(io.Discard, s, make([]byte, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("raw stream: %w", err)
	}
	if got != n {
		return 0, fmt.Errorf("raw stream: got %d bytes, want %d", got, n)
	}
	return time.Since(start).Seconds(), nil
}

// cpuSeconds is the process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// machineCPU is the machine's CPU time so far from /proc/stat, in core-seconds: busy (neither
// idle nor waiting for I/O) and waiting for I/O. Zeros if it cannot be read.
func machineCPU() (busy, iowait float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var ticks [8]float64
	for i := range ticks {
		v, err := strconv.ParseFloat(f[i+1], 64)
		if err != nil {
			return 0, 0
		}
		ticks[i] = v / 100 // USER_HZ
	}
	busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
	return busy, ticks[4]
}

// procStatus reads the kB fields of /proc/self/status, in bytes.
func procStatus() (map[string]int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		rest = strings.TrimSpace(rest)
		if num, isKB := strings.CutSuffix(rest, " kB"); ok && isKB {
			if kb, err := strconv.ParseInt(num, 10, 64); err == nil {
				out[name] = kb << 10
			}
		}
	}
	if out["VmHWM"] == 0 {
		return nil, errors.New("no VmHWM in /proc/self/status")
	}
	return out, nil
}

// data returns a reproducible stream of size pseudo-random bytes.
// manifestLike is a manifest-sized block (about 1 KB, as an expert's manifest) that names
// the blob w, the way a manifest names its weights.
func manifestLike(w cid.Cid) io.Reader {
	return strings.NewReader(w.String() + "\n" + strings.Repeat("m", 1000))
}

// linkOf reads the CID a manifestLike block names.
func linkOf(b blocks.Block) (cid.Cid, error) {
	first, _, _ := strings.Cut(string(b.RawData()), "\n")
	return cid.Decode(first)
}

// fetchExpertLike fetches a manifestLike root and the blob it names, as the node fetches an
// expert: guided by a guess of the blob when one is defined, else one after the other.
func fetchExpertLike(ctx context.Context, x *blobs.Exchange, root, guess cid.Cid) error {
	return x.FetchGuided(ctx, root, guess, linkOf, nil) // guess undefined: the manifest, then the weights
}

func data(seed uint64, size int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), size)
}

func quantile(sorted []float64, q float64) float64 {
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

func mibps(size int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(size) / (1 << 20) / secs
}

func parseSizes(s string) ([]int64, error) {
	var out []int64
	for f := range strings.SplitSeq(s, ",") {
		n, err := parseSize(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// parseSize reads 400KB (decimal), 64MiB (binary), or a plain byte count.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return n * u.mult, nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n, nil
}

func human(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%1000 == 0 && n < 1000*1000:
		return fmt.Sprintf("%d KB", n/1000)
	}
	return fmt.Sprintf("%d B", n)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
