package node

import (
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh/advert"
)

// APIFile in a repo folder holds the running daemon's API base URL, so commands can find it.
const APIFile = "api"

// API paths (version 1). Every request carries "Authorization: Bearer <token>" with the repo's
// API token; anything else gets 401.
const (
	PathID      = "/api/v1/id"
	PathStatus  = "/api/v1/status"
	PathPeers   = "/api/v1/peers"
	PathExperts = "/api/v1/experts"
	PathRemote  = "/api/v1/experts/remote"
	PathServe   = "/api/v1/experts/serve"
	PathUnserve = "/api/v1/experts/unserve"
	PathMetrics = "/metrics"
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes = 64 << 10
)

// IDInfo answers PathID.
type IDInfo struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}

// StatusInfo answers PathStatus.
type StatusInfo struct {
	PeerID        string           `json:"peer_id"`
	Addrs         []string         `json:"addrs"`
	Peers         int              `json:"peers"`
	Served        []advert.Service `json:"served"`
	Hosted        int              `json:"hosted"`
	RemoteAdverts int              `json:"remote_adverts"`
	UptimeSeconds float64          `json:"uptime_seconds"`
}

// PeerInfo is one connected peer.
type PeerInfo struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	LatencyMS float64  `json:"latency_ms"`
}

// HostedExpert is a stored expert and whether it is advertised.
type HostedExpert struct {
	store.Entry
	Served bool `json:"served"`
}

// ServeRequest is the body of PathServe and PathUnserve.
type ServeRequest struct {
	Ref string `json:"ref"` // expert ID or name
}

// APIError is the body of every non-200 answer.
type APIError struct {
	Error string `json:"error"` // what went wrong, in one line
}
