package trainsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/node"
)

// securePoll is how long the coordinator holds a poll for a step's result before answering
// that it is pending.
const securePoll = 2 * time.Second

// secureRound runs round c.st.Round as a secure round: participants advertise keys until the
// round's deadline (or quorum and soft deadline), then deal shares, send masked updates and
// reveal shares, each step closing when everyone expected answered or at its own deadline.
// The coordinator learns the sum of the updates only.
func (c *coordinator) secureRound(ctx context.Context, net *experts.Network) (*fedjob.RoundSummary, *experts.Network, error) {
	spec := &c.st.Spec
	started := time.Now()
	c.mu.Lock()
	sr := fedjob.NewSecureRound(spec, c.st.Round, net.ParamCount(), started, c.st.Roster)
	c.sec = sr
	c.mu.Unlock()
	var advertsClosed time.Time
	var failed error
	err := c.collect(ctx, sr.Deadline(), func(now time.Time) (bool, time.Time, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for {
			due, at := sr.Due(now)
			if !due {
				return false, at, nil
			}
			if err := sr.Advance(now); err != nil {
				failed = err
				return true, at, nil
			}
			if advertsClosed.IsZero() {
				advertsClosed = now
			}
			if sr.Done() {
				return true, at, nil
			}
		}
	})
	if err != nil {
		c.mu.Lock()
		c.sec = nil
		c.mu.Unlock()
		return nil, nil, err
	}
	unmask := time.Now()
	c.mu.Lock()
	c.sec = nil
	c.st.Roster = sr.Roster()
	var delta []float64
	var res fedjob.Result
	if failed == nil {
		delta, res, failed = sr.Aggregate(c.noise)
	}
	received, sent := sr.Bytes()
	c.mu.Unlock()
	if failed != nil {
		if !errors.Is(failed, fedjob.ErrRoundFailed) {
			return nil, nil, failed
		}
		c.s.log.Warn("secure round failed; opening it again", "job", spec.ID(), "round", c.st.Round, "err", failed)
		return nil, nil, nil
	}
	sum := &fedjob.SecureSummary{Seconds: time.Since(advertsClosed).Seconds(), UnmaskSeconds: time.Since(unmask).Seconds(),
		ReceivedBytes: received, SentBytes: sent}
	return c.closeRound(ctx, net, delta, res, started, unmask, sum)
}

// serveSecure is SecureProtocol's handler: a participant's step or poll in a secure round.
func (s *Service) serveSecure(ctx context.Context, from peer.ID, req []byte) ([]byte, error) {
	m, err := fedjob.DecodeSecureMsg(req, maxUpdateValues+2)
	if err != nil {
		s.metrics.secure.WithLabelValues("malformed").Inc()
		return nil, err
	}
	s.mu.Lock()
	c := s.coords[m.Job]
	s.mu.Unlock()
	if c == nil {
		s.metrics.secure.WithLabelValues(fedjob.ReplyUnknown).Inc()
		return json.Marshal(fedjob.SecureReply{Code: fedjob.ReplyUnknown, Error: "this node coordinates no job " + m.Job})
	}
	r, err := c.secure(ctx, from.String(), m, len(req))
	if err != nil {
		s.metrics.secure.WithLabelValues("forged").Inc()
		return nil, err
	}
	s.metrics.secure.WithLabelValues(r.Code).Inc()
	b, err := json.Marshal(r)
	if err == nil {
		c.mu.Lock()
		if c.sec != nil {
			c.sec.CountSent(len(b))
		}
		c.mu.Unlock()
	}
	return b, err
}

// secure takes a participant's step, or answers its poll once the step polled for has
// closed (holding the poll up to securePoll). An error is a message that must not be
// answered: an advert not signed by its sender.
func (c *coordinator) secure(ctx context.Context, from string, m *fedjob.SecureMsg, size int) (fedjob.SecureReply, error) {
	if m.Step == fedjob.StepAdvert {
		if m.Advert.ID != from {
			return fedjob.SecureReply{}, fmt.Errorf("advert for %s arrived from %s", m.Advert.ID, from)
		}
		if err := fedjob.VerifyRoster(node.VerifyPeerSignature, m.Job, m.Round, m.Instance, []fedjob.SignedAdvert{*m.Advert}); err != nil {
			return fedjob.SecureReply{}, err
		}
	}
	late := func(why string) fedjob.SecureReply { return fedjob.SecureReply{Code: fedjob.ReplyLate, Error: why} }
	c.mu.Lock()
	sr := c.sec
	if sr == nil || sr.Round() != m.Round || sr.Instance() != m.Instance {
		c.mu.Unlock()
		return late(fmt.Sprintf("job %s has no open secure round %d (instance %d)", m.Job, m.Round, m.Instance)), nil
	}
	if m.Step != fedjob.StepPoll {
		err := sr.Add(from, m, size, time.Now())
		c.mu.Unlock()
		if err != nil {
			return fedjob.SecureReply{Code: fedjob.ReplyCode(err), Error: err.Error()}, nil
		}
		select {
		case c.arrived <- struct{}{}:
		default:
		}
		return fedjob.SecureReply{Code: fedjob.ReplyAccepted}, nil
	}
	if !sr.Member(from) {
		c.mu.Unlock()
		return late("not on this round's roster"), nil
	}
	until := time.After(securePoll)
	for {
		r, ok := sr.Result(from, m.Poll)
		changed := sr.Changed()
		c.mu.Unlock()
		if ok {
			return r, nil
		}
		select {
		case <-changed:
		case <-until:
			return r, nil
		case <-ctx.Done():
			return r, nil
		}
		c.mu.Lock()
		if c.sec != sr {
			c.mu.Unlock()
			return late("the round closed"), nil
		}
	}
}
