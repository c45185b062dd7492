// Package secagg is secure aggregation for federated rounds (Bonawitz et al., CCS 2017, with
// the sparse neighbourhoods of SecAgg+, Bell et al., CCS 2020): participants mask their
// fixed-point updates so that the coordinator learns only their sum, and the round still
// closes when some of them drop out after masking.
//
// One round runs in four steps. Each participant advertises two X25519 public keys (Advert).
// Given the roster of adverts, it Shamir-shares two secrets among its neighbours — the
// secret behind its mask key and the seed of its self mask — each share sealed (AES-GCM) for
// its recipient (ShareKeys). It then sends its update plus its self mask plus, for every
// neighbour, a pairwise mask that the neighbour subtracts (Mask). Once the coordinator says
// who sent masked input, each survivor reveals, for every neighbour, the share of that
// neighbour's self-mask seed if it sent input, or of its mask-key secret if it dropped
// (Unmask). The coordinator (Server) rebuilds the secrets from enough shares, checks every
// share against its dealer's Feldman commitment, and removes the masks.
//
// The package does the arithmetic and cryptography only; who talks to whom, signatures on
// adverts and deadlines belong to the caller. Shamir sharing is circl's, over Ristretto255's
// scalar field.
package secagg
