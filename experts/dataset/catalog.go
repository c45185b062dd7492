package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CatalogSplitSeed is the fixed seed of the stratified 80/20 train/test
// split the catalog applies to the scikit-learn sets and user CSVs, so that
// every node gets the same test set.
const CatalogSplitSeed = 20260101

// CatalogTestFraction is the share of each class the catalog puts in the
// test part of data sets that have no official split.
const CatalogTestFraction = 0.2

// SklearnDebianDir is where Debian's python3-sklearn package installs the
// scikit-learn data files.
const SklearnDebianDir = "/usr/lib/python3/dist-packages/sklearn/datasets/data"

// SklearnLocalDir is where scripts/setup.sh installs the scikit-learn
// data files extracted from the Debian package.
const SklearnLocalDir = "/usr/local/share/meshnode/sklearn"

// Catalog resolves dataset names to data. The zero value finds nothing;
// use DefaultCatalog.
type Catalog struct {
	FashionMNISTDir string       // directory with the Fashion-MNIST *-ubyte.gz files
	SklearnDirs     []string     // directories searched in order for scikit-learn CSVs
	Suites          SuiteSources // files of the coding and language benchmark suites (suites_sources.go)
}

// DefaultCatalog reads the environment: MESHNODE_FASHION_MNIST (default
// /usr/share/datasets/fashion-mnist) and, for the scikit-learn files, the
// search order MESHNODE_SKLEARN_DATA (if set), SklearnDebianDir,
// SklearnLocalDir.
func DefaultCatalog() Catalog {
	c := Catalog{FashionMNISTDir: FashionMNISTDebianDir}
	if v := os.Getenv("MESHNODE_FASHION_MNIST"); v != "" {
		c.FashionMNISTDir = v
	}
	if v := os.Getenv("MESHNODE_SKLEARN_DATA"); v != "" {
		c.SklearnDirs = append(c.SklearnDirs, v)
	}
	c.SklearnDirs = append(c.SklearnDirs, SklearnDebianDir, SklearnLocalDir)
	c.Suites = DefaultSuiteSources()
	return c
}

// sklearnSet describes one scikit-learn data file.
type sklearnSet struct {
	name       string
	file       string
	headerless bool
}

func sklearnSets() []sklearnSet {
	return []sklearnSet{
		{"iris", "iris.csv", false},
		{"wine", "wine_data.csv", false},
		{"breast-cancer", "breast_cancer.csv", false},
		{"digits", "digits.csv.gz", true},
	}
}

// Names lists the built-in data set names. "csv:PATH" is accepted too.
func (c Catalog) Names() []string {
	names := []string{"fashion-mnist"}
	for _, s := range sklearnSets() {
		names = append(names, s.name)
	}
	return append(names, SuiteNames()...)
}

// Load returns the train and test parts of the named data set, named
// NAME+":train" and NAME+":test".
//
//   - "fashion-mnist": the official train (60000) and test (10000) files.
//   - "iris", "wine", "breast-cancer", "digits": the scikit-learn CSV found
//     in the first of SklearnDirs that has it, split by Dataset.Split with
//     CatalogTestFraction and CatalogSplitSeed (stratified 80/20).
//   - "csv:PATH": a user CSV read by ReadCSV, split the same way.
//
// limit>0 truncates train to its first limit samples and test to at most
// limit. Split parts are in seeded random order, so a truncated part is
// still a random sample (though no longer exactly stratified).
func (c Catalog) Load(name string, limit int) (train, test *Dataset, err error) {
	if path, ok := strings.CutPrefix(name, "csv:"); ok {
		if path == "" {
			return nil, nil, errors.New(`dataset "csv:": missing path (want csv:PATH)`)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("dataset %q: %w", name, err)
		}
		defer f.Close()
		d, err := ReadCSV(f, path)
		if err != nil {
			return nil, nil, err
		}
		d.Name = name
		return splitAndLimit(d, limit)
	}
	if name == "fashion-mnist" {
		train, err := LoadFashionMNIST(c.FashionMNISTDir, "train", limit)
		if err != nil {
			return nil, nil, err
		}
		test, err := LoadFashionMNIST(c.FashionMNISTDir, "test", limit)
		if err != nil {
			return nil, nil, err
		}
		return train, test, nil
	}
	if train, test, ok, err := c.loadSuite(name, limit); ok {
		return train, test, err
	}
	for _, s := range sklearnSets() {
		if s.name != name {
			continue
		}
		path, err := c.findSklearn(s.file)
		if err != nil {
			return nil, nil, err
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("dataset %q: %w", name, err)
		}
		defer f.Close()
		d, err := ReadSklearnCSV(f, path, s.headerless)
		if err != nil {
			return nil, nil, err
		}
		d.Name = name
		return splitAndLimit(d, limit)
	}
	return nil, nil, fmt.Errorf("unknown dataset %q: known names are %s, or csv:PATH", name, strings.Join(c.Names(), ", "))
}

// findSklearn returns the path of file in the first SklearnDirs entry that
// has it.
func (c Catalog) findSklearn(file string) (string, error) {
	var tried []string
	for _, dir := range c.SklearnDirs {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, file)
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() {
			return p, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("scikit-learn data %s: %w", p, err)
		}
		tried = append(tried, p)
	}
	if len(tried) == 0 {
		return "", fmt.Errorf("scikit-learn data file %s: no search directories configured: it is installed by the Debian package python3-sklearn; run scripts/setup.sh or set MESHNODE_SKLEARN_DATA", file)
	}
	return "", fmt.Errorf("scikit-learn data file %s not found (tried %s): it is installed by the Debian package python3-sklearn; run scripts/setup.sh or set MESHNODE_SKLEARN_DATA", file, strings.Join(tried, ", "))
}

// splitAndLimit applies the catalog's fixed split and the limit.
func splitAndLimit(d *Dataset, limit int) (train, test *Dataset, err error) {
	train, test, err = d.Split(CatalogTestFraction, CatalogSplitSeed)
	if err != nil {
		return nil, nil, err
	}
	train.Name, test.Name = d.Name+":train", d.Name+":test"
	if limit > 0 {
		train = truncate(train, limit)
		test = truncate(test, limit)
	}
	return train, test, nil
}

// truncate keeps the first n samples of d in place.
func truncate(d *Dataset, n int) *Dataset {
	if n < d.Len() {
		d.X = d.X[: n*d.Dim : n*d.Dim]
		d.Y = d.Y[:n:n]
	}
	return d
}
