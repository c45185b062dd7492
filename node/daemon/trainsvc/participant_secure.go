package trainsvc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/node"
)

// errDroppedOut ends a secure round this node was told to leave after masking (tests).
var errDroppedOut = errors.New("left the secure round after masking (test hook)")

// sendSecure takes this node's trained update through a secure round: advertise keys, deal
// shares, send the masked update, reveal shares. It returns the coordinator's refusal as a
// reply, and transport failures and protocol violations as errors.
func (p *participant) sendSecure(ctx context.Context, a *fedjob.Announcement, delta []float64, samples int, loss, secs, fetch float64) (fedjob.SecureReply, error) {
	spec := &a.Spec
	ctx, cancel := context.WithDeadline(ctx, time.UnixMilli(a.Deadline).Add(3*spec.SecAggPhase()+2*time.Second))
	defer cancel()
	sp, err := fedjob.NewSecureParticipant(spec, a.Round, a.Deadline, p.s.signer, node.VerifyPeerSignature)
	if err != nil {
		return fedjob.SecureReply{}, err
	}
	m, err := sp.Advert(secs, fetch)
	if err != nil {
		return fedjob.SecureReply{}, err
	}
	// step sends m and, when it is accepted, polls for the result of the step named.
	step := func(m *fedjob.SecureMsg) (*fedjob.SecureReply, error) {
		r, err := p.secureCall(ctx, a, m)
		if err != nil || r.Code != fedjob.ReplyAccepted {
			return r, err
		}
		for {
			r, err := p.secureCall(ctx, a, sp.Poll(m.Step))
			if err != nil || r.Code != fedjob.ReplyPending {
				return r, err
			}
		}
	}
	r, err := step(m)
	if err != nil || r.Code != fedjob.ReplyAccepted {
		return deref(r), err
	}
	if m, err = sp.Dealing(r.Roster); err != nil {
		return fedjob.SecureReply{}, err
	}
	if r, err = step(m); err != nil || r.Code != fedjob.ReplyAccepted {
		return deref(r), err
	}
	if m, err = sp.Masked(r.Deliveries, delta, samples, loss); err != nil {
		return fedjob.SecureReply{}, err
	}
	if p.s.dropAfterMask != nil && p.s.dropAfterMask(a.Round) {
		if _, err := p.secureCall(ctx, a, m); err != nil {
			return fedjob.SecureReply{}, err
		}
		return fedjob.SecureReply{}, errDroppedOut
	}
	if r, err = step(m); err != nil || r.Code != fedjob.ReplyAccepted {
		return deref(r), err
	}
	if m, err = sp.Reveal(r.Survivors); err != nil {
		return fedjob.SecureReply{}, err
	}
	r, err = p.secureCall(ctx, a, m)
	return deref(r), err
}

func deref(r *fedjob.SecureReply) fedjob.SecureReply {
	if r == nil {
		return fedjob.SecureReply{}
	}
	return *r
}

// secureCall sends one step or poll to the coordinator (directly when this node coordinates),
// retrying transport failures until ctx ends.
func (p *participant) secureCall(ctx context.Context, a *fedjob.Announcement, m *fedjob.SecureMsg) (*fedjob.SecureReply, error) {
	b := m.Encode()
	if a.Spec.Coordinator == p.s.signer.ID() {
		p.s.mu.Lock()
		c := p.s.coords[a.Spec.ID()]
		p.s.mu.Unlock()
		if c == nil {
			return nil, fmt.Errorf("job %s: this node no longer coordinates it", a.Spec.ID())
		}
		r, err := c.secure(ctx, p.s.signer.ID(), m, len(b))
		return &r, err
	}
	to, err := p.coordinator(a)
	if err != nil {
		return nil, err
	}
	raw, err := p.call(ctx, p.s.secureClient, to, b, 200*time.Millisecond)
	if err != nil {
		return nil, err
	}
	return fedjob.DecodeSecureReply(raw)
}
