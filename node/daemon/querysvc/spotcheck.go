package querysvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/routing"
)

// spotChecker checks remote answers against a reference this node computes itself (see
// routing's spot checks): with its hosted copy of the expert, or with a copy fetched for the
// purpose (verified against its CIDs and its publisher's signature, not installed). A provider
// whose answer differs is banned for that expert. Checks run in the background, a few at a
// time, so they never slow the query they check.
type spotChecker struct {
	router  *routing.Router                                       // schedules checks and takes bans
	hosted  func(ctx context.Context, id string) (*loaded, error) // this node's copy of a hosted expert
	fetcher Fetcher                                               // fetches copies of the others
	store   Store                                                 // loads a fetched copy's network
	decodes chan struct{}                                         // shared bound on image decodes
	outcome *prometheus.CounterVec
	log     *slog.Logger
	slots   chan struct{} // bounds the checks running at once

	mu   sync.Mutex
	refs map[string]*loaded // references fetched for checks (bounded by maxRefs)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	maxChecks = 4  // checks running at once; more are skipped
	maxRefs   = 16 // fetched references kept loaded
)

func newSpotChecker(router *routing.Router, hosted func(context.Context, string) (*loaded, error), fetcher Fetcher,
	st Store, decodes chan struct{}, outcome *prometheus.CounterVec, log *slog.Logger) *spotChecker {
	ctx, cancel := context.WithCancel(context.Background())
	return &spotChecker{router: router, hosted: hosted, fetcher: fetcher, store: st, decodes: decodes, outcome: outcome,
		log: log, slots: make(chan struct{}, maxChecks), refs: map[string]*loaded{}, ctx: ctx, cancel: cancel}
}

// close stops the checks in progress and waits for them.
func (c *spotChecker) close() {
	c.cancel()
	c.wg.Wait()
}

// maybeCheck schedules a check of a remote answer when the router's schedule says so.
func (c *spotChecker) maybeCheck(req routing.Request, ans routing.Answer) {
	cand := ans.Candidate
	if cand.Local || !c.router.ShouldSpotCheck(cand.Peer, cand.Expert, rand.Float64()) {
		return
	}
	select {
	case c.slots <- struct{}{}:
	default:
		c.outcome.WithLabelValues("skipped").Inc()
		return
	}
	req.Expert, req.Deadline = cand.Expert, time.Time{}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() { <-c.slots }()
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		ref, err := c.reference(ctx, req)
		if err != nil {
			c.outcome.WithLabelValues("unverified").Inc()
			c.log.Debug("spot check: no reference", "expert", cand.Expert, "peer", cand.Peer, "err", err)
			return
		}
		if routing.SameAnswer(ans.Output, ref.Output) {
			c.outcome.WithLabelValues("agreed").Inc()
			return
		}
		c.router.Ban(cand.Peer, cand.Expert, time.Now().Add(routing.BanFor))
		c.outcome.WithLabelValues("banned").Inc()
		c.log.Warn("spot check: a provider answered differently from the expert's weights; banned for that expert",
			"expert", cand.Expert, "peer", cand.Peer, "for", routing.BanFor)
	}()
}

// reference answers req with this node's own copy of the expert.
func (c *spotChecker) reference(ctx context.Context, req routing.Request) (routing.Response, error) {
	if l, err := c.hosted(ctx, req.Expert); err == nil { // hosted here
		return answer(ctx, l, req, c.decodes)
	} else if !errors.Is(err, store.ErrNotFound) {
		return routing.Response{}, err
	}
	c.mu.Lock()
	l, ok := c.refs[req.Expert]
	c.mu.Unlock()
	if !ok {
		id, err := cid.Decode(req.Expert)
		if err != nil {
			return routing.Response{}, err
		}
		_, m, err := c.fetcher.FetchVerified(ctx, id, c.fetcher.AdvertisedWeights(id))
		if err != nil {
			return routing.Response{}, err
		}
		n, err := c.store.LoadNetwork(ctx, m)
		if err != nil {
			return routing.Response{}, fmt.Errorf("load reference %s: %w", id, err)
		}
		l = &loaded{manifest: m, net: n}
		c.mu.Lock()
		if len(c.refs) >= maxRefs {
			clear(c.refs)
		}
		c.refs[req.Expert] = l
		c.mu.Unlock()
	}
	return answer(ctx, l, req, c.decodes)
}
