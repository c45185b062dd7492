// Package trainsvc is the daemon's side of federated training: it runs the jobs this node
// coordinates and the jobs it takes part in. It owns the coordinator (each job's rounds: the
// open round's collector, aggregation with distill/federated/fedavg, evaluation on held-out
// data, storing every version signed and linked to its parent), the participant (joining by
// request or by the config's join policy, fetching each round's model, training on local data,
// sending signed updates, or masked ones on SecureProtocol for secure aggregation; with
// record-level DP it trains with DP-SGD and keeps its records' privacy account), the job protocol (announcements gossiped and validated on Topic,
// updates received on Protocol's streams and sent over its client), the persistence of what
// this node coordinates, takes part in and heard of (resumed on restart), the training API's
// handlers and the training metrics. The job protocol's rules themselves (specs,
// announcements, updates, the round collector) are package fedjob's.
//
// It depends only on what its Deps hand it: the expert store (Store: resolve, read, load and
// add experts), a datastore of its own state, this node's identity (Signer), the libp2p host,
// gossip (PubSub) and peer router (the DHT), the exposure (Exposure: rebuilt when a job's
// models change), the fetcher of round models (Fetcher: the blob service), a callback for
// stored versions, the config's join policies, a prometheus registerer and a logger. It knows
// nothing of the daemon that composes it.
package trainsvc
