package dataset

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// SuiteSources says where the real-data benchmark suites (coding and
// language) find their files. Empty fields find nothing, and a suite that
// needs them fails with an error naming what is missing.
type SuiteSources struct {
	// GoRoot is the Go installation whose src folder gives the Go snippets
	// (and cgo's .c files, part of the C snippets).
	GoRoot string
	// PythonDirs are searched for *.py files (Debian: /usr/lib/python3*).
	PythonDirs []string
	// CDirs are searched for *.c and *.h files (Debian: /usr/include; its
	// C++ folders are skipped).
	CDirs []string
	// ShellDirs are searched for files whose first line is a #! line
	// naming sh, bash or dash, or whose name ends in .sh (Debian: /usr/bin,
	// /etc).
	ShellDirs []string
	// PerlDirs are searched for *.pm and *.pl files (Debian: /usr/share/perl*,
	// /usr/lib/*/perl*).
	PerlDirs []string
	// DictDir holds Debian's word lists american-english, french, ngerman
	// and spanish (packages wamerican, wfrench, wngerman, wspanish).
	DictDir string
}

// DictDebianDir is where Debian's word list packages install.
const DictDebianDir = "/usr/share/dict"

// DefaultSuiteSources returns Debian's locations. GoRoot is $GOROOT if set,
// else the installation of the go command found on $PATH (without running
// it), else /usr/local/go or /usr/lib/go if they hold a src folder.
// MESHNODE_DICT_DIR overrides DictDir.
func DefaultSuiteSources() SuiteSources {
	s := SuiteSources{
		GoRoot:     findGoRoot(),
		PythonDirs: globDirs("/usr/lib/python3*"),
		CDirs:      []string{"/usr/include"},
		ShellDirs:  []string{"/usr/bin", "/etc"},
		PerlDirs:   append(globDirs("/usr/share/perl*"), globDirs("/usr/lib/*/perl*")...),
		DictDir:    DictDebianDir,
	}
	if v := os.Getenv("MESHNODE_DICT_DIR"); v != "" {
		s.DictDir = v
	}
	return s
}

// globDirs returns the folders matching pattern, sorted.
func globDirs(pattern string) []string {
	m, _ := filepath.Glob(pattern) // the only error is a malformed pattern, and ours are constants
	var out []string
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// findGoRoot locates a Go installation with a src folder, without running
// the go command.
func findGoRoot() string {
	var cands []string
	if v := os.Getenv("GOROOT"); v != "" {
		cands = append(cands, v)
	}
	if p, err := exec.LookPath("go"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			cands = append(cands, filepath.Dir(filepath.Dir(r)))
		}
	}
	cands = append(cands, "/usr/local/go", "/usr/lib/go")
	for _, c := range cands {
		if fi, err := os.Stat(filepath.Join(c, "src", "runtime")); err == nil && fi.IsDir() {
			return c
		}
	}
	return ""
}
