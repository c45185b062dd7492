package dataset

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Limits of a user suite file.
const (
	MaxUserSuiteLine    = 1 << 20 // bytes of one JSONL line
	MaxUserSuiteSamples = 1 << 20
)

// UserSuite is a benchmark suite read from a user's file: either raw texts
// (Text) or feature vectors (Vectors), never both. Classes are the distinct
// labels, sorted numerically when all are integers and as strings
// otherwise.
type UserSuite struct {
	Name    string
	Text    *TextSet // rows with a "text" field / column
	Vectors *Dataset // rows with an "input" array / numeric columns
}

// Classes returns the suite's labels.
func (u *UserSuite) Classes() []string {
	if u.Text != nil {
		return u.Text.Classes
	}
	return u.Vectors.Classes
}

// LoadUserSuite reads a user suite file; see ReadUserSuite. The suite is
// named after the file without its extension.
func LoadUserSuite(path string) (*UserSuite, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("user suite: %w", err)
	}
	defer f.Close()
	base := filepath.Base(path)
	return ReadUserSuite(f, base, strings.TrimSuffix(base, filepath.Ext(base)))
}

// ReadUserSuite reads a benchmark suite. file names it in errors and picks
// the format by extension:
//
//   - .jsonl, .ndjson, .json: one JSON object per line (blank lines
//     skipped), either {"text": "...", "label": L} or {"input": [numbers],
//     "label": L}, where L is a string or an integer. Every line must have
//     the same form, and every input the same length. Other fields are
//     ignored.
//   - .csv: a header row, then one sample per row. The header must name a
//     "label" column; with a "text" column the suite is text (other columns
//     are ignored), otherwise every other column is a numeric feature.
//
// Errors name the line and the field. It never panics on malformed input.
func ReadUserSuite(r io.Reader, file, name string) (*UserSuite, error) {
	var (
		u   *userRows
		err error
	)
	switch ext := strings.ToLower(filepath.Ext(file)); ext {
	case ".jsonl", ".ndjson", ".json":
		u, err = readJSONLRows(r, file)
	case ".csv":
		u, err = readCSVRows(r, file)
	default:
		return nil, fmt.Errorf("user suite %s: unknown format %q (want .jsonl or .csv)", file, ext)
	}
	if err != nil {
		return nil, err
	}
	return u.suite(file, name)
}

// userRows accumulates parsed rows before classes are known.
type userRows struct {
	texts  []string
	x      []float32
	dim    int // 0 for text rows
	labels []string
	isText bool
}

func (u *userRows) suite(file, name string) (*UserSuite, error) {
	if len(u.labels) == 0 {
		return nil, fmt.Errorf("user suite %s: no samples", file)
	}
	classes := slices.Clone(u.labels)
	slices.SortFunc(classes, compareLabels)
	classes = slices.Compact(classes)
	y := make([]int, len(u.labels))
	for i, l := range u.labels {
		y[i], _ = slices.BinarySearchFunc(classes, l, compareLabels)
	}
	if u.isText {
		return &UserSuite{Name: name, Text: &TextSet{Name: name, Texts: u.texts, Y: y, Classes: classes}}, nil
	}
	return &UserSuite{Name: name, Vectors: &Dataset{Name: name, Dim: u.dim, X: u.x, Y: y, Classes: classes}}, nil
}

// compareLabels orders integers numerically before other strings.
func compareLabels(a, b string) int {
	ia, ea := strconv.ParseInt(a, 10, 64)
	ib, eb := strconv.ParseInt(b, 10, 64)
	switch {
	case ea == nil && eb == nil:
		if c := cmpInt(ia, ib); c != 0 {
			return c
		}
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// add appends one row, checking that its form matches the first row's.
func (u *userRows) add(where string, text *string, input []float32, label string) error {
	if len(u.labels) >= MaxUserSuiteSamples {
		return fmt.Errorf("%s: more than %d samples", where, MaxUserSuiteSamples)
	}
	if label == "" {
		return fmt.Errorf("%s: field \"label\": empty label", where)
	}
	first := len(u.labels) == 0
	switch {
	case text != nil && first:
		u.isText = true
	case text != nil && !u.isText:
		return fmt.Errorf("%s: field \"text\": earlier rows have \"input\" vectors, not text", where)
	case text == nil && u.isText:
		return fmt.Errorf("%s: field \"input\": earlier rows have \"text\", not input vectors", where)
	case text == nil && first:
		if len(input) == 0 || len(input) > MaxCSVFeatures {
			return fmt.Errorf("%s: field \"input\": %d values, want 1 to %d", where, len(input), MaxCSVFeatures)
		}
		u.dim = len(input)
	case text == nil && len(input) != u.dim:
		return fmt.Errorf("%s: field \"input\": %d values, earlier rows have %d", where, len(input), u.dim)
	}
	if text != nil {
		u.texts = append(u.texts, *text)
	} else {
		u.x = append(u.x, input...)
	}
	u.labels = append(u.labels, label)
	return nil
}

// jsonRow is one JSONL line; fields are decoded by hand for clear errors.
type jsonRow struct {
	Text  json.RawMessage `json:"text"`
	Input json.RawMessage `json:"input"`
	Label json.RawMessage `json:"label"`
}

func readJSONLRows(r io.Reader, file string) (*userRows, error) {
	u := &userRows{}
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, err := readLine(br)
		if errors.Is(err, io.EOF) && len(b) == 0 {
			return u, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("user suite %s: line %d: %w", file, line, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		where := fmt.Sprintf("user suite %s: line %d", file, line)
		if err := u.addJSON(where, b); err != nil {
			return nil, err
		}
	}
}

// readLine reads one line without its newline, at most MaxUserSuiteLine
// bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > MaxUserSuiteLine {
			return nil, fmt.Errorf("line longer than %d bytes", MaxUserSuiteLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSuffix(bytes.TrimSuffix(out, []byte("\n")), []byte("\r")), err
	}
}

func (u *userRows) addJSON(where string, b []byte) error {
	var row jsonRow
	if err := json.Unmarshal(b, &row); err != nil {
		return fmt.Errorf("%s: not a JSON object: %v", where, err)
	}
	if row.Label == nil {
		return fmt.Errorf("%s: field \"label\" missing", where)
	}
	label, err := jsonLabel(row.Label)
	if err != nil {
		return fmt.Errorf("%s: field \"label\": %v", where, err)
	}
	switch {
	case row.Text != nil && row.Input != nil:
		return fmt.Errorf("%s: fields \"text\" and \"input\" both present; give one", where)
	case row.Text != nil:
		var s string
		if err := json.Unmarshal(row.Text, &s); err != nil {
			return fmt.Errorf("%s: field \"text\": want a string, got %s", where, abbrev(row.Text))
		}
		return u.add(where, &s, nil, label)
	case row.Input != nil:
		var vals []float64
		if err := json.Unmarshal(row.Input, &vals); err != nil {
			return fmt.Errorf("%s: field \"input\": want an array of numbers, got %s", where, abbrev(row.Input))
		}
		x := make([]float32, len(vals))
		for i, v := range vals {
			if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
				return fmt.Errorf("%s: field \"input\": value %d (%v) is not a finite float32", where, i, v)
			}
			x[i] = float32(v)
		}
		return u.add(where, nil, x, label)
	}
	return fmt.Errorf("%s: field \"text\" or \"input\" missing", where)
}

// jsonLabel accepts a non-empty string or an integer.
func jsonLabel(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if strings.TrimSpace(s) == "" {
			return "", errors.New("empty label")
		}
		return strings.TrimSpace(s), nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if i, err := n.Int64(); err == nil {
			return strconv.FormatInt(i, 10), nil
		}
	}
	return "", fmt.Errorf("want a string or an integer, got %s", abbrev(raw))
}

func abbrev(b []byte) string {
	s := string(bytes.TrimSpace(b))
	if len(s) > 40 {
		s = strings.ToValidUTF8(s[:40], "") + "…"
	}
	return s
}

func readCSVRows(r io.Reader, file string) (*userRows, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("user suite %s: empty file, want a header row naming a \"label\" column", file)
	}
	if err != nil {
		return nil, fmt.Errorf("user suite %s: %w", file, err)
	}
	labelCol, textCol := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(h)) {
		case "label":
			labelCol = i
		case "text":
			textCol = i
		}
	}
	if labelCol < 0 {
		return nil, fmt.Errorf("user suite %s: line 1: header %q has no \"label\" column", file, strings.Join(header, ","))
	}
	if textCol < 0 && len(header) < 2 {
		return nil, fmt.Errorf("user suite %s: line 1: no feature columns besides \"label\"", file)
	}
	u := &userRows{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return u, nil
		}
		if err != nil {
			return nil, fmt.Errorf("user suite %s: %w", file, err)
		}
		line, _ := cr.FieldPos(0)
		where := fmt.Sprintf("user suite %s: line %d", file, line)
		if len(rec) != len(header) {
			return nil, fmt.Errorf("%s: %d columns, the header has %d", where, len(rec), len(header))
		}
		label := strings.TrimSpace(rec[labelCol])
		if textCol >= 0 {
			if err := u.add(where, &rec[textCol], nil, label); err != nil {
				return nil, err
			}
			continue
		}
		x := make([]float32, 0, len(rec)-1)
		for i, f := range rec {
			if i == labelCol {
				continue
			}
			v, err := parseFeature(f)
			if err != nil {
				return nil, fmt.Errorf("%s: column %q: %v", where, header[i], err)
			}
			x = append(x, v)
		}
		if err := u.add(where, nil, x, label); err != nil {
			return nil, err
		}
	}
}
