package dataset

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// needSources skips when the machine lacks the files a real-data suite
// reads (scripts/setup.sh installs them); the error tests below cover the
// message a user sees.
func needSources(t *testing.T, name string) SuiteSources {
	t.Helper()
	src := DefaultSuiteSources()
	if _, err := GenerateSuite(context.Background(), src, name, 40, 1); err != nil {
		t.Skipf("suite %s unavailable here: %v", name, err)
	}
	return src
}

func TestSuitesDeterministicBalanced(t *testing.T) {
	ctx := context.Background()
	for _, name := range SuiteNames() {
		t.Run(name, func(t *testing.T) {
			src := needSources(t, name)
			classes, _ := SuiteClasses(name)
			n := 60 * len(classes)
			a, err := GenerateSuite(ctx, src, name, n, 7)
			if err != nil {
				t.Fatal(err)
			}
			b, err := GenerateSuite(ctx, src, name, n, 7)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.Texts, b.Texts) || !slices.Equal(a.Y, b.Y) {
				t.Fatal("same seed gave different samples")
			}
			c, err := GenerateSuite(ctx, src, name, n, 8)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(a.Texts, c.Texts) {
				t.Error("different seeds gave the same samples")
			}
			if !slices.Equal(a.Classes, classes) || a.Len() != n {
				t.Fatalf("classes %v, %d samples; want %v, %d", a.Classes, a.Len(), classes, n)
			}
			counts := make([]int, len(classes))
			for i, y := range a.Y {
				counts[y]++
				if strings.TrimSpace(a.Texts[i]) == "" {
					t.Fatalf("sample %d is empty", i)
				}
			}
			for c, k := range counts {
				if k != 60 {
					t.Errorf("class %s has %d samples, want 60", classes[c], k)
				}
			}
			t.Logf("%s: %q → %s", name, a.Texts[0], classes[a.Y[0]])
		})
	}
}

func TestGeneratedSuiteAnswers(t *testing.T) {
	ctx := context.Background()
	// Spot checks of the computed ground truth on fixed texts.
	if v := evalArith([]int64{3, 4, 5}, []byte{'+', '*'}); v != 23 {
		t.Errorf("3+4*5 = %d", v)
	}
	if v := evalArith([]int64{3, 4, 5, 2}, []byte{'-', '*', '-'}); v != -19 {
		t.Errorf("3-4*5-2 = %d", v)
	}
	math, err := GenerateSuite(ctx, SuiteSources{}, SuiteMathematics, 400, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range math.Texts {
		if v, ok := parseSymbolic(text); ok && (v%2 != 0) != (math.Y[i] == 1) {
			t.Fatalf("%q labelled %s", text, math.Classes[math.Y[i]])
		}
	}
	logic, err := GenerateSuite(ctx, SuiteSources{}, SuiteReasoning, 400, 3)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i, text := range logic.Texts {
		if v, ok := evalWords(text); ok {
			checked++
			if v != (logic.Y[i] == 0) {
				t.Fatalf("%q labelled %s", text, logic.Classes[logic.Y[i]])
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d propositional samples checked", checked)
	}
	cx, err := GenerateSuite(ctx, SuiteSources{}, SuiteContext, 400, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range cx.Texts {
		passage, q, _ := strings.Cut(text, " Question: What is the ")
		q = strings.TrimSuffix(q, "?")
		attr, ent, _ := strings.Cut(q, " of ")
		stated := strings.Contains(passage, "The "+attr+" of "+ent+" is ")
		if stated != (cx.Y[i] == 0) {
			t.Fatalf("%q labelled %s", text, cx.Classes[cx.Y[i]])
		}
	}
}

// parseSymbolic evaluates "... a + b * c ..." when the text uses symbols only.
func parseSymbolic(text string) (int64, bool) {
	var nums []int64
	var ops []byte
	for _, f := range strings.Fields(strings.NewReplacer("?", "", ".", "", ":", "", "=", "").Replace(text)) {
		switch f {
		case "+", "-", "*":
			ops = append(ops, f[0])
		case "plus", "minus", "times":
			return 0, false
		default:
			var v int64
			ok := true
			for _, r := range f {
				if r < '0' || r > '9' {
					ok = false
					break
				}
				v = v*10 + int64(r-'0')
			}
			if ok {
				nums = append(nums, v)
			}
		}
	}
	if len(nums) != len(ops)+1 || len(nums) < 2 {
		return 0, false
	}
	return evalArith(nums, ops), true
}

// evalWords evaluates "Is it true that L op L ...?" independently of the
// generator: or-separated groups of and-ed literals.
func evalWords(text string) (bool, bool) {
	rest, ok := strings.CutPrefix(text, "Is it true that ")
	if !ok {
		return false, false
	}
	rest = strings.TrimSuffix(rest, "?")
	any := false
	for group := range strings.SplitSeq(rest, " or ") {
		all := true
		for lit := range strings.SplitSeq(group, " and ") {
			v := strings.HasSuffix(lit, "true")
			if strings.HasPrefix(lit, "not ") {
				v = !v
			}
			all = all && v
		}
		any = any || all
	}
	return any, true
}

func TestCatalogLoadsSuites(t *testing.T) {
	c := DefaultCatalog()
	train, test, err := c.Load(SuiteToolUse, 0)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 4800 || test.Len() != 1200 || train.Dim != DefaultTextFeatures().Dim || train.Name != "tool_use:train" {
		t.Fatalf("train %s %d×%d, test %d", train.Name, train.Len(), train.Dim, test.Len())
	}
	_, ttext, err := c.TextSuite(context.Background(), SuiteToolUse)
	if err != nil {
		t.Fatal(err)
	}
	feat, err := ttext.Features(DefaultTextFeatures())
	if err != nil {
		t.Fatal(err)
	}
	if feat.Digest() != test.Digest() {
		t.Error("TextSuite's test texts do not featurise to Load's test part")
	}
	if tf, ok := c.TextFeaturesOf(SuiteToolUse); !ok || tf != DefaultTextFeatures() {
		t.Error("TextFeaturesOf(tool_use)")
	}
	if _, ok := c.TextFeaturesOf("iris"); ok {
		t.Error("iris is not a text suite")
	}
	for _, name := range c.Names() {
		if c.Describe(name) == "" {
			t.Errorf("%s has no description", name)
		}
	}
	if !strings.Contains(c.Describe(SuiteLanguage), "wfrench") || c.Describe("nope") != "" {
		t.Error("Describe")
	}
}

func TestTextSetSplitMatchesDataset(t *testing.T) {
	ts, err := GenerateSuite(context.Background(), SuiteSources{}, SuiteReasoning, 300, 5)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ts.Features(TextFeatures{Dim: 64, CharMin: 2, CharMax: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, tb, err := ts.Split(0.25, 9)
	if err != nil {
		t.Fatal(err)
	}
	_, db, err := d.Split(0.25, 9)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := tb.Features(TextFeatures{Dim: 64, CharMin: 2, CharMax: 3})
	if err != nil {
		t.Fatal(err)
	}
	if fb.Digest() != db.Digest() {
		t.Error("TextSet.Split and Dataset.Split chose different rows")
	}
}

func TestSuiteErrors(t *testing.T) {
	ctx := context.Background()
	empty := t.TempDir()
	dict := t.TempDir()
	for _, f := range []string{"american-english", "french", "ngerman"} {
		if err := os.WriteFile(filepath.Join(dict, f), []byte("alpha\nbravo\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		src   SuiteSources
		suite string
		n     int
		want  string
	}{
		{"missing word list", SuiteSources{DictDir: dict}, SuiteLanguage, 40, "spanish not found: install Debian package wspanish"},
		{"no dict dir", SuiteSources{}, SuiteLanguage, 40, "install Debian package wamerican"},
		{"no go", SuiteSources{}, SuiteCoding, 40, "no go sources found"},
		{"no python", SuiteSources{GoRoot: DefaultSuiteSources().GoRoot, PythonDirs: []string{empty}}, SuiteCoding, 40, "no python sources found (looked in " + empty},
		{"unknown", SuiteSources{}, "poetry", 40, `unknown benchmark suite "poetry"`},
		{"too few", SuiteSources{}, SuiteToolUse, 5, "fewer than one per class"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "no python" && tc.src.GoRoot == "" {
				t.Skip("no Go installation found")
			}
			_, err := GenerateSuite(ctx, tc.src, tc.suite, tc.n, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := GenerateSuite(cctx, SuiteSources{}, SuiteContext, 600, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
