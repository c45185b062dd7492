package node

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// configDocs explains every config field; Marshal writes them as comments, so a config file is
// its own documentation.
func configDocs() map[string]string {
	return map[string]string{
		"preset":                        "The preset this file started from: development, fast, comprehensive, memory, gpu or production.\nFields not set here take this preset's values.",
		"api":                           "The local HTTP API that meshnode commands use to reach a running daemon.",
		"api.listen":                    "127.0.0.1:PORT or [::1]:PORT, loopback only (port 0: any free port; the daemon writes its address to <repo>/api).",
		"mesh":                          "The peer-to-peer side.",
		"mesh.listen":                   "Multiaddrs to listen on (TCP and QUIC).",
		"mesh.bootstrap":                "Peers to dial at start: multiaddrs ending in /p2p/<peer ID>.",
		"mesh.mdns":                     "Find peers on the local network by multicast DNS.",
		"mesh.psk_file":                 "A private network key file (swarm.key format); only peers with the same key connect,\nand such a mesh is TCP-only. Empty: an open mesh.",
		"mesh.advert_gossip":            "Gossip adverts to the whole mesh. Off: adverts are found by DHT lookups of what is\nqueried and pulled from their providers (per-node cost independent of the mesh's size).",
		"mesh.advert_ttl":               "How long an advert of this node lives on other nodes without a refresh.",
		"mesh.advert_refresh":           "How often this node republishes its adverts (shorter than advert_ttl).",
		"mesh.reprovide_interval":       "How often this node announces again, in the DHT, the blobs it keeps (pinned blobs,\nhosted experts); the records expire after 48 h.",
		"mesh.max_memory_mib":           "Memory budget of libp2p's resource manager; its limits scale from it.",
		"mesh.conn_low":                 "Connection manager low watermark: trimming stops here.",
		"mesh.conn_high":                "Connection manager high watermark: above it, connections are trimmed.",
		"mesh.reachability":             "auto: AutoNAT finds out whether peers can dial this node (behind a NAT it reserves a\nrelay slot and hole-punches); public or private: declared instead (a public bootstrap node).",
		"mesh.relay_service":            "Relay connections for NATed peers while this node is publicly reachable (libp2p's limits:\n128 reservations, circuits of 2 min and 128 KiB).",
		"mesh.relays":                   "Relays to reserve a slot on when behind a NAT (multiaddrs ending in /p2p/<peer ID>);\nempty: any connected peer that relays.",
		"store":                         "The badger database in the repo folder.",
		"store.memtable_mib":            "badger memtable size.",
		"store.block_cache_mib":         "badger block cache size.",
		"training":                      "Defaults of 'meshnode expert train', and which federated jobs to join.",
		"training.batch_size":           "Mini-batch size.",
		"training.epochs":               "Epochs when --epochs is not given.",
		"training.patience":             "Stop after this many epochs without a better validation loss.",
		"training.use_gpu":              "Ask for a GPU. meshnode computes on the CPU (gonum); this only records the wish.",
		"training.join":                 "Federated jobs to join on sight: a list of {domain: D, dataset: NAME or csv:PATH,\ncoordinators: [peer IDs]}; a job announced for domain D (by one of those coordinators, when\nthe list is given) is joined with that local data.",
		"query":                         "What peers may ask of this node.",
		"market":                        "The expert market: ledger policy (how credits enter) and timings. Every node of a mesh\nmust share genesis and issuers, or their books disagree.",
		"market.genesis":                "Credits every key starts with (development: 1000; otherwise 0). Keys are free to make,\nso a genesis grant makes credits free to mint: use it for local meshes only.",
		"market.issuers":                "Peer IDs whose signed grants create credits ('meshnode market grant' on such a node).",
		"market.republish":              "How often this node republishes its live listings and its reviews.",
		"market.default_expiry":         "Lifetime of a listing published without --expires.",
		"market.sync":                   "How often this node compares its ledger with a random peer's and fetches what it lacks\n(it also syncs with each peer it connects to, and when an entry comes before its predecessor).",
		"market.ledger":                 "Bounds on the ledger entries other keys can make this node hold; its own trades are\nnever refused for room.",
		"market.ledger.entries":         "Chain entries held, all keys together (about 1 KiB of memory each).",
		"market.ledger.per_key":         "Entries of one key's chain.",
		"market.ledger.waiting":         "Entries held back for a missing predecessor, all keys together (a sync brings the rest).",
		"market.ledger.waiting_per_key": "Entries of one key held back for a missing predecessor.",
		"query.peer_rate":               "Queries a second one peer may send on average (its token bucket's refill rate).",
		"query.peer_burst":              "The token bucket's size: the burst one peer may send at once.",
		"query.streams_per_peer":        "Concurrent query streams one peer may hold (enforced by the resource manager).",
		"query.spot_check_rate":         "Share of remote answers checked against this node's own copy of the expert, after the\nfirst three of each provider; a provider whose answer differs is banned (0: the default, 2%).",
	}
}

// Marshal renders the config as YAML with every field commented.
func (c Config) Marshal() ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	docs := configDocs()
	walkConfig(&n, "", func(path string, key, _ *yaml.Node) {
		if doc, ok := docs[path]; ok {
			key.HeadComment = doc
		}
	})
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# meshnode config, written from the %s preset.\n# Every field can be overridden by an environment variable: mesh.advert_ttl is\n# MESHNODE_MESH_ADVERT_TTL (lists are comma-separated).\n\n", c.Preset)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}

// walkConfig calls f for every key of the mapping n (recursively), with its dotted path.
func walkConfig(n *yaml.Node, prefix string, f func(path string, key, value *yaml.Node)) {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		path := key.Value
		if prefix != "" {
			path = prefix + "." + key.Value
		}
		f(path, key, val)
		walkConfig(val, path, f)
	}
}

// EnvName is the environment variable that overrides a config field.
func EnvName(path string) string {
	return "MESHNODE_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// applyEnv overrides fields from environment variables (see EnvName) and reports which.
func (c *Config) applyEnv(lookup func(string) (string, bool)) error {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return err
	}
	changed := false
	var bad error
	walkConfig(&n, "", func(path string, key, val *yaml.Node) {
		v, ok := lookup(EnvName(path))
		if !ok || bad != nil {
			return
		}
		switch val.Kind {
		case yaml.ScalarNode:
			val.Value, val.Tag, val.Style = v, "", 0
		case yaml.SequenceNode:
			val.Content = nil
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					val.Content = append(val.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: item})
				}
			}
		default:
			bad = fmt.Errorf("%s: %s is a section, not a field", EnvName(path), path)
		}
		changed = true
	})
	if bad != nil || !changed {
		return bad
	}
	secondsAsDurations(&n)
	var out Config
	if err := n.Decode(&out); err != nil {
		return fmt.Errorf("environment override: %w", err)
	}
	*c = out
	return nil
}

func envLookup(name string) (string, bool) { return os.LookupEnv(name) }
