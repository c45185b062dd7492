package validate

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Result statuses.
const (
	StatusOK      = "ok"      // measured
	StatusSkipped = "skipped" // no suite fits the expert, or its suite's data is not on this machine
	StatusFailed  = "failed"  // the expert could not be loaded or run
)

// NoisePoint is the accuracy at one noise strength.
type NoisePoint struct {
	Strength float64 `json:"strength"`
	Accuracy float64 `json:"accuracy"`
}

// Result is one expert's validation. Metric fields are zero unless Status
// is StatusOK; see the package documentation for their definitions.
type Result struct {
	Expert  string   `json:"expert"`
	ID      string   `json:"id,omitempty"`
	Source  string   `json:"source"`
	Domains []string `json:"domains,omitempty"`
	Status  string   `json:"status"`
	Reason  string   `json:"reason,omitempty"`

	Suite   string `json:"suite,omitempty"`
	Samples int    `json:"samples,omitempty"`
	Classes int    `json:"classes,omitempty"`
	Params  int    `json:"params,omitempty"`

	Accuracy       float64      `json:"accuracy"`
	Chance         float64      `json:"chance"`
	LatencyP50us   float64      `json:"latency_p50_us"`
	LatencyP99us   float64      `json:"latency_p99_us"`
	ThroughputQPS  float64      `json:"throughput_qps"`
	ParamBytes     int64        `json:"param_bytes"`
	WeightsBytes   int64        `json:"weights_bytes"`
	HeapBytes      int64        `json:"heap_bytes"`
	Specialization float64      `json:"specialization"`
	OwnConfidence  float64      `json:"own_confidence"`
	OODConfidence  float64      `json:"ood_confidence"`
	OODInputs      string       `json:"ood_inputs,omitempty"`
	Consistency    float64      `json:"consistency"`
	Robustness     float64      `json:"robustness"`
	Noise          []NoisePoint `json:"noise,omitempty"`
	Efficiency     float64      `json:"efficiency"`
}

// SuiteInfo describes a suite the run used.
type SuiteInfo struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Samples int      `json:"samples"`
	Classes []string `json:"classes"`
	User    bool     `json:"user,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Level     Level       `json:"level"`
	Dir       string      `json:"experts_dir,omitempty"`
	Seed      uint64      `json:"seed"`
	Started   time.Time   `json:"started"`
	Seconds   float64     `json:"seconds"`
	Suites    []SuiteInfo `json:"suites"`
	Results   []Result    `json:"results"`
	Evaluated int         `json:"evaluated"`
	Skipped   int         `json:"skipped"`
	Failed    int         `json:"failed"`
}

// Report file names.
const (
	JSONFile     = "report.json"
	CSVFile      = "report.csv"
	MarkdownFile = "report.md"
)

// Write writes report.json, report.csv and report.md into dir (created if
// needed) and returns their paths.
func (r *Report) Write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write report: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("write report: %w", err)
	}
	csvb, err := r.CSV()
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range []struct {
		name string
		data []byte
	}{{JSONFile, append(js, '\n')}, {CSVFile, csvb}, {MarkdownFile, []byte(r.Markdown())}} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return nil, fmt.Errorf("write report: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// csvHeader returns the columns of report.csv, one row per expert.
func csvHeader() []string {
	return []string{"expert", "id", "source", "status", "reason", "suite", "samples", "classes", "params",
		"accuracy", "chance", "latency_p50_us", "latency_p99_us", "throughput_qps", "param_bytes", "weights_bytes",
		"heap_bytes", "specialization", "own_confidence", "ood_confidence", "consistency", "robustness", "efficiency"}
}

// CSV renders the results as CSV with csvHeader's columns.
func (r *Report) CSV() ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(csvHeader())
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, x := range r.Results {
		_ = w.Write([]string{x.Expert, x.ID, x.Source, x.Status, x.Reason, x.Suite, i(int64(x.Samples)), i(int64(x.Classes)),
			i(int64(x.Params)), f(x.Accuracy), f(x.Chance), f(x.LatencyP50us), f(x.LatencyP99us), f(x.ThroughputQPS),
			i(x.ParamBytes), i(x.WeightsBytes), i(x.HeapBytes), f(x.Specialization), f(x.OwnConfidence),
			f(x.OODConfidence), f(x.Consistency), f(x.Robustness), f(x.Efficiency)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("report csv: %w", err)
	}
	return b.Bytes(), nil
}

// Markdown renders a summary table and the skipped and failed experts.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Micro-expert validation (%s)\n\n", r.Level)
	fmt.Fprintf(&b, "%d evaluated, %d skipped, %d failed in %.1f s (seed %d).\n\n", r.Evaluated, r.Skipped, r.Failed, r.Seconds, r.Seed)
	if r.Evaluated > 0 {
		b.WriteString("| expert | suite | n | params | accuracy (chance) | p50 / p99 µs | queries/s | param / heap KiB | specialization | consistency | robustness | acc per 1K params |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, x := range r.Results {
			if x.Status != StatusOK {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %.3f (%.3f) | %.1f / %.1f | %.0f | %.1f / %.1f | %+.3f | %.3f | %.3f | %.4f |\n",
				mdEscape(x.Expert), mdEscape(x.Suite), x.Samples, x.Params, x.Accuracy, x.Chance, x.LatencyP50us, x.LatencyP99us,
				x.ThroughputQPS, float64(x.ParamBytes)/1024, float64(x.HeapBytes)/1024, x.Specialization, x.Consistency,
				x.Robustness, x.Efficiency)
		}
		b.WriteString("\n")
	}
	for _, x := range r.Results {
		if x.Status != StatusOK {
			fmt.Fprintf(&b, "- **%s** %s: %s\n", mdEscape(x.Expert), x.Status, mdEscape(x.Reason))
		}
	}
	b.WriteString("\nDefinitions: accuracy on the suite's held-out test samples; latency of one query from raw input " +
		"(text features included); throughput of batched inference (256 rows); specialization = mean top-class " +
		"confidence on the suite minus on out-of-domain inputs; consistency = share of samples answered the same " +
		"across single, batched, reordered and reformatted runs; robustness = mean accuracy under the level's noise " +
		"strengths; efficiency = accuracy per thousand parameters.\n")
	return b.String()
}

func mdEscape(s string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s) }
