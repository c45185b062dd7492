package dataset

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// Names of the benchmark suites of the six seed domains. Each is a text
// classification task; see the generator of each for what it asks.
const (
	SuiteCoding      = "coding"      // which programming language a snippet of installed source is
	SuiteLanguage    = "language"    // which language a word of Debian's word lists is
	SuiteMathematics = "mathematics" // the parity of an integer expression's value
	SuiteReasoning   = "reasoning"   // whether a proposition or an ordering question holds
	SuiteToolUse     = "tool_use"    // which tool a request needs
	SuiteContext     = "context"     // whether a passage answers a question
)

// SuiteSeed is the fixed seed from which the catalog generates every
// benchmark suite, so every node gets the same samples (and, through
// CatalogSplitSeed, the same test set).
const SuiteSeed = 20260909

// textSuite describes one text benchmark suite.
type textSuite struct {
	name    string
	classes []string
	size    int // samples the catalog generates (balanced over the classes)
	gen     func(ctx context.Context, src SuiteSources, perClass int, seed uint64) (*TextSet, error)
}

func textSuites() []textSuite {
	return []textSuite{
		{SuiteCoding, codingClasses(), 5000, genCoding},
		{SuiteLanguage, languageClasses(), 8000, genLanguage},
		{SuiteMathematics, mathClasses(), 6000, genMathematics},
		{SuiteReasoning, reasoningClasses(), 6000, genReasoning},
		{SuiteToolUse, toolClasses(), 6000, genToolUse},
		{SuiteContext, contextClasses(), 6000, genContext},
	}
}

func findTextSuite(name string) (textSuite, bool) {
	for _, s := range textSuites() {
		if s.name == name {
			return s, true
		}
	}
	return textSuite{}, false
}

// SuiteNames lists the text benchmark suites in a fixed order.
func SuiteNames() []string {
	var out []string
	for _, s := range textSuites() {
		out = append(out, s.name)
	}
	return out
}

// SuiteClasses returns the class labels of a text benchmark suite, or false
// if name is not one.
func SuiteClasses(name string) ([]string, bool) {
	s, ok := findTextSuite(name)
	if !ok {
		return nil, false
	}
	return slices.Clone(s.classes), true
}

// TextSet is a labelled set of raw texts: the form benchmark suites take
// before feature extraction, so that a validator can perturb the text and
// featurise it with any expert's extractor.
type TextSet struct {
	Name    string
	Texts   []string
	Y       []int    // class index per text, in [0, len(Classes))
	Classes []string // label names
}

// Len returns the number of texts.
func (t *TextSet) Len() int { return len(t.Y) }

// Validate checks that every text has a label in range and that there is
// at least one class.
func (t *TextSet) Validate() error {
	if len(t.Texts) != len(t.Y) {
		return fmt.Errorf("text set %q: %d texts but %d labels", t.Name, len(t.Texts), len(t.Y))
	}
	if len(t.Classes) == 0 {
		return fmt.Errorf("text set %q: no classes", t.Name)
	}
	for i, y := range t.Y {
		if y < 0 || y >= len(t.Classes) {
			return fmt.Errorf("text set %q: sample %d has label %d outside [0,%d)", t.Name, i, y, len(t.Classes))
		}
	}
	return nil
}

// Features extracts tf's feature vectors of every text into a Dataset of
// the same name, labels and classes.
func (t *TextSet) Features(tf TextFeatures) (*Dataset, error) {
	return TextDataset(t.Texts, t.Y, t.Classes, tf, t.Name)
}

// Subset returns a new text set named name holding the samples idx in that
// order. It panics on an out-of-range index.
func (t *TextSet) Subset(name string, idx []int) *TextSet {
	out := &TextSet{Name: name, Texts: make([]string, len(idx)), Y: make([]int, len(idx)), Classes: slices.Clone(t.Classes)}
	for j, i := range idx {
		out.Texts[j], out.Y[j] = t.Texts[i], t.Y[i]
	}
	return out
}

// Split is Dataset.Split for texts: the same stratified seeded algorithm,
// so for the same labels, fraction and seed it puts the same samples in the
// same order in each part as Dataset.Split does on the featurised set.
func (t *TextSet) Split(frac float64, seed uint64) (first, second *TextSet, err error) {
	if err := t.Validate(); err != nil {
		return nil, nil, err
	}
	a, b, err := stratifiedSplit(t.Y, len(t.Classes), frac, seed)
	if err != nil {
		return nil, nil, fmt.Errorf("text set %q: %w", t.Name, err)
	}
	return t.Subset(t.Name+":first", a), t.Subset(t.Name+":second", b), nil
}

// stratifiedSplit is the index computation of Dataset.Split; labels must be
// in [0, classes).
func stratifiedSplit(labels []int, classes int, frac float64, seed uint64) (a, b []int, err error) {
	if !(frac >= 0 && frac <= 1) {
		return nil, nil, fmt.Errorf("split fraction %v not in [0,1]", frac)
	}
	counts := make([]int, classes)
	for _, y := range labels {
		counts[y]++
	}
	want := make([]int, classes)
	for c, n := range counts {
		want[c] = int(math.Round(frac * float64(n)))
	}
	for _, i := range NewRand(seed).Perm(len(labels)) {
		if c := labels[i]; want[c] > 0 {
			want[c]--
			b = append(b, i)
		} else {
			a = append(a, i)
		}
	}
	return a, b, nil
}

// GenerateSuite generates n samples of the named text suite from seed,
// balanced over its classes (n is rounded down to a multiple of the class
// count, and must give at least one sample per class). coding and language
// read the sources in src; the other suites are generated with their
// ground truth computed. The result is deterministic for (src's files, n,
// seed).
func GenerateSuite(ctx context.Context, src SuiteSources, name string, n int, seed uint64) (*TextSet, error) {
	s, ok := findTextSuite(name)
	if !ok {
		return nil, fmt.Errorf("unknown benchmark suite %q (known: %v)", name, SuiteNames())
	}
	per := n / len(s.classes)
	if per < 1 {
		return nil, fmt.Errorf("suite %s: %d samples is fewer than one per class (%d classes)", name, n, len(s.classes))
	}
	t, err := s.gen(ctx, src, per, seed)
	if err != nil {
		return nil, err
	}
	t.Name = name
	if err := t.Validate(); err != nil { // a loud invariant of the generators
		return nil, fmt.Errorf("suite %s: generator bug: %w", name, err)
	}
	return t, nil
}

// TextSuite returns the catalog's text suite name: its default size
// generated from SuiteSeed, split like the scikit-learn sets (stratified
// 80/20 with CatalogSplitSeed). The parts are named NAME+":train" and
// NAME+":test". test is exactly the text of the rows Catalog.Load(name)
// returns in its test part.
func (c Catalog) TextSuite(ctx context.Context, name string) (train, test *TextSet, err error) {
	s, ok := findTextSuite(name)
	if !ok {
		return nil, nil, fmt.Errorf("unknown benchmark suite %q (known: %v)", name, SuiteNames())
	}
	all, err := GenerateSuite(ctx, c.Suites, name, s.size, SuiteSeed)
	if err != nil {
		return nil, nil, err
	}
	train, test, err = all.Split(CatalogTestFraction, CatalogSplitSeed)
	if err != nil {
		return nil, nil, err
	}
	train.Name, test.Name = name+":train", name+":test"
	return train, test, nil
}

// loadSuite is Catalog.Load for the text suites: features are
// DefaultTextFeatures. ok is false when name is not a suite.
func (c Catalog) loadSuite(name string, limit int) (train, test *Dataset, ok bool, err error) {
	s, ok := findTextSuite(name)
	if !ok {
		return nil, nil, false, nil
	}
	// Catalog.Load has no context; generation reads at most a few
	// thousand small files.
	all, err := GenerateSuite(context.Background(), c.Suites, name, s.size, SuiteSeed)
	if err != nil {
		return nil, nil, true, err
	}
	d, err := all.Features(DefaultTextFeatures())
	if err != nil {
		return nil, nil, true, err
	}
	train, test, err = splitAndLimit(d, limit)
	return train, test, true, err
}

// TextFeaturesOf returns the text features the catalog extracts for data
// set name, and false if name is not a text suite (its rows are not text).
// A trainer records it as the expert's input preprocessing.
func (c Catalog) TextFeaturesOf(name string) (TextFeatures, bool) {
	if _, ok := findTextSuite(name); !ok {
		return TextFeatures{}, false
	}
	return DefaultTextFeatures(), true
}

// pick returns a uniformly chosen element of list.
func pick[T any](rng interface{ IntN(int) int }, list []T) T {
	return list[rng.IntN(len(list))]
}

// Describe returns a one-line description of a catalog data set and where
// its data comes from (for listings such as `meshnode data list`), or ""
// for an unknown name.
func (c Catalog) Describe(name string) string {
	descs := map[string]string{
		"fashion-mnist":  "Fashion-MNIST images, 10 classes (Debian package dataset-fashion-mnist)",
		"iris":           "scikit-learn's iris, 3 classes (python3-sklearn)",
		"wine":           "scikit-learn's wine, 3 classes (python3-sklearn)",
		"breast-cancer":  "scikit-learn's breast cancer, 2 classes (python3-sklearn)",
		"digits":         "scikit-learn's 8×8 digits, 10 classes (python3-sklearn)",
		SuiteCoding:      "text: language of an installed source snippet (Go, Python, C, shell, Perl)",
		SuiteLanguage:    "text: language of a word (Debian word lists wamerican, wfrench, wngerman, wspanish)",
		SuiteMathematics: "text: parity of a generated integer expression",
		SuiteReasoning:   "text: yes/no on generated propositions and ordering puzzles",
		SuiteToolUse:     "text: which tool a generated request needs",
		SuiteContext:     "text: whether a generated passage answers a question",
	}
	return descs[name]
}
