package dataset

import (
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// MaxCSVFeatures bounds the number of feature columns a CSV may have.
const MaxCSVFeatures = 1 << 20

// maxHeaderlessClasses bounds the label values of a headerless scikit-learn
// CSV, whose class list is "0".."max label".
const maxHeaderlessClasses = 1 << 16

// csvRows reads CSV records and tracks line numbers for error messages.
type csvRows struct {
	name string
	cr   *csv.Reader
}

func newCSVRows(r io.Reader, name string) (*csvRows, func(), error) {
	closeFn := func() {}
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		r = zr
		closeFn = func() { zr.Close() }
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // ragged rows are reported by us, with context
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	return &csvRows{name: name, cr: cr}, closeFn, nil
}

// next returns the next record and its line number, or io.EOF.
func (c *csvRows) next() ([]string, int, error) {
	rec, err := c.cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		return nil, 0, fmt.Errorf("%s: %w", c.name, err)
	}
	line, _ := c.cr.FieldPos(0)
	return rec, line, nil
}

func (c *csvRows) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s: line %d: %s", c.name, line, fmt.Sprintf(format, args...))
}

// parseFeature parses one feature value: a finite number representable as
// float32 (strconv.ParseFloat syntax, surrounding spaces ignored).
func parseFeature(s string) (float32, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 32)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fmt.Errorf("value %q out of float32 range", s)
		}
		return 0, fmt.Errorf("value %q is not a number", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %q is not finite", s)
	}
	return float32(v), nil
}

// parseLabel parses an integer class label. Integral decimal values such as
// "2.0" are accepted; "2.5", "abc" and values beyond ±2^53 are not.
func parseLabel(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		if v > 1<<53 || v < -(1<<53) {
			return 0, fmt.Errorf("label %q out of range", s)
		}
		return v, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != math.Trunc(v) || math.Abs(v) > 1<<53 {
		return 0, fmt.Errorf("label %q is not an integer", s)
	}
	return int64(v), nil
}

// parseRow appends rec's features (all but the last field) to x and returns
// the label.
func (c *csvRows) parseRow(rec []string, line int, x []float32) ([]float32, int64, error) {
	for j, f := range rec[:len(rec)-1] {
		v, err := parseFeature(f)
		if err != nil {
			return x, 0, c.errorf(line, "column %d: %v", j+1, err)
		}
		x = append(x, v)
	}
	lab, err := parseLabel(rec[len(rec)-1])
	if err != nil {
		return x, 0, c.errorf(line, "column %d (class label): %v", len(rec), err)
	}
	return x, lab, nil
}

// ReadSklearnCSV reads one of the CSV layouts scikit-learn ships in
// sklearn/datasets/data. If name ends in ".gz" the stream is gunzipped
// first. name also becomes the Dataset's Name and prefixes error messages.
//
// With a header (iris.csv, wine_data.csv, breast_cancer.csv) the first line
// is "n_samples,n_features,label0,label1,...", then n_samples rows of
// n_features numbers followed by the integer class index in
// [0, number of labels). The counts must match the header exactly.
//
// Headerless (digits.csv.gz) rows are features followed by the integer
// class; every row must have the width of the first, and the classes are
// "0".."max label" (so "0".."9" for digits).
//
// Errors name the line. It never panics on malformed input.
func ReadSklearnCSV(r io.Reader, name string, headerless bool) (*Dataset, error) {
	rows, closeFn, err := newCSVRows(r, name)
	if err != nil {
		return nil, err
	}
	defer closeFn()

	d := &Dataset{Name: name}
	wantRows := -1
	width := 0 // fields per data row; 0 = set by the first row
	if !headerless {
		rec, line, err := rows.next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file, want header \"n_samples,n_features,label0,...\"", name)
		}
		if err != nil {
			return nil, err
		}
		if len(rec) < 3 {
			return nil, rows.errorf(line, "header has %d fields, want \"n_samples,n_features,label0,...\"", len(rec))
		}
		ns, err1 := strconv.Atoi(strings.TrimSpace(rec[0]))
		nf, err2 := strconv.Atoi(strings.TrimSpace(rec[1]))
		if err1 != nil || err2 != nil || ns < 0 || nf < 1 || nf > MaxCSVFeatures {
			return nil, rows.errorf(line, "header %q: want n_samples ≥ 0 and n_features in [1,%d]", strings.Join(rec[:2], ","), MaxCSVFeatures)
		}
		for _, l := range rec[2:] {
			d.Classes = append(d.Classes, strings.TrimSpace(l))
		}
		wantRows, width, d.Dim = ns, nf+1, nf
		// Preallocate from the header, but never trust it for more than a
		// modest amount of memory.
		pre := min(ns, 1<<16)
		d.X = make([]float32, 0, min(pre*nf, 1<<22))
		d.Y = make([]int, 0, pre)
	}
	maxLabel := int64(-1)
	for {
		rec, line, err := rows.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if width == 0 {
			if len(rec) < 2 || len(rec)-1 > MaxCSVFeatures {
				return nil, rows.errorf(line, "%d fields, want features then the class label (2 to %d fields)", len(rec), MaxCSVFeatures+1)
			}
			width, d.Dim = len(rec), len(rec)-1
		}
		if len(rec) != width {
			return nil, rows.errorf(line, "%d fields, want %d", len(rec), width)
		}
		var lab int64
		d.X, lab, err = rows.parseRow(rec, line, d.X)
		if err != nil {
			return nil, err
		}
		if headerless {
			if lab < 0 || lab >= maxHeaderlessClasses {
				return nil, rows.errorf(line, "class label %d outside [0,%d)", lab, maxHeaderlessClasses)
			}
			maxLabel = max(maxLabel, lab)
		} else if lab < 0 || lab >= int64(len(d.Classes)) {
			return nil, rows.errorf(line, "class label %d outside [0,%d) (%d labels in header)", lab, len(d.Classes), len(d.Classes))
		}
		d.Y = append(d.Y, int(lab))
	}
	if wantRows >= 0 && len(d.Y) != wantRows {
		return nil, fmt.Errorf("%s: header declares %d samples but the file has %d", name, wantRows, len(d.Y))
	}
	if len(d.Y) == 0 {
		return nil, fmt.Errorf("%s: no samples", name)
	}
	if headerless {
		for c := int64(0); c <= maxLabel; c++ {
			d.Classes = append(d.Classes, strconv.FormatInt(c, 10))
		}
	}
	return d, nil
}

// ReadCSV reads a user CSV file: an optional header row of column names,
// then rows whose columns are all numbers, the last column being an integer
// class label. The first row is taken as a header if any of its fields is
// not a number. Classes are the distinct labels sorted numerically and named
// by their decimal value ("3", "7", ...); Y holds indices into them. If name
// ends in ".gz" the stream is gunzipped first. name becomes the Dataset's
// Name and prefixes error messages, which give the line number.
func ReadCSV(r io.Reader, name string) (*Dataset, error) {
	rows, closeFn, err := newCSVRows(r, name)
	if err != nil {
		return nil, err
	}
	defer closeFn()

	d := &Dataset{Name: name}
	var labels []int64
	width := 0
	first := true
	for {
		rec, line, err := rows.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if first {
			first = false
			if len(rec) < 2 || len(rec)-1 > MaxCSVFeatures {
				return nil, rows.errorf(line, "%d columns, want features then the class label (2 to %d columns)", len(rec), MaxCSVFeatures+1)
			}
			width, d.Dim = len(rec), len(rec)-1
			if isHeader(rec) {
				continue
			}
		}
		if len(rec) != width {
			return nil, rows.errorf(line, "%d columns, want %d", len(rec), width)
		}
		var lab int64
		d.X, lab, err = rows.parseRow(rec, line, d.X)
		if err != nil {
			return nil, err
		}
		labels = append(labels, lab)
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("%s: no samples", name)
	}
	distinct := slices.Clone(labels)
	slices.Sort(distinct)
	distinct = slices.Compact(distinct)
	d.Classes = make([]string, len(distinct))
	for i, v := range distinct {
		d.Classes[i] = strconv.FormatInt(v, 10)
	}
	d.Y = make([]int, len(labels))
	for i, v := range labels {
		d.Y[i], _ = slices.BinarySearch(distinct, v)
	}
	return d, nil
}

// isHeader reports whether any field of rec is not a number.
func isHeader(rec []string) bool {
	for _, f := range rec {
		if _, err := strconv.ParseFloat(strings.TrimSpace(f), 64); err != nil {
			return true
		}
	}
	return false
}
