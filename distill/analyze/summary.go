package analyze

import (
	"fmt"
	"slices"
	"strings"
)

// human formats a count with a metric suffix (1.03T, 32.9B, 44.0M).
func human(n int64) string {
	v := float64(n)
	for _, u := range []struct {
		s string
		f float64
	}{{"T", 1e12}, {"B", 1e9}, {"M", 1e6}, {"K", 1e3}} {
		if v >= u.f {
			return fmt.Sprintf("%.3g%s", v/u.f, u.s)
		}
	}
	return fmt.Sprint(n)
}

// bytesHuman formats a byte count in binary units.
func bytesHuman(n int64) string {
	v := float64(n)
	for _, u := range []struct {
		s string
		f float64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.f {
			return fmt.Sprintf("%.3g %s", v/u.f, u.s)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// Summary renders the report as Markdown.
func Summary(rep *Report) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	q := rep.Quick
	p("# Mixture-of-experts analysis\n\n")
	p("Model `%s` (%s, %s layout), depth **%s**, %.1f s.\n\n", rep.ModelPath, q.ModelType, q.Family, rep.Depth, rep.Seconds)
	p("## Layout\n\n")
	p("- %d layers: %d dense %v, %d mixture-of-experts\n", q.Layers, len(q.DenseLayers), q.DenseLayers, len(q.MoELayers))
	p("- %d routed experts per MoE layer (%d in all), %d shared; %d experts per token, %s scores", q.RoutedExperts,
		q.TotalExperts, q.SharedExperts, q.TopK, q.Scoring)
	if q.RouterBias {
		p(", selection bias (e_score_correction_bias)")
	}
	p(", routed scaling factor %g\n", q.ScalingFactor)
	p("- one routed expert: 3 × %d × %d = %s parameters\n\n", q.HiddenSize, q.ExpertIntermediate, human(q.ParamsPerExpert))
	p("## Parameters\n\n| role | from config.json | from tensor headers |\n| --- | ---: | ---: |\n")
	rows := []struct {
		name string
		a, b int64
	}{{"embedding", q.Params.Embedding, q.StoredParams.Embedding}, {"lm_head", q.Params.LMHead, q.StoredParams.LMHead},
		{"attention", q.Params.Attention, q.StoredParams.Attention}, {"norms", q.Params.Norms, q.StoredParams.Norms},
		{"dense MLP", q.Params.DenseMLP, q.StoredParams.DenseMLP}, {"routers", q.Params.Routers, q.StoredParams.Routers},
		{"routed experts", q.Params.RoutedExperts, q.StoredParams.RoutedExperts},
		{"shared experts", q.Params.SharedExperts, q.StoredParams.SharedExperts}, {"other", q.Params.Other, q.StoredParams.Other},
		{"**total**", q.Params.Total, q.StoredParams.Total}, {"**activated per token**", q.Params.Activated, q.StoredParams.Activated},
		{"activated, without the input embedding", q.Params.ActivatedNoEmbedding, q.StoredParams.ActivatedNoEmbedding}}
	for _, r := range rows {
		p("| %s | %d (%s) | %d (%s) |\n", r.name, r.a, human(r.a), r.b, human(r.b))
	}
	if !q.ParamsAgree {
		p("\nThe headers and the config disagree on the total: the checkpoint holds tensors the config does not describe, or lacks some.\n")
	}
	if pub := q.Published; pub != nil {
		p("\nPublished (%s): total %s, activated %s. Computed here: total %s (×%.3f), activated %s (×%.3f).\n",
			pub.Source, human(pub.Total), human(pub.Activated), human(q.Params.Total), pub.TotalRatio, human(q.Params.Activated), pub.ActivatedRatio)
	}
	p("\n## Storage and placement\n\n%d shards, %d tensors, %s of shard files:", q.Shards, q.Tensors, bytesHuman(q.FileBytes))
	dts := make([]string, 0, len(q.BytesByDType))
	for dt := range q.BytesByDType {
		dts = append(dts, dt)
	}
	slices.Sort(dts)
	for _, dt := range dts {
		p(" %s %s;", dt, bytesHuman(q.BytesByDType[dt]))
	}
	pl := q.Placement
	p("\n\nOn nodes of %s (%.0f%% for weights): one routed expert takes %s, so **%d experts per node** and **%d nodes** host all %d routed experts; the rest of the model (%s) needs %d more.",
		bytesHuman(pl.NodeMemory), 100*pl.UsableShare, bytesHuman(pl.ExpertBytes), pl.ExpertsPerNode, pl.Nodes, pl.Experts,
		bytesHuman(pl.BackboneBytes), pl.BackboneNodes)
	if pl.Note != "" {
		p(" %s.", pl.Note)
	}
	p("\n\n## Micro-expert budgets\n\n| domain | budget | compression vs one routed expert | vs activated parameters |\n| --- | ---: | ---: | ---: |\n")
	for _, c := range q.Budgets {
		p("| %s | %s | %.4g× | %.4g× |\n", c.Domain, human(c.Params), c.VsRoutedExpert, c.VsActivated)
	}
	if rep.Standard != nil {
		standardSummary(&b, rep.Standard)
	}
	if rep.Routing != nil {
		routingSummary(&b, rep.Routing)
	}
	return b.String()
}

func standardSummary(b *strings.Builder, s *StandardReport) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("\n## Expert weights\n\nScanned %s in %.1f s (%s/s). Stable ranks use %d power iterations; probes: %s. ",
		bytesHuman(s.BytesScanned), s.ScanSeconds, bytesHuman(int64(s.ScanRate)), s.PowerIters, s.ProbeSource)
	if s.ExactSimilarity {
		p("Weight similarity compares all weights.\n\n")
	} else {
		p("Weight similarity compares %d sampled weights per expert (the same positions for every expert).\n\n", s.SampleSize)
	}
	var norms, zeros, ranks []float64
	for _, e := range s.Experts {
		norms = append(norms, e.Norm)
		zeros = append(zeros, e.NearZero)
		ranks = append(ranks, (e.GateRank+e.UpRank+e.DownRank)/3)
	}
	p("| statistic (routed experts) | min | median | max |\n| --- | ---: | ---: | ---: |\n")
	for _, r := range []struct {
		n string
		v []float64
	}{{"Frobenius norm", norms}, {fmt.Sprintf("share of weights below %g in magnitude", s.ZeroEps), zeros}, {"stable rank", ranks}} {
		lo, med, hi := quantiles(r.v)
		p("| %s | %.4g | %.4g | %.4g |\n", r.n, lo, med, hi)
	}
	p("\n| layer | mean weight cos | max weight cos | mean output cos | max output cos | near-duplicate clusters | redundant |\n| --- | ---: | ---: | ---: | ---: | --- | ---: |\n")
	for _, l := range s.Layers {
		var cs []string
		for _, c := range l.Clusters {
			cs = append(cs, fmt.Sprintf("{%s}", ints(c.Experts)))
		}
		p("| %d | %.3f | %.3f | %.3f | %.3f | %s | %d |\n", l.Layer, l.MeanWeightCos, l.MaxWeightCos, l.MeanOutputCos,
			l.MaxOutputCos, strings.Join(cs, " "), l.Redundant)
	}
	p("\nNear-duplicates: weight cosine ≥ %g and output cosine ≥ %g.\n", s.Thresholds.WeightCos, s.Thresholds.OutputCos)
	if len(s.CrossLayer) > 0 {
		p("\n| layers | mean best-match cos | max | experts repeated across the layers |\n| --- | ---: | ---: | --- |\n")
		for _, r := range s.CrossLayer {
			var ms []string
			for _, m := range r.Matches {
				ms = append(ms, fmt.Sprintf("%d→%d (%.3f)", m.FromExpert, m.ToExpert, m.WeightCos))
			}
			p("| %d → %d | %.3f | %.3f | %s |\n", r.FromLayer, r.ToLayer, r.MeanBestMatch, r.MaxBestMatch, strings.Join(ms, ", "))
		}
	}
}

func routingSummary(b *strings.Builder, r *RoutingReport) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("\n## Routing\n\n")
	if r.Approximation {
		p("> **%s.**\n\n", r.Source)
	} else {
		p("Inputs: %s.\n\n", r.Source)
	}
	p("%d tokens; domains (column order of the activation heat maps): ", r.Tokens)
	for i, dn := range r.Domains {
		p("%d %s (%d tokens)", i, dn, r.TokensPerDomain[i])
		if i < len(r.Domains)-1 {
			p(", ")
		}
	}
	p(". Rule: %s scores, top-%d chosen on score + bias, weights = unbiased scores", r.Rule.Scoring, r.Rule.TopK)
	if r.Rule.Normalize {
		p(" normalised to 1")
	}
	p(" × %g.\n\n| layer | load entropy (bits) | normalised | mean token entropy (bits) | unused experts | most salient |\n| --- | ---: | ---: | ---: | --- | --- |\n", r.Rule.Scale)
	for _, l := range r.Layers {
		top := slices.Clone(l.Experts)
		slices.SortFunc(top, func(a, b ExpertRouting) int { return a.SaliencyRank - b.SaliencyRank })
		var ts []string
		for _, e := range top[:min(3, len(top))] {
			ts = append(ts, fmt.Sprintf("%d (%.3g)", e.Expert, e.Saliency))
		}
		p("| %d | %.3f | %.3f | %.3f | %s | %s |\n", l.Layer, l.LoadEntropy, l.NormalizedLoadEntropy, l.TokenEntropy,
			ints(l.Unused), strings.Join(ts, ", "))
	}
	p("\nSpecialists (specialization ≥ %g, firing on ≥ %g of the domain's tokens):\n\n", r.SpecialistRule.Share, r.SpecialistRule.Rate)
	if len(r.Specialists) == 0 {
		p("none.\n")
	} else {
		p("| layer | expert | domain | specialization | domain rate |\n| --- | ---: | --- | ---: | ---: |\n")
		for _, s := range r.Specialists {
			p("| %d | %d | %s | %.3f | %.3f |\n", s.Layer, s.Expert, s.Domain, s.Share, s.Rate)
		}
	}
	if len(r.CoActivation) > 0 {
		p("\nStrongest co-activation between consecutive MoE layers (Jaccard index of the tokens they share):\n\n")
		for _, c := range r.CoActivation {
			var ps []string
			for _, x := range c.Pairs[:min(5, len(c.Pairs))] {
				ps = append(ps, fmt.Sprintf("%d→%d %.2f", x.From, x.To, x.Jaccard))
			}
			p("- %d → %d: %s\n", c.FromLayer, c.ToLayer, strings.Join(ps, "; "))
		}
	}
}

// quantiles returns the minimum, median and maximum of v.
func quantiles(v []float64) (lo, med, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}
