package dataset

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sklearnPath returns the path of a scikit-learn data file from the default
// catalog's search order, or fails the test.
func sklearnPath(t testing.TB, file string) string {
	p, err := DefaultCatalog().findSklearn(file)
	if err != nil {
		t.Fatalf("scikit-learn data not installed (run scripts/setup.sh or set MESHNODE_SKLEARN_DATA): %v", err)
	}
	return p
}

func TestReadSklearnCSVReal(t *testing.T) {
	tests := []struct {
		file       string
		headerless bool
		n, dim     int
		counts     []int
		classes    []string
	}{
		{"iris.csv", false, 150, 4, []int{50, 50, 50}, []string{"setosa", "versicolor", "virginica"}},
		{"wine_data.csv", false, 178, 13, []int{59, 71, 48}, []string{"class_0", "class_1", "class_2"}},
		{"breast_cancer.csv", false, 569, 30, []int{212, 357}, []string{"malignant", "benign"}},
		{"digits.csv.gz", true, 1797, 64, []int{178, 182, 177, 183, 181, 182, 181, 179, 174, 180},
			[]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := sklearnPath(t, tt.file)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d, err := ReadSklearnCSV(f, path, tt.headerless)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
			if d.Len() != tt.n || d.Dim != tt.dim {
				t.Errorf("%d×%d, want %d×%d", d.Len(), d.Dim, tt.n, tt.dim)
			}
			if got := d.ClassCounts(); !slices.Equal(got, tt.counts) {
				t.Errorf("class counts %v, want %v", got, tt.counts)
			}
			if !slices.Equal(d.Classes, tt.classes) {
				t.Errorf("classes %v, want %v", d.Classes, tt.classes)
			}
			if tt.file == "digits.csv.gz" {
				for _, v := range d.X {
					if v < 0 || v > 16 || v != float32(int(v)) {
						t.Fatalf("digits pixel %v not an integer in [0,16]", v)
					}
				}
			}
			if tt.file == "iris.csv" && !slices.Equal(d.Row(0), []float32{5.1, 3.5, 1.4, 0.2}) {
				t.Errorf("iris row 0 = %v", d.Row(0))
			}
		})
	}
}

func gz(s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	zw.Close()
	return buf.Bytes()
}

func TestReadSklearnCSV(t *testing.T) {
	tests := []struct {
		name       string
		file       string
		in         []byte
		headerless bool
		wantX      []float32
		wantY      []int
		wantCls    []string
		wantErr    string
	}{
		{"header", "t.csv", []byte("2,2,a,b\n1,2,0\n3,4,1\n"), false,
			[]float32{1, 2, 3, 4}, []int{0, 1}, []string{"a", "b"}, ""},
		{"crlf and spaces", "t.csv", []byte("2, 2, a, b\r\n1, 2.5, 0\r\n3,4e1,1.0\r\n"), false,
			[]float32{1, 2.5, 3, 40}, []int{0, 1}, []string{"a", "b"}, ""},
		{"headerless", "d.csv", []byte("1,2,3\n4,5,0\n"), true,
			[]float32{1, 2, 4, 5}, []int{3, 0}, []string{"0", "1", "2", "3"}, ""},
		{"headerless gz", "d.csv.gz", gz("1,2,3\n4,5,0\n"), true,
			[]float32{1, 2, 4, 5}, []int{3, 0}, []string{"0", "1", "2", "3"}, ""},
		{"empty", "t.csv", nil, false, nil, nil, nil, "empty file"},
		{"empty headerless", "t.csv", nil, true, nil, nil, nil, "no samples"},
		{"short header", "t.csv", []byte("2,2\n"), false, nil, nil, nil, "line 1: header has 2 fields"},
		{"bad header", "t.csv", []byte("x,2,a\n"), false, nil, nil, nil, "line 1: header"},
		{"zero features", "t.csv", []byte("1,0,a\n0\n"), false, nil, nil, nil, "line 1: header"},
		{"too few rows", "t.csv", []byte("3,1,a\n1,0\n"), false, nil, nil, nil, "declares 3 samples but the file has 1"},
		{"too many rows", "t.csv", []byte("1,1,a\n1,0\n2,0\n"), false, nil, nil, nil, "declares 1 samples but the file has 2"},
		{"ragged", "t.csv", []byte("2,2,a,b\n1,2,0\n3,1\n"), false, nil, nil, nil, "line 3: 2 fields, want 3"},
		{"ragged headerless", "t.csv", []byte("1,2,0\n1,2,3,0\n"), true, nil, nil, nil, "line 2: 4 fields, want 3"},
		{"non-numeric", "t.csv", []byte("2,2,a,b\n1,2,0\n3,x,1\n"), false, nil, nil, nil, `line 3: column 2: value "x" is not a number`},
		{"nan", "t.csv", []byte("1,1,a\nNaN,0\n"), false, nil, nil, nil, "line 2: column 1: value \"NaN\" is not finite"},
		{"float32 overflow", "t.csv", []byte("1,1,a\n1e39,0\n"), false, nil, nil, nil, "out of float32 range"},
		{"label not integer", "t.csv", []byte("1,1,a\n1,0.5\n"), false, nil, nil, nil, `line 2: column 2 (class label): label "0.5" is not an integer`},
		{"label out of range", "t.csv", []byte("1,1,a\n1,1\n"), false, nil, nil, nil, "line 2: class label 1 outside [0,1)"},
		{"negative label headerless", "t.csv", []byte("1,-1\n"), true, nil, nil, nil, "line 1: class label -1"},
		{"huge label headerless", "t.csv", []byte("1,99999999\n"), true, nil, nil, nil, "line 1: class label 99999999"},
		{"one column headerless", "t.csv", []byte("1\n"), true, nil, nil, nil, "line 1: 1 fields"},
		{"bad quote", "t.csv", []byte("1,1,a\n\"1,0\n"), false, nil, nil, nil, "t.csv"},
		{"bad gzip", "t.csv.gz", []byte("1,0\n"), true, nil, nil, nil, "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ReadSklearnCSV(bytes.NewReader(tt.in), tt.file, tt.headerless)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Name != tt.file || !slices.Equal(d.X, tt.wantX) || !slices.Equal(d.Y, tt.wantY) || !slices.Equal(d.Classes, tt.wantCls) {
				t.Errorf("got %+v", d)
			}
		})
	}
}

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		in      []byte
		wantDim int
		wantX   []float32
		wantY   []int
		wantCls []string
		wantErr string
	}{
		{"header", "u.csv", []byte("height,weight,label\n1.5,60,7\n1.8,80,3\n1.6,55,7\n"), 2,
			[]float32{1.5, 60, 1.8, 80, 1.6, 55}, []int{1, 0, 1}, []string{"3", "7"}, ""},
		{"no header", "u.csv", []byte("1,2,-1\n3,4,10\n5,6,2\n"), 2,
			[]float32{1, 2, 3, 4, 5, 6}, []int{0, 2, 1}, []string{"-1", "2", "10"}, ""},
		{"blank lines and crlf", "u.csv", []byte("a,b\r\n\r\n1,0\r\n\r\n2,1\r\n"), 1,
			[]float32{1, 2}, []int{0, 1}, []string{"0", "1"}, ""},
		{"integral float label", "u.csv", []byte("1,1.0\n2,2e0\n"), 1,
			[]float32{1, 2}, []int{0, 1}, []string{"1", "2"}, ""},
		{"gzip", "u.csv.gz", gz("x,y\n1,0\n"), 1, []float32{1}, []int{0}, []string{"0"}, ""},
		{"quoted", "u.csv", []byte("\"a,b\",c\n\"1\",0\n"), 1, []float32{1}, []int{0}, []string{"0"}, ""},
		{"empty", "u.csv", nil, 0, nil, nil, nil, "no samples"},
		{"header only", "u.csv", []byte("a,b,label\n"), 0, nil, nil, nil, "no samples"},
		{"one column", "u.csv", []byte("label\n1\n"), 0, nil, nil, nil, "line 1: 1 columns"},
		{"non-numeric", "u.csv", []byte("a,b,label\n1,2,0\n3,four,1\n"), 0, nil, nil, nil, `u.csv: line 3: column 2: value "four" is not a number`},
		{"ragged short", "u.csv", []byte("a,b,label\n1,2,0\n3,1\n"), 0, nil, nil, nil, "u.csv: line 3: 2 columns, want 3"},
		{"ragged long", "u.csv", []byte("1,2,0\n\n3,4,5,1\n"), 0, nil, nil, nil, "u.csv: line 3: 4 columns, want 3"},
		{"header width", "u.csv", []byte("a,label\n1,2,0\n"), 0, nil, nil, nil, "line 2: 3 columns, want 2"},
		{"label not integer", "u.csv", []byte("a,label\n1,0\n2,1.5\n"), 0, nil, nil, nil, `u.csv: line 3: column 2 (class label): label "1.5" is not an integer`},
		{"label word", "u.csv", []byte("a,label\n1,0\n2,cat\n"), 0, nil, nil, nil, `line 3: column 2 (class label): label "cat" is not an integer`},
		{"label huge", "u.csv", []byte("1,1e300\n"), 0, nil, nil, nil, "line 1: column 2 (class label)"},
		{"inf feature", "u.csv", []byte("a,label\n+Inf,0\n"), 0, nil, nil, nil, "line 2: column 1: value \"+Inf\" is not finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ReadCSV(bytes.NewReader(tt.in), tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
			if d.Dim != tt.wantDim || !slices.Equal(d.X, tt.wantX) || !slices.Equal(d.Y, tt.wantY) || !slices.Equal(d.Classes, tt.wantCls) {
				t.Errorf("got %+v", d)
			}
		})
	}
}

func FuzzReadSklearnCSV(f *testing.F) {
	f.Add([]byte("2,2,a,b\n1,2,0\n3,4,1\n"), false, false)
	f.Add([]byte("1,2,3\n4,5,0\n"), true, false)
	f.Add(gz("1,2,3\n4,5,0\n"), true, true)
	f.Add([]byte("1,1,a\n\"1\",0\n"), false, false)
	f.Fuzz(func(t *testing.T, in []byte, headerless, gzipped bool) {
		name := "fuzz.csv"
		if gzipped {
			name += ".gz"
		}
		d, err := ReadSklearnCSV(bytes.NewReader(in), name, headerless)
		if err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid data set: %v", err)
		}
		_ = d.Digest()
	})
}

func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("a,b,label\n1,2,0\n3,4,1\n"), false)
	f.Add([]byte("1,2,-1\n3,4,10\n"), false)
	f.Add(gz("x,y\n1,0\n"), true)
	f.Fuzz(func(t *testing.T, in []byte, gzipped bool) {
		name := "fuzz.csv"
		if gzipped {
			name += ".gz"
		}
		d, err := ReadCSV(bytes.NewReader(in), name)
		if err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid data set: %v", err)
		}
		if !slices.IsSortedFunc(d.Classes, func(a, b string) int { return cmpDecimal(a, b) }) {
			t.Fatalf("classes not sorted: %v", d.Classes)
		}
	})
}

// cmpDecimal compares two decimal integer strings numerically.
func cmpDecimal(a, b string) int {
	na, nb := strings.HasPrefix(a, "-"), strings.HasPrefix(b, "-")
	switch {
	case na && !nb:
		return -1
	case !na && nb:
		return 1
	}
	c := len(a) - len(b)
	if c == 0 {
		c = strings.Compare(a, b)
	}
	if na {
		c = -c
	}
	return c
}

func TestCSVFilesOnDisk(t *testing.T) {
	// ReadCSV through the catalog is covered in catalog_test.go; here make
	// sure a gzip file on disk round-trips through the name-based detection.
	p := filepath.Join(t.TempDir(), "x.csv.gz")
	if err := os.WriteFile(p, gz("f,label\n0.25,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, te, err := (Catalog{}).Load("csv:"+p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len()+te.Len() != 1 || tr.Name != "csv:"+p+":train" {
		t.Errorf("train %d test %d name %q", tr.Len(), te.Len(), tr.Name)
	}
}
