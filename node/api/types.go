package api

import (
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/routing"
)

// APIFile in a repo folder holds the running daemon's API base URL, so commands can find it.
const APIFile = "api"

// TokenFile in a repo folder holds the API token every request carries
// (Authorization: Bearer TOKEN).
const TokenFile = "api.token"

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
	PathQuery   = "/api/v1/query"
	PathRoutes  = "/api/v1/routes"
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
	// Reachability is Public, Private (behind a NAT: reached through relays) or Unknown.
	Reachability string `json:"reachability"`
}

// PeerInfo is one connected peer.
type PeerInfo struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	LatencyMS float64  `json:"latency_ms"`
	// Relayed says every connection to the peer goes through a relay (limited: small
	// requests only, until hole punching makes a direct one).
	Relayed bool `json:"relayed"`
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
	Code  string `json:"code"`  // what kind of failure: a Code of APIErrors' table
}

// CallError is a daemon's refusal as a client sees it: its message, code and HTTP status.
type CallError struct {
	Path    string
	Status  int
	Code    string
	Message string
}

func (e *CallError) Error() string { return e.Message }

// Is makes errors.Is(err, api.ErrNotFound) true for the daemon's refusal of that kind, as
// for the daemon's own error before it crossed the API.
func (e *CallError) Is(target error) bool {
	k, ok := target.(*ErrorKind)
	return ok && k.Code == e.Code
}

// QueryRequest is the body of PathQuery: exactly one of Expert and Domain, and one input.
type QueryRequest struct {
	Expert    string    `json:"expert,omitempty"` // ID or name
	Domain    string    `json:"domain,omitempty"`
	K         int       `json:"k,omitempty"` // > 1: mix the K best experts
	Vector    []float32 `json:"vector,omitempty"`
	Text      string    `json:"text,omitempty"`
	Image     []byte    `json:"image,omitempty"`      // PNG or JPEG bytes (base64 in JSON)
	TimeoutMS int       `json:"timeout_ms,omitempty"` // default 5000
}

// QueryAnswer answers PathQuery: the winning response, who gave it, every attempt, and with
// K > 1 the parts of the mixture.
type QueryAnswer struct {
	routing.Answer
	Mixture []routing.Part `json:"mixture,omitempty"`
	// Domain is the domain routed to; Gate, when the gating expert chose it, every domain's
	// probability.
	Domain string             `json:"domain,omitempty"`
	Gate   map[string]float64 `json:"gate,omitempty"`
	// Top are the best classes with their probabilities, when the answering expert's labels
	// are known here (a query answered without a daemon).
	Top    []ClassScore `json:"top,omitempty"`
	Micros int64        `json:"latency_us"`
}

// Blob API paths.
const (
	PathBlobPut     = "/api/v1/blobs/put"
	PathBlobFetch   = "/api/v1/blobs/fetch"
	PathBlobCat     = "/api/v1/blobs/cat"
	PathBlobPin     = "/api/v1/blobs/pin"
	PathBlobUnpin   = "/api/v1/blobs/unpin"
	PathBlobGC      = "/api/v1/blobs/gc"
	PathExpertFetch = "/api/v1/experts/fetch"
)

// BlobInfo describes a blob put or fetched.
type BlobInfo struct {
	CID          string  `json:"cid"`
	Name         string  `json:"name,omitempty"` // for experts
	Size         int64   `json:"size"`
	Received     int64   `json:"received_bytes,omitempty"`
	Seconds      float64 `json:"seconds"`
	MiBPerSecond float64 `json:"mib_per_second,omitempty"`
	Pinned       bool    `json:"pinned,omitempty"`
	Private      bool    `json:"private,omitempty"` // put without exposing it to peers
}

// GCReport says what a gc removed.
type GCReport struct {
	Removed int   `json:"removed_blocks"`
	Bytes   int64 `json:"removed_bytes"`
	Kept    int   `json:"kept_blocks"`
}

// FetchEvent is one line of a fetch that streams its progress (a fetch request with
// "progress": true answers with newline-delimited FetchEvents): progress lines, then a result
// or an error.
type FetchEvent = JobEvent[FetchProgress, BlobInfo]

// FetchProgress is how far a fetch has come.
type FetchProgress struct {
	Bytes    int64   `json:"bytes"`          // of the blob now held
	Total    int64   `json:"total"`          // the blob's size, 0 until its root block is known
	Received int64   `json:"received_bytes"` // block bytes received from peers
	Blocks   int     `json:"blocks"`
	Seconds  float64 `json:"seconds"`
}

// ClassScore is one class's probability.
type ClassScore struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}
