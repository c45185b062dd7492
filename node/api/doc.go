// Package api is the contract of a daemon's local HTTP API, in one place: its paths, the
// request and response types, the error table, the job streams and the client. The daemon
// (node/daemon) serves it and the commands (cmd/internal/cli) call it; both depend on this
// package, neither on the other. It holds no state and starts nothing.
//
//   - types.go: the node's status, peers, hosted experts, queries and blobs;
//   - store.go: the store's commands (StoreOps: list, inspect, eval, export, import, validate,
//     blob put, pin, unpin, gc) and their requests and reports;
//   - train.go: `expert train` and federated jobs; distill.go: distill and generate;
//   - market.go: listings, purchases, the ledger's book and history;
//   - errors.go: the error table (a stable code, an HTTP status and a meaning per kind),
//     KindOf, and CallError, a refusal as the client sees it;
//   - jobs.go: JobEvent, the newline-delimited stream of a long job (progress lines, then its
//     result or its error), and RunJob, which reads one and reports a stream that ends early
//     as interrupted;
//   - client.go: Client (DaemonClient finds a repo's running daemon from <repo>/api and
//     <repo>/api.token).
//
// Every request carries the repo's token (Authorization: Bearer); the API listens on loopback
// only. Paths a request names are absolute: the daemon's working folder is not the command's.
package api
