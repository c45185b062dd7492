package kd

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
)

// ErrMalformedAnswer marks a teacher answer that names none (or more than one) of the classes.
var ErrMalformedAnswer = errors.New("malformed teacher answer")

// maxAnswerLen bounds the answer text ParseAnswer looks at.
const maxAnswerLen = 64 << 10

// ParseAnswer turns a chat teacher's answer into a distribution over classes. It accepts, in
// order of preference:
//
//   - a JSON object (optionally inside a ``` code fence) with "probabilities" (or "probs"), a
//     map from class to a non-negative number, normalised to sum 1; or with "label", "class",
//     "answer" or "category", a class name;
//   - a JSON string holding a class name;
//   - text whose first line is a class name, ignoring case, surrounding quotes, punctuation and
//     a "label:"/"answer:"/"class:" prefix;
//   - text that mentions exactly one class as a whole word (ignoring case).
//
// A class name gives a one-hot distribution. Anything else is an error wrapping
// ErrMalformedAnswer that quotes the answer.
func ParseAnswer(answer string, classes []string) ([]float64, error) {
	if len(classes) == 0 {
		return nil, fmt.Errorf("%w: no classes to answer with", ErrMalformedAnswer)
	}
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s (classes: %s)", ErrMalformedAnswer, clip(answer), why, strings.Join(classes, ", "))
	}
	if len(answer) > maxAnswerLen {
		return nil, bad("answer too long")
	}
	text := stripFence(strings.TrimSpace(answer))
	if text == "" {
		return nil, bad("empty answer")
	}
	if strings.HasPrefix(text, "{") {
		p, err := parseJSONAnswer(text, classes)
		if err != nil {
			return nil, bad(err.Error())
		}
		return p, nil
	}
	if strings.HasPrefix(text, `"`) {
		var s string
		if json.Unmarshal([]byte(text), &s) == nil {
			text = s
		}
	}
	first, _, _ := strings.Cut(text, "\n")
	if k := matchClass(first, classes); k >= 0 {
		return oneHot(k, len(classes)), nil
	}
	found := -1
	for k, c := range classes {
		if mentions(text, c) {
			if found >= 0 && !strings.EqualFold(classes[found], c) {
				return nil, bad("mentions more than one class")
			}
			found = k
		}
	}
	if found < 0 {
		return nil, bad("names none of the classes")
	}
	return oneHot(found, len(classes)), nil
}

func oneHot(k, n int) []float64 {
	p := make([]float64, n)
	p[k] = 1
	return p
}

// stripFence removes a surrounding ``` or ```json code fence.
func stripFence(s string) string {
	if !strings.HasPrefix(s, "```") || !strings.HasSuffix(s, "```") || len(s) < 6 {
		return s
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "```"), "```")
	if i := strings.IndexByte(s, '\n'); i >= 0 && !strings.ContainsAny(s[:i], "{\"") {
		s = s[i+1:] // a language tag such as "json"
	}
	return strings.TrimSpace(s)
}

func parseJSONAnswer(text string, classes []string) ([]float64, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &obj); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	for _, key := range []string{"probabilities", "probs"} {
		if raw, ok := obj[key]; ok {
			return parseProbabilities(raw, classes)
		}
	}
	for _, key := range []string{"label", "class", "answer", "category"} {
		raw, ok := obj[key]
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%q is not a string", key)
		}
		if k := matchClass(s, classes); k >= 0 {
			return oneHot(k, len(classes)), nil
		}
		return nil, fmt.Errorf("%q is %q, not one of the classes", key, clip(s))
	}
	return nil, fmt.Errorf(`JSON object has no "label" or "probabilities"`)
}

func parseProbabilities(raw json.RawMessage, classes []string) ([]float64, error) {
	var m map[string]float64
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("probabilities must map class names to numbers: %v", err)
	}
	p := make([]float64, len(classes))
	var sum float64
	for name, v := range m {
		k := matchClass(name, classes)
		if k < 0 {
			return nil, fmt.Errorf("probability for unknown class %q", clip(name))
		}
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("probability %g for %q is not a finite number ≥ 0", v, clip(name))
		}
		p[k] += v
		sum += v
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		return nil, fmt.Errorf("probabilities sum to %g", sum)
	}
	for k := range p {
		p[k] /= sum
	}
	return p, nil
}

// matchClass returns the class that s names, ignoring case, surrounding quotes, punctuation,
// markdown emphasis and a "label:"-style prefix, or -1.
func matchClass(s string, classes []string) int {
	s = strings.TrimSpace(s)
	for _, prefix := range []string{"label:", "answer:", "class:", "category:"} {
		if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
			s = s[len(prefix):]
			break
		}
	}
	s = strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsPunct(r) && r != '_' && r != '+' && r != '#' || r == '`' || r == '*'
	})
	for k, c := range classes {
		if strings.EqualFold(s, c) || strings.EqualFold(s, strings.TrimSpace(c)) {
			return k
		}
	}
	return -1
}

// mentions reports whether class c occurs in text as a whole word, ignoring case.
func mentions(text, c string) bool {
	c = strings.TrimSpace(c)
	if c == "" {
		return false
	}
	lt, lc := strings.ToLower(text), strings.ToLower(c)
	if len(lt) != len(text) || len(lc) != len(c) {
		return false // case mapping changed byte lengths; do not guess at word boundaries
	}
	for off := 0; ; {
		i := strings.Index(lt[off:], lc)
		if i < 0 {
			return false
		}
		i += off
		j := i + len(lc)
		if isBoundary(lt, i-1) && isBoundary(lt, j) {
			return true
		}
		off = i + 1
	}
}

func isBoundary(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return true
	}
	b := s[i]
	return !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b >= 0x80)
}
