package trainsvc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/node"
)

// serveUpdate is Protocol's handler: it receives a participant's update for a job this node
// coordinates.
func (s *Service) serveUpdate(_ context.Context, from peer.ID, req []byte) ([]byte, error) {
	// The cheap check first: a node that coordinates no such job decodes nothing more.
	job, err := fedjob.PeekUpdateJob(req)
	if err != nil {
		s.metrics.updates.WithLabelValues("malformed").Inc()
		return nil, err
	}
	s.mu.Lock()
	known := s.coords[job] != nil
	s.mu.Unlock()
	if !known {
		s.metrics.updates.WithLabelValues(fedjob.ReplyUnknown).Inc()
		return json.Marshal(fedjob.Reply{Code: fedjob.ReplyUnknown, Error: "this node coordinates no job " + job})
	}
	u, err := fedjob.DecodeUpdate(req, maxUpdateValues)
	if err != nil {
		s.metrics.updates.WithLabelValues("malformed").Inc()
		return nil, err
	}
	if u.Participant != from.String() {
		s.metrics.updates.WithLabelValues("forged").Inc()
		return nil, fmt.Errorf("update signed for %s arrived from %s", u.Participant, from)
	}
	if err := u.Verify(node.VerifyPeerSignature); err != nil {
		s.metrics.updates.WithLabelValues("forged").Inc()
		return nil, err
	}
	return json.Marshal(s.accept(u, len(req)))
}

// accept hands a verified update to the coordinator of its job and says how it went.
func (s *Service) accept(u *fedjob.Update, size int) fedjob.Reply {
	s.mu.Lock()
	c := s.coords[u.Job]
	s.mu.Unlock()
	if c == nil {
		s.metrics.updates.WithLabelValues(fedjob.ReplyUnknown).Inc()
		return fedjob.Reply{Code: fedjob.ReplyUnknown, Error: "this node coordinates no job " + u.Job}
	}
	r := fedjob.Reply{Code: fedjob.ReplyAccepted}
	if err := c.add(u, size); err != nil {
		r = fedjob.Reply{Code: fedjob.ReplyCode(err), Error: err.Error()}
	}
	s.metrics.updates.WithLabelValues(r.Code).Inc()
	return r
}
