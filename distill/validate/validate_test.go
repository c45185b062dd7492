package validate

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
)

// fixture is a folder of exported experts of several kinds.
type fixture struct {
	dir     string
	cat     dataset.Catalog
	experts map[string]trained
}

func textSpec(tf dataset.TextFeatures) experts.InputSpec {
	return experts.InputSpec{Kind: experts.InputText, Preprocess: tf.Spec()}
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	f := fixture{dir: t.TempDir(), cat: dataset.DefaultCatalog(), experts: map[string]trained{}}
	add := func(e trained, withManifest bool) {
		export(t, f.dir, e, withManifest)
		f.experts[e.manifest.Name] = e
	}
	// A text expert with its own, smaller feature extractor.
	small := dataset.TextFeatures{Dim: 256, CharMin: 2, CharMax: 3, WordMin: 1, WordMax: 1}
	tr, _, err := f.cat.TextSuite(ctx, dataset.SuiteToolUse)
	if err != nil {
		t.Fatal(err)
	}
	d, err := tr.Features(small)
	if err != nil {
		t.Fatal(err)
	}
	add(trainExpert(t, "tools", []string{"tool_use"}, textSpec(small), d, 12, 4), true)
	// The same task under another domain name: a user suite of that name wins.
	add(trainExpert(t, "support", []string{"support"}, textSpec(small), d, 12, 2), true)
	// A vector expert as `meshnode expert train --dataset mathematics` makes it.
	mtr, _, err := f.cat.Load(dataset.SuiteMathematics, 0)
	if err != nil {
		t.Fatal(err)
	}
	add(trainExpert(t, "maths", []string{"mathematics"}, experts.InputSpec{Kind: experts.InputVector}, mtr, 16, 6), true)
	// A vector expert no suite takes.
	odd := &dataset.Dataset{Dim: 7, X: make([]float32, 14), Y: []int{0, 1}, Classes: []string{"a", "b"}}
	add(trainExpert(t, "seven", []string{"misc"}, experts.InputSpec{Kind: experts.InputVector}, odd, 4, 0), true)
	// A bare weights file of digits' shape: named "0".."9", vector input of 64.
	if _, dtest, err := f.cat.Load("digits", 0); err == nil {
		add(trainExpert(t, "bare-digits", nil, experts.InputSpec{Kind: experts.InputVector}, dtest, 8, 0), false)
	}
	// A corrupt file.
	if err := os.WriteFile(filepath.Join(f.dir, "broken.safetensors"), []byte("not safetensors"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRunWritesReports(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	suiteFile := filepath.Join(t.TempDir(), "support.jsonl")
	lines := `{"text":"What is 12 times 40?","label":"calculator"}
{"text":"Will it rain in Oslo tomorrow?","label":"weather"}
{"text":"Convert 3 miles to kilometers.","label":"unit_converter"}
{"text":"Translate 'thank you' into German.","label":"translator"}
`
	if err := os.WriteFile(suiteFile, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, f.dir, Options{Level: Quick, Catalog: f.cat, Suites: []string{suiteFile}})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Result{}
	for _, r := range rep.Results {
		byName[r.Expert] = r
		t.Logf("%-12s %-8s suite=%-12s n=%-4d acc=%.3f chance=%.3f p50=%.0fµs p99=%.0fµs qps=%.0f heap=%d spec=%+.3f cons=%.3f rob=%.3f eff=%.4f %s",
			r.Expert, r.Status, r.Suite, r.Samples, r.Accuracy, r.Chance, r.LatencyP50us, r.LatencyP99us, r.ThroughputQPS,
			r.HeapBytes, r.Specialization, r.Consistency, r.Robustness, r.Efficiency, r.Reason)
	}
	wantStatus := map[string]string{"tools": StatusOK, "support": StatusOK, "maths": StatusOK, "seven": StatusSkipped, "broken.safetensors": StatusFailed}
	if _, ok := f.experts["bare-digits"]; ok {
		wantStatus["bare-digits"] = StatusOK
	}
	for name, st := range wantStatus {
		if byName[name].Status != st {
			t.Errorf("%s: status %q (%s), want %q", name, byName[name].Status, byName[name].Reason, st)
		}
	}
	if r := byName["seven"]; !strings.Contains(r.Reason, "vector input of dimension 7") {
		t.Errorf("skip reason %q", r.Reason)
	}
	if r := byName["support"]; r.Suite != "support" || r.Samples != 4 {
		t.Errorf("support validated on %s (%d samples), want the user suite", r.Suite, r.Samples)
	}
	if r := byName["bare-digits"]; r.Status == StatusOK && r.Suite != "digits" {
		t.Errorf("bare digits expert validated on %s", r.Suite)
	}
	// Trained experts beat chance clearly, and the accuracy is exactly a
	// direct evaluation on the same test rows.
	for _, tc := range []struct {
		name string
		min  float64
	}{{"tools", 0.9}, {"maths", 0.65}} {
		r := byName[tc.name]
		if r.Accuracy < tc.min {
			t.Errorf("%s: accuracy %.3f < %.2f", tc.name, r.Accuracy, tc.min)
		}
		if direct := directAccuracy(t, f, tc.name, r.Suite, r.Samples); math.Abs(direct-r.Accuracy) > 1e-12 {
			t.Errorf("%s: validate says %.4f, direct evaluation %.4f", tc.name, r.Accuracy, direct)
		}
	}
	for _, r := range rep.Results {
		if r.Status == StatusOK {
			checkRanges(t, r, 1)
		}
	}
	if rep.Evaluated != 4-boolInt(f.experts["bare-digits"].net == nil) || rep.Skipped != 1 || rep.Failed != 1 {
		t.Errorf("evaluated %d, skipped %d, failed %d", rep.Evaluated, rep.Skipped, rep.Failed)
	}
	checkFiles(t, rep)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// directAccuracy evaluates an expert with experts.Evaluate on the first n
// rows of its suite's test part.
func directAccuracy(t *testing.T, f fixture, name, suiteName string, n int) float64 {
	t.Helper()
	e := f.experts[name]
	var test *dataset.Dataset
	if e.manifest.Input.Kind == experts.InputText {
		_, tt, err := f.cat.TextSuite(context.Background(), suiteName)
		if err != nil {
			t.Fatal(err)
		}
		tf, err := dataset.ParseTextFeatures(e.manifest.Input.Preprocess)
		if err != nil {
			t.Fatal(err)
		}
		if test, err = tt.Subset("t", seq(n)).Features(tf); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if _, test, err = f.cat.Load(suiteName, n); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := experts.Evaluate(e.net, experts.Samples{X: test.X, Dim: test.Dim, Labels: test.Y}, "")
	if err != nil {
		t.Fatal(err)
	}
	return ev.Accuracy
}

func checkRanges(t *testing.T, r Result, noise int) {
	t.Helper()
	in01 := func(what string, v float64) {
		if !(v >= 0 && v <= 1) {
			t.Errorf("%s: %s = %v not in [0,1]", r.Expert, what, v)
		}
	}
	in01("accuracy", r.Accuracy)
	in01("consistency", r.Consistency)
	in01("robustness", r.Robustness)
	in01("own confidence", r.OwnConfidence)
	in01("ood confidence", r.OODConfidence)
	if r.LatencyP50us <= 0 || r.LatencyP99us < r.LatencyP50us || r.ThroughputQPS <= 0 {
		t.Errorf("%s: latency %v/%v µs, throughput %v", r.Expert, r.LatencyP50us, r.LatencyP99us, r.ThroughputQPS)
	}
	if r.ParamBytes != int64(r.Params)*8 || r.WeightsBytes < int64(r.Params)*4 || r.HeapBytes < int64(r.Params)*4 {
		t.Errorf("%s: %d params, param bytes %d, weights bytes %d, heap growth %d", r.Expert, r.Params, r.ParamBytes, r.WeightsBytes, r.HeapBytes)
	}
	if math.Abs(r.Specialization-(r.OwnConfidence-r.OODConfidence)) > 1e-12 || r.OODInputs == "" {
		t.Errorf("%s: specialization %v, confidences %v - %v", r.Expert, r.Specialization, r.OwnConfidence, r.OODConfidence)
	}
	if math.Abs(r.Efficiency-r.Accuracy/(float64(r.Params)/1000)) > 1e-12 {
		t.Errorf("%s: efficiency %v", r.Expert, r.Efficiency)
	}
	if len(r.Noise) != noise {
		t.Errorf("%s: %d noise strengths, want %d", r.Expert, len(r.Noise), noise)
	}
	var sum float64
	for _, p := range r.Noise {
		sum += p.Accuracy
	}
	if math.Abs(sum/float64(len(r.Noise))-r.Robustness) > 1e-12 {
		t.Errorf("%s: robustness %v is not the mean of %v", r.Expert, r.Robustness, r.Noise)
	}
}

func checkFiles(t *testing.T, rep *Report) {
	t.Helper()
	out := t.TempDir()
	files, err := rep.Write(out)
	if err != nil || len(files) != 3 {
		t.Fatalf("%v %v", files, err)
	}
	var back Report
	b, err := os.ReadFile(filepath.Join(out, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back.Results) != len(rep.Results) || back.Results[0].Accuracy != rep.Results[0].Accuracy {
		t.Fatalf("report.json does not round-trip: %v", err)
	}
	cf, err := os.Open(filepath.Join(out, CSVFile))
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	rows, err := csv.NewReader(cf).ReadAll()
	if err != nil || len(rows) != len(rep.Results)+1 || rows[0][0] != "expert" || len(rows[1]) != len(csvHeader()) {
		t.Fatalf("report.csv: %d rows, %v", len(rows), err)
	}
	md, err := os.ReadFile(filepath.Join(out, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if !strings.Contains(string(md), r.Expert) {
			t.Errorf("report.md does not mention %s", r.Expert)
		}
	}
}

func TestRunLevelsAndRepeatability(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, err := Run(ctx, f.dir, Options{Level: Standard, Catalog: f.cat})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(ctx, f.dir, Options{Level: Standard, Catalog: f.cat})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range a.Results {
		if r.Status != StatusOK {
			continue
		}
		checkRanges(t, r, 3)
		s := b.Results[i]
		if r.Accuracy != s.Accuracy || r.Robustness != s.Robustness || r.Consistency != s.Consistency || r.Specialization != s.Specialization {
			t.Errorf("%s: two runs differ: %+v vs %+v", r.Expert, r, s)
		}
		if r.Samples > 1000 {
			t.Errorf("%s: %d samples at standard", r.Expert, r.Samples)
		}
	}
}

func TestRunErrors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"text":"a","label":"x"}`+"\n"+`{"text":"b"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		o    Options
		want string
	}{
		{"level", f.dir, Options{Level: "thorough"}, `unknown benchmark level "thorough"`},
		{"empty dir", t.TempDir(), Options{}, "no *.safetensors files"},
		{"missing dir", filepath.Join(t.TempDir(), "nope"), Options{}, "no such file"},
		{"bad suite", f.dir, Options{Level: Quick, Suites: []string{bad}}, `bad.jsonl: line 2: field "label" missing`},
		{"nothing", "", Options{}, "no experts to validate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(ctx, tc.dir, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := Run(ctx, t.TempDir(), Options{}); !errors.Is(err, ErrNoExperts) {
		t.Errorf("empty dir: %v is not ErrNoExperts", err)
	}
	// A missing word list makes a language expert skipped, with the reason.
	cat := f.cat
	cat.Suites.DictDir = t.TempDir()
	lang := trainExpert(t, "words", []string{"language"}, textSpec(dataset.DefaultTextFeatures()),
		&dataset.Dataset{Dim: 1024, X: make([]float32, 2048), Y: []int{0, 1}, Classes: []string{"english", "french", "german", "spanish"}}, 4, 0)
	dir := t.TempDir()
	export(t, dir, lang, true)
	rep, err := Run(ctx, dir, Options{Level: Quick, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.Status != StatusSkipped || !strings.Contains(r.Reason, "install Debian package wamerican") {
		t.Errorf("language expert without word lists: %s %q", r.Status, r.Reason)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Run(cctx, f.dir, Options{Level: Quick, Catalog: f.cat}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}
