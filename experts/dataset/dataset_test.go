package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// synth returns a data set with n samples of dim features whose first
// feature is the sample index, labelled round-robin-ish by the counts in
// perClass (class c gets perClass[c] samples).
func synth(dim int, perClass []int) *Dataset {
	d := &Dataset{Name: "synth", Dim: dim}
	for c, n := range perClass {
		d.Classes = append(d.Classes, string(rune('a'+c)))
		for range n {
			i := len(d.Y)
			row := make([]float32, dim)
			row[0] = float32(i)
			for j := 1; j < dim; j++ {
				row[j] = float32(c*1000 + j)
			}
			d.X = append(d.X, row...)
			d.Y = append(d.Y, c)
		}
	}
	return d
}

func TestDatasetBasics(t *testing.T) {
	d := synth(3, []int{2, 3})
	if d.Len() != 5 {
		t.Fatalf("Len = %d, want 5", d.Len())
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := d.Row(4); !slices.Equal(got, []float32{4, 1001, 1002}) {
		t.Errorf("Row(4) = %v", got)
	}
	if got := d.ClassCounts(); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("ClassCounts = %v", got)
	}
	// Row is a view with capped capacity.
	r := d.Row(1)
	r[0] = 42
	if d.X[3] != 42 {
		t.Error("Row is not a view into X")
	}
	if cap(r) != 3 {
		t.Errorf("cap(Row) = %d, want 3", cap(r))
	}
	r[0] = 1

	s := d.Subset("sub", []int{4, 0, 4})
	if s.Name != "sub" || s.Len() != 3 || s.Dim != 3 {
		t.Fatalf("Subset = %+v", s)
	}
	if !slices.Equal(s.Y, []int{1, 0, 1}) || !slices.Equal(s.Row(1), d.Row(0)) {
		t.Errorf("Subset rows wrong: %+v", s)
	}
	s.X[0], s.Classes[0] = -1, "changed"
	if d.X[12] == -1 || d.Classes[0] == "changed" {
		t.Error("Subset shares memory with the original")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		d    Dataset
		want string
	}{
		{"dim0", Dataset{Dim: 0, Classes: []string{"a"}}, "dim 0"},
		{"shape", Dataset{Dim: 2, X: []float32{1}, Y: []int{0}, Classes: []string{"a"}}, "len(X)"},
		{"noclasses", Dataset{Dim: 1}, "no classes"},
		{"label", Dataset{Dim: 1, X: []float32{1}, Y: []int{1}, Classes: []string{"a"}}, "label 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.d.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestDigest(t *testing.T) {
	d := synth(2, []int{3, 3})
	base := d.Digest()
	if len(base) != 64 {
		t.Fatalf("digest %q is not hex sha256", base)
	}
	if d.Digest() != base {
		t.Fatal("digest not deterministic")
	}
	renamed := d.Subset("other name", []int{0, 1, 2, 3, 4, 5})
	if renamed.Digest() != base {
		t.Error("digest depends on the name")
	}
	mutations := map[string]func(*Dataset){
		"x":       func(d *Dataset) { d.X[5] += 1 },
		"negzero": func(d *Dataset) { d.X[0] = float32(negZero()) },
		"y":       func(d *Dataset) { d.Y[0] = 1 },
		"class":   func(d *Dataset) { d.Classes[1] = "B" },
		"classes": func(d *Dataset) { d.Classes = append(d.Classes, "c") },
		// Same X bytes, different shape.
		"dim": func(d *Dataset) { d.Dim = 4; d.Y = d.Y[:3] },
		"order": func(d *Dataset) {
			*d = *d.Subset("", []int{1, 0, 2, 3, 4, 5})
		},
	}
	for name, mut := range mutations {
		c := d.Subset("c", []int{0, 1, 2, 3, 4, 5})
		mut(c)
		if c.Digest() == base {
			t.Errorf("mutation %s does not change the digest", name)
		}
	}
	// The encoding is part of the contract between nodes: rebuild it by hand.
	small := &Dataset{Dim: 2, X: []float32{0, 1, 0.5, -2}, Y: []int{0, 1}, Classes: []string{"neg", "pos"}}
	var enc []byte
	enc = append(enc, "meshnode/dataset/v1\n"...)
	enc = append(enc, 2, 0, 0, 0, 0, 0, 0, 0) // dim
	enc = append(enc, 2, 0, 0, 0, 0, 0, 0, 0) // classes
	enc = append(enc, 3, 0, 0, 0, 0, 0, 0, 0, 'n', 'e', 'g')
	enc = append(enc, 3, 0, 0, 0, 0, 0, 0, 0, 'p', 'o', 's')
	enc = append(enc, 2, 0, 0, 0, 0, 0, 0, 0) // samples
	enc = append(enc,
		0x00, 0x00, 0x00, 0x00, // 0
		0x00, 0x00, 0x80, 0x3f, // 1
		0x00, 0x00, 0x00, 0x3f, // 0.5
		0x00, 0x00, 0x00, 0xc0) // -2
	enc = append(enc, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0)
	sum := sha256.Sum256(enc)
	if got, want := small.Digest(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Digest = %s, want %s", got, want)
	}
}

func negZero() float64 {
	z := 0.0
	return -z
}

func TestSplit(t *testing.T) {
	d := synth(2, []int{50, 30, 7, 1, 0})
	tests := []struct {
		frac        float64
		wantSecond  []int // per class
		wantFailure bool
	}{
		{0.2, []int{10, 6, 1, 0, 0}, false},
		{0.5, []int{25, 15, 4, 1, 0}, false}, // math.Round: 3.5 -> 4, 0.5 -> 1
		{0, []int{0, 0, 0, 0, 0}, false},
		{1, []int{50, 30, 7, 1, 0}, false},
		{-0.1, nil, true},
		{1.1, nil, true},
	}
	for _, tt := range tests {
		a, b, err := d.Split(tt.frac, 7)
		if tt.wantFailure {
			if err == nil {
				t.Errorf("Split(%v) succeeded", tt.frac)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Split(%v): %v", tt.frac, err)
		}
		if got := b.ClassCounts(); !slices.Equal(got, tt.wantSecond) {
			t.Errorf("Split(%v) second counts = %v, want %v", tt.frac, got, tt.wantSecond)
		}
		// Disjoint and complete: the first feature is the original index.
		seen := make([]int, d.Len())
		for _, part := range []*Dataset{a, b} {
			if err := part.Validate(); err != nil && part.Len() > 0 {
				t.Fatal(err)
			}
			for i := range part.Len() {
				orig := int(part.Row(i)[0])
				seen[orig]++
				if part.Y[i] != d.Y[orig] || !slices.Equal(part.Row(i), d.Row(orig)) {
					t.Fatalf("row %d of a part does not match original %d", i, orig)
				}
			}
		}
		for i, n := range seen {
			if n != 1 {
				t.Fatalf("Split(%v): sample %d appears %d times", tt.frac, i, n)
			}
		}
	}

	a1, b1, _ := d.Split(0.3, 99)
	a2, b2, _ := d.Split(0.3, 99)
	if a1.Digest() != a2.Digest() || b1.Digest() != b2.Digest() {
		t.Error("Split is not deterministic for a seed")
	}
	a3, _, _ := d.Split(0.3, 100)
	if a3.Digest() == a1.Digest() {
		t.Error("different seeds gave the same split")
	}
	// The parts are shuffled, not in class order.
	if slices.IsSorted(a1.Y) {
		t.Error("first part is in class order; want a seeded random order")
	}

	bad := &Dataset{Dim: 1, X: []float32{1}, Y: []int{3}, Classes: []string{"a"}}
	if _, _, err := bad.Split(0.5, 1); err == nil {
		t.Error("Split accepted an out-of-range label")
	}
}
