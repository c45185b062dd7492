package kd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
)

// ReportFormat names the version of report.json that Distill writes.
const ReportFormat = "meshnode-distill/1"

// Report says what a distillation made and how much of the teacher it kept.
type Report struct {
	Format  string      `json:"format"`
	Teacher TeacherInfo `json:"teacher"`
	Domain  string      `json:"domain"`
	// Budget is the parameter budget; Params the student's count (≤ Budget).
	Budget      int        `json:"budget_params"`
	Params      int        `json:"student_params"`
	Arch        string     `json:"student_arch"`
	Task        string     `json:"task"` // classes | vectors
	Temperature float64    `json:"temperature,omitempty"`
	SoftWeight  float64    `json:"soft_weight,omitempty"`
	Epochs      int        `json:"epochs"`
	Seed        uint64     `json:"seed"`
	Data        DataReport `json:"data"`
	// Metric names what TeacherMetric and StudentMetric measure on the held-out data;
	// Retention = StudentMetric / TeacherMetric.
	Metric        string          `json:"metric"`
	TeacherMetric float64         `json:"teacher_metric"`
	StudentMetric float64         `json:"student_metric"`
	Retention     float64         `json:"retention"`
	Classes       *ClassMetrics   `json:"classes,omitempty"`
	Vectors       *VectorMetrics  `json:"vectors,omitempty"`
	Baseline      *BaselineReport `json:"baseline,omitempty"`
	Name          string          `json:"name"`
	ExpertID      string          `json:"expert_id"`
	Files         []string        `json:"files,omitempty"`
	Seconds       float64         `json:"seconds"`
}

// DataReport says what the student learnt from and was measured on.
type DataReport struct {
	Source     string `json:"source"`
	Train      string `json:"train"`
	TrainRows  int    `json:"train_rows"`
	Test       string `json:"test"`
	TestRows   int    `json:"test_rows"`
	TestDigest string `json:"test_digest"`
}

// ClassMetrics compare student and teacher on held-out rows.
type ClassMetrics struct {
	TrueLabels      bool    `json:"true_labels"` // accuracies are against true labels
	TeacherAccuracy float64 `json:"teacher_accuracy,omitempty"`
	StudentAccuracy float64 `json:"student_accuracy,omitempty"`
	Agreement       float64 `json:"agreement"` // student argmax = teacher argmax
}

// VectorMetrics compare student outputs s with teacher outputs t on held-out inputs.
type VectorMetrics struct {
	Cosine        float64 `json:"cosine"`         // mean over rows of cos(s, t)
	RelativeError float64 `json:"relative_error"` // ‖S − T‖_F / ‖T‖_F
	MSE           float64 `json:"mse"`
	TeacherRMS    float64 `json:"teacher_rms"`
}

// BaselineReport is a same-size model that did not learn from the teacher's soft outputs.
type BaselineReport struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Params      int            `json:"params"`
	Metric      float64        `json:"metric"`
	Retention   float64        `json:"retention"`
	Vectors     *VectorMetrics `json:"vectors,omitempty"`
}

func newReport(info TeacherInfo, o Options, budget int, student *experts.Network, task string) *Report {
	r := &Report{Format: ReportFormat, Teacher: info, Domain: o.Domain, Budget: budget, Params: student.ParamCount(),
		Arch: student.Arch.String(), Task: task, Epochs: o.Epochs, Seed: o.Seed, Name: o.Name}
	if task == "classes" {
		r.Temperature, r.SoftWeight = o.Temperature, o.SoftWeight
	}
	return r
}

// finish builds the student's manifest — linking the teacher as its parent — and its ID.
func finish(ctx context.Context, info TeacherInfo, o Options, student *experts.Network, in experts.InputSpec,
	out experts.OutputSpec, evals []experts.EvalResult, rep *Report) (*Result, error) {
	weights, err := experts.EncodeWeights(student)
	if err != nil {
		return nil, err
	}
	wc, size, err := store.BlobCID(ctx, bytes.NewReader(weights))
	if err != nil {
		return nil, err
	}
	meta := map[string]string{
		"distilled_by": "meshnode distill", "domain": o.Domain, "budget_params": strconv.Itoa(rep.Budget),
		"epochs": strconv.Itoa(o.Epochs), "seed": strconv.FormatUint(o.Seed, 10), "task": rep.Task,
		"teacher": info.Spec, "teacher.id": info.ID.String(), "teacher.id_kind": info.IDKind,
		"data": rep.Data.Source,
	}
	if rep.Task == "classes" {
		meta["temperature"] = strconv.FormatFloat(o.Temperature, 'g', -1, 64)
		meta["soft_weight"] = strconv.FormatFloat(o.SoftWeight, 'g', -1, 64)
	}
	for k, v := range info.Meta {
		meta["teacher."+k] = v
	}
	for k, v := range o.Meta {
		meta[k] = v
	}
	in.Dim, out.Dim = student.InputDim(), student.OutputDim()
	m := &experts.Manifest{Name: o.Name, Domains: []string{o.Domain}, Input: in, Output: out, Arch: student.Arch,
		Params: student.ParamCount(), Weights: wc, WeightsSize: size,
		Parents: []experts.Parent{{ID: info.ID, Relation: experts.RelDistilledFrom}}, Evals: evals, Meta: meta}
	if o.Signer != nil {
		if err := m.Sign(o.Signer); err != nil {
			return nil, fmt.Errorf("distill: %w", err)
		}
	}
	enc, err := m.Encode()
	if err != nil {
		return nil, fmt.Errorf("distill: manifest: %w", err)
	}
	id, err := experts.ManifestCID(enc)
	if err != nil {
		return nil, err
	}
	rep.ExpertID = id.String()
	return &Result{Student: student, Manifest: m, Weights: weights, ID: id, Report: rep}, nil
}

// WriteResult writes a distilled expert into dir: NAME.safetensors and NAME.manifest.cbor (the
// pair `meshnode expert import` reads, keeping the expert's ID), report.json and summary.md.
// It returns the file names written and records them in the report.
func WriteResult(dir string, res *Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	base := safeName(res.Manifest.Name)
	enc, err := res.Manifest.Encode()
	if err != nil {
		return nil, err
	}
	res.Report.Files = []string{base + ".safetensors", base + ".manifest.cbor", "report.json", "summary.md"}
	js, err := json.MarshalIndent(res.Report, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	for i, data := range [][]byte{res.Weights, enc, append(js, '\n'), []byte(Summary(res.Report))} {
		if err := os.WriteFile(filepath.Join(dir, res.Report.Files[i]), data, 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", res.Report.Files[i], err)
		}
	}
	return res.Report.Files, nil
}

// safeName turns an expert name into a file name.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] == '.' {
		return "expert" + string(b)
	}
	return string(b)
}

// Summary renders a report as Markdown.
func Summary(r *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Distilled micro-expert: %s\n\n", r.Name)
	fmt.Fprintf(&b, "- expert ID: `%s`\n- domain: %s\n- teacher: `%s` (%s", r.ExpertID, r.Domain, r.Teacher.Spec, r.Teacher.Name)
	if r.Teacher.Params > 0 {
		fmt.Fprintf(&b, ", %d parameters", r.Teacher.Params)
	}
	fmt.Fprintf(&b, "), parent link `%s` (%s)\n", r.Teacher.ID, r.Teacher.IDKind)
	fmt.Fprintf(&b, "- student: %s, %d parameters (budget %d)\n", r.Arch, r.Params, r.Budget)
	if r.Task == "classes" {
		fmt.Fprintf(&b, "- training: soft targets at temperature %g (weight %g) plus hard labels, %d epochs, seed %d\n", r.Temperature, r.SoftWeight, r.Epochs, r.Seed)
	} else {
		fmt.Fprintf(&b, "- training: mean squared error to the teacher's outputs, %d epochs, seed %d\n", r.Epochs, r.Seed)
	}
	fmt.Fprintf(&b, "- data: %s; %d training rows, %d held-out rows (`%s`, sha256 %.12s…)\n\n", r.Data.Source, r.Data.TrainRows, r.Data.TestRows, r.Data.Test, r.Data.TestDigest)
	fmt.Fprintf(&b, "## Retention on held-out data\n\n| model | %s |\n| --- | --- |\n", r.Metric)
	fmt.Fprintf(&b, "| teacher | %.4f |\n| student | %.4f |\n", r.TeacherMetric, r.StudentMetric)
	if r.Baseline != nil {
		fmt.Fprintf(&b, "| baseline (%s) | %.4f |\n", r.Baseline.Name, r.Baseline.Metric)
	}
	fmt.Fprintf(&b, "\nRetention = student / teacher = **%.2f%%**.\n", 100*r.Retention)
	if v := r.Vectors; v != nil {
		fmt.Fprintf(&b, "\nStudent vs teacher outputs: cosine %.4f, relative error %.4f, MSE %.4g (teacher RMS %.4g).\n", v.Cosine, v.RelativeError, v.MSE, v.TeacherRMS)
	}
	if c := r.Classes; c != nil {
		fmt.Fprintf(&b, "\nThe student agrees with the teacher's answer on %.2f%% of held-out rows.\n", 100*c.Agreement)
	}
	if bl := r.Baseline; bl != nil {
		fmt.Fprintf(&b, "\nBaseline: %s (%d parameters).", bl.Description, bl.Params)
		if bl.Vectors != nil {
			fmt.Fprintf(&b, " Its cosine %.4f, relative error %.4f.", bl.Vectors.Cosine, bl.Vectors.RelativeError)
		}
		b.WriteString("\n")
	}
	return b.String()
}
