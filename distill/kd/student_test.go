package kd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
)

// TestSizeStudentFillsBudget: the student is the widest that fits — within the budget, and one
// more hidden unit would not be.
func TestSizeStudentFillsBudget(t *testing.T) {
	tests := []struct {
		in, out int
		head    string
		budget  int
		hidden  int
	}{
		{784, 10, experts.OutputSoftmax, 23_860, 30},
		{784, 10, experts.OutputSoftmax, 25_000, 31},
		{1024, 2, experts.OutputSoftmax, 25_000, 24},
		{64, 64, experts.OutputLinear, 10_000, 52},
		{7168, 7168, experts.OutputLinear, 100_000, 4},
		{4, 3, experts.OutputSoftmax, 14, 1},
	}
	for _, tc := range tests {
		a, err := SizeStudent(tc.in, tc.out, tc.head, tc.budget)
		if err != nil {
			t.Errorf("%+v: %v", tc, err)
			continue
		}
		h := a.Layers[0].Units
		if a.Layers[0].Kind == experts.KindSwiGLU {
			h = a.Layers[0].Hidden
		}
		bigger := a
		bigger.Layers = append([]experts.LayerSpec(nil), a.Layers...)
		if bigger.Layers[0].Kind == experts.KindSwiGLU {
			bigger.Layers[0].Hidden++
		} else {
			bigger.Layers[0].Units++
		}
		if h != tc.hidden || a.ParamCount() > tc.budget || bigger.ParamCount() <= tc.budget {
			t.Errorf("%+v: %s with %d parameters (hidden %d)", tc, a, a.ParamCount(), h)
		}
		if err := a.Validate(); err != nil {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}

func TestBudgetErrors(t *testing.T) {
	tests := []struct {
		in, out int
		head    string
		budget  int
	}{
		{784, 10, experts.OutputSoftmax, 500},
		{784, 10, experts.OutputSoftmax, 804},
		{7168, 7168, experts.OutputLinear, 20_000},
		{64, 64, experts.OutputLinear, 0},
	}
	for _, tc := range tests {
		_, err := SizeStudent(tc.in, tc.out, tc.head, tc.budget)
		if !errors.Is(err, ErrBudgetTooSmall) || !strings.Contains(err.Error(), "input dimension") {
			t.Errorf("%+v: got %v, want ErrBudgetTooSmall naming the input dimension", tc, err)
		}
	}
	if _, err := DomainBudget("astrology", 0); !errors.Is(err, ErrUnknownDomain) {
		t.Errorf("domain without a preset: got %v", err)
	}
	if b, err := DomainBudget("astrology", 5000); err != nil || b != 5000 {
		t.Errorf("override: %d, %v", b, err)
	}
	if b, err := DomainBudget("coding", 0); err != nil || b != 50_000 {
		t.Errorf("coding preset: %d, %v", b, err)
	}
}

// smallClassTeacher writes a tiny class expert file (no manifest beside it) and opens it.
func smallClassTeacher(t *testing.T) (*ExpertTeacher, string) {
	t.Helper()
	net, err := experts.NewNetwork(experts.MLP(784, []int{8}, "relu", 10, experts.OutputSoftmax), 1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := experts.EncodeWeights(net)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "teacher.safetensors")
	if err := os.WriteFile(path, w, 0o644); err != nil {
		t.Fatal(err)
	}
	teacher, err := OpenExpert(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return teacher, path
}

// TestDistilBadInput: a too-small budget, a missing data set, a data set of the wrong width,
// an unknown domain and a missing teacher all give clear errors.
func TestDistilBadInput(t *testing.T) {
	ctx := context.Background()
	teacher, _ := smallClassTeacher(t)
	if teacher.Info().IDKind != "weights" || teacher.Info().Output.Kind != experts.OutputClasses {
		t.Fatalf("bare weights file teacher: %+v", teacher.Info())
	}
	data := &dataset.Dataset{Name: "d", Dim: 784, X: make([]float32, 784*4), Y: []int{0, 1, 2, 3}, Classes: strings.Split("0 1 2 3 4 5 6 7 8 9", " ")}
	narrow := &dataset.Dataset{Name: "narrow", Dim: 4, X: make([]float32, 16), Y: []int{0, 1, 2, 3}, Classes: data.Classes}
	tests := []struct {
		name string
		o    Options
		want error
		say  string
	}{
		{"budget too small", Options{Domain: "vision", Params: 500, Train: data, Test: data}, ErrBudgetTooSmall, "input dimension 784"},
		{"no data", Options{Domain: "vision", Params: 5000}, nil, "needs a data set"},
		{"wrong width", Options{Domain: "vision", Params: 5000, Train: narrow, Test: narrow}, nil, "has 4 features"},
		{"unknown domain", Options{Domain: "astrology", Train: data, Test: data}, ErrUnknownDomain, "no preset budget"},
		{"no domain", Options{Train: data, Test: data}, nil, "domain is required"},
		{"bad temperature", Options{Domain: "vision", Params: 5000, Temperature: -1, Train: data, Test: data}, nil, "temperature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Distill(ctx, teacher, tc.o)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("got %v, want an error matching %v that says %q", err, tc.want, tc.say)
			}
			t.Log(err)
		})
	}
	for _, ref := range []string{filepath.Join(t.TempDir(), "missing.safetensors"), "some-name"} {
		if _, err := OpenExpert(ctx, ref, nil); err == nil {
			t.Errorf("expert:%s without a file or repo: want error", ref)
		}
	}
	if _, err := OpenMoE(ctx, t.TempDir(), 1, 0); err == nil {
		t.Error("moe teacher of an empty folder: want error")
	}
}

// TestTemperedTargets: tempered probabilities are softmax(log p / T): T=1 leaves them, large T
// flattens them, zeros stay zero.
func TestTemperedTargets(t *testing.T) {
	p := []float64{0.7, 0.2, 0.1, 0, 1, 0}
	same := tempered(p, 3, 1)
	for i := range p {
		if d := float64(same[i]) - p[i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("T=1 changed %v into %v", p, same)
		}
	}
	flat := tempered(p, 3, 4)
	if !(flat[0] < 0.7 && flat[2] > 0.1 && flat[0] > flat[1] && flat[1] > flat[2]) {
		t.Errorf("T=4: %v is not a flatter order-preserving version of %v", flat[:3], p[:3])
	}
	if flat[3] != 0 || flat[4] != 1 || flat[5] != 0 {
		t.Errorf("one-hot row became %v", flat[3:])
	}
}
