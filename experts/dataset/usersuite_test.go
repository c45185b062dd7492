package dataset

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadUserSuite(t *testing.T) {
	tests := []struct {
		name, file, data string
		text             bool
		dim, n           int
		classes          []string
	}{
		{"jsonl text", "s.jsonl", `{"text":"hello there","label":"greet"}` + "\n\n" + `{"text":"bye","label":"leave","id":7}` + "\n", true, 0, 2, []string{"greet", "leave"}},
		{"jsonl vectors int labels", "s.ndjson", `{"input":[1,2.5],"label":10}` + "\r\n" + `{"input":[0,-1],"label":2}`, false, 2, 2, []string{"2", "10"}},
		{"csv text", "s.csv", "id,text,label\n1,\"a, b\",x\n2,c,y\n3,d,x\n", true, 0, 3, []string{"x", "y"}},
		{"csv vectors", "s.csv", "f1,label,f2\n1,a,2\n3,b,4\n", false, 2, 2, []string{"a", "b"}},
		{"leading zero labels stay distinct", "s.jsonl", `{"text":"a","label":"01"}` + "\n" + `{"text":"b","label":"1"}`, true, 0, 2, []string{"01", "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ReadUserSuite(strings.NewReader(tc.data), tc.file, "mine")
			if err != nil {
				t.Fatal(err)
			}
			if (u.Text != nil) != tc.text || !slices.Equal(u.Classes(), tc.classes) {
				t.Fatalf("text=%v classes=%v", u.Text != nil, u.Classes())
			}
			if tc.text {
				if u.Text.Len() != tc.n || u.Text.Validate() != nil {
					t.Fatalf("%d texts: %v", u.Text.Len(), u.Text.Validate())
				}
				return
			}
			if u.Vectors.Dim != tc.dim || u.Vectors.Len() != tc.n || u.Vectors.Validate() != nil {
				t.Fatalf("dim %d, %d rows", u.Vectors.Dim, u.Vectors.Len())
			}
		})
	}
	u, _ := ReadUserSuite(strings.NewReader("f1,label,f2\n1,a,2\n3,b,4\n"), "s.csv", "mine")
	if !slices.Equal(u.Vectors.X, []float32{1, 2, 3, 4}) || !slices.Equal(u.Vectors.Y, []int{0, 1}) {
		t.Errorf("X=%v Y=%v", u.Vectors.X, u.Vectors.Y)
	}
}

func TestReadUserSuiteErrors(t *testing.T) {
	tests := []struct {
		name, file, data, want string
	}{
		{"format", "s.txt", "x", `unknown format ".txt"`},
		{"empty", "s.jsonl", "\n\n", "no samples"},
		{"not json", "s.jsonl", `{"text":"a","label":"x"}` + "\n{oops\n", "line 2: not a JSON object"},
		{"no label", "s.jsonl", `{"text":"a"}`, `line 1: field "label" missing`},
		{"bad label", "s.jsonl", `{"text":"a","label":1.5}`, `line 1: field "label": want a string or an integer`},
		{"empty label", "s.jsonl", `{"text":"a","label":" "}`, `line 1: field "label": empty label`},
		{"text not string", "s.jsonl", `{"text":3,"label":"x"}`, `line 1: field "text": want a string`},
		{"both", "s.jsonl", `{"text":"a","input":[1],"label":"x"}`, `line 1: fields "text" and "input" both present`},
		{"neither", "s.jsonl", `{"label":"x"}`, `line 1: field "text" or "input" missing`},
		{"input not numbers", "s.jsonl", `{"input":[1,"a"],"label":"x"}`, `line 1: field "input": want an array of numbers`},
		{"ragged input", "s.jsonl", `{"input":[1,2],"label":"x"}` + "\n" + `{"input":[1],"label":"y"}`, `line 2: field "input": 1 values, earlier rows have 2`},
		{"mixed", "s.jsonl", `{"input":[1],"label":"x"}` + "\n" + `{"text":"a","label":"y"}`, `line 2: field "text": earlier rows have "input"`},
		{"empty input", "s.jsonl", `{"input":[],"label":"x"}`, `line 1: field "input": 0 values`},
		{"huge value", "s.jsonl", `{"input":[1e300],"label":"x"}`, `line 1: field "input": value 0`},
		{"csv no header", "s.csv", "", `empty file, want a header row`},
		{"csv no label col", "s.csv", "a,b\n1,2\n", `line 1: header "a,b" has no "label" column`},
		{"csv only label", "s.csv", "label\nx\n", `no feature columns`},
		{"csv bad number", "s.csv", "f1,label\n1,a\nzz,b\n", `line 3: column "f1": value "zz" is not a number`},
		{"csv ragged", "s.csv", "f1,label\n1,a,3\n", `line 2: 3 columns, the header has 2`},
		{"csv empty label", "s.csv", "text,label\nhi,\n", `line 2: field "label": empty label`},
		{"csv quote", "s.csv", "text,label\n\"hi,x\n", `parse error`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadUserSuite(strings.NewReader(tc.data), tc.file, "s")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.file) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadUserSuite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "greetings.jsonl")
	if err := os.WriteFile(p, []byte(`{"text":"hi","label":"a"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := LoadUserSuite(p)
	if err != nil || u.Name != "greetings" || u.Text.Name != "greetings" {
		t.Fatalf("%+v %v", u, err)
	}
	if _, err := LoadUserSuite(p + ".missing"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzReadUserSuite(f *testing.F) {
	f.Add([]byte(`{"text":"a b","label":"x"}`+"\n"+`{"text":"c","label":2}`), false)
	f.Add([]byte(`{"input":[1,2],"label":1}`+"\n"+`{"input":[3,4e5],"label":0}`), false)
	f.Add([]byte("text,label\nhello,x\n\"a,b\",y\n"), true)
	f.Add([]byte("f1,f2,label\n1,2,a\n3,4,b\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, isCSV bool) {
		file := "f.jsonl"
		if isCSV {
			file = "f.csv"
		}
		u, err := ReadUserSuite(strings.NewReader(string(data)), file, "f")
		if err != nil {
			if !strings.Contains(err.Error(), file) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		switch {
		case u.Text != nil && u.Vectors == nil:
			if err := u.Text.Validate(); err != nil {
				t.Fatal(err)
			}
		case u.Vectors != nil && u.Text == nil:
			if err := u.Vectors.Validate(); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("want exactly one of Text and Vectors")
		}
		if len(u.Classes()) == 0 || !slices.IsSortedFunc(u.Classes(), compareLabels) {
			t.Fatalf("classes %q", u.Classes())
		}
	})
}
