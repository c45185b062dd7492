package kd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshnode/meshnode/distill/analyze"
	"github.com/meshnode/meshnode/distill/ckptgen"
	"github.com/meshnode/meshnode/experts"
)

// analysedTiny writes a tiny checkpoint with planted domain specialists and analyses it at
// comprehensive depth with its calibration file, as `meshnode analyze --output` does.
func analysedTiny(t *testing.T) (model, analysis string, truth *ckptgen.Truth) {
	t.Helper()
	ctx := context.Background()
	model, analysis = t.TempDir(), t.TempDir()
	truth, err := ckptgen.Tiny(ctx, model, ckptgen.TinyOptions{Inter: 160, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := analyze.Run(ctx, model, analyze.Options{Depth: analyze.DepthComprehensive, Calibration: truth.CalibrationFile, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := analyze.WriteOutputs(ctx, analysis, rep); err != nil {
		t.Fatal(err)
	}
	return model, analysis, truth
}

// TestGenerateOneExpertPerDomain runs generate on an analysed checkpoint with planted domain
// specialists: one micro-expert per requested domain, within its budget, distilled from that
// domain's planted specialist and linked to it.
func TestGenerateOneExpertPerDomain(t *testing.T) {
	ctx := context.Background()
	model, analysis, truth := analysedTiny(t)
	out := t.TempDir()
	domains := []string{"reasoning", "mathematics", "language"}
	rep, err := Generate(ctx, analysis, out, GenerateOptions{Domains: domains,
		Distill: Options{Epochs: 5, Seed: 1, Probes: ProbeOptions{Train: 1024}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Experts) != len(domains) {
		t.Fatalf("%d experts for %d domains", len(rep.Experts), len(domains))
	}
	if rep.Calibration != filepath.Join(model, ckptgen.CalibrationFile) {
		t.Errorf("probes from %q, want the checkpoint's calibration file", rep.Calibration)
	}
	for i, g := range rep.Experts {
		t.Logf("%s: layer %d expert %d (specialization %.3f, saliency %.3g) → %d/%d params, cosine %.4f, relative error %.4f",
			g.Domain, g.Teacher.Layer, g.Teacher.Expert, g.Teacher.Specialization, g.Teacher.Saliency, g.Params, g.Budget, g.Cosine, g.RelativeError)
		if g.Domain != domains[i] {
			t.Errorf("expert %d is for %s, want %s", i, g.Domain, domains[i])
		}
		budget := SeedBudgets()[g.Domain]
		if g.Budget != budget || g.Params > budget {
			t.Errorf("%s: %d parameters, budget %d (preset %d)", g.Domain, g.Params, g.Budget, budget)
		}
		if planted := truth.Specialists[g.Teacher.Layer][g.Domain]; !g.Teacher.Specialist || g.Teacher.Expert != planted {
			t.Errorf("%s: picked layer %d expert %d, the planted specialist is %d", g.Domain, g.Teacher.Layer, g.Teacher.Expert, planted)
		}
		if g.Cosine < 0.5 {
			t.Errorf("%s: cosine %.4f to its teacher on held-out probes, want ≥ 0.5", g.Domain, g.Cosine)
		}
		teacher, err := OpenMoE(ctx, model, g.Teacher.Layer, g.Teacher.Expert)
		if err != nil {
			t.Fatal(err)
		}
		back, err := OpenExpert(ctx, filepath.Join(g.Dir, g.Name+".safetensors"), nil)
		if err != nil {
			t.Fatal(err)
		}
		m := back.Manifest
		if m == nil || back.Info().ID.String() != g.ExpertID {
			t.Fatalf("%s: written expert does not reopen with ID %s", g.Domain, g.ExpertID)
		}
		if len(m.Parents) != 1 || !m.Parents[0].ID.Equals(teacher.Info().ID) || m.Parents[0].Relation != experts.RelDistilledFrom {
			t.Errorf("%s: parents %v, want distilled-from %s", g.Domain, m.Parents, teacher.Info().ID)
		}
		if m.Domains[0] != g.Domain || m.Meta["teacher.specialist"] != "true" {
			t.Errorf("%s: manifest domains %v, meta %v", g.Domain, m.Domains, m.Meta)
		}
	}
	for _, f := range []string{"report.json", "summary.md"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestGenerateRejectsBadDomains: a domain the analysis does not know, or a budget too small
// for the checkpoint's hidden size, fails before anything is written.
func TestGenerateRejectsBadDomains(t *testing.T) {
	ctx := context.Background()
	_, analysis, _ := analysedTiny(t)
	tests := []struct {
		name    string
		domains []string
		params  int
		want    error
	}{
		{"unknown", []string{"reasoning", "astrology"}, 0, ErrUnknownDomain},
		{"none", nil, 0, nil},
		{"twice", []string{"coding", "coding"}, 0, nil},
		{"budget too small", []string{"coding"}, 50, ErrBudgetTooSmall},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			_, err := Generate(ctx, analysis, out, GenerateOptions{Domains: tc.domains, Params: tc.params,
				Distill: Options{Epochs: 1, Probes: ProbeOptions{Train: 64}}})
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want an error matching %v", err, tc.want)
			}
			t.Log(err)
			if tc.want != nil {
				if _, serr := os.Stat(out); serr == nil {
					t.Errorf("%s was written despite the error", out)
				}
			}
		})
	}
	if _, err := Generate(ctx, t.TempDir(), t.TempDir(), GenerateOptions{Domains: []string{"coding"}}); err == nil {
		t.Error("a folder without report.json: want error")
	}
}
