package kd

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

func TestParseAnswer(t *testing.T) {
	classes := []string{"positive", "negative", "neutral"}
	tests := []struct {
		answer string
		want   []float64
	}{
		{"positive", []float64{1, 0, 0}},
		{"  Negative.\n", []float64{0, 1, 0}},
		{`"neutral"`, []float64{0, 0, 1}},
		{"Label: **positive**", []float64{1, 0, 0}},
		{"answer: `negative`", []float64{0, 1, 0}},
		{`{"label": "neutral"}`, []float64{0, 0, 1}},
		{"```json\n{\"class\": \"Positive\"}\n```", []float64{1, 0, 0}},
		{`{"probabilities": {"positive": 3, "negative": 1}}`, []float64{0.75, 0.25, 0}},
		{`{"probs": {"neutral": 0.5, "Negative": 0.5}}`, []float64{0, 0.5, 0.5}},
		{"The sentiment of this review is negative overall.", []float64{0, 1, 0}},
		{"negative\nBecause the reviewer says it was not positive at all.", []float64{0, 1, 0}},
	}
	for _, tc := range tests {
		got, err := ParseAnswer(tc.answer, classes)
		if err != nil {
			t.Errorf("%q: %v", tc.answer, err)
			continue
		}
		for k := range tc.want {
			if math.Abs(got[k]-tc.want[k]) > 1e-12 {
				t.Errorf("%q: got %v, want %v", tc.answer, got, tc.want)
				break
			}
		}
	}
}

func TestParseAnswerErrors(t *testing.T) {
	classes := []string{"positive", "negative"}
	tests := []struct{ answer, mention string }{
		{"", "empty answer"},
		{"   ", "empty answer"},
		{"I cannot tell.", "names none"},
		{"positive or negative, hard to say", "more than one class"},
		{"positively", "names none"}, // not a whole word
		{`{"label": "mixed"}`, "not one of the classes"},
		{`{"label": 3}`, "not a string"},
		{`{"confidence": 0.9}`, `no "label"`},
		{`{"probabilities": {"positive": -1}}`, "not a finite number"},
		{`{"probabilities": {"positive": 0, "negative": 0}}`, "sum to 0"},
		{`{"probabilities": {"mixed": 1}}`, "unknown class"},
		{`{"probabilities": [0.5, 0.5]}`, "must map class names"},
		{`{"label": "positive"`, "invalid JSON"},
		{strings.Repeat("a", maxAnswerLen+1), "too long"},
	}
	for _, tc := range tests {
		_, err := ParseAnswer(tc.answer, classes)
		if err == nil {
			t.Errorf("%q: want error", clip(tc.answer))
			continue
		}
		if !errors.Is(err, ErrMalformedAnswer) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%q: error %q should wrap ErrMalformedAnswer and mention %q", clip(tc.answer), err, tc.mention)
		}
	}
	if _, err := ParseAnswer("positive", nil); !errors.Is(err, ErrMalformedAnswer) {
		t.Errorf("no classes: got %v", err)
	}
}

// FuzzParseAnswer: any answer is parsed into a distribution over the classes or rejected with
// ErrMalformedAnswer, never a panic or a non-distribution.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{"positive", `{"label":"negative"}`, `{"probabilities":{"positive":1e308,"negative":1e308}}`,
		"```\nneutral\n```", "Label: ", `"\u00e9"`, "négatif"} {
		f.Add(s)
	}
	classes := []string{"positive", "negative", "neutral", "c++", "négatif"}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseAnswer(s, classes)
		if err != nil {
			if !errors.Is(err, ErrMalformedAnswer) {
				t.Fatalf("%q: error %v does not wrap ErrMalformedAnswer", s, err)
			}
			return
		}
		if len(p) != len(classes) {
			t.Fatalf("%q: %d probabilities for %d classes", s, len(p), len(classes))
		}
		var sum float64
		for _, v := range p {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%q: probability %g", s, v)
			}
			sum += v
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("%q: probabilities sum to %g", s, sum)
		}
	})
}

func TestReadPrompts(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          []Prompt
		err           string
	}{
		{"jsonl", "{\"text\": \"bonjour\", \"label\": \"french\"}\n\n{\"prompt\": \"hello\"}\n", []Prompt{{"bonjour", "french"}, {"hello", ""}}, ""},
		{"plain", "first prompt\nsecond prompt\n", []Prompt{{"first prompt", ""}, {"second prompt", ""}}, ""},
		{"bad json", "{\"text\": \n", nil, ":1:"},
		{"no text", "{\"label\": \"x\"}\n", nil, "no \"text\""},
		{"empty", "\n\n", nil, "no prompts"},
	}
	for _, tc := range tests {
		path := dir + "/" + tc.name
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadPrompts(path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %v, want error with %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Fatalf("%s: %v, %v", tc.name, got, err)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: prompt %d = %+v, want %+v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}
