package analyze

import (
	"cmp"
	"math"
	"slices"
)

// LayerRouting is how one layer routes the calibration tokens.
type LayerRouting struct {
	Layer int `json:"layer"`
	// LoadEntropy is the entropy (bits) of the share of routing slots each
	// expert receives; NormalizedLoadEntropy divides it by log2(experts)
	// (1 = perfectly balanced).
	LoadEntropy           float64 `json:"load_entropy_bits"`
	NormalizedLoadEntropy float64 `json:"normalized_load_entropy"`
	// DomainLoadEntropy is LoadEntropy over each domain's tokens alone.
	DomainLoadEntropy []float64 `json:"domain_load_entropy_bits"`
	// TokenEntropy is the mean entropy (bits) of a token's mixing weights, normalised to sum 1.
	TokenEntropy float64 `json:"mean_token_entropy_bits"`
	// Unused lists experts no token was routed to.
	Unused  []int           `json:"unused_experts"`
	Experts []ExpertRouting `json:"experts"`
}

// ExpertRouting is one expert's activity on the calibration tokens.
type ExpertRouting struct {
	Expert int `json:"expert"`
	Count  int `json:"count"` // tokens routed to it (after the biased top-k)
	// Rate is Count / tokens; RateByDomain the same per domain.
	Rate         float64   `json:"rate"`
	RateByDomain []float64 `json:"rate_by_domain"`
	// Specialization[d] is RateByDomain[d] / Σ RateByDomain: the share of
	// its (domain-size-balanced) activity that domain d accounts for.
	Specialization []float64 `json:"specialization"`
	// MeanWeight is its mixing weight averaged over all tokens (0 where not chosen).
	MeanWeight float64 `json:"mean_weight"`
	// Saliency is MeanWeight × OutputNorm: how much it adds to the layer's output on average.
	OutputNorm float64 `json:"output_norm"`
	Saliency   float64 `json:"saliency"`
	// SaliencyRank is 1 for the most salient expert of the layer.
	SaliencyRank int `json:"saliency_rank"`
}

// Specialist is an expert that fires mostly for one domain.
type Specialist struct {
	Layer  int     `json:"layer"`
	Expert int     `json:"expert"`
	Domain string  `json:"domain"`
	Share  float64 `json:"specialization"`
	Rate   float64 `json:"domain_rate"`
}

// SpecialistRule decides which experts are domain specialists: their
// specialization for a domain is at least Share and they fire on at least
// Rate of that domain's tokens.
type SpecialistRule struct {
	Share float64 `json:"min_specialization"`
	Rate  float64 `json:"min_domain_rate"`
}

func entropyBits(p []float64) float64 {
	var h float64
	for _, x := range p {
		if x > 0 {
			h -= x * math.Log2(x)
		}
	}
	return h
}

// layerRouting computes the activation statistics of one layer's routing;
// ids[t] is token t's domain (of nDomains).
func layerRouting(layer int, r *Routed, experts int, ids []int, nDomains int) LayerRouting {
	lr := LayerRouting{Layer: layer, Unused: []int{}, DomainLoadEntropy: make([]float64, nDomains)}
	count := make([]int, experts)
	byDomain := make([][]int, experts)
	for e := range byDomain {
		byDomain[e] = make([]int, nDomains)
	}
	tokensIn := make([]int, nDomains)
	weight := make([]float64, experts)
	for t := range r.N {
		d := ids[t]
		tokensIn[d]++
		var sum float64
		for j := range r.K {
			sum += float64(r.Weights[t*r.K+j])
		}
		var ws []float64
		for j := range r.K {
			e := r.Experts[t*r.K+j]
			w := float64(r.Weights[t*r.K+j])
			count[e]++
			byDomain[e][d]++
			weight[e] += w
			if sum > 0 {
				ws = append(ws, w/sum)
			}
		}
		lr.TokenEntropy += entropyBits(ws)
	}
	if r.N > 0 {
		lr.TokenEntropy /= float64(r.N)
	}
	slots := float64(r.N * r.K)
	load := make([]float64, experts)
	for e, c := range count {
		if slots > 0 {
			load[e] = float64(c) / slots
		}
	}
	lr.LoadEntropy = entropyBits(load)
	if experts > 1 {
		lr.NormalizedLoadEntropy = lr.LoadEntropy / math.Log2(float64(experts))
	}
	for d := range nDomains {
		dl := make([]float64, experts)
		for e := range experts {
			if tokensIn[d] > 0 {
				dl[e] = float64(byDomain[e][d]) / float64(tokensIn[d]*r.K)
			}
		}
		lr.DomainLoadEntropy[d] = entropyBits(dl)
	}
	for e := range experts {
		er := ExpertRouting{Expert: e, Count: count[e], RateByDomain: make([]float64, nDomains),
			Specialization: make([]float64, nDomains)}
		if r.N > 0 {
			er.Rate = float64(count[e]) / float64(r.N)
			er.MeanWeight = weight[e] / float64(r.N)
		}
		var total float64
		for d := range nDomains {
			if tokensIn[d] > 0 {
				er.RateByDomain[d] = float64(byDomain[e][d]) / float64(tokensIn[d])
			}
			total += er.RateByDomain[d]
		}
		for d := range nDomains {
			if total > 0 {
				er.Specialization[d] = er.RateByDomain[d] / total
			}
		}
		if count[e] == 0 {
			lr.Unused = append(lr.Unused, e)
		}
		lr.Experts = append(lr.Experts, er)
	}
	return lr
}

// specialists lists the experts of lr that the rule calls specialists.
func specialists(lr LayerRouting, domains []string, rule SpecialistRule) []Specialist {
	var out []Specialist
	if len(domains) < 2 {
		return out
	}
	for _, er := range lr.Experts {
		d := argmax(er.Specialization)
		if d >= 0 && er.Specialization[d] >= rule.Share && er.RateByDomain[d] >= rule.Rate {
			out = append(out, Specialist{Layer: lr.Layer, Expert: er.Expert, Domain: domains[d],
				Share: er.Specialization[d], Rate: er.RateByDomain[d]})
		}
	}
	return out
}

func argmax(v []float64) int {
	if len(v) == 0 {
		return -1
	}
	return slices.Index(v, slices.Max(v))
}

// setSaliency fills OutputNorm, Saliency and SaliencyRank from the experts'
// output norms on the probe inputs.
func setSaliency(lr *LayerRouting, outputNorms []float64) {
	for i := range lr.Experts {
		e := &lr.Experts[i]
		if e.Expert < len(outputNorms) {
			e.OutputNorm = outputNorms[e.Expert]
		}
		e.Saliency = e.MeanWeight * e.OutputNorm
	}
	order := make([]int, len(lr.Experts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(lr.Experts[b].Saliency, lr.Experts[a].Saliency) })
	for rank, i := range order {
		lr.Experts[i].SaliencyRank = rank + 1
	}
}

// CoActivation relates the experts of two consecutive MoE layers by the tokens they share.
type CoActivation struct {
	FromLayer int        `json:"from_layer"`
	ToLayer   int        `json:"to_layer"`
	Pairs     []CoActive `json:"top_pairs"`
}

// CoActive is a pair of experts that fire on the same tokens.
type CoActive struct {
	From    int     `json:"from_expert"`
	To      int     `json:"to_expert"`
	Count   int     `json:"tokens"`
	Jaccard float64 `json:"jaccard"` // shared tokens / tokens either fires on
	Lift    float64 `json:"lift"`    // P(both) / (P(from)·P(to))
}

// coActivation counts, for every pair (expert of a, expert of b), the tokens
// routed to both, and returns the top pairs by Jaccard index (then count).
func coActivation(fromLayer, toLayer int, a, b *Routed, experts, top int) CoActivation {
	ca := CoActivation{FromLayer: fromLayer, ToLayer: toLayer, Pairs: []CoActive{}}
	if a.N != b.N || a.N == 0 {
		return ca
	}
	both := make([]int, experts*experts)
	ca1, cb1 := make([]int, experts), make([]int, experts)
	for t := range a.N {
		for _, x := range a.Experts[t*a.K : (t+1)*a.K] {
			ca1[x]++
			for _, y := range b.Experts[t*b.K : (t+1)*b.K] {
				both[int(x)*experts+int(y)]++
			}
		}
		for _, y := range b.Experts[t*b.K : (t+1)*b.K] {
			cb1[y]++
		}
	}
	n := float64(a.N)
	for x := range experts {
		for y := range experts {
			c := both[x*experts+y]
			if c == 0 {
				continue
			}
			ca.Pairs = append(ca.Pairs, CoActive{From: x, To: y, Count: c,
				Jaccard: float64(c) / float64(ca1[x]+cb1[y]-c),
				Lift:    float64(c) * n / (float64(ca1[x]) * float64(cb1[y]))})
		}
	}
	slices.SortStableFunc(ca.Pairs, func(p, q CoActive) int {
		if c := cmp.Compare(q.Jaccard, p.Jaccard); c != 0 {
			return c
		}
		return cmp.Compare(q.Count, p.Count)
	})
	if len(ca.Pairs) > top {
		ca.Pairs = ca.Pairs[:top]
	}
	return ca
}
