package kd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshnode/meshnode/distill/analyze"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
)

// GenerateFormat names the version of the report.json Generate writes.
const GenerateFormat = "meshnode-generate/1"

// maxReportSize bounds an analysis report.json.
const maxReportSize = 256 << 20

// Candidate is a checkpoint expert considered as a domain's teacher.
type Candidate struct {
	Layer  int    `json:"layer"`
	Expert int    `json:"expert"`
	Domain string `json:"domain"`
	// Specialization is the share of the expert's activity the domain accounts for; DomainRate
	// how often it fires on the domain's tokens; Saliency its mean mixing weight × output norm.
	Specialization float64 `json:"specialization"`
	DomainRate     float64 `json:"domain_rate"`
	Saliency       float64 `json:"saliency"`
	// Specialist says the analysis counted it a specialist of the domain.
	Specialist bool `json:"specialist"`
	// Score = Specialization × Saliency, what candidates are ranked by.
	Score float64 `json:"score"`
}

// ReadAnalysis reads the report.json that distill/analyze writes into an analysis folder.
func ReadAnalysis(dir string) (*analyze.Report, error) {
	path := filepath.Join(dir, "report.json")
	b, err := store.ReadFileLimited(path, maxReportSize)
	if err != nil {
		return nil, fmt.Errorf("analysis %s: %w", dir, err)
	}
	var rep analyze.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("analysis %s: report.json: %w", dir, err)
	}
	if rep.Quick == nil {
		return nil, fmt.Errorf("analysis %s: report.json has no quick section; is it an analyze report?", dir)
	}
	return &rep, nil
}

// PickExpert chooses the teacher of a domain from an analysis with routing statistics: the
// domain's specialist with the largest specialization × saliency, or, when the analysis found
// no specialist for it, the expert of any layer with the largest specialization × saliency.
// A domain the analysis does not know is an ErrUnknownDomain error naming the ones it does.
func PickExpert(rep *analyze.Report, domain string) (Candidate, error) {
	r := rep.Routing
	if r == nil || len(r.Layers) == 0 {
		return Candidate{}, fmt.Errorf("analysis of %s has no routing statistics: run analyze --depth comprehensive with --calibration", rep.ModelPath)
	}
	d := -1
	for i, name := range r.Domains {
		if name == domain {
			d = i
		}
	}
	if d < 0 {
		return Candidate{}, fmt.Errorf("%w %q: the analysis has domains %s", ErrUnknownDomain, domain, strings.Join(r.Domains, ", "))
	}
	special := map[[2]int]bool{}
	for _, s := range r.Specialists {
		if s.Domain == domain {
			special[[2]int{s.Layer, s.Expert}] = true
		}
	}
	var best Candidate
	found := false
	for _, lr := range r.Layers {
		for _, e := range lr.Experts {
			if len(e.Specialization) <= d || len(e.RateByDomain) <= d {
				return Candidate{}, fmt.Errorf("analysis: layer %d expert %d has statistics for %d domains, want %d", lr.Layer, e.Expert, len(e.Specialization), len(r.Domains))
			}
			c := Candidate{Layer: lr.Layer, Expert: e.Expert, Domain: domain, Specialization: e.Specialization[d],
				DomainRate: e.RateByDomain[d], Saliency: e.Saliency, Specialist: special[[2]int{lr.Layer, e.Expert}]}
			c.Score = c.Specialization * c.Saliency
			if !found || better(c, best) {
				best, found = c, true
			}
		}
	}
	if !found {
		return Candidate{}, fmt.Errorf("analysis of %s lists no experts", rep.ModelPath)
	}
	return best, nil
}

// better orders candidates: specialists first, then by score, then by layer and expert.
func better(a, b Candidate) bool {
	if a.Specialist != b.Specialist {
		return a.Specialist
	}
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	if a.Layer != b.Layer {
		return a.Layer < b.Layer
	}
	return a.Expert < b.Expert
}

// GenerateOptions configure Generate.
type GenerateOptions struct {
	// Domains to make one micro-expert each for.
	Domains []string
	// Params overrides every domain's preset budget.
	Params int
	// ModelPath overrides the checkpoint folder the report names.
	ModelPath string
	// Calibration is the file probes are drawn from (default: calibration.safetensors in the
	// checkpoint folder when there is one; else Gaussian probes).
	Calibration string
	// Distill is the template of each distillation (epochs, seed, probe counts, baseline);
	// Domain, Params, Name and Probes.Calibration/Domain are set per domain.
	Distill Options
	// Progress is told which domain is being distilled and how far it is (may be nil).
	Progress func(domain string, p Progress)
}

// GenerateReport is what Generate made.
type GenerateReport struct {
	Format      string            `json:"format"`
	AnalysisDir string            `json:"analysis_dir"`
	ModelPath   string            `json:"model_path"`
	Calibration string            `json:"calibration,omitempty"`
	Experts     []GeneratedExpert `json:"experts"`
	Seconds     float64           `json:"seconds"`
}

// GeneratedExpert is one domain's micro-expert.
type GeneratedExpert struct {
	Domain   string    `json:"domain"`
	Teacher  Candidate `json:"teacher"`
	Spec     string    `json:"teacher_spec"`
	ParentID string    `json:"parent_id"`
	Budget   int       `json:"budget_params"`
	Params   int       `json:"params"`
	Name     string    `json:"name"`
	ExpertID string    `json:"expert_id"`
	Dir      string    `json:"dir"`
	// Cosine and RelativeError compare the student with its teacher on held-out probes.
	Cosine        float64 `json:"cosine"`
	RelativeError float64 `json:"relative_error"`
	Report        *Report `json:"-"`
}

// Generate reads the analysis in analysisDir, picks each domain's teacher (PickExpert) and
// distils one micro-expert per domain within its budget into outDir/DOMAIN, then writes
// outDir/report.json and outDir/summary.md. Every domain is checked before any work starts.
func Generate(ctx context.Context, analysisDir, outDir string, o GenerateOptions) (*GenerateReport, error) {
	start := time.Now()
	if len(o.Domains) == 0 {
		return nil, fmt.Errorf("generate: no domains given")
	}
	rep, err := ReadAnalysis(analysisDir)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	model := o.ModelPath
	if model == "" {
		model = rep.ModelPath
	}
	picks := make([]Candidate, len(o.Domains))
	budgets := make([]int, len(o.Domains))
	seen := map[string]bool{}
	for i, d := range o.Domains {
		if seen[d] {
			return nil, fmt.Errorf("generate: domain %q given twice", d)
		}
		seen[d] = true
		if picks[i], err = PickExpert(rep, d); err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		if budgets[i], err = DomainBudget(d, o.Params); err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		if h := rep.Quick.HiddenSize; h > 0 {
			if _, err := SizeStudent(h, h, experts.OutputLinear, budgets[i]); err != nil {
				return nil, fmt.Errorf("generate %s: %w", d, err)
			}
		}
	}
	calib := o.Calibration
	if calib == "" {
		p := filepath.Join(model, "calibration.safetensors")
		if _, err := os.Stat(p); err == nil {
			calib = p
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("generate: %w", err)
		}
	}
	out := &GenerateReport{Format: GenerateFormat, AnalysisDir: analysisDir, ModelPath: model, Calibration: calib}
	for i, d := range o.Domains {
		g, err := generateOne(ctx, model, calib, outDir, picks[i], budgets[i], o)
		if err != nil {
			return nil, fmt.Errorf("generate %s: %w", d, err)
		}
		out.Experts = append(out.Experts, *g)
	}
	out.Seconds = time.Since(start).Seconds()
	if err := writeGenerateReport(outDir, out); err != nil {
		return nil, err
	}
	return out, nil
}

func generateOne(ctx context.Context, model, calib, outDir string, c Candidate, budget int, o GenerateOptions) (*GeneratedExpert, error) {
	teacher, err := OpenMoE(ctx, model, c.Layer, c.Expert)
	if err != nil {
		return nil, err
	}
	do := o.Distill
	do.Domain, do.Params, do.Name = c.Domain, o.Params, c.Domain+"-micro"
	do.Probes.Calibration, do.Probes.Domain = calib, c.Domain
	if o.Progress != nil {
		do.Progress = func(p Progress) { o.Progress(c.Domain, p) }
	}
	do.Meta = map[string]string{"teacher.specialization": fmt.Sprintf("%.4f", c.Specialization),
		"teacher.saliency": fmt.Sprintf("%.4g", c.Saliency), "teacher.specialist": fmt.Sprint(c.Specialist)}
	res, err := Distill(ctx, teacher, do)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(outDir, safeName(c.Domain))
	if _, err := WriteResult(dir, res); err != nil {
		return nil, err
	}
	r := res.Report
	return &GeneratedExpert{Domain: c.Domain, Teacher: c, Spec: r.Teacher.Spec, ParentID: r.Teacher.ID.String(),
		Budget: budget, Params: r.Params, Name: r.Name, ExpertID: r.ExpertID, Dir: dir,
		Cosine: r.Vectors.Cosine, RelativeError: r.Vectors.RelativeError, Report: r}, nil
}

func writeGenerateReport(dir string, rep *GenerateReport) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("generate: encode report: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated micro-experts\n\nFrom the analysis in `%s` of `%s`.\n\n", rep.AnalysisDir, rep.ModelPath)
	if rep.Calibration != "" {
		fmt.Fprintf(&b, "Probes: calibration activations of each domain from `%s`.\n\n", rep.Calibration)
	} else {
		b.WriteString("Probes: Gaussian, matched to the checkpoint's input scale (no calibration file).\n\n")
	}
	b.WriteString("| domain | teacher (layer, expert) | specialist | specialization | saliency | params / budget | cosine | relative error | expert ID |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, e := range rep.Experts {
		fmt.Fprintf(&b, "| %s | %d, %d | %v | %.3f | %.4g | %d / %d | %.4f | %.4f | `%s` |\n", e.Domain, e.Teacher.Layer, e.Teacher.Expert,
			e.Teacher.Specialist, e.Teacher.Specialization, e.Teacher.Saliency, e.Params, e.Budget, e.Cosine, e.RelativeError, e.ExpertID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	for name, data := range map[string][]byte{"report.json": append(js, '\n'), "summary.md": []byte(b.String())} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("generate: writing %s: %w", name, err)
		}
	}
	return nil
}
