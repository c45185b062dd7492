package analyze

import "testing"

func TestPlan(t *testing.T) {
	tests := []struct {
		name                        string
		memory                      int64
		share                       float64
		expertBytes                 int64
		layers                      []int
		experts                     int
		backbone                    int64
		perNode, nodes, backboneNds int
	}{
		{"exact fit", 1000, 1, 100, []int{1, 2}, 10, 2500, 10, 2, 3},
		{"headroom", 1000, 0.9, 100, []int{1, 2}, 10, 0, 9, 3, 0},
		{"one node holds all", 1 << 40, 0.9, 100, []int{1}, 4, 10, 4, 1, 1},
		{"expert does not fit", 50, 1, 100, []int{1}, 4, 10, 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Plan(tc.memory, tc.share, tc.expertBytes, tc.layers, tc.experts, tc.backbone)
			if p.ExpertsPerNode != tc.perNode || p.Nodes != tc.nodes || p.BackboneNodes != tc.backboneNds {
				t.Fatalf("plan %+v", p)
			}
			hosted := 0
			for _, r := range p.Assignment {
				hosted += r.Experts
			}
			if tc.nodes > 0 && hosted != len(tc.layers)*tc.experts {
				t.Errorf("assignment hosts %d of %d experts", hosted, len(tc.layers)*tc.experts)
			}
		})
	}
	p := Plan(1000, 0.9, 100, []int{1, 2}, 10, 0)
	if last := p.Assignment[2]; last.FromLayer != 2 || last.FromIdx != 8 || last.ToLayer != 2 || last.ToIdx != 9 || last.Experts != 2 {
		t.Errorf("last node %+v", last)
	}
}

func TestCompressions(t *testing.T) {
	got := Compressions(SeedBudgets(), 44_040_192, 32_000_000_000)
	if len(got) != 6 || got[0].Domain != "reasoning" || got[0].VsRoutedExpert != 4404.0192 || got[1].Params != 50_000 {
		t.Fatalf("compressions %+v", got)
	}
}
