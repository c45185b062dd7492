// Package mesh owns the peer-to-peer side of a node: the libp2p host (TCP and QUIC, Noise and
// TLS, yamux, a sized resource manager and a connection manager, AutoNAT, hole punching, relay
// client, optional private-network key; routed, so a peer with no known address is looked up
// in the DHT), peer discovery (bootstrap peers, mDNS, a Kademlia DHT under the mesh's own
// protocol prefix), and the discovery of experts: adverts (signed, validated, scored,
// refreshed and expiring announcements of what each peer serves) gossiped to the whole mesh
// unless Config.DHTOnly, and found by DHT lookups of a domain or an expert ID, pulled from
// their providers (lookup.go). It knows nothing of neural networks: an advert names a content
// ID and carries the numbers routing needs.
//
//	n, err := mesh.New(ctx, key, cfg, mesh.Options{Datastore: ds})
//	defer n.Close()
//	n.Adverts.Serve(ctx, advert.Service{ID: id, Domains: []string{"vision"}, Quality: 0.87})
//	n.Adverts.LookupDomain(ctx, "vision", true)
//	for _, e := range n.Adverts.List(time.Now()) { ... }
package mesh
