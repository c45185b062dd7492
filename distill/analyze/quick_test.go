package analyze

import (
	"context"
	"testing"
	"time"

	"github.com/meshnode/meshnode/distill/ckptgen"
)

// TestQuickOnKimiK2StandIn runs the quick analysis on the header-complete
// sparse stand-in of the full Kimi-K2 checkpoint and checks the numbers
// against the config's arithmetic.
func TestQuickOnKimiK2StandIn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := ckptgen.WriteStandIn(ctx, dir, ckptgen.KimiK2Config(), ckptgen.KimiK2Shards); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := Run(ctx, dir, Options{Depth: DepthQuick, NodeMemory: 16 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quick analysis of the Kimi-K2 stand-in took %v", time.Since(start))
	q := rep.Quick
	const (
		perExpert = 3 * 7168 * 2048
		routed    = 60 * 384 * perExpert
		// FP8 bytes of one expert plus its F32 scales: 3 × 16×56 blocks × 4 bytes.
		expertBytes = perExpert + 3*16*56*4
	)
	usable := int64(16<<30) * 9 / 10
	perNode := int(usable / expertBytes)
	checks := []struct {
		name      string
		got, want any
	}{
		{"layers", q.Layers, 61},
		{"dense layers", len(q.DenseLayers), 1},
		{"MoE layers", len(q.MoELayers), 60},
		{"routed per layer", q.RoutedExperts, 384},
		{"shared per layer", q.SharedExperts, 1},
		{"all routed", q.TotalExperts, 23040},
		{"top-k", q.TopK, 8},
		{"router bias", q.RouterBias, true},
		{"params per expert", q.ParamsPerExpert, int64(perExpert)},
		{"routed params", q.Params.RoutedExperts, int64(routed)},
		{"stored routed params", q.StoredParams.RoutedExperts, int64(routed)},
		{"totals agree", q.ParamsAgree, true},
		{"stored total", q.StoredParams.Total, q.Params.Total},
		{"activated", q.Params.Activated, q.Params.Total - 60*(384-8)*perExpert},
		{"shards", q.Shards, 61},
		{"FP8 bytes", q.BytesByDType["F8_E4M3"] > routed, true},
		{"expert bytes", q.Placement.ExpertBytes, int64(expertBytes)},
		{"experts per node", q.Placement.ExpertsPerNode, perNode},
		{"nodes", q.Placement.Nodes, (23040 + perNode - 1) / perNode},
		{"reasoning compression", q.Budgets[0].VsRoutedExpert, float64(perExpert) / 10_000},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if q.Published == nil || q.Published.Total != 1e12 || q.Published.Activated != 32e9 {
		t.Fatalf("published figures %+v", q.Published)
	}
	if q.Published.TotalRatio < 1 || q.Published.TotalRatio > 1.05 || q.Published.ActivatedRatio < 1 || q.Published.ActivatedRatio > 1.05 {
		t.Errorf("computed/published: total ×%.3f, activated ×%.3f", q.Published.TotalRatio, q.Published.ActivatedRatio)
	}
	if rep.Standard != nil || rep.Routing != nil {
		t.Error("quick analysis read weights")
	}
}
