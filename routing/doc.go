// Package routing owns getting a query answered: the query messages nodes exchange, the
// candidate experts (local and remote) and how they are scored, per-peer statistics (latency
// EWMA and p95, in-flight requests, circuit breakers), and dispatch with failover and hedging.
// Scoring and statistics are functions of their inputs; the network is reached only through the
// call function dispatch is given.
package routing
