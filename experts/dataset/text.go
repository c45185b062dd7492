package dataset

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TextFeaturesVersion is the scheme name and version of the text feature
// spec strings this package understands.
const TextFeaturesVersion = "hash-ngrams/v1"

// Limits of TextFeatures parameters.
const (
	MinTextDim  = 16
	MaxTextDim  = 1 << 20
	MaxCharGram = 16 // longest character n-gram
	MaxWordGram = 8  // longest word n-gram
)

// TextFeatures maps text to a fixed-size vector of signed, hashed character
// and word n-gram counts. A family with Min = Max = 0 is disabled; at least
// one family must be enabled.
//
// The extraction rules (scheme "hash-ngrams/v1") are a contract between
// nodes: every node must compute bit-identical vectors for the same text.
//
//  1. Lowercase the text with strings.ToLower (Go's Unicode case tables; no
//     Unicode normalisation). Invalid UTF-8 bytes decode as U+FFFD.
//  2. Words are the maximal runs of runes r with unicode.IsLetter(r) or
//     unicode.IsDigit(r) in the lowercased text. Word n-grams, for n in
//     [WordMin, WordMax], are n consecutive words joined by single spaces
//     (U+0020).
//  3. For character n-grams, every maximal run of unicode.IsSpace runes is
//     replaced by one space, leading and trailing whitespace is dropped, and
//     the result, if not empty, is padded with one space at each end.
//     Character n-grams, for n in [CharMin, CharMax], are the n consecutive
//     runes starting at each rune position (counted over runes, not bytes).
//  4. Each gram is hashed with 64-bit FNV-1a over the UTF-8 bytes of a
//     prefix ("c:" for character grams, "w:" for word grams) followed by the
//     gram. With h the hash, index = h mod Dim and sign = +1 if bit 63 of h
//     is 0, else -1; out[index] += sign. Every occurrence counts.
//  5. Finally the vector is L2-normalised: each value becomes
//     float32(float64(v)/sqrt(Σ float64(v)²)). An all-zero vector (for
//     example from empty text) stays all zeros.
type TextFeatures struct {
	Dim              int // output dimension, in [MinTextDim, MaxTextDim]
	CharMin, CharMax int // character n-gram lengths, 1 ≤ min ≤ max ≤ MaxCharGram, or both 0
	WordMin, WordMax int // word n-gram lengths, 1 ≤ min ≤ max ≤ MaxWordGram, or both 0
}

// DefaultTextFeatures returns hash-ngrams/v1?dim=1024&char=2-4&word=1-2,
// which is also what ParseTextFeatures uses for omitted keys.
func DefaultTextFeatures() TextFeatures {
	return TextFeatures{Dim: 1024, CharMin: 2, CharMax: 4, WordMin: 1, WordMax: 2}
}

// Validate checks the parameters against the limits documented on
// TextFeatures.
func (t TextFeatures) Validate() error {
	if t.Dim < MinTextDim || t.Dim > MaxTextDim {
		return fmt.Errorf("text features: dim %d not in [%d, %d]", t.Dim, MinTextDim, MaxTextDim)
	}
	if err := checkRange("char", t.CharMin, t.CharMax, MaxCharGram); err != nil {
		return err
	}
	if err := checkRange("word", t.WordMin, t.WordMax, MaxWordGram); err != nil {
		return err
	}
	if t.CharMax == 0 && t.WordMax == 0 {
		return errors.New("text features: both char and word n-grams are disabled")
	}
	return nil
}

func checkRange(what string, lo, hi, limit int) error {
	if lo == 0 && hi == 0 {
		return nil
	}
	if lo < 1 || hi < lo || hi > limit {
		return fmt.Errorf("text features: %s n-gram range %d-%d invalid (want 1 ≤ min ≤ max ≤ %d, or 0 to disable)", what, lo, hi, limit)
	}
	return nil
}

// ParseTextFeatures parses a spec such as
// "hash-ngrams/v1?dim=1024&char=2-4&word=1-2". The keys are dim (a decimal
// integer), char and word (a range "MIN-MAX", a single length "N" meaning
// N-N, or "0" to disable the family); each may appear at most once and
// omitted keys take their DefaultTextFeatures values. Unknown versions or
// keys, malformed numbers and out-of-range values are errors.
func ParseTextFeatures(spec string) (TextFeatures, error) {
	base, query, hasQuery := strings.Cut(spec, "?")
	if base != TextFeaturesVersion {
		return TextFeatures{}, fmt.Errorf("text features %q: unknown scheme %q (want %q)", spec, base, TextFeaturesVersion)
	}
	t := DefaultTextFeatures()
	if hasQuery {
		seen := map[string]bool{}
		for kv := range strings.SplitSeq(query, "&") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return TextFeatures{}, fmt.Errorf("text features %q: malformed parameter %q (want key=value)", spec, kv)
			}
			if seen[k] {
				return TextFeatures{}, fmt.Errorf("text features %q: duplicate key %q", spec, k)
			}
			seen[k] = true
			var err error
			switch k {
			case "dim":
				t.Dim, err = parseSmallUint(v)
			case "char":
				t.CharMin, t.CharMax, err = parseGramRange(v)
			case "word":
				t.WordMin, t.WordMax, err = parseGramRange(v)
			default:
				return TextFeatures{}, fmt.Errorf("text features %q: unknown key %q (known: dim, char, word)", spec, k)
			}
			if err != nil {
				return TextFeatures{}, fmt.Errorf("text features %q: %s: %w", spec, k, err)
			}
		}
	}
	if err := t.Validate(); err != nil {
		return TextFeatures{}, fmt.Errorf("%w (spec %q)", err, spec)
	}
	return t, nil
}

// parseSmallUint parses 1 to 9 ASCII decimal digits.
func parseSmallUint(s string) (int, error) {
	if len(s) == 0 || len(s) > 9 {
		return 0, fmt.Errorf("%q is not a decimal number of 1 to 9 digits", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	return strconv.Atoi(s)
}

// parseGramRange parses "MIN-MAX", "N" or "0".
func parseGramRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = parseSmallUint(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parseSmallUint(b); err != nil {
			return 0, 0, err
		}
		if lo == 0 || hi == 0 {
			return 0, 0, fmt.Errorf("range %q: use a plain 0 to disable", s)
		}
	}
	return lo, hi, nil
}

// Spec returns the canonical spec string, e.g.
// "hash-ngrams/v1?dim=1024&char=2-4&word=1-2" (a disabled family is written
// "0"). ParseTextFeatures(t.Spec()) returns t for every valid t.
func (t TextFeatures) Spec() string {
	rng := func(lo, hi int) string {
		if lo == 0 && hi == 0 {
			return "0"
		}
		return strconv.Itoa(lo) + "-" + strconv.Itoa(hi)
	}
	return fmt.Sprintf("%s?dim=%d&char=%s&word=%s", TextFeaturesVersion, t.Dim, rng(t.CharMin, t.CharMax), rng(t.WordMin, t.WordMax))
}

// String returns t.Spec().
func (t TextFeatures) String() string { return t.Spec() }

// FNV-1a 64-bit parameters.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

func fnvRune(h uint64, r rune) uint64 {
	var b [utf8.UTFMax]byte
	n := utf8.EncodeRune(b[:], r)
	for _, c := range b[:n] {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return h
}

// Extract writes the feature vector of text into out, following the rules
// documented on TextFeatures. out must have length t.Dim, else an error is
// returned; it is zeroed first. t must be valid (see Validate).
func (t TextFeatures) Extract(text string, out []float32) error {
	if len(out) != t.Dim || t.Dim < 1 {
		return fmt.Errorf("text features: output has length %d, want Dim = %d", len(out), t.Dim)
	}
	clear(out)
	dim := uint64(t.Dim)
	add := func(h uint64) {
		if h>>63 == 0 {
			out[h%dim]++
		} else {
			out[h%dim]--
		}
	}
	lower := strings.ToLower(text)

	if t.CharMax > 0 {
		runes := make([]rune, 1, len(lower)+2)
		runes[0] = ' '
		space := true // last rune appended is a space
		for _, r := range lower {
			if unicode.IsSpace(r) {
				if !space {
					runes = append(runes, ' ')
					space = true
				}
				continue
			}
			runes = append(runes, r)
			space = false
		}
		if len(runes) > 1 {
			if !space {
				runes = append(runes, ' ')
			}
			prefix := fnvString(fnvOffset64, "c:")
			for i := range runes {
				h := prefix
				for n := 1; n <= t.CharMax && i+n <= len(runes); n++ {
					h = fnvRune(h, runes[i+n-1])
					if n >= t.CharMin {
						add(h)
					}
				}
			}
		}
	}

	if t.WordMax > 0 {
		type span struct{ s, e int }
		var words []span
		start := -1
		for i, r := range lower {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				if start < 0 {
					start = i
				}
			} else if start >= 0 {
				words = append(words, span{start, i})
				start = -1
			}
		}
		if start >= 0 {
			words = append(words, span{start, len(lower)})
		}
		prefix := fnvString(fnvOffset64, "w:")
		for i := range words {
			h := prefix
			for n := 1; n <= t.WordMax && i+n <= len(words); n++ {
				if n > 1 {
					h = fnvString(h, " ")
				}
				w := words[i+n-1]
				h = fnvString(h, lower[w.s:w.e])
				if n >= t.WordMin {
					add(h)
				}
			}
		}
	}

	var sumsq float64
	for _, v := range out {
		sumsq += float64(float64(v) * float64(v))
	}
	if sumsq > 0 {
		norm := math.Sqrt(sumsq)
		for i, v := range out {
			out[i] = float32(float64(v) / norm)
		}
	}
	return nil
}

// TextDataset extracts features for each text with tf and returns them as a
// data set named name. labels[i] is the class index of texts[i] in classes.
// It returns an error if len(texts) != len(labels) or tf is invalid; labels
// are not checked (use Dataset.Validate).
func TextDataset(texts []string, labels []int, classes []string, tf TextFeatures, name string) (*Dataset, error) {
	if len(texts) != len(labels) {
		return nil, fmt.Errorf("text data set %s: %d texts but %d labels", name, len(texts), len(labels))
	}
	if err := tf.Validate(); err != nil {
		return nil, fmt.Errorf("text data set %s: %w", name, err)
	}
	d := &Dataset{
		Name:    name,
		Dim:     tf.Dim,
		X:       make([]float32, len(texts)*tf.Dim),
		Y:       append([]int(nil), labels...),
		Classes: append([]string(nil), classes...),
	}
	for i, s := range texts {
		if err := tf.Extract(s, d.Row(i)); err != nil {
			return nil, err
		}
	}
	return d, nil
}
