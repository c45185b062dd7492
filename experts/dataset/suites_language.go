package dataset

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// minWordRunes is the shortest word the language suite uses: shorter words
// are too often shared by the languages to say much.
const minWordRunes = 4

// wordList names one of Debian's word lists and the package that ships it.
type wordList struct {
	label, file, pkg string
}

func wordLists() []wordList {
	return []wordList{
		{"english", "american-english", "wamerican"},
		{"french", "french", "wfrench"},
		{"german", "ngerman", "wngerman"},
		{"spanish", "spanish", "wspanish"},
	}
}

func languageClasses() []string {
	var out []string
	for _, w := range wordLists() {
		out = append(out, w.label)
	}
	return out
}

// genLanguage draws perClass words of each language from Debian's word
// lists in src.DictDir. A word is used if it has at least minWordRunes
// runes, all letters (so no possessives such as "dog's"), and appears,
// lowercased, in exactly one of the four lists: the answer is then exact.
// Words are drawn without replacement, uniformly, in a seeded order.
func genLanguage(ctx context.Context, src SuiteSources, perClass int, seed uint64) (*TextSet, error) {
	lists := wordLists()
	words := make([][]string, len(lists))
	owner := map[string]int{} // word -> list index, or -1 when in several lists
	for i, wl := range lists {
		ws, err := readWordList(src.DictDir, wl)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		words[i] = ws
		for _, w := range ws {
			if o, ok := owner[w]; ok && o != i {
				owner[w] = -1
			} else {
				owner[w] = i
			}
		}
	}
	t := &TextSet{Classes: languageClasses()}
	rng := NewRand(seed)
	for i, ws := range words {
		var unique []string
		for _, w := range ws {
			if owner[w] == i {
				unique = append(unique, w)
			}
		}
		if len(unique) < perClass {
			return nil, fmt.Errorf("language suite: %s has %d words found in no other list, want %d", lists[i].file, len(unique), perClass)
		}
		for _, j := range rng.Perm(len(unique))[:perClass] {
			t.Texts = append(t.Texts, unique[j])
			t.Y = append(t.Y, i)
		}
	}
	return t, nil
}

// readWordList returns the usable words of one list, lowercased, sorted and
// without repeats. Latin-1 lines (old word lists) are decoded as such.
func readWordList(dir string, wl wordList) ([]string, error) {
	if dir == "" {
		return nil, fmt.Errorf("language suite: no word list folder configured: install Debian package %s (scripts/setup.sh) or set MESHNODE_DICT_DIR", wl.pkg)
	}
	path := filepath.Join(dir, wl.file)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("language suite: word list %s not found: install Debian package %s (scripts/setup.sh) or set MESHNODE_DICT_DIR", path, wl.pkg)
	}
	if err != nil {
		return nil, fmt.Errorf("language suite: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<16)
	for sc.Scan() {
		w := sc.Text()
		if !utf8.ValidString(w) {
			w = latin1(w)
		}
		w = strings.ToLower(strings.TrimSpace(w))
		if usableWord(w) {
			out = append(out, w)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("language suite: read %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("language suite: word list %s has no usable words (reinstall Debian package %s)", path, wl.pkg)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func usableWord(w string) bool {
	if utf8.RuneCountInString(w) < minWordRunes {
		return false
	}
	for _, r := range w {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}

func latin1(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}
