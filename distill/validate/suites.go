package validate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
)

// Suite kinds: what a suite's samples are.
const (
	kindText   = "text"
	kindVector = "vector"
	kindImage  = "image"
)

// suite is one benchmark suite's test data.
type suite struct {
	name    string
	kind    string
	classes []string
	user    bool
	text    *dataset.TextSet // kind text
	data    *dataset.Dataset // kind vector and image
}

func (s *suite) len() int {
	if s.text != nil {
		return s.text.Len()
	}
	return s.data.Len()
}

// labels returns the suite's class index per sample.
func (s *suite) labels() []int {
	if s.text != nil {
		return s.text.Y
	}
	return s.data.Y
}

// suites finds and caches the benchmark suites: the user's, the catalog's
// text suites, Fashion-MNIST and the scikit-learn sets.
type suites struct {
	cat     dataset.Catalog
	samples int
	user    []*suite
	loaded  map[string]*suite
	errs    map[string]error
}

func newSuites(ctx context.Context, cat dataset.Catalog, samples int, files []string) (*suites, error) {
	s := &suites{cat: cat, samples: samples, loaded: map[string]*suite{}, errs: map[string]error{}}
	for _, f := range files {
		u, err := dataset.LoadUserSuite(f)
		if err != nil {
			return nil, err
		}
		us := &suite{name: u.Name, user: true, classes: u.Classes()}
		if u.Text != nil {
			us.kind, us.text = kindText, u.Text.Subset(u.Name, seq(min(u.Text.Len(), samples)))
		} else {
			us.kind, us.data = kindVector, u.Vectors.Subset(u.Name, seq(min(u.Vectors.Len(), samples)))
		}
		s.user = append(s.user, us)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// builtinNames lists the catalog's suites in matching order.
func (s *suites) builtinNames() []string {
	return append(dataset.SuiteNames(), "fashion-mnist", "iris", "wine", "breast-cancer", "digits")
}

// get loads a catalog suite's test part, truncated to the level's sample
// count (the test parts are in seeded random order, so a prefix is a
// random sample).
func (s *suites) get(ctx context.Context, name string) (*suite, error) {
	if st, ok := s.loaded[name]; ok {
		return st, nil
	}
	if err, ok := s.errs[name]; ok {
		return nil, err
	}
	st, err := s.load(ctx, name)
	if err != nil {
		s.errs[name] = err
		return nil, err
	}
	s.loaded[name] = st
	return st, nil
}

func (s *suites) load(ctx context.Context, name string) (*suite, error) {
	if classes, ok := dataset.SuiteClasses(name); ok {
		_, test, err := s.cat.TextSuite(ctx, name)
		if err != nil {
			return nil, err
		}
		return &suite{name: name, kind: kindText, classes: classes, text: test.Subset(test.Name, seq(min(test.Len(), s.samples)))}, nil
	}
	_, test, err := s.cat.Load(name, s.samples)
	if err != nil {
		return nil, err
	}
	kind := kindVector
	if name == "fashion-mnist" {
		kind = kindImage
	}
	return &suite{name: name, kind: kind, classes: test.Classes, data: test}, nil
}

// match picks the suite an expert is validated on, or says why there is
// none. Candidates are the user's suites, then the catalog's, in order; a
// candidate fits when it takes the expert's input (same kind and width;
// text suites take any text expert, and a vector expert whose width is the
// catalog's text feature width when the suite is named after one of its
// domains) and every class of the suite is one of the expert's labels. A
// fitting suite named after one of the expert's domains (or the data set
// it was trained on) wins over the first fitting one.
func (s *suites) match(ctx context.Context, e Expert) (*suite, string) {
	m := e.Manifest
	if m.Output.Kind != experts.OutputClasses {
		return nil, fmt.Sprintf("%s output: the benchmark suites score class answers", m.Output.Kind)
	}
	named := expertNames(m)
	var first *suite
	var why []string
	try := func(st *suite) bool {
		if reason := fits(st, m, named[st.name]); reason != "" {
			if named[st.name] {
				why = append(why, fmt.Sprintf("suite %s: %s", st.name, reason))
			}
			return false
		}
		if named[st.name] {
			return true
		}
		if first == nil {
			first = st
		}
		return false
	}
	for _, u := range s.user {
		if try(u) {
			return u, ""
		}
	}
	for _, name := range s.builtinNames() {
		if !s.mayFit(name, m, named[name]) {
			continue
		}
		st, err := s.get(ctx, name)
		if err != nil {
			if named[name] {
				why = append(why, fmt.Sprintf("suite %s unavailable: %v", name, err))
			}
			continue
		}
		if try(st) {
			return st, ""
		}
	}
	if first != nil {
		return first, ""
	}
	if len(why) > 0 {
		return nil, strings.Join(why, "; ")
	}
	return nil, fmt.Sprintf("no suite takes %s input of dimension %d with classes among %s (give one with --suite FILE)",
		m.Input.Kind, m.Input.Dim, short(m.Output.Labels))
}

// mayFit rules out catalog suites without loading them.
func (s *suites) mayFit(name string, m *experts.Manifest, named bool) bool {
	if _, ok := dataset.SuiteClasses(name); ok {
		return m.Input.Kind == experts.InputText || named
	}
	if name == "fashion-mnist" {
		return m.Input.Kind == experts.InputImage || named
	}
	return m.Input.Kind == experts.InputVector
}

// expertNames are the suite names an expert claims: its domains and the
// data set it was trained on.
func expertNames(m *experts.Manifest) map[string]bool {
	out := map[string]bool{}
	for _, d := range m.Domains {
		out[d] = true
	}
	if ds := m.Meta["dataset"]; ds != "" {
		out[strings.TrimSuffix(ds, ":train")] = true
	}
	return out
}

// fits returns "" when st can score the expert, else why not.
func fits(st *suite, m *experts.Manifest, named bool) string {
	switch st.kind {
	case kindText:
		switch {
		case m.Input.Kind == experts.InputText:
		case m.Input.Kind == experts.InputVector && named && m.Input.Dim == dataset.DefaultTextFeatures().Dim:
		default:
			return fmt.Sprintf("takes text, the expert takes %s input of dimension %d", m.Input.Kind, m.Input.Dim)
		}
	default:
		if st.data.Dim != m.Input.Dim || (st.kind == kindImage) != (m.Input.Kind == experts.InputImage) && !named {
			return fmt.Sprintf("has %s input of dimension %d, the expert takes %s input of dimension %d", st.kind, st.data.Dim, m.Input.Kind, m.Input.Dim)
		}
	}
	if missing := missingLabels(st.classes, m.Output.Labels); len(missing) > 0 {
		return fmt.Sprintf("has classes %s the expert does not answer (it answers %s)", short(missing), short(m.Output.Labels))
	}
	return ""
}

// labelIndex maps a label to the expert's output index, case-insensitively.
func labelIndex(labels []string) map[string]int {
	idx := make(map[string]int, len(labels))
	for i, l := range labels {
		idx[strings.ToLower(strings.TrimSpace(l))] = i
	}
	return idx
}

func missingLabels(classes, labels []string) []string {
	idx := labelIndex(labels)
	var out []string
	for _, c := range classes {
		if _, ok := idx[strings.ToLower(strings.TrimSpace(c))]; !ok {
			out = append(out, c)
		}
	}
	return out
}

func short(list []string) string {
	if len(list) > 8 {
		return "[" + strings.Join(list[:8], " ") + " …]"
	}
	return "[" + strings.Join(list, " ") + "]"
}

// inputs turns a suite's samples into the expert's feature rows (row-major
// float64) and its labels into the expert's output indices.
func inputs(st *suite, e Expert) (x []float64, y []int, err error) {
	idx := labelIndex(e.Manifest.Output.Labels)
	for _, c := range st.labels() {
		y = append(y, idx[strings.ToLower(strings.TrimSpace(st.classes[c]))])
	}
	if st.text != nil {
		x, err = featurize(st.text.Texts, e)
		return x, y, err
	}
	x = make([]float64, len(st.data.X))
	for i, v := range st.data.X {
		x[i] = float64(v)
	}
	return x, y, nil
}

// textFeatures returns the extractor of a text expert, or the catalog's for
// a vector expert trained on a catalog text suite.
func textFeatures(e Expert) (dataset.TextFeatures, error) {
	if e.Manifest.Input.Kind == experts.InputText {
		return dataset.ParseTextFeatures(e.Manifest.Input.Preprocess)
	}
	return dataset.DefaultTextFeatures(), nil
}

func featurize(texts []string, e Expert) ([]float64, error) {
	tf, err := textFeatures(e)
	if err != nil {
		return nil, err
	}
	buf := make([]float32, tf.Dim)
	x := make([]float64, 0, len(texts)*tf.Dim)
	for _, t := range texts {
		if err := tf.Extract(t, buf); err != nil {
			return nil, err
		}
		for _, v := range buf {
			x = append(x, float64(v))
		}
	}
	return x, nil
}

// otherTexts returns up to n texts of the text suites other than own,
// taken evenly from each available one (the out-of-domain inputs of
// specialization).
func (s *suites) otherTexts(ctx context.Context, own string, n int) []string {
	var others []*suite
	for _, u := range s.user {
		if u.kind == kindText && u.name != own {
			others = append(others, u)
		}
	}
	for _, name := range dataset.SuiteNames() {
		if name == own || slices.ContainsFunc(others, func(o *suite) bool { return o.name == name }) {
			continue
		}
		if st, err := s.get(ctx, name); err == nil {
			others = append(others, st)
		}
	}
	if len(others) == 0 {
		return nil
	}
	per := max(1, n/len(others))
	var out []string
	for _, o := range others {
		out = append(out, o.text.Texts[:min(per, o.text.Len())]...)
	}
	return out
}
