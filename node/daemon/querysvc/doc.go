// Package querysvc is the daemon's query service: it answers queries with experts. It owns the
// query protocol's stream handler (peers' queries, answered only for the experts the exposure
// says this node serves, rate limited per peer), the runner of hosted experts (a bounded cache
// of loaded experts, a bound on image decodes at once, the load the node advertises), the
// router of this node's own queries (candidates from the hosted experts and the live adverts,
// ranking, failover, hedging and mixtures, through the query protocol's client), the gating
// expert that picks a domain for a text query and the persistence of its feedback, the spot
// checker that verifies remote answers against a copy of the expert fetched for the purpose
// (banning a provider that answered differently), and the query metrics.
//
// It depends only on what its Deps hand it: the expert store (Store: hosted experts, names,
// networks), the libp2p host, the exposure (Exposure: which experts are served to peers), the
// live adverts (Adverts: remote candidates), the fetcher of verified experts for spot checks
// (Fetcher: the blob service), the datastore of the gate's feedback, the query settings of the
// repo's config, a prometheus registerer and a logger. It knows nothing of the daemon that
// composes it.
package querysvc
