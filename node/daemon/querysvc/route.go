package querysvc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/routing"
)

// Query routes one query of this node: to the named expert or the best of a domain, failing
// over and hedging across candidates; with K > 1, to the K best distinct experts with the same
// interface, mixing their outputs by gate weights.
func (s *Service) Query(ctx context.Context, q api.QueryRequest) (*api.QueryAnswer, error) {
	t0 := time.Now()
	a, err := s.query(ctx, q)
	outcome, answerer := "ok", "none"
	if err != nil {
		outcome = "error"
	} else {
		answerer = "remote"
		if a.Candidate.Local {
			answerer = "local"
		}
		for _, at := range a.Attempts {
			if at.Error != "" {
				s.metrics.failover.Inc()
			}
			if at.Hedge {
				s.metrics.hedged.Inc()
			}
		}
	}
	s.metrics.routed.WithLabelValues(outcome, answerer).Observe(time.Since(t0).Seconds())
	return a, err
}

func (s *Service) query(ctx context.Context, q api.QueryRequest) (*api.QueryAnswer, error) {
	if q.Expert != "" && q.Domain != "" {
		return nil, errors.New("query: name an expert or a domain, not both")
	}
	var gated map[string]float64
	switch {
	case q.Expert == "" && q.Domain == "" && q.Text == "":
		return nil, errors.New("query: name an expert or a domain (only a text query can go without: the gating expert picks its domain)")
	case q.Expert == "" && q.Domain == "":
		domain, probs, err := s.chooseDomain(ctx, q.Text)
		if err != nil {
			return nil, err
		}
		q.Domain, gated = domain, probs
	case q.Domain != "" && q.Text != "":
		s.gate.Observe(q.Text, q.Domain) // the caller's choice of domain teaches the gate
	}
	if q.Expert != "" {
		if _, err := cid.Decode(q.Expert); err != nil { // a name: hosted experts first, then the mesh's
			id, err := s.store.Resolve(ctx, q.Expert)
			if err != nil {
				remote, rerr := s.resolveRemoteName(q.Expert)
				if rerr != nil {
					return nil, fmt.Errorf("%w; %v", err, rerr)
				}
				q.Expert = remote
			} else {
				q.Expert = id.String()
			}
		}
	}
	timeout := time.Duration(q.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	req := routing.Request{Vector: q.Vector, Text: q.Text, Image: q.Image, Deadline: deadline}
	cands, err := s.candidates(ctx, q.Expert, q.Domain)
	if err != nil {
		return nil, err
	}
	ranked := s.router.Rank(cands, q.Domain, time.Now())
	if len(ranked) == 0 {
		return nil, fmt.Errorf("query: no local or remote expert for %s", orStr(q.Expert, "domain "+q.Domain))
	}
	call := func(ctx context.Context, c routing.Candidate) (routing.Response, error) { return s.call(ctx, c, req) }
	t0 := time.Now()
	if q.K <= 1 {
		ans, err := s.router.Dispatch(ctx, ranked, 0, call)
		if err != nil {
			return nil, err
		}
		s.checker.maybeCheck(req, ans)
		return &api.QueryAnswer{Answer: ans, Domain: q.Domain, Gate: gated, Micros: time.Since(t0).Microseconds()}, nil
	}
	mix, err := s.router.Mix(ctx, ranked, q.K, call)
	if err != nil {
		return nil, err
	}
	return &api.QueryAnswer{Answer: mix.Answer, Mixture: mix.Parts, Domain: q.Domain, Gate: gated, Micros: time.Since(t0).Microseconds()}, nil
}

// candidates lists who could answer: the hosted expert (or hosted experts of the domain) and
// the remote providers of it (or of the domain) that discovery finds.
func (s *Service) candidates(ctx context.Context, expert, domain string) ([]routing.Candidate, error) {
	hosted, err := s.hostedCandidates(ctx)
	if err != nil {
		return nil, err
	}
	var out []routing.Candidate
	load := s.Load()
	for _, h := range hosted {
		if (expert != "" && h.Expert != expert) || (expert == "" && !slices.Contains(h.Domains, domain)) {
			continue
		}
		h.Load = load
		out = append(out, h)
	}
	// Discovery is waited for only when no hosted expert can answer.
	if wait := len(out) == 0; expert != "" {
		s.adverts.LookupExpert(ctx, expert, wait)
	} else {
		s.adverts.LookupDomain(ctx, domain, wait)
	}
	for _, a := range s.adverts.List(time.Now()) {
		if (expert != "" && a.ID != expert) || (expert == "" && !slices.Contains(a.Domains, domain)) {
			continue
		}
		out = append(out, routing.Candidate{Expert: a.ID, Peer: a.Provider, Name: a.Name, Domains: a.Domains,
			Spec: a.Spec, Quality: a.Quality, Load: a.Load, Price: a.Price})
	}
	return out, nil
}

// resolveRemoteName finds the one expert of that name in the remote table.
func (s *Service) resolveRemoteName(name string) (string, error) {
	var found []string
	for _, a := range s.adverts.List(time.Now()) {
		if a.Name == name && !slices.Contains(found, a.ID) {
			found = append(found, a.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no expert named %q on the mesh either", name)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%d experts on the mesh are named %q; name one by ID: %v", len(found), name, found)
}

// call asks one candidate, locally or over the query protocol.
func (s *Service) call(ctx context.Context, c routing.Candidate, req routing.Request) (routing.Response, error) {
	req.Expert = c.Expert
	if c.Local {
		return s.run(ctx, req)
	}
	p, err := peer.Decode(c.Peer)
	if err != nil {
		return routing.Response{}, fmt.Errorf("provider %q: %w", c.Peer, err)
	}
	data, err := s.client.Call(ctx, p, routing.EncodeRequest(req))
	if err != nil {
		return routing.Response{}, err
	}
	resp, err := routing.DecodeResponse(data)
	if err != nil {
		return routing.Response{}, err
	}
	if resp.Expert != c.Expert {
		return routing.Response{}, fmt.Errorf("provider answered with expert %s, not %s", resp.Expert, c.Expert)
	}
	return resp, nil
}

// chooseDomain asks the gating expert, after telling it the domains the node knows now: each
// domain's expert names, from the hosted experts and the remote table.
func (s *Service) chooseDomain(ctx context.Context, text string) (string, map[string]float64, error) {
	seeds := map[string][]string{}
	add := func(domains []string, name string) {
		for _, d := range domains {
			if !slices.Contains(seeds[d], name) {
				seeds[d] = append(seeds[d], name)
			}
		}
	}
	hosted, err := s.hostedCandidates(ctx)
	if err != nil {
		return "", nil, err
	}
	for _, h := range hosted {
		add(h.Domains, h.Name)
	}
	for _, a := range s.adverts.List(time.Now()) {
		add(a.Domains, a.Name)
	}
	for d := range seeds {
		slices.Sort(seeds[d])
	}
	s.gate.SetDomains(seeds)
	d, probs, err := s.gate.Choose(ctx, text)
	if err != nil {
		return "", nil, fmt.Errorf("query: choose a domain: %w", err)
	}
	return d, probs, nil
}

func orStr(s, d string) string {
	if s != "" {
		return s
	}
	return d
}
