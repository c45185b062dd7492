package mesh

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Gossip topics, versioned so incompatible nodes do not mix.
const (
	TopicAdverts = "/meshnode/adverts/1"
)

// newPubSub starts gossipsub with strict signing (the default: every message is signed by its
// author and checked on receipt), peer scoring, and a max message size far above any advert
// but far below the 1 MiB default (adverts are a few KB; payloads go over streams and bitswap).
func newPubSub(ctx context.Context, h host.Host, cfg Config, log *slog.Logger, scores *scoreBoard) (*pubsub.PubSub, error) {
	params, thresholds := scoreParams(cfg.ScoredTopics, scores.appScore)
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerScoreInspect(scores.update, time.Second),
		pubsub.WithMaxMessageSize(64<<10),
		pubsub.WithLogger(log),
	)
	if err != nil {
		return nil, fmt.Errorf("start gossipsub: %w", err)
	}
	return ps, nil
}

// scoreParams configures peer scoring for the adverts topic. The penalty that matters is P4,
// invalid messages: each message our validator rejects (forged, unsigned, oversized, malformed,
// stale) counts, squared, at weight -10, decaying by half in about a minute. A handful of invalid
// adverts takes a peer below the gossip threshold (-100), more below publish (-200) and
// graylist (-300) thresholds: it is first not gossiped to, then ignored.
// Every topic in extra gets the same parameters. app is the application's own score of a peer:
// spam penalties (scoreBoard.penalise) for what it authored beyond its limits.
func scoreParams(extra []string, app func(peer.ID) float64) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8") // a constant, cannot fail
	topic := &pubsub.TopicScoreParams{
		SkipAtomicValidation: true,
		TopicWeight:          1,
		// P1: a little credit for time in the mesh (0.01 a second, up to 3). The quantum must
		// be set even in non-atomic mode: gossipsub divides by it.
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  300,
		FirstMessageDeliveriesWeight:   1,
		FirstMessageDeliveriesDecay:    0.9,
		FirstMessageDeliveriesCap:      20,
		InvalidMessageDeliveriesWeight: -10,
		InvalidMessageDeliveriesDecay:  0.99,
	}
	params := &pubsub.PeerScoreParams{
		Topics:            map[string]*pubsub.TopicScoreParams{TopicAdverts: topic},
		TopicScoreCap:     50,
		AppSpecificScore:  app,
		AppSpecificWeight: 1,
		// Many peers behind one IP is suspicious on the internet; on loopback (tests, a
		// developer's several nodes) it is normal, so 127.0.0.0/8 is exempt.
		IPColocationFactorWeight:    -10,
		IPColocationFactorThreshold: 8,
		IPColocationFactorWhitelist: []*net.IPNet{loopback},
		BehaviourPenaltyWeight:      -1,
		BehaviourPenaltyDecay:       0.99,
		DecayInterval:               time.Second,
		DecayToZero:                 0.01,
		RetainScore:                 10 * time.Minute,
	}
	for _, name := range extra {
		t := *topic
		params.Topics[name] = &t
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             -100,
		PublishThreshold:            -200,
		GraylistThreshold:           -300,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 5,
	}
	return params, thresholds
}

// scoreBoard keeps the latest peer scores gossipsub reported, and the spam penalties that
// feed its application-specific score.
type scoreBoard struct {
	mu        sync.Mutex
	scores    map[peer.ID]float64
	penalties map[peer.ID]penalty
	now       func() time.Time
}

// penalty is a decaying count of a peer's spam.
type penalty struct {
	count float64
	at    time.Time
}

// Spam penalties: each counts spamWeight, halving every spamHalfLife; a peer's count is capped
// (so the score stays finite) and at most maxPenalised peers are tracked (the mildest goes first).
const (
	spamWeight   = -10
	spamHalfLife = time.Minute
	maxSpamCount = 100
	maxPenalised = 4096
)

func newScoreBoard() *scoreBoard {
	return &scoreBoard{scores: map[peer.ID]float64{}, penalties: map[peer.ID]penalty{}, now: time.Now}
}

func (p penalty) valueAt(now time.Time) float64 {
	return p.count * math.Exp2(-float64(now.Sub(p.at))/float64(spamHalfLife))
}

// penalise counts one piece of spam authored by p.
func (s *scoreBoard) penalise(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if _, ok := s.penalties[p]; !ok && len(s.penalties) >= maxPenalised {
		var mild peer.ID
		least := math.Inf(1)
		for q, pen := range s.penalties {
			if v := pen.valueAt(now); v < least {
				mild, least = q, v
			}
		}
		delete(s.penalties, mild)
	}
	s.penalties[p] = penalty{count: min(s.penalties[p].valueAt(now)+1, maxSpamCount), at: now}
}

// appScore is gossipsub's application-specific score of p.
func (s *scoreBoard) appScore(p peer.ID) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	pen, ok := s.penalties[p]
	if !ok {
		return 0
	}
	v := pen.valueAt(s.now())
	if v < 0.01 {
		delete(s.penalties, p)
		return 0
	}
	return spamWeight * v
}

func (s *scoreBoard) update(m map[peer.ID]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scores = m
}

func (s *scoreBoard) get(p peer.ID) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scores[p]
}
