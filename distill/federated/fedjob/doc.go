// Package fedjob holds the messages and rules of a federated training job, apart from any
// transport: the signed job spec, the coordinator's round announcements (gossip), the
// participants' signed updates (streams) with their binary codec, and the collector that
// decides when a round closes (quorum and soft deadline, or hard deadline). The daemon moves
// these over libp2p; package fedavg does the arithmetic.
package fedjob
