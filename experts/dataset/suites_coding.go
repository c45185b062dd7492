package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// Shape of a coding snippet.
const (
	codingWindow   = 8       // lines per snippet
	codingMaxLine  = 160     // bytes kept of each line
	codingMinChars = 40      // non-space characters a snippet must have
	codingMaxFile  = 1 << 20 // larger files are skipped
)

func codingClasses() []string { return []string{"go", "python", "c", "shell", "perl"} }

// codingSource is where one language's files come from.
type codingSource struct {
	label   string
	roots   []string
	keep    func(path string) bool
	missing string // what to install when nothing is found
}

func codingSources(src SuiteSources) []codingSource {
	ext := func(exts ...string) func(string) bool {
		return func(p string) bool {
			for _, e := range exts {
				if strings.HasSuffix(p, e) {
					return true
				}
			}
			return false
		}
	}
	var goRoots []string
	if src.GoRoot != "" {
		goRoots = []string{filepath.Join(src.GoRoot, "src")}
	}
	cRoots := append([]string(nil), src.CDirs...)
	cRoots = append(cRoots, goRoots...)
	return []codingSource{
		{"go", goRoots, ext(".go"), "a Go installation (set GOROOT or put go on PATH)"},
		{"python", src.PythonDirs, ext(".py"), "python3 (Debian: /usr/lib/python3*)"},
		{"c", cRoots, ext(".c", ".h"), "C headers (Debian package libc6-dev: /usr/include) or a Go installation's cgo .c files"},
		{"shell", src.ShellDirs, isShellScript, "shell scripts with a sh/bash #! line (Debian: /usr/bin, /etc)"},
		{"perl", src.PerlDirs, ext(".pm", ".pl"), "Perl modules (Debian package perl: /usr/share/perl*, /usr/lib/*/perl*)"},
	}
}

// isShellScript reports whether a file is named *.sh or starts with a #!
// line naming sh, bash or dash.
func isShellScript(path string) bool {
	if strings.HasSuffix(path, ".sh") {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var buf [80]byte
	n, _ := io.ReadFull(f, buf[:])
	line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
	if !bytes.HasPrefix(line, []byte("#!")) {
		return false
	}
	fields := strings.Fields(string(line[2:]))
	if len(fields) == 0 {
		return false
	}
	interp := filepath.Base(fields[0])
	if interp == "env" && len(fields) > 1 {
		interp = fields[1]
	}
	return interp == "sh" || interp == "bash" || interp == "dash"
}

// listFiles walks roots in lexical order and returns the regular files
// (not symlinks) that keep accepts. Unreadable folders are skipped, as are
// folders named testdata, __pycache__ or c++ (C++ headers are not C).
func listFiles(ctx context.Context, roots []string, keep func(string) bool) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if d != nil && d.IsDir() && p != root {
					return fs.SkipDir
				}
				return nil // unreadable entry or missing root: nothing to take
			}
			if d.IsDir() {
				if n := d.Name(); p != root && (n == "testdata" || n == "__pycache__" || n == "c++") {
					return fs.SkipDir
				}
				return ctx.Err()
			}
			if d.Type().IsRegular() && !seen[p] && keep(p) {
				seen[p] = true
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// genCoding draws perClass snippets of each language: a file chosen
// uniformly from the language's files, then a window of codingWindow
// consecutive lines chosen uniformly within it (lines cut to codingMaxLine
// bytes); windows with fewer than codingMinChars non-space characters are
// drawn again. Deterministic for the same files and seed.
func genCoding(ctx context.Context, src SuiteSources, perClass int, seed uint64) (*TextSet, error) {
	t := &TextSet{Classes: codingClasses()}
	rng := NewRand(seed)
	for c, s := range codingSources(src) {
		files, err := listFiles(ctx, s.roots, s.keep)
		if err != nil {
			return nil, fmt.Errorf("coding suite: list %s sources: %w", s.label, err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("coding suite: no %s sources found (looked in %s): install %s", s.label, describeRoots(s.roots), s.missing)
		}
		got := 0
		for tries := 0; got < perClass; tries++ {
			if tries > 100*perClass+1000 {
				return nil, fmt.Errorf("coding suite: only %d usable %s snippets in %d files, want %d", got, s.label, len(files), perClass)
			}
			if tries%64 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			snip, ok, err := snippet(pick(rng, files), rng)
			if err != nil {
				return nil, fmt.Errorf("coding suite: %w", err)
			}
			if ok {
				t.Texts = append(t.Texts, snip)
				t.Y = append(t.Y, c)
				got++
			}
		}
	}
	return t, nil
}

func describeRoots(roots []string) string {
	if len(roots) == 0 {
		return "no folders configured"
	}
	return strings.Join(roots, ", ")
}

// snippet reads path and returns a random window of its lines, or ok=false
// when the file is unusable (too big, vanished) or the window too empty.
func snippet(path string, rng interface{ IntN(int) int }) (string, bool, error) {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > codingMaxFile {
		return "", false, nil // raced with a package upgrade or too big: draw again
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	lines := strings.Split(strings.ToValidUTF8(string(b), "\uFFFD"), "\n")
	w := min(codingWindow, len(lines))
	start := rng.IntN(len(lines) - w + 1)
	win := lines[start : start+w]
	chars := 0
	for i, l := range win {
		l = strings.TrimRight(l, "\r")
		if len(l) > codingMaxLine {
			l = strings.ToValidUTF8(l[:codingMaxLine], "")
		}
		win[i] = l
		for _, r := range l {
			if !unicode.IsSpace(r) {
				chars++
			}
		}
	}
	if chars < codingMinChars {
		return "", false, nil
	}
	return strings.Join(win, "\n"), true, nil
}
