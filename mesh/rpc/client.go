package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// RemoteError is an error the server answered with.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return "remote: " + e.Msg }

// Client calls one protocol on remote peers, keeping idle streams per peer for reuse.
type Client struct {
	h           host.Host
	proto       protocol.ID
	maxResponse int
	maxIdle     int

	mu   sync.Mutex
	idle map[peer.ID][]*conn
}

type conn struct {
	s network.Stream
	r *bufio.Reader
	w *bufio.Writer
}

// NewClient returns a client for proto. maxResponse bounds answers (default 1 MiB); maxIdle
// bounds the idle streams kept per peer (default 64).
func NewClient(h host.Host, proto protocol.ID, maxResponse, maxIdle int) *Client {
	if maxResponse <= 0 {
		maxResponse = 1 << 20
	}
	if maxIdle <= 0 {
		maxIdle = 64
	}
	return &Client{h: h, proto: proto, maxResponse: maxResponse, maxIdle: maxIdle, idle: map[peer.ID][]*conn{}}
}

// Call sends req to p and returns the answer. The context's deadline bounds the whole call
// (default 10 s). A stream that fails is reset, never reused.
func (c *Client) Call(ctx context.Context, p peer.ID, req []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	resp, retry, err := c.call(ctx, p, req, deadline, true)
	if retry {
		// An idle stream the server had already closed: try once more on a fresh one.
		resp, _, err = c.call(ctx, p, req, deadline, false)
	}
	return resp, err
}

// call makes one attempt. It reports retry when a reused stream failed in transport before
// any answer, which is what a stream closed by the server's idle timeout looks like.
func (c *Client) call(ctx context.Context, p peer.ID, req []byte, deadline time.Time, reuse bool) ([]byte, bool, error) {
	cn, reused, err := c.get(ctx, p, reuse)
	if err != nil {
		return nil, false, err
	}
	// A cancelled context interrupts the reads and writes by moving the deadline to now.
	stop := context.AfterFunc(ctx, func() { _ = cn.s.SetDeadline(time.Now()) })
	resp, err := c.roundTrip(cn, req, deadline)
	stop()
	if err != nil {
		var re *RemoteError
		remote := errors.As(err, &re)
		if remote && ctx.Err() == nil && time.Now().Before(deadline) {
			c.put(p, cn) // an error answer leaves the stream in step
		} else {
			cn.s.Reset()
		}
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("call %s: %w", p, ctx.Err())
		}
		if !time.Now().Before(deadline) { // the stream deadline fired a moment before ctx's timer
			return nil, false, fmt.Errorf("call %s: %v: %w", p, err, context.DeadlineExceeded)
		}
		return nil, reused && !remote, err
	}
	c.put(p, cn)
	return resp, false, nil
}

func (c *Client) roundTrip(cn *conn, req []byte, deadline time.Time) ([]byte, error) {
	_ = cn.s.SetDeadline(deadline)
	if err := writeFrame(cn.w, frameRequest, req); err != nil {
		return nil, fmt.Errorf("send request: %w", err)
	}
	kind, resp, err := readFrame(cn.r, c.maxResponse, nil)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	switch kind {
	case frameResponse:
		return resp, nil
	case frameError:
		return nil, &RemoteError{Msg: string(resp)}
	}
	return nil, fmt.Errorf("read response: frame kind %d", kind)
}

func (c *Client) get(ctx context.Context, p peer.ID, reuse bool) (*conn, bool, error) {
	if reuse {
		c.mu.Lock()
		if list := c.idle[p]; len(list) > 0 {
			cn := list[len(list)-1]
			c.idle[p] = list[:len(list)-1]
			c.mu.Unlock()
			return cn, true, nil
		}
		c.mu.Unlock()
	}
	// Requests are small: they may cross a relayed (limited) connection to a peer behind a NAT
	// until hole punching gives a direct one, which the swarm then prefers.
	s, err := c.h.NewStream(network.WithAllowLimitedConn(ctx, string(c.proto)), p, c.proto)
	if err != nil {
		return nil, false, fmt.Errorf("open %s stream to %s: %w", c.proto, p, err)
	}
	return &conn{s: s, r: bufio.NewReader(s), w: bufio.NewWriter(s)}, false, nil
}

func (c *Client) put(p peer.ID, cn *conn) {
	_ = cn.s.SetDeadline(time.Time{})
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle[p]) >= c.maxIdle {
		cn.s.Close()
		return
	}
	c.idle[p] = append(c.idle[p], cn)
}

// Close closes every idle stream.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, list := range c.idle {
		for _, cn := range list {
			cn.s.Close()
		}
		delete(c.idle, p)
	}
	return nil
}
