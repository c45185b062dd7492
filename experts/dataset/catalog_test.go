package dataset

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestDefaultCatalog(t *testing.T) {
	t.Setenv("MESHNODE_FASHION_MNIST", "/x/fm")
	t.Setenv("MESHNODE_SKLEARN_DATA", "/x/sk")
	c := DefaultCatalog()
	if c.FashionMNISTDir != "/x/fm" {
		t.Errorf("FashionMNISTDir = %q", c.FashionMNISTDir)
	}
	if want := []string{"/x/sk", SklearnDebianDir, SklearnLocalDir}; !slices.Equal(c.SklearnDirs, want) {
		t.Errorf("SklearnDirs = %v, want %v", c.SklearnDirs, want)
	}
	t.Setenv("MESHNODE_FASHION_MNIST", "")
	t.Setenv("MESHNODE_SKLEARN_DATA", "")
	c = DefaultCatalog()
	if c.FashionMNISTDir != FashionMNISTDebianDir || !slices.Equal(c.SklearnDirs, []string{SklearnDebianDir, SklearnLocalDir}) {
		t.Errorf("defaults: %+v", c)
	}
	if got := c.Names(); !slices.Equal(got, []string{"fashion-mnist", "iris", "wine", "breast-cancer", "digits",
		"coding", "language", "mathematics", "reasoning", "tool_use", "context"}) {
		t.Errorf("Names = %v", got)
	}
}

func TestCatalogLoadSklearn(t *testing.T) {
	sklearnPath(t, "iris.csv") // skip if not installed
	c := DefaultCatalog()
	tests := []struct {
		name        string
		total       int
		trainCounts []int
		testCounts  []int
	}{
		// Test share per class is round(0.2*n_c).
		{"iris", 150, []int{40, 40, 40}, []int{10, 10, 10}},
		{"wine", 178, []int{47, 57, 38}, []int{12, 14, 10}},
		{"breast-cancer", 569, []int{170, 286}, []int{42, 71}},
		{"digits", 1797, []int{142, 146, 142, 146, 145, 146, 145, 143, 139, 144}, []int{36, 36, 35, 37, 36, 36, 36, 36, 35, 36}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			train, test, err := c.Load(tt.name, 0)
			if err != nil {
				t.Fatal(err)
			}
			if train.Name != tt.name+":train" || test.Name != tt.name+":test" {
				t.Errorf("names %q %q", train.Name, test.Name)
			}
			if train.Len()+test.Len() != tt.total {
				t.Errorf("train %d + test %d != %d", train.Len(), test.Len(), tt.total)
			}
			if got := train.ClassCounts(); !slices.Equal(got, tt.trainCounts) {
				t.Errorf("train counts %v, want %v", got, tt.trainCounts)
			}
			if got := test.ClassCounts(); !slices.Equal(got, tt.testCounts) {
				t.Errorf("test counts %v, want %v", got, tt.testCounts)
			}
			// Determinism: a second load yields identical data.
			train2, test2, err := c.Load(tt.name, 0)
			if err != nil {
				t.Fatal(err)
			}
			if train.Digest() != train2.Digest() || test.Digest() != test2.Digest() {
				t.Error("two loads differ")
			}
			// limit truncates both parts.
			lt, ls, err := c.Load(tt.name, 20)
			if err != nil {
				t.Fatal(err)
			}
			if lt.Len() != 20 || ls.Len() != 20 || !slices.Equal(lt.Y, train.Y[:20]) || !slices.Equal(ls.X, test.X[:20*test.Dim]) {
				t.Errorf("limit 20: train %d test %d, not prefixes", lt.Len(), ls.Len())
			}
		})
	}
}

func TestCatalogLoadFashionMNIST(t *testing.T) {
	fashionDir(t)
	train, test, err := DefaultCatalog().Load("fashion-mnist", 500)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 500 || test.Len() != 500 || train.Dim != 784 || train.Name != "fashion-mnist:train" || test.Name != "fashion-mnist:test" {
		t.Errorf("train %s %d×%d test %s %d", train.Name, train.Len(), train.Dim, test.Name, test.Len())
	}
	if test.Y[0] != 9 {
		t.Errorf("first test label %d, want 9", test.Y[0])
	}
}

func TestCatalogLoadCSV(t *testing.T) {
	dir := t.TempDir()
	var sb strings.Builder
	sb.WriteString("x,y,class\n")
	for i := range 100 {
		// Classes 5 (60 rows) and 9 (40 rows).
		label := 5
		if i%5 < 2 {
			label = 9
		}
		sb.WriteString(strings.Join([]string{strconv.Itoa(i), strconv.Itoa(i * 2), strconv.Itoa(label)}, ",") + "\n")
	}
	p := filepath.Join(dir, "user.csv")
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	train, test, err := (Catalog{}).Load("csv:"+p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(train.Classes, []string{"5", "9"}) {
		t.Errorf("classes %v", train.Classes)
	}
	if !slices.Equal(train.ClassCounts(), []int{48, 32}) || !slices.Equal(test.ClassCounts(), []int{12, 8}) {
		t.Errorf("train %v test %v", train.ClassCounts(), test.ClassCounts())
	}
	train2, test2, _ := (Catalog{}).Load("csv:"+p, 0)
	if train.Digest() != train2.Digest() || test.Digest() != test2.Digest() {
		t.Error("csv loads not deterministic")
	}

	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("a,label\n1,0\n2,x\n"), 0o644)
	if _, _, err := (Catalog{}).Load("csv:"+bad, 0); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("bad csv: %v", err)
	}
	if _, _, err := (Catalog{}).Load("csv:"+filepath.Join(dir, "nope.csv"), 0); err == nil || !strings.Contains(err.Error(), "nope.csv") {
		t.Errorf("missing csv: %v", err)
	}
	if _, _, err := (Catalog{}).Load("csv:", 0); err == nil || !strings.Contains(err.Error(), "missing path") {
		t.Errorf("empty csv path: %v", err)
	}
}

func TestCatalogErrors(t *testing.T) {
	empty := t.TempDir()
	c := Catalog{FashionMNISTDir: empty, SklearnDirs: []string{filepath.Join(empty, "a"), filepath.Join(empty, "b")}}
	tests := []struct {
		name string
		cat  Catalog
		want []string
	}{
		{"mnist-digits", c, []string{"unknown dataset", "fashion-mnist", "iris", "wine", "breast-cancer", "digits", "csv:PATH"}},
		{"fashion-mnist", c, []string{filepath.Join(empty, "train-images-idx3-ubyte.gz"), "dataset-fashion-mnist", "scripts/setup.sh"}},
		{"iris", c, []string{filepath.Join(empty, "a", "iris.csv"), filepath.Join(empty, "b", "iris.csv"), "python3-sklearn", "scripts/setup.sh"}},
		{"digits", c, []string{"digits.csv.gz", "python3-sklearn"}},
		{"wine", Catalog{}, []string{"wine_data.csv", "no search directories", "python3-sklearn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.cat.Load(tt.name, 0)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCatalogSearchOrder(t *testing.T) {
	first, second := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(second, "iris.csv"), []byte("2,1,a\n1,0\n2,0\n"), 0o644)
	c := Catalog{SklearnDirs: []string{first, second}}
	train, test, err := c.Load("iris", 0)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len()+test.Len() != 2 {
		t.Errorf("loaded %d samples from the fake iris", train.Len()+test.Len())
	}
	os.WriteFile(filepath.Join(first, "iris.csv"), []byte("3,1,a\n1,0\n2,0\n3,0\n"), 0o644)
	train, test, err = c.Load("iris", 0)
	if err != nil || train.Len()+test.Len() != 3 {
		t.Errorf("first dir not preferred: %v", err)
	}
}
