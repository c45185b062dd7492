// Package mesh will own the peer-to-peer side of a node: the libp2p host, peer discovery (mDNS,
// bootstrap, Kademlia DHT), gossip topics and their validators, stream protocols and blob
// exchange (boxo bitswap). It knows nothing of neural networks.
package mesh
