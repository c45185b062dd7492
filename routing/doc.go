// Package routing will own query routing: the candidate table of local and remote experts,
// scoring and gating, dispatch with failover and hedging, and per-peer statistics.
package routing
