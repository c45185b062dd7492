// Package apisvc is the daemon's local HTTP API, the one commands and the dashboard use. It owns
// the API server (its listener, on the loopback address the config or --api names; the file
// that tells commands its URL, written when it starts and removed when it stops), the token
// check on every request but the dashboard page's, the route table (the node's identity,
// status, peers, hosted and remote experts, serve and unserve, queries and routes, blobs, the
// store's commands, metrics, and the routes other services register), the error answers (every
// failure answered with the status and code of its kind in package api's error table), the job
// runner (long work streamed as progress lines then a result, bounded per kind, ended as
// interrupted when the daemon stops) and the dashboard page, embedded in the binary.
//
// It depends only on what its Deps hand it: the libp2p host (Host: ID and peers), the node
// (Node: addresses, serve and unserve), the mesh's adverts (Adverts: served and remote), the
// expert store (Store: experts counted, blobs read), the repo (Repo: hosted experts, the API
// token), the store's commands (StoreOps: a node.LocalOps), the query service (Queries), the
// blob service (Blobs: put, fetch, gc) and its keeper (Pins), the market (Market: how a served
// expert is exposed), the registrars of other services' routes (Routes: trainsvc's and
// marketsvc's), a prometheus gatherer, the path of the API file, when the node started and a
// logger. It knows nothing of the daemon that composes it.
package apisvc
