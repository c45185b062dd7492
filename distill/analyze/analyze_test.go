package analyze

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/distill/ckptgen"
)

// TestFindsPlantedStructure analyses tiny checkpoints of each layout and
// checks that the analysis finds exactly what was planted: the groups of
// near-duplicate experts, the expert copied across layers, and each
// domain's specialist.
func TestFindsPlantedStructure(t *testing.T) {
	tests := []struct {
		family checkpoint.Family
		seed   uint64
	}{
		{checkpoint.DeepSeekV3, 1},
		{checkpoint.DeepSeekV3, 2},
		{checkpoint.Mixtral, 3},
		{checkpoint.QwenMoE, 4},
	}
	for _, tc := range tests {
		t.Run(string(tc.family), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			truth, err := ckptgen.Tiny(ctx, dir, ckptgen.TinyOptions{Family: tc.family, Seed: tc.seed})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Run(ctx, dir, Options{Depth: DepthComprehensive, Calibration: truth.CalibrationFile, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Quick.ParamsAgree {
				t.Errorf("config implies %d parameters, headers hold %d", rep.Quick.Params.Total, rep.Quick.StoredParams.Total)
			}
			// Near-duplicates: exactly the planted groups, layer by layer.
			got := map[int][][]int{}
			for _, c := range rep.Standard.Clusters() {
				got[c.Layer] = append(got[c.Layer], c.Experts)
			}
			for _, l := range truth.MoELayers {
				want := slices.Clone(truth.Duplicates[l])
				slices.SortFunc(want, func(a, b []int) int { return a[0] - b[0] })
				if !equalGroups(got[l], want) {
					t.Errorf("layer %d: clusters %v, planted %v", l, got[l], want)
				}
			}
			// The cross-layer copy, and nothing else.
			var matches []ckptgen.CrossCopy
			for _, r := range rep.Standard.CrossLayer {
				for _, m := range r.Matches {
					matches = append(matches, ckptgen.CrossCopy{FromLayer: r.FromLayer, FromExpert: m.FromExpert, ToLayer: r.ToLayer, ToExpert: m.ToExpert})
				}
			}
			if !slices.Equal(matches, truth.CrossLayer) {
				t.Errorf("cross-layer matches %v, planted %v", matches, truth.CrossLayer)
			}
			// Specialists: exactly one per domain and layer, the planted one.
			found := map[int]map[string]int{}
			for _, s := range rep.Routing.Specialists {
				if found[s.Layer] == nil {
					found[s.Layer] = map[string]int{}
				}
				if _, dup := found[s.Layer][s.Domain]; dup {
					t.Errorf("layer %d: two specialists for %s", s.Layer, s.Domain)
				}
				found[s.Layer][s.Domain] = s.Expert
			}
			for _, l := range truth.MoELayers {
				if len(found[l]) != len(truth.Specialists[l]) {
					t.Errorf("layer %d: %d specialists found, %d planted", l, len(found[l]), len(truth.Specialists[l]))
				}
				for d, e := range truth.Specialists[l] {
					if found[l][d] != e {
						t.Errorf("layer %d %s: specialist %d, planted %d", l, d, found[l][d], e)
					}
				}
			}
			// Specialists of the same domain co-activate across consecutive layers.
			for i, ca := range rep.Routing.CoActivation {
				from, to := truth.MoELayers[i], truth.MoELayers[i+1]
				for d := range truth.Specialists[from] {
					if !hasPair(ca.Pairs, truth.Specialists[from][d], truth.Specialists[to][d]) {
						t.Errorf("layers %d→%d: %s specialists %d→%d not among the top co-activated pairs",
							from, to, d, truth.Specialists[from][d], truth.Specialists[to][d])
					}
				}
			}
			if tc.family == checkpoint.DeepSeekV3 {
				checkBiasEffects(t, rep, truth)
			}
		})
	}
}

// checkBiasEffects verifies that activation is counted after the biased
// top-k while mixing weights use the unbiased scores.
func checkBiasEffects(t *testing.T, rep *Report, truth *ckptgen.Truth) {
	t.Helper()
	for _, lr := range rep.Routing.Layers {
		sup := lr.Experts[truth.Suppressed[lr.Layer]]
		if sup.Count != 0 || !slices.Contains(lr.Unused, sup.Expert) {
			t.Errorf("layer %d: expert %d (high score, bias -2) fired %d times", lr.Layer, sup.Expert, sup.Count)
		}
		boost := lr.Experts[truth.Boosted[lr.Layer]]
		if boost.Rate != 1 {
			t.Errorf("layer %d: expert %d (bias +2) fired on %.2f of tokens, want all", lr.Layer, boost.Expert, boost.Rate)
		}
		if boost.MeanWeight > 0.01 {
			t.Errorf("layer %d: expert %d has mean weight %.4f; its unbiased score is ~1e-4", lr.Layer, boost.Expert, boost.MeanWeight)
		}
		if boost.SaliencyRank < len(lr.Experts)-2 {
			t.Errorf("layer %d: always-chosen zero-weight expert %d ranks %d in saliency", lr.Layer, boost.Expert, boost.SaliencyRank)
		}
	}
}

func hasPair(pairs []CoActive, from, to int) bool {
	for _, p := range pairs {
		if p.From == from && p.To == to && p.Jaccard == 1 {
			return true
		}
	}
	return false
}

func equalGroups(a, b [][]int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// Without calibration data the token-embedding approximation runs and is labelled.
func TestEmbeddingApproximationIsLabelled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := ckptgen.Tiny(ctx, dir, ckptgen.TinyOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, dir, Options{Depth: DepthComprehensive, EmbeddingTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Routing
	if !r.Approximation || r.Tokens != 100 || !slices.Equal(r.Domains, []string{"all"}) || len(r.Specialists) != 0 {
		t.Fatalf("routing %+v", r)
	}
	if len(r.Layers) != 3 {
		t.Fatalf("%d routed layers", len(r.Layers))
	}
	for _, lr := range r.Layers {
		total := 0
		for _, e := range lr.Experts {
			total += e.Count
		}
		if total != 100*4 {
			t.Errorf("layer %d: %d routing slots for 100 tokens × top-4", lr.Layer, total)
		}
	}
	if s := Summary(rep); !strings.Contains(s, "APPROXIMATION") {
		t.Error("summary does not label the approximation")
	}
}

func TestRunErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := ckptgen.Tiny(ctx, dir, ckptgen.TinyOptions{}); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if _, err := ckptgen.Tiny(ctx, other, ckptgen.TinyOptions{Hidden: 72}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		o    Options
		want string
	}{
		{"missing folder", "/nonexistent/model", Options{}, "config.json"},
		{"calibration of another hidden size", dir, Options{Depth: DepthComprehensive, Calibration: other + "/calibration.safetensors"}, "hidden_size"},
		{"calibration missing", dir, Options{Depth: DepthComprehensive, Calibration: dir + "/none.safetensors"}, "none.safetensors"},
		{"calibration not safetensors", dir, Options{Depth: DepthComprehensive, Calibration: dir + "/config.json"}, "config.json"},
		{"bad usable share", dir, Options{UsableShare: 2}, "usable share"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(ctx, tc.path, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Run(cctx, dir, Options{Depth: DepthStandard}); err == nil {
		t.Error("Run with a cancelled context succeeded")
	}
}
