package mesh

import (
	"fmt"
	"time"
)

// Config configures a mesh node. Zero values take the defaults documented on each field.
type Config struct {
	// ListenAddrs are the multiaddrs to listen on (default loopback TCP and QUIC on random ports).
	ListenAddrs []string
	// Bootstrap peers to dial at start, as multiaddrs ending in /p2p/<peer ID>.
	Bootstrap []string
	// MDNS finds peers on the local network by multicast DNS.
	MDNS bool
	// MDNSService is the mDNS service name; meshes with different names do not see each other.
	// Default "meshnode".
	MDNSService string
	// PSK is a 32-byte private network key: only peers holding it can connect. A PSK mesh is
	// TCP-only (QUIC brings its own TLS, which a PSK cannot wrap).
	PSK []byte
	// ProtocolPrefix namespaces the DHT (default "/meshnode"), so the mesh's DHT is its own.
	ProtocolPrefix string
	// MaxMemoryMiB sizes the resource manager (default 256 MiB: a node with small experts
	// needs little; the limits scale from libp2p's defaults to this budget).
	MaxMemoryMiB int
	// MaxFDs is the file descriptors the resource manager may hand out (default 512).
	MaxFDs int
	// ConnLow and ConnHigh are the connection manager's watermarks (default 24 and 48, so an
	// idle node holds at most about 50 connections whatever the size of the mesh):
	// above High, connections are trimmed down to Low, oldest and least useful first.
	ConnLow, ConnHigh int
	// AdvertTTL is how long an advert lives without a refresh (default 30 s; 10 min with
	// DHTOnly).
	AdvertTTL time.Duration
	// AdvertRefresh is how often served adverts are republished (default TTL/3, so two refreshes
	// can be lost before an advert expires), and how long a DHT lookup of a domain or expert
	// stands before a query repeats it.
	AdvertRefresh time.Duration
	// DHTOnly turns advert gossip off: adverts are found only by DHT lookups (LookupDomain,
	// LookupExpert) and pulled from their providers, and withdrawals are pushed to the peers
	// that pulled. Each node then pays for what it serves and looks up, not for the mesh.
	DHTOnly bool
	// AdvertMaxBytes bounds an advert message (default 4096).
	AdvertMaxBytes int
	// StreamLimits cap the inbound streams of a protocol, in total and per peer, in the
	// resource manager (so one greedy peer cannot hold every query stream).
	StreamLimits []StreamLimit
	// ScoredTopics are gossip topics besides the adverts' whose invalid messages (those their
	// validator rejects) count against the sender's peer score, as the adverts' do.
	ScoredTopics []string
	// Reachability is ReachAuto (default: AutoNAT decides), ReachPublic or ReachPrivate.
	Reachability string
	// NoRelayService stops this node from relaying for NATed peers. By default it relays,
	// within libp2p's limits, while AutoNAT finds it publicly reachable.
	NoRelayService bool
	// Relays are relays to reserve a slot on when private, as multiaddrs ending in
	// /p2p/<peer ID>. Empty: any connected peer offering the relay protocol.
	Relays []string
	// WithdrawGrace is how long Close spends sending withdrawals (twice) and letting them
	// leave the outbound queues (default 600 ms; gossipsub has no flush).
	WithdrawGrace time.Duration
}

func (c *Config) defaults() {
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	if c.MDNSService == "" {
		c.MDNSService = "meshnode"
	}
	if c.ProtocolPrefix == "" {
		c.ProtocolPrefix = "/meshnode"
	}
	if c.MaxMemoryMiB <= 0 {
		c.MaxMemoryMiB = 256
	}
	if c.MaxFDs <= 0 {
		c.MaxFDs = 512
	}
	if c.ConnLow <= 0 {
		c.ConnLow = 24
	}
	if c.ConnHigh <= c.ConnLow {
		c.ConnHigh = 2 * c.ConnLow
	}
	if c.AdvertTTL <= 0 {
		c.AdvertTTL = 30 * time.Second
		if c.DHTOnly {
			// Without gossip nothing is refreshed but what is looked up, and withdrawals are
			// pushed: adverts can live longer.
			c.AdvertTTL = 10 * time.Minute
		}
	}
	if c.AdvertRefresh <= 0 {
		c.AdvertRefresh = c.AdvertTTL / 3
	}
	if c.AdvertMaxBytes <= 0 {
		c.AdvertMaxBytes = 4096
	}
	if c.Reachability == "" {
		c.Reachability = ReachAuto
	}
	if c.WithdrawGrace <= 0 {
		c.WithdrawGrace = 600 * time.Millisecond
	}
}

func (c *Config) validate() error {
	if c.PSK != nil && len(c.PSK) != 32 {
		return fmt.Errorf("mesh config: private network key has %d bytes, want 32", len(c.PSK))
	}
	if c.AdvertTTL < time.Second || c.AdvertTTL > time.Hour {
		return fmt.Errorf("mesh config: advert TTL %s outside [1s, 1h]", c.AdvertTTL)
	}
	if c.AdvertRefresh >= c.AdvertTTL {
		return fmt.Errorf("mesh config: advert refresh %s must be shorter than the TTL %s", c.AdvertRefresh, c.AdvertTTL)
	}
	return nil
}

// StreamLimit caps the inbound streams of one protocol.
type StreamLimit struct {
	Protocol string
	Total    int
	PerPeer  int
}
