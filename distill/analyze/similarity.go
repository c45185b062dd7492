package analyze

import (
	"cmp"
	"math"
	"slices"

	"github.com/meshnode/meshnode/distill/checkpoint"
)

// LayerSimilarity summarises how alike the routed experts of one layer are.
type LayerSimilarity struct {
	Layer int `json:"layer"`
	// Mean and maximum cosine similarity over distinct pairs, of the
	// flattened weights and of the outputs on the probe inputs.
	MeanWeightCos float64 `json:"mean_weight_cos"`
	MaxWeightCos  float64 `json:"max_weight_cos"`
	MeanOutputCos float64 `json:"mean_output_cos"`
	MaxOutputCos  float64 `json:"max_output_cos"`
	// Clusters are the groups of near-duplicate experts: connected
	// components of the pairs similar above both thresholds.
	Clusters []Cluster `json:"clusters"`
	// Redundant is how many experts could be dropped by keeping one per cluster.
	Redundant int `json:"redundant_experts"`

	weight, output checkpoint.Matrix // experts × experts cosine matrices
}

// Cluster is a group of near-duplicate experts.
type Cluster struct {
	Layer   int   `json:"layer"`
	Experts []int `json:"experts"`
	// MinWeightCos and MinOutputCos are the smallest similarities between
	// members that the cluster's links rely on (its weakest link).
	MinWeightCos float64 `json:"min_weight_cos"`
	MinOutputCos float64 `json:"min_output_cos"`
}

// Thresholds decide which pairs of experts are near-duplicates.
type Thresholds struct {
	WeightCos float64 `json:"weight_cos"`
	OutputCos float64 `json:"output_cos"`
}

// similarity computes the cosine matrices of a scanned layer (normalising
// its samples and outputs in place) and clusters its near-duplicates.
func similarity(ls *layerScan, t Thresholds) LayerSimilarity {
	normalizeRows(ls.samples)
	normalizeRows(ls.outputs)
	s := LayerSimilarity{Layer: ls.layer, weight: gram(ls.samples, ls.samples), output: gram(ls.outputs, ls.outputs),
		Clusters: []Cluster{}}
	n := ls.samples.Rows
	uf := newUnionFind(n)
	type link struct{ w, o float64 }
	links := map[[2]int]link{}
	var pairs int
	s.MaxWeightCos, s.MaxOutputCos = math.Inf(-1), math.Inf(-1)
	for i := range n {
		for j := i + 1; j < n; j++ {
			w, o := float64(s.weight.Data[i*n+j]), float64(s.output.Data[i*n+j])
			s.MeanWeightCos += w
			s.MeanOutputCos += o
			s.MaxWeightCos = max(s.MaxWeightCos, w)
			s.MaxOutputCos = max(s.MaxOutputCos, o)
			pairs++
			if w >= t.WeightCos && o >= t.OutputCos {
				uf.union(i, j)
				links[[2]int{i, j}] = link{w, o}
			}
		}
	}
	if pairs > 0 {
		s.MeanWeightCos /= float64(pairs)
		s.MeanOutputCos /= float64(pairs)
	} else {
		s.MaxWeightCos, s.MaxOutputCos = 0, 0
	}
	for _, g := range uf.groups() {
		c := Cluster{Layer: ls.layer, Experts: g, MinWeightCos: math.Inf(1), MinOutputCos: math.Inf(1)}
		for a, i := range g {
			for _, j := range g[a+1:] {
				if l, ok := links[[2]int{i, j}]; ok {
					c.MinWeightCos = min(c.MinWeightCos, l.w)
					c.MinOutputCos = min(c.MinOutputCos, l.o)
				}
			}
		}
		s.Clusters = append(s.Clusters, c)
		s.Redundant += len(g) - 1
	}
	return s
}

// LayerRelation compares the experts of two MoE layers.
type LayerRelation struct {
	FromLayer int `json:"from_layer"`
	ToLayer   int `json:"to_layer"`
	// MeanBestMatch is the mean, over the experts of ToLayer, of the weight
	// cosine of their most similar expert in FromLayer.
	MeanBestMatch float64 `json:"mean_best_match_cos"`
	MaxBestMatch  float64 `json:"max_best_match_cos"`
	// Matches are the pairs above the weight threshold (experts repeated across layers).
	Matches []CrossMatch `json:"matches"`
}

// CrossMatch is an expert of one layer that is a near-copy of an expert of another.
type CrossMatch struct {
	FromExpert int     `json:"from_expert"`
	ToExpert   int     `json:"to_expert"`
	WeightCos  float64 `json:"weight_cos"`
	OutputCos  float64 `json:"output_cos,omitempty"`
}

// crossLayer relates two scanned layers (whose samples are already
// normalised). Output similarity is compared only when both layers saw the
// same probes.
func crossLayer(from, to *layerScan, t Thresholds, sameProbes bool) LayerRelation {
	r := LayerRelation{FromLayer: from.layer, ToLayer: to.layer, Matches: []CrossMatch{}}
	w := gram(to.samples, from.samples)
	var o checkpoint.Matrix
	if sameProbes {
		o = gram(to.outputs, from.outputs)
	}
	if w.Rows == 0 || w.Cols == 0 {
		return r
	}
	r.MaxBestMatch = math.Inf(-1)
	for i := range w.Rows {
		row := w.Row(i)
		best := slices.Index(row, slices.Max(row))
		r.MeanBestMatch += float64(row[best])
		r.MaxBestMatch = max(r.MaxBestMatch, float64(row[best]))
		for j, c := range row {
			if float64(c) < t.WeightCos {
				continue
			}
			m := CrossMatch{FromExpert: j, ToExpert: i, WeightCos: float64(c)}
			if sameProbes {
				m.OutputCos = float64(o.Data[i*o.Cols+j])
				if m.OutputCos < t.OutputCos {
					continue
				}
			}
			r.Matches = append(r.Matches, m)
		}
	}
	r.MeanBestMatch /= float64(w.Rows)
	slices.SortFunc(r.Matches, func(a, b CrossMatch) int { return cmp.Compare(b.WeightCos, a.WeightCos) })
	return r
}
