package trainsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	ds "github.com/ipfs/go-datastore"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/node"
)

// maxSeenJobs bounds the jobs a node keeps hearing of; beyond it, the stalest job this node
// takes no part in makes room.
const maxSeenJobs = 256

// validate is Topic's validator: it accepts only well-formed announcements signed by their
// coordinator, and hands the decoded one to receive.
func (s *Service) validate(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	a, err := fedjob.DecodeAnnouncement(msg.Data, msg.GetFrom().String(), time.Now(), node.VerifyPeerSignature)
	if err != nil {
		s.log.Debug("training announcement rejected", "from", msg.GetFrom(), "err", err)
		return pubsub.ValidationReject
	}
	msg.ValidatorData = a
	return pubsub.ValidationAccept
}

// receive hands every validated announcement to heard, until Close.
func (s *Service) receive() {
	defer s.wg.Done()
	for {
		msg, err := s.sub.Next(s.ctx)
		if err != nil {
			return
		}
		if a, ok := msg.ValidatorData.(*fedjob.Announcement); ok {
			s.heard(a)
		}
	}
}

// heard records an announcement and hands it to this node's participation in the job, or
// joins the job when the config's policy names data for its domain.
func (s *Service) heard(a *fedjob.Announcement) {
	id := a.Spec.ID()
	s.mu.Lock()
	j := s.seen[id]
	if j == nil {
		if len(s.seen) >= maxSeenJobs && !s.evictSeenLocked() {
			s.mu.Unlock()
			return
		}
		j = &seenJob{}
		s.seen[id] = j
	}
	newer := j.Ann == nil || a.Issued >= j.Ann.Issued
	changed := j.Ann == nil || j.Ann.State != a.State || j.Ann.Round != a.Round
	if newer {
		j.Ann = a
	}
	if a.Last != nil && (len(j.History) == 0 || j.History[len(j.History)-1].Round < a.Last.Round) {
		j.History = append(j.History, *a.Last)
		changed = true
	}
	p := s.parts[id]
	policy := ""
	if p == nil && newer && a.State == fedjob.StateRound && !s.policyTried[id] {
		for _, pol := range s.policies {
			trusted := len(pol.Coordinators) == 0 || slices.Contains(pol.Coordinators, a.Spec.Coordinator)
			if pol.Domain == a.Spec.Domain && trusted {
				policy, s.policyTried[id] = pol.Dataset, true
				break
			}
		}
	}
	s.mu.Unlock()
	if p != nil && changed {
		s.saveSeen(id) // what a participant heard of its job survives a restart
	}
	switch {
	case !newer:
	case p != nil:
		p.offer(a)
	case policy != "":
		// Joining loads a data set: not on the gossip loop. One try per job.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if _, err := s.join(s.ctx, id, policy); err != nil {
				s.log.Warn("join by policy failed", "job", id, "dataset", policy, "err", err)
			}
		}()
	}
}

// evictSeenLocked drops the job heard of longest ago that this node takes no part in, and
// reports whether there was one.
func (s *Service) evictSeenLocked() bool {
	victim, oldest := "", int64(0)
	for id, j := range s.seen {
		if s.coords[id] != nil || s.parts[id] != nil {
			continue
		}
		if victim == "" || j.Ann.Issued < oldest {
			victim, oldest = id, j.Ann.Issued
		}
	}
	if victim != "" {
		delete(s.seen, victim)
		delete(s.policyTried, victim)
	}
	return victim != ""
}

// saveSeen persists what this node heard of a job; saves are serialised so an older snapshot
// never overwrites a newer one.
func (s *Service) saveSeen(id string) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	saved, err := json.Marshal(s.seen[id])
	s.mu.Unlock()
	if err == nil {
		err = s.state.Put(s.ctx, ds.NewKey("/seen/"+id), saved)
	}
	if err != nil {
		s.log.Warn("cannot persist a training announcement", "job", id, "err", err)
	}
}

// publish signs and gossips an announcement, and hands it to this node's own participation.
func (s *Service) publish(ctx context.Context, a fedjob.Announcement) error {
	a.Issued = time.Now().UnixMilli()
	for _, ad := range s.host.Addrs() {
		if len(a.Addrs) < fedjob.MaxAddrs {
			a.Addrs = append(a.Addrs, ad.String())
		}
	}
	if err := a.Sign(s.signer); err != nil {
		return err
	}
	err := s.topic.Publish(ctx, a.Encode()) // the mesh first: heard may write to disk
	s.heard(&a)
	if err != nil {
		return fmt.Errorf("announce job %s: %w", a.Spec.ID(), err)
	}
	return nil
}
