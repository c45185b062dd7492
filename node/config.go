package node

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is a node's config.yaml. Every field has a default from the preset the repo was made
// with; a field missing from the file keeps its preset value.
type Config struct {
	// Preset names the preset the file started from. Informational.
	Preset string `yaml:"preset"`
	// API is the local HTTP API the commands use to reach a running daemon.
	API APIConfig `yaml:"api"`
	// Mesh configures the libp2p host.
	Mesh MeshConfig `yaml:"mesh"`
	// Store sizes the badger database.
	Store StoreConfig `yaml:"store"`
	// Training holds the defaults of `expert train`.
	Training TrainingConfig `yaml:"training"`
	// Query bounds what peers may ask of this node.
	Query QueryConfig `yaml:"query"`
	// Market is the expert market's ledger policy and timings.
	Market MarketConfig `yaml:"market"`
}

// QueryConfig bounds the query service.
type QueryConfig struct {
	// PeerRate is the queries a second one peer may send on average (its token bucket refills
	// at this rate); PeerBurst the bucket's size. A 10K-parameter expert answers in about 10
	// µs, so 5,000/s from one peer is a fifth of a core: others still get served.
	PeerRate  float64 `yaml:"peer_rate"`
	PeerBurst int     `yaml:"peer_burst"`
	// StreamsPerPeer caps one peer's concurrent query streams in the resource manager.
	StreamsPerPeer int `yaml:"streams_per_peer"`
	// SpotCheckRate is the share of remote answers this node checks against its own copy of
	// the expert after the first three of each provider (0: the default, 2%).
	SpotCheckRate float64 `yaml:"spot_check_rate"`
}

// APIConfig configures the local HTTP API.
type APIConfig struct {
	// Listen is the API's address; it must be on a loopback address, 127.0.0.1 or [::1] (the API
	// is for this machine only). CheckAPIListen says whether an address will do.
	Listen string `yaml:"listen"`
}

// MeshConfig configures the peer-to-peer side.
type MeshConfig struct {
	// Listen are the multiaddrs the host listens on.
	Listen []string `yaml:"listen"`
	// Bootstrap are peers to dial at start, as multiaddrs ending in /p2p/<peer ID>.
	Bootstrap []string `yaml:"bootstrap"`
	// MDNS finds peers on the local network by multicast DNS.
	MDNS bool `yaml:"mdns"`
	// PSKFile names a private network key file (the swarm.key format: "/key/swarm/psk/1.0.0/",
	// "/base16/", 64 hex digits). Only peers with the same key can connect; such a mesh is
	// TCP-only. Empty: an open mesh.
	PSKFile string `yaml:"psk_file"`
	// AdvertGossip gossips this node's adverts to the whole mesh and takes everyone's. Off,
	// adverts are only found by DHT lookups of the domains and experts queried, and pulled
	// from their providers: each node pays for what it serves and asks for, whatever the size
	// of the mesh (see bench/results/scale.md). Raise advert_ttl with it off (10m).
	AdvertGossip bool `yaml:"advert_gossip"`
	// AdvertTTL is how long an advert of this node lives on other nodes without a refresh.
	AdvertTTL time.Duration `yaml:"advert_ttl"`
	// AdvertRefresh is how often this node republishes its adverts (shorter than the TTL).
	AdvertRefresh time.Duration `yaml:"advert_refresh"`
	// ReprovideInterval is how often this node announces again, in the DHT, the blobs it keeps
	// (pinned blobs, hosted experts' manifests and weights): provider records expire after
	// 48 h on the nodes that store them.
	ReprovideInterval time.Duration `yaml:"reprovide_interval"`
	// MaxMemoryMiB is the libp2p resource manager's memory budget.
	MaxMemoryMiB int `yaml:"max_memory_mib"`
	// ConnLow and ConnHigh are the connection manager's watermarks.
	ConnLow  int `yaml:"conn_low"`
	ConnHigh int `yaml:"conn_high"`
	// Reachability is auto (AutoNAT finds out whether peers can dial this node), public or
	// private.
	Reachability string `yaml:"reachability"`
	// RelayService relays connections for NATed peers while this node is publicly reachable.
	RelayService bool `yaml:"relay_service"`
	// Relays are the relays a private node reserves a slot on; empty: any connected peer
	// that offers relaying.
	Relays []string `yaml:"relays"`
}

// StoreConfig sizes the database.
type StoreConfig struct {
	// MemTableMiB is badger's memtable size.
	MemTableMiB int `yaml:"memtable_mib"`
	// BlockCacheMiB is badger's block cache.
	BlockCacheMiB int `yaml:"block_cache_mib"`
}

// TrainingConfig holds defaults for local training.
type TrainingConfig struct {
	// BatchSize is the mini-batch size.
	BatchSize int `yaml:"batch_size"`
	// Epochs is the default number of epochs.
	Epochs int `yaml:"epochs"`
	// Patience stops training after this many epochs without a better validation loss.
	Patience int `yaml:"patience"`
	// UseGPU asks for a GPU; meshnode computes on the CPU (gonum) and says so when this is set.
	UseGPU bool `yaml:"use_gpu"`
	// Join is the policy for federated jobs: a job announced for one of these domains is
	// joined at once with the named local data set.
	Join []TrainJoinPolicy `yaml:"join"`
}

// TrainJoinPolicy names the local data a node trains on for a domain's federated jobs.
type TrainJoinPolicy struct {
	Domain  string `yaml:"domain"`
	Dataset string `yaml:"dataset"` // a data set name or csv:PATH
	// Coordinators, when set, are the only peers whose jobs this policy joins (peer IDs); a
	// job from anyone else needs an explicit `train join`.
	Coordinators []string `yaml:"coordinators,omitempty"`
}

// Presets lists the preset names.
func Presets() []string {
	return []string{"development", "fast", "comprehensive", "memory", "gpu", "production"}
}

// Preset returns the config of a named preset.
func Preset(name string) (Config, error) {
	c := Config{
		Preset: name,
		API:    APIConfig{Listen: "127.0.0.1:5081"},
		Mesh: MeshConfig{
			Listen: []string{"/ip4/0.0.0.0/tcp/4101", "/ip4/0.0.0.0/udp/4101/quic-v1"},
			MDNS:   true,
			// Small meshes see every expert at once; large ones turn it off (DHT lookups).
			AdvertGossip: true,
			// Adverts live 30 s and are refreshed every 10 s: two refreshes may be lost before
			// peers forget an expert, and a node that dies silently is forgotten within 40 s.
			AdvertTTL:     30 * time.Second,
			AdvertRefresh: 10 * time.Second,
			// As kubo: well inside the records' 48 h, so a missed run or two costs nothing.
			ReprovideInterval: 22 * time.Hour,
			// 256 MiB for libp2p and 24–48 connections: a node serving small experts to a
			// neighbourhood of the mesh, not a relay for the whole of it (idle nodes of a
			// 300-node mesh held 43 on average: bench/results/scale.md).
			MaxMemoryMiB: 256,
			ConnLow:      24,
			ConnHigh:     48,
			// AutoNAT decides; public nodes relay for NATed ones within libp2p's limits.
			Reachability: "auto",
			RelayService: true,
			Relays:       []string{},
		},
		// 16 MiB memtables and a 32 MiB cache: experts are kilobytes to a few MiB, so a node
		// stays within a few hundred MiB of RAM.
		Store: StoreConfig{MemTableMiB: 16, BlockCacheMiB: 32},
		// Batches of 64 with Adam converge in a few epochs on the seed data sets.
		Training: TrainingConfig{BatchSize: 64, Epochs: 10, Patience: 3, Join: []TrainJoinPolicy{}},
		Query:    QueryConfig{PeerRate: 5000, PeerBurst: 10000, StreamsPerPeer: 128},
		Market:   defaultMarket(),
	}
	switch name {
	case "development":
		// Loopback only and random ports, so several nodes run side by side on one machine.
		c.Mesh.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		c.API.Listen = "127.0.0.1:0"
		// Every key starts with 1000 credits, so a local mesh can trade out of the box.
		c.Market.Genesis = 1000
	case "fast":
		// Fewer epochs and larger batches: quick experiments, slightly lower accuracy.
		c.Training.BatchSize, c.Training.Epochs, c.Training.Patience = 128, 3, 1
	case "comprehensive":
		// More epochs and more patience: the best accuracy the architecture reaches.
		c.Training.Epochs, c.Training.Patience = 40, 6
	case "memory":
		// Small caches and few connections for machines with little RAM.
		c.Store = StoreConfig{MemTableMiB: 4, BlockCacheMiB: 8}
		c.Mesh.MaxMemoryMiB, c.Mesh.ConnLow, c.Mesh.ConnHigh = 64, 8, 24
		c.Training.BatchSize = 32
	case "gpu":
		c.Training.UseGPU = true
		c.Training.BatchSize = 256
	case "production":
		// Larger caches for a long-running node serving many queries.
		c.Store = StoreConfig{MemTableMiB: 64, BlockCacheMiB: 256}
		c.Mesh.MDNS = false
		c.Mesh.MaxMemoryMiB, c.Mesh.ConnLow, c.Mesh.ConnHigh = 1024, 64, 192
	default:
		return Config{}, fmt.Errorf("unknown preset %q (want one of %s)", name, strings.Join(Presets(), ", "))
	}
	return c, nil
}

// CheckAPIListen checks an address for the local API (config api.listen, daemon --api): it
// must be a loopback IP literal and a numeric port, such as 127.0.0.1:5081 or [::1]:0. The API
// hands out this node's experts, keys and market to whoever holds the token, so it is never
// offered to the network; a host name is refused too, since what it resolves to can change.
func CheckAPIListen(addr string) error {
	const must = "the API must listen on a loopback address (127.0.0.1 or [::1]) with a port, such as 127.0.0.1:5081"
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %w", must, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s; %q is not a loopback IP address", must, host)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%s; port %q is not a number from 0 to 65535", must, port)
	}
	return nil
}

// Validate checks every field, naming the first bad one.
func (c Config) Validate() error {
	if err := CheckAPIListen(c.API.Listen); err != nil {
		return fmt.Errorf("config api.listen %q: %w", c.API.Listen, err)
	}
	if len(c.Mesh.Listen) == 0 {
		return fmt.Errorf("config mesh.listen: at least one address is needed")
	}
	if err := c.Market.validate(); err != nil {
		return err
	}
	for _, a := range slices.Concat(c.Mesh.Listen, c.Mesh.Bootstrap) {
		if !strings.HasPrefix(a, "/") {
			return fmt.Errorf("config mesh: %q is not a multiaddr", a)
		}
	}
	checks := []struct {
		name      string
		v, lo, hi int
	}{
		{"store.memtable_mib", c.Store.MemTableMiB, 1, 1024},
		{"store.block_cache_mib", c.Store.BlockCacheMiB, 1, 16384},
		{"training.batch_size", c.Training.BatchSize, 1, 65536},
		{"training.epochs", c.Training.Epochs, 0, 100000},
		{"training.patience", c.Training.Patience, 0, 100000},
		{"mesh.max_memory_mib", c.Mesh.MaxMemoryMiB, 16, 1 << 20},
		{"query.peer_burst", c.Query.PeerBurst, 1, 1 << 30},
		{"query.streams_per_peer", c.Query.StreamsPerPeer, 1, 1 << 16},
		{"mesh.conn_low", c.Mesh.ConnLow, 1, 100000},
		{"mesh.conn_high", c.Mesh.ConnHigh, c.Mesh.ConnLow + 1, 100000},
	}
	if c.Query.PeerRate <= 0 {
		return fmt.Errorf("config query.peer_rate %g: must be positive", c.Query.PeerRate)
	}
	if c.Mesh.AdvertTTL < time.Second || c.Mesh.AdvertTTL > time.Hour {
		return fmt.Errorf("config mesh.advert_ttl %s: outside [1s, 1h]", c.Mesh.AdvertTTL)
	}
	if c.Mesh.AdvertRefresh <= 0 || c.Mesh.AdvertRefresh >= c.Mesh.AdvertTTL {
		return fmt.Errorf("config mesh.advert_refresh %s: must be positive and shorter than mesh.advert_ttl %s", c.Mesh.AdvertRefresh, c.Mesh.AdvertTTL)
	}
	if c.Mesh.ReprovideInterval < time.Second || c.Mesh.ReprovideInterval > 48*time.Hour {
		return fmt.Errorf("config mesh.reprovide_interval %s: outside [1s, 48h] (provider records expire after 48 h)", c.Mesh.ReprovideInterval)
	}
	for i, j := range c.Training.Join {
		if j.Domain == "" || j.Dataset == "" {
			return fmt.Errorf("config training.join[%d]: both domain and dataset are needed", i)
		}
	}
	for _, ch := range checks {
		if ch.v < ch.lo || ch.v > ch.hi {
			return fmt.Errorf("config %s: %d is outside [%d, %d]", ch.name, ch.v, ch.lo, ch.hi)
		}
	}
	return nil
}

// LoadConfig reads a config file; unknown fields are errors.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	var probe struct {
		Preset string `yaml:"preset"`
	}
	if err := yaml.Unmarshal(b, &probe); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if probe.Preset == "" {
		probe.Preset = "development"
	}
	c, err := Preset(probe.Preset)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if doc.Kind != 0 {
		secondsAsDurations(&doc)
		if b, err = yaml.Marshal(&doc); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.applyEnv(envLookup); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
