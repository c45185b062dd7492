package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
)

// Dataset is a labelled data set: a dense row-major float32 matrix with one
// class index per row.
type Dataset struct {
	Name    string    // e.g. "fashion-mnist:train", "iris"
	Dim     int       // features per sample
	X       []float32 // Len()*Dim, row-major
	Y       []int     // class index per sample, in [0, len(Classes))
	Classes []string  // label names
}

// Len returns the number of samples.
func (d *Dataset) Len() int { return len(d.Y) }

// Row returns sample i's features as a view into X (not a copy). It panics if
// i is out of range, like a slice index.
func (d *Dataset) Row(i int) []float32 {
	return d.X[i*d.Dim : (i+1)*d.Dim : (i+1)*d.Dim]
}

// Subset returns a new data set named name holding copies of the rows idx
// (in that order; repeats allowed). Classes are copied too, so the result
// shares no memory with d. It panics on an out-of-range index.
func (d *Dataset) Subset(name string, idx []int) *Dataset {
	out := &Dataset{
		Name:    name,
		Dim:     d.Dim,
		X:       make([]float32, len(idx)*d.Dim),
		Y:       make([]int, len(idx)),
		Classes: append([]string(nil), d.Classes...),
	}
	for j, i := range idx {
		copy(out.X[j*d.Dim:(j+1)*d.Dim], d.Row(i))
		out.Y[j] = d.Y[i]
	}
	return out
}

// Validate checks the internal consistency of d: Dim ≥ 1, len(X) ==
// Len()*Dim, at least one class and every label in range.
func (d *Dataset) Validate() error {
	if d.Dim < 1 {
		return fmt.Errorf("dataset %q: dim %d < 1", d.Name, d.Dim)
	}
	if len(d.X) != len(d.Y)*d.Dim {
		return fmt.Errorf("dataset %q: len(X)=%d, want Len()*Dim=%d*%d", d.Name, len(d.X), len(d.Y), d.Dim)
	}
	if len(d.Classes) == 0 {
		return fmt.Errorf("dataset %q: no classes", d.Name)
	}
	for i, y := range d.Y {
		if y < 0 || y >= len(d.Classes) {
			return fmt.Errorf("dataset %q: sample %d has label %d outside [0,%d)", d.Name, i, y, len(d.Classes))
		}
	}
	return nil
}

// digestMagic starts the canonical encoding hashed by Digest; bump the
// version if the encoding ever changes.
const digestMagic = "meshnode/dataset/v1\n"

// Digest returns the hex SHA-256 of a canonical encoding of the data, which
// identifies the exact data an evaluation ran on. The Name is not included.
// The encoding is, with all integers little-endian:
//
//	"meshnode/dataset/v1\n"
//	uint64 Dim
//	uint64 len(Classes), then for each class: uint64 byte length, UTF-8 bytes
//	uint64 Len()
//	X: Len()*Dim float32 values as their IEEE-754 bits (uint32)
//	Y: Len() labels as int64
func (d *Dataset) Digest() string {
	h := sha256.New()
	buf := make([]byte, 0, 64<<10)
	flush := func() {
		h.Write(buf)
		buf = buf[:0]
	}
	buf = append(buf, digestMagic...)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(d.Dim))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(d.Classes)))
	for _, c := range d.Classes {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(len(c)))
		flush()
		h.Write([]byte(c))
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(d.Y)))
	for _, v := range d.X {
		if len(buf)+4 > cap(buf) {
			flush()
		}
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	for _, y := range d.Y {
		if len(buf)+8 > cap(buf) {
			flush()
		}
		buf = binary.LittleEndian.AppendUint64(buf, uint64(int64(y)))
	}
	flush()
	return hex.EncodeToString(h.Sum(nil))
}

// ClassCounts returns the number of samples per class (len(Classes) entries).
// Labels outside [0, len(Classes)) are ignored.
func (d *Dataset) ClassCounts() []int {
	counts := make([]int, len(d.Classes))
	for _, y := range d.Y {
		if y >= 0 && y < len(counts) {
			counts[y]++
		}
	}
	return counts
}

// NewRand returns the package's deterministic generator for seed:
// rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)). Every seeded
// operation in this package uses it, so results are reproducible across
// machines and Go releases.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Split returns a stratified seeded split: round(frac*n_c) samples of each
// class c go to second, the rest to first. Both parts are in the same
// seeded random order (a permutation of the rows), so truncating a part
// keeps it a random sample. Deterministic for a seed. The parts are named
// Name+":first" and Name+":second"; callers usually rename them.
//
// frac must be in [0, 1]; every label must be in [0, len(Classes)).
func (d *Dataset) Split(frac float64, seed uint64) (first, second *Dataset, err error) {
	if !(frac >= 0 && frac <= 1) {
		return nil, nil, fmt.Errorf("dataset %q: split fraction %v not in [0,1]", d.Name, frac)
	}
	if d.Dim < 1 || len(d.X) != len(d.Y)*d.Dim {
		return nil, nil, fmt.Errorf("dataset %q: inconsistent shape (dim %d, len(X) %d, len(Y) %d)", d.Name, d.Dim, len(d.X), len(d.Y))
	}
	counts := make([]int, len(d.Classes))
	for i, y := range d.Y {
		if y < 0 || y >= len(counts) {
			return nil, nil, fmt.Errorf("dataset %q: sample %d has label %d outside [0,%d)", d.Name, i, y, len(counts))
		}
		counts[y]++
	}
	want := make([]int, len(counts)) // samples of each class still owed to second
	for c, n := range counts {
		want[c] = int(math.Round(frac * float64(n)))
	}
	perm := NewRand(seed).Perm(d.Len())
	var a, b []int
	for _, i := range perm {
		if c := d.Y[i]; want[c] > 0 {
			want[c]--
			b = append(b, i)
		} else {
			a = append(a, i)
		}
	}
	return d.Subset(d.Name+":first", a), d.Subset(d.Name+":second", b), nil
}
