package routing

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
)

// GateExample is one text labelled with the domain that should answer it.
type GateExample struct {
	Text   string `json:"text"`
	Domain string `json:"domain"`
}

// Gate is a small gating expert: a softmax classifier over hashed text features that picks the
// domain of a text query that names none. It learns from two sources: the domains the node
// knows (each domain's tag and the names of its experts, as seed texts) and feedback (texts of
// queries whose domain was given, or confirmed). It retrains when asked after either changes.
// It is safe for concurrent use.
type Gate struct {
	mu       sync.Mutex
	features dataset.TextFeatures
	seeds    map[string][]string // domain -> seed texts
	feedback []GateExample       // newest last, at most maxFeedback
	net      *experts.Network
	domains  []string // the net's classes
	dirty    bool
}

const maxFeedback = 5000

// ErrNoDomains is returned when the gate knows no domain to choose from.
var ErrNoDomains = errors.New("the gating expert knows no domains yet")

// NewGate returns a gate over 512 hashed character 2-4-grams and word unigrams and bigrams.
func NewGate() *Gate {
	return &Gate{features: dataset.TextFeatures{Dim: 512, CharMin: 2, CharMax: 4, WordMin: 1, WordMax: 2},
		seeds: map[string][]string{}}
}

// SetDomains replaces the seed texts: for each domain, its tag and the names of the experts the
// node knows in it.
func (g *Gate) SetDomains(seeds map[string][]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if equalSeeds(g.seeds, seeds) {
		return
	}
	g.seeds, g.dirty = seeds, true
}

func equalSeeds(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || len(va) != len(vb) {
			return false
		}
		for i := range va {
			if va[i] != vb[i] {
				return false
			}
		}
	}
	return true
}

// Observe records feedback: text should go to domain.
func (g *Gate) Observe(text, domain string) {
	if text == "" || domain == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.feedback = append(g.feedback, GateExample{Text: text, Domain: domain})
	if len(g.feedback) > maxFeedback {
		g.feedback = g.feedback[len(g.feedback)-maxFeedback:]
	}
	g.dirty = true
}

// Feedback returns a copy of the feedback examples (for persistence).
func (g *Gate) Feedback() []GateExample {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]GateExample(nil), g.feedback...)
}

// Choose returns the most likely domain of text and every domain's probability, retraining
// first if the seeds or the feedback changed.
func (g *Gate) Choose(ctx context.Context, text string) (string, map[string]float64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dirty || g.net == nil {
		if err := g.train(ctx); err != nil {
			return "", nil, err
		}
	}
	x := make([]float32, g.features.Dim)
	if err := g.features.Extract(text, x); err != nil {
		return "", nil, err
	}
	in := make([]float64, len(x))
	for i, v := range x {
		in[i] = float64(v)
	}
	p, err := g.net.Predict(in)
	if err != nil {
		return "", nil, err
	}
	probs := map[string]float64{}
	best := 0
	for i, d := range g.domains {
		probs[d] = p[i]
		if p[i] > p[best] {
			best = i
		}
	}
	return g.domains[best], probs, nil
}

// train fits the gate on the seeds and the feedback (with g.mu held).
func (g *Gate) train(ctx context.Context) error {
	set := map[string]bool{}
	for d := range g.seeds {
		set[d] = true
	}
	for _, ex := range g.feedback {
		set[ex.Domain] = true
	}
	if len(set) == 0 {
		return ErrNoDomains
	}
	g.domains = g.domains[:0]
	for d := range set {
		g.domains = append(g.domains, d)
	}
	sort.Strings(g.domains)
	index := map[string]int{}
	for i, d := range g.domains {
		index[d] = i
	}
	var texts []string
	var labels []int
	for _, d := range g.domains {
		for _, s := range append([]string{d}, g.seeds[d]...) {
			texts, labels = append(texts, s), append(labels, index[d])
		}
	}
	for _, ex := range g.feedback {
		texts, labels = append(texts, ex.Text), append(labels, index[ex.Domain])
	}
	ds, err := dataset.TextDataset(texts, labels, g.domains, g.features, "gate")
	if err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	arch := experts.MLP(g.features.Dim, nil, "linear", max(len(g.domains), 2), experts.OutputSoftmax)
	net, err := experts.NewNetwork(arch, 1)
	if err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	s := experts.Samples{X: ds.X, Dim: ds.Dim, Labels: ds.Y}
	epochs := min(200, max(20, 20000/max(1, len(texts))))
	if _, err := experts.Train(ctx, net, s, experts.Samples{}, experts.TrainConfig{Epochs: epochs, BatchSize: 32,
		LearningRate: 0.05, WeightDecay: 1e-4, Seed: 1}); err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	if len(g.domains) == 1 { // a lone domain still needs two classes to train; pad with a dummy
		g.domains = append(g.domains, "")
	}
	g.net, g.dirty = net, false
	return nil
}
