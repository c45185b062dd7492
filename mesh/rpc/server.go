package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Handler answers one request. Returning an error sends its text to the caller.
type Handler func(ctx context.Context, from peer.ID, req []byte) ([]byte, error)

// ServerOptions bound what a caller can make the server do.
type ServerOptions struct {
	MaxRequest   int           // default 1 MiB
	IdleTimeout  time.Duration // a stream with no request for this long is closed (default 60 s)
	ReadTimeout  time.Duration // a request must arrive whole within this (default 10 s)
	WriteTimeout time.Duration // a response must leave within this (default 10 s)
	HandlerLimit time.Duration // upper bound on one handler call (default 30 s)
	// PeerRate and PeerBurst are each peer's token bucket: requests a second and burst. A
	// request without a token gets an error answer at once. Zero rate: no limit.
	PeerRate  float64
	PeerBurst int
	// PeerBusy is each peer's budget of handler time: seconds of handling a second, on
	// average, with PeerBusyBurst seconds at once (default 2 s). A peer in debt (its requests
	// took more) gets an error answer at once until the debt is repaid. It bounds the CPU one
	// peer can make the node spend, whatever each request costs. Zero: no limit.
	PeerBusy      float64
	PeerBusyBurst time.Duration
	Logger        *slog.Logger
}

func (o *ServerOptions) defaults() {
	if o.MaxRequest <= 0 {
		o.MaxRequest = 1 << 20
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Minute
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.HandlerLimit <= 0 {
		o.HandlerLimit = 30 * time.Second
	}
	if o.PeerBurst <= 0 {
		o.PeerBurst = max(1, int(o.PeerRate))
	}
	if o.PeerBusyBurst <= 0 {
		o.PeerBusyBurst = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrRateLimited is the text a caller gets when its token bucket is empty; ErrBusyLimited
// when its requests used up its budget of handler time.
const (
	ErrRateLimited = "rate limited: too many requests from this peer"
	ErrBusyLimited = "rate limited: this peer's requests used up its share of handling time; retry later"
)

// limits are a server's per-peer budgets.
type limits struct {
	requests *buckets // one token a request
	busy     *buckets // seconds of handler time
}

// Serve registers handler for proto on h. Each stream serves requests one after another until
// the caller closes it, it idles, or a read or write misses its deadline.
func Serve(h host.Host, proto protocol.ID, handler Handler, o ServerOptions) {
	o.defaults()
	l := &limits{requests: newBuckets(o.PeerRate, o.PeerBurst), busy: newBuckets(o.PeerBusy, 0)}
	l.busy.burst = o.PeerBusyBurst.Seconds()
	h.SetStreamHandler(proto, func(s network.Stream) {
		serveStream(s, handler, &o, l)
	})
}

func serveStream(s network.Stream, handler Handler, o *ServerOptions, limits *limits) {
	defer s.Close()
	from := s.Conn().RemotePeer()
	r := bufio.NewReader(s)
	w := bufio.NewWriter(s)
	for {
		// Wait for the next request's first byte up to the idle timeout, then give the rest of
		// it the read timeout.
		_ = s.SetReadDeadline(time.Now().Add(o.IdleTimeout))
		if _, err := r.Peek(1); err != nil {
			if !errors.Is(err, io.EOF) {
				s.Reset()
			}
			return
		}
		_ = s.SetReadDeadline(time.Now().Add(o.ReadTimeout))
		kind, req, err := readFrame(r, o.MaxRequest, reserveIn(s))
		if err != nil || kind != frameRequest {
			if err == nil {
				err = fmt.Errorf("frame kind %d is not a request", kind)
			}
			o.Logger.Debug("bad request frame", "peer", from, "err", err)
			_ = s.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
			_ = writeFrame(w, frameError, []byte("bad request: "+err.Error()))
			// The stream's framing is lost: end it after the error (a reset would discard the
			// error before the caller reads it); the caller opens a new stream.
			_ = s.CloseWrite()
			return
		}
		var resp []byte
		kind = frameResponse
		if now := time.Now(); !limits.requests.allow(from, now) {
			kind, resp = frameError, []byte(ErrRateLimited)
		} else if !limits.busy.ready(from, now) {
			kind, resp = frameError, []byte(ErrBusyLimited)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), o.HandlerLimit)
			resp, err = handler(ctx, from, req)
			cancel()
			limits.busy.charge(from, time.Now(), time.Since(now).Seconds())
			if err != nil {
				kind, resp = frameError, []byte(err.Error())
			}
		}
		_ = s.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
		if err := writeFrame(w, kind, resp); err != nil {
			s.Reset()
			return
		}
	}
}

// reserveIn charges a request's buffer to the stream's scope in libp2p's resource manager, so
// large requests count against the peer's, the protocol's and the node's memory limits.
func reserveIn(s network.Stream) func(int) (func(), error) {
	return func(n int) (func(), error) {
		scope := s.Scope()
		if err := scope.ReserveMemory(n, network.ReservationPriorityAlways); err != nil {
			return nil, fmt.Errorf("memory for the request: %w", err)
		}
		return func() { scope.ReleaseMemory(n) }, nil
	}
}
