package dataset

import (
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// refExtract is a straightforward re-implementation of the documented
// hash-ngrams/v1 rules, built from hash/fnv and strings.Fields-style
// helpers, to cross-check the optimised Extract.
func refExtract(t TextFeatures, text string) []float32 {
	acc := make([]float64, t.Dim)
	add := func(gram string) {
		h := fnv.New64a()
		h.Write([]byte(gram))
		s := h.Sum64()
		if s>>63 == 0 {
			acc[s%uint64(t.Dim)]++
		} else {
			acc[s%uint64(t.Dim)]--
		}
	}
	lower := strings.ToLower(text)
	if t.CharMax > 0 {
		collapsed := strings.Join(strings.FieldsFunc(lower, unicode.IsSpace), " ")
		if collapsed != "" {
			r := []rune(" " + collapsed + " ")
			for n := t.CharMin; n <= t.CharMax; n++ {
				for i := 0; i+n <= len(r); i++ {
					add("c:" + string(r[i:i+n]))
				}
			}
		}
	}
	if t.WordMax > 0 {
		words := strings.FieldsFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		for n := t.WordMin; n <= t.WordMax; n++ {
			for i := 0; i+n <= len(words); i++ {
				add("w:" + strings.Join(words[i:i+n], " "))
			}
		}
	}
	var ss float64
	for _, v := range acc {
		ss += v * v
	}
	out := make([]float32, t.Dim)
	if ss > 0 {
		norm := math.Sqrt(ss)
		for i, v := range acc {
			out[i] = float32(v / norm)
		}
	}
	return out
}

func extract(t TextFeatures, s string) []float32 {
	out := make([]float32, t.Dim)
	if err := t.Extract(s, out); err != nil {
		panic(err) // tests only call it with out of length Dim
	}
	return out
}

func norm2(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

var textSamples = []string{
	"",
	"   \t\n ",
	"a",
	"Hello",
	"hello world",
	"Hello,   World!\tHello again.",
	"The quick brown fox jumps over the lazy dog 123 times",
	"naïve café — Ünïcödé ΣΊΣΥΦΟΣ straße",
	"日本語のテキスト 和 中文 混合",
	"emoji 🙂🙂 and\u00a0nbsp\u2003em-space",
	"bad utf8 \xff\xfe here",
	"x1 2y z_3 don't",
}

func TestTextExtractMatchesReference(t *testing.T) {
	specs := []string{
		"hash-ngrams/v1",
		"hash-ngrams/v1?dim=16&char=1-1&word=0",
		"hash-ngrams/v1?dim=97&char=0&word=1-3",
		"hash-ngrams/v1?dim=4096&char=3-5&word=2",
		"hash-ngrams/v1?dim=1048576&char=1-16&word=1-8",
	}
	for _, spec := range specs {
		tf, err := ParseTextFeatures(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range textSamples {
			got, want := extract(tf, s), refExtract(tf, s)
			if !slices.Equal(got, want) {
				t.Errorf("%s: Extract(%q) differs from the reference", spec, s)
			}
		}
	}
}

func TestTextExtractHandChecked(t *testing.T) {
	// One word, word unigrams only: exactly one feature ±1.
	tf := TextFeatures{Dim: 1 << 20, WordMin: 1, WordMax: 1}
	h := fnv.New64a()
	h.Write([]byte("w:hello"))
	s := h.Sum64()
	out := extract(tf, "  HELLO!! ")
	want := float32(1)
	if s>>63 == 1 {
		want = -1
	}
	if out[s%(1<<20)] != want || norm2(out) != 1 {
		t.Errorf("feature %d = %v, want %v", s%(1<<20), out[s%(1<<20)], want)
	}
	// Character bigrams of "ab": " a", "ab", "b ".
	tf = TextFeatures{Dim: 1 << 20, CharMin: 2, CharMax: 2}
	out = extract(tf, "AB")
	nonzero := 0
	for _, v := range out {
		if v != 0 {
			nonzero++
			if math.Abs(math.Abs(float64(v))-1/math.Sqrt(3)) > 1e-7 {
				t.Errorf("value %v, want ±1/√3", v)
			}
		}
	}
	if nonzero != 3 {
		t.Errorf("%d non-zero features for 3 distinct bigrams", nonzero)
	}
}

func TestTextExtractProperties(t *testing.T) {
	tf := DefaultTextFeatures()
	tests := []struct {
		name   string
		a, b   string
		wantEq bool
	}{
		{"same text", "Hello world", "Hello world", true},
		{"case", "Hello", "hello", true},
		{"case sentence", "The Quick BROWN fox", "the quick brown fox", true},
		{"whitespace runs", "hello   world\n", " hello world", true},
		{"different words", "hello world", "goodbye world", false},
		{"word order", "dog bites man", "man bites dog", false},
		{"punctuation only affects chars", "hello, world", "hello world", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := extract(tf, tt.a), extract(tf, tt.b)
			if slices.Equal(a, b) != tt.wantEq {
				t.Errorf("Extract(%q) == Extract(%q) is %v, want %v", tt.a, tt.b, !tt.wantEq, tt.wantEq)
			}
		})
	}
	for _, s := range textSamples {
		v := extract(tf, s)
		n := norm2(v)
		if strings.TrimSpace(s) == "" {
			if n != 0 {
				t.Errorf("blank %q has norm %v", s, n)
			}
			continue
		}
		if math.Abs(n-1) > 1e-6 {
			t.Errorf("norm of %q = %v, want 1", s, n)
		}
	}
	// Extract zeroes its output first.
	out := make([]float32, tf.Dim)
	for i := range out {
		out[i] = 9
	}
	tf.Extract("", out)
	if slices.ContainsFunc(out, func(v float32) bool { return v != 0 }) {
		t.Error("Extract did not zero out")
	}
}

func TestTextExtractRejectsWrongLength(t *testing.T) {
	if err := DefaultTextFeatures().Extract("x", make([]float32, 3)); err == nil {
		t.Error("output of length 3 for dim 1024: no error")
	}
}

func TestParseTextFeatures(t *testing.T) {
	tests := []struct {
		spec    string
		want    TextFeatures
		wantErr string
	}{
		{"hash-ngrams/v1?dim=1024&char=2-4&word=1-2", TextFeatures{1024, 2, 4, 1, 2}, ""},
		{"hash-ngrams/v1", DefaultTextFeatures(), ""},
		{"hash-ngrams/v1?word=3&dim=16", TextFeatures{16, 2, 4, 3, 3}, ""},
		{"hash-ngrams/v1?dim=1048576&char=0&word=1-8", TextFeatures{1 << 20, 0, 0, 1, 8}, ""},
		{"hash-ngrams/v1?char=1-16&word=0", TextFeatures{1024, 1, 16, 0, 0}, ""},
		{"hash-ngrams/v2?dim=1024", TextFeatures{}, "unknown scheme"},
		{"", TextFeatures{}, "unknown scheme"},
		{"HASH-NGRAMS/v1", TextFeatures{}, "unknown scheme"},
		{"hash-ngrams/v1?", TextFeatures{}, "malformed parameter"},
		{"hash-ngrams/v1?dim=64&", TextFeatures{}, "malformed parameter"},
		{"hash-ngrams/v1?dim", TextFeatures{}, "malformed parameter"},
		{"hash-ngrams/v1?=5", TextFeatures{}, "malformed parameter"},
		{"hash-ngrams/v1?size=1024", TextFeatures{}, `unknown key "size"`},
		{"hash-ngrams/v1?dim=64&dim=64", TextFeatures{}, "duplicate key"},
		{"hash-ngrams/v1?dim=15", TextFeatures{}, "dim 15 not in"},
		{"hash-ngrams/v1?dim=1048577", TextFeatures{}, "dim 1048577 not in"},
		{"hash-ngrams/v1?dim=-16", TextFeatures{}, "not a decimal"},
		{"hash-ngrams/v1?dim=+16", TextFeatures{}, "not a decimal"},
		{"hash-ngrams/v1?dim=1e3", TextFeatures{}, "not a decimal"},
		{"hash-ngrams/v1?dim=99999999999", TextFeatures{}, "1 to 9 digits"},
		{"hash-ngrams/v1?dim=", TextFeatures{}, "1 to 9 digits"},
		{"hash-ngrams/v1?char=4-2", TextFeatures{}, "char n-gram range 4-2"},
		{"hash-ngrams/v1?char=0-2", TextFeatures{}, "plain 0"},
		{"hash-ngrams/v1?char=2-", TextFeatures{}, "digits"},
		{"hash-ngrams/v1?char=1-2-3", TextFeatures{}, "not a decimal"},
		{"hash-ngrams/v1?char=1-17", TextFeatures{}, "char n-gram range"},
		{"hash-ngrams/v1?word=1-9", TextFeatures{}, "word n-gram range"},
		{"hash-ngrams/v1?char=0&word=0", TextFeatures{}, "both char and word"},
		{"hash-ngrams/v1?dim=64#frag", TextFeatures{}, "not a decimal"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseTextFeatures(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			back, err := ParseTextFeatures(got.Spec())
			if err != nil || back != got {
				t.Errorf("round trip via %q: %+v, %v", got.Spec(), back, err)
			}
		})
	}
	if s := DefaultTextFeatures().Spec(); s != "hash-ngrams/v1?dim=1024&char=2-4&word=1-2" {
		t.Errorf("default spec %q", s)
	}
	if s := (TextFeatures{Dim: 32, WordMin: 2, WordMax: 2}).String(); s != "hash-ngrams/v1?dim=32&char=0&word=2-2" {
		t.Errorf("spec %q", s)
	}
}

func TestTextDataset(t *testing.T) {
	tf := TextFeatures{Dim: 64, CharMin: 1, CharMax: 3, WordMin: 1, WordMax: 1}
	texts := []string{"good movie", "bad movie", "GOOD MOVIE"}
	d, err := TextDataset(texts, []int{1, 0, 1}, []string{"neg", "pos"}, tf, "reviews")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if d.Name != "reviews" || d.Dim != 64 || d.Len() != 3 {
		t.Fatalf("%+v", d)
	}
	if !slices.Equal(d.Row(0), d.Row(2)) || slices.Equal(d.Row(0), d.Row(1)) {
		t.Error("rows do not follow the texts")
	}
	if !slices.Equal(d.Row(1), extract(tf, "bad movie")) {
		t.Error("row differs from Extract")
	}
	if _, err := TextDataset(texts, []int{0}, nil, tf, "x"); err == nil {
		t.Error("3 texts with 1 label: no error")
	}
}

func FuzzParseTextFeatures(f *testing.F) {
	f.Add("hash-ngrams/v1?dim=1024&char=2-4&word=1-2")
	f.Add("hash-ngrams/v1")
	f.Add("hash-ngrams/v1?char=0&word=3")
	f.Add("hash-ngrams/v1?dim=16&dim=16")
	f.Fuzz(func(t *testing.T, spec string) {
		tf, err := ParseTextFeatures(spec)
		if err != nil {
			return
		}
		if err := tf.Validate(); err != nil {
			t.Fatalf("parsed %q into invalid %+v: %v", spec, tf, err)
		}
		back, err := ParseTextFeatures(tf.Spec())
		if err != nil || back != tf {
			t.Fatalf("round trip of %q via %q: %+v, %v", spec, tf.Spec(), back, err)
		}
		out := make([]float32, tf.Dim)
		tf.Extract(spec, out)
		if n := norm2(out); math.Abs(n-1) > 1e-6 {
			t.Fatalf("norm %v", n)
		}
	})
}

func FuzzTextExtract(f *testing.F) {
	for _, s := range textSamples {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, text string, cfg uint8) {
		tf := TextFeatures{Dim: 61 + int(cfg), CharMin: 1, CharMax: 1 + int(cfg%4), WordMin: 1, WordMax: 1 + int(cfg%3)}
		got := extract(tf, text)
		if want := refExtract(tf, text); !slices.Equal(got, want) {
			t.Fatalf("Extract(%q) differs from the reference", text)
		}
		n := norm2(got)
		if n != 0 && math.Abs(n-1) > 1e-6 {
			t.Fatalf("norm %v", n)
		}
	})
}

func BenchmarkTextExtract(b *testing.B) {
	tf := DefaultTextFeatures()
	text := strings.Repeat("The quick brown fox jumps over the lazy dog; naïve café reviews are GREAT! ", 4)
	out := make([]float32, tf.Dim)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tf.Extract(text, out)
	}
}
