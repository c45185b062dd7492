// Package advert defines the adverts meshnode peers gossip about the experts they serve, their
// validation, and the table of remote adverts a node keeps. It is pure logic: messages and
// times in, decisions out; persistence only through a datastore handed to Load and Flush.
package advert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Version is the schema version of adverts this node writes and accepts.
const Version = 1

// Advert announces that Provider serves the expert ID, with what routing needs to choose it.
// A withdrawal (Withdraw set) says the provider stopped serving it. Adverts are JSON, signed by
// gossipsub with the provider's key, and never carry weights.
type Advert struct {
	V        int    `json:"v"`
	Provider string `json:"provider"`
	ID       string `json:"id"` // the expert's manifest CID
	// Weights is the CID of the expert's weights blob, so a node that fetches the expert asks
	// for manifest and weights at once. A hint: the manifest fetched by its CID decides.
	Weights  string   `json:"weights,omitempty"`
	Withdraw bool     `json:"withdraw,omitempty"`
	Name     string   `json:"name,omitempty"`
	Domains  []string `json:"domains,omitempty"`
	Spec     string   `json:"spec,omitempty"`    // digest of the input and output specs
	Params   int      `json:"params,omitempty"`  // parameter count
	Quality  float64  `json:"quality,omitempty"` // evaluated quality in [0, 1]
	Load     float64  `json:"load"`              // current load in [0, 1]
	Price    uint64   `json:"price"`             // credits per use (0: free)
	Time     int64    `json:"time"`              // publication, Unix milliseconds
	TTL      int64    `json:"ttl"`               // lifetime in milliseconds
	Seq      uint64   `json:"seq"`               // increases with every advert of a provider
}

// Rejection reasons (metric labels, and the text of validation errors).
var (
	ErrSize      = errors.New("oversized")
	ErrMalformed = errors.New("malformed")
	ErrForged    = errors.New("forged")
	ErrStale     = errors.New("stale")
)

// Reason maps a validation error to its metric label.
func Reason(err error) string {
	for _, e := range []error{ErrSize, ErrMalformed, ErrForged, ErrStale, ErrFull} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other"
}

// maxClockSkew is how far in the future an advert's time may be.
const maxClockSkew = 30 * time.Second

// Decode parses and validates an advert received from peer from (the message's signed
// author) at time now. Every failure wraps one of the Err* reasons.
func Decode(data []byte, from peer.ID, now time.Time, maxBytes int) (*Advert, error) {
	if len(data) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrSize, len(data), maxBytes)
	}
	var a Advert
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the advert", ErrMalformed)
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	if a.Provider != from.String() {
		return nil, fmt.Errorf("%w: advert names provider %s but is signed by %s", ErrForged, a.Provider, from)
	}
	t := time.UnixMilli(a.Time)
	if t.After(now.Add(maxClockSkew)) {
		return nil, fmt.Errorf("%w: published %s in the future", ErrStale, t.Sub(now))
	}
	if now.Sub(t) > a.ttl() {
		return nil, fmt.Errorf("%w: published %s ago with a TTL of %s", ErrStale, now.Sub(t).Round(time.Millisecond), a.ttl())
	}
	return &a, nil
}

func (a *Advert) ttl() time.Duration { return time.Duration(a.TTL) * time.Millisecond }

// Expires is when the advert stops being valid.
func (a *Advert) Expires() time.Time { return time.UnixMilli(a.Time).Add(a.ttl()) }

// check validates the schema.
func (a *Advert) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if a.V != Version {
		return bad("version %d, want %d", a.V, Version)
	}
	if _, err := peer.Decode(a.Provider); err != nil {
		return bad("provider %q is not a peer ID", a.Provider)
	}
	if _, err := cid.Decode(a.ID); err != nil {
		return bad("id %q is not a CID", a.ID)
	}
	if a.Weights != "" {
		if _, err := cid.Decode(a.Weights); err != nil {
			return bad("weights %q is not a CID", a.Weights)
		}
	}
	if len(a.Name) > 200 || len(a.Domains) > 16 || len(a.Spec) > 128 {
		return bad("name, domains or spec too long")
	}
	for _, d := range a.Domains {
		if d == "" || len(d) > 64 {
			return bad("domain tag %q must have 1 to 64 bytes", d)
		}
	}
	if a.Params < 0 || invalidUnit(a.Quality) || invalidUnit(a.Load) {
		return bad("params must be ≥ 0, quality and load in [0, 1]")
	}
	if a.TTL < 1000 || a.TTL > 3600_000 {
		return bad("ttl %d ms outside [1 s, 1 h]", a.TTL)
	}
	if a.Time <= 0 {
		return bad("no publication time")
	}
	return nil
}

func invalidUnit(x float64) bool { return math.IsNaN(x) || x < 0 || x > 1 }

// Encode renders the advert as JSON after checking it.
func (a *Advert) Encode() ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	return json.Marshal(a)
}

// Service is what a node advertises about one expert it serves: the content of its adverts.
type Service struct {
	ID      string   `json:"id"`
	Weights string   `json:"weights,omitempty"`
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
	Spec    string   `json:"spec"`
	Params  int      `json:"params"`
	Quality float64  `json:"quality"`
	Price   uint64   `json:"price"`
}
