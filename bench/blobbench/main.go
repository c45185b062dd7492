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
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ipfs/boxo/blockstore"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
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
