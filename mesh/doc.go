// Package mesh owns the peer-to-peer side of a node: the libp2p host (TCP and QUIC, Noise and
// TLS, yamux, a sized resource manager and a connection manager, AutoNAT, hole punching, relay
// client, optional private-network key), peer discovery (bootstrap peers, mDNS, a Kademlia DHT
// under the mesh's own protocol prefix), and gossip of adverts: signed, validated, scored,
// refreshed and expiring announcements of what each peer serves. It knows nothing of neural
// networks: an advert names a content ID and carries the numbers routing needs.
//
//	n, err := mesh.New(ctx, key, cfg, mesh.Options{Datastore: ds})
//	defer n.Close()
//	n.Adverts.Serve(ctx, mesh.Service{ID: id, Domains: []string{"vision"}, Quality: 0.87})
//	for _, e := range n.Adverts.Table().List(time.Now()) { ... }
package mesh
