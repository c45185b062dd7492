package experts

import (
	"fmt"
	"math"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/datamodel"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
)

// mapReader reads the fields of one IPLD map, remembering the first error and which keys were
// read, so a decoder can demand exactly the schema's keys.
type mapReader struct {
	n    datamodel.Node
	path string
	err  error
	seen map[string]bool
}

func newMapReader(n datamodel.Node, path string) *mapReader {
	r := &mapReader{n: n, path: path, seen: map[string]bool{}}
	if n.Kind() != datamodel.Kind_Map {
		r.err = fmt.Errorf("%s: want a map, got %s", path, n.Kind())
	}
	return r
}

func (r *mapReader) field(key string) datamodel.Node {
	if r.err != nil {
		return nil
	}
	r.seen[key] = true
	v, err := r.n.LookupByString(key)
	if err != nil {
		r.err = fmt.Errorf("%s: missing field %q", r.path, key)
		return nil
	}
	return v
}

func (r *mapReader) fail(key, want string, v datamodel.Node) {
	if r.err == nil {
		r.err = fmt.Errorf("%s.%s: want %s, got %s", r.path, key, want, v.Kind())
	}
}

func (r *mapReader) str(key string) string {
	v := r.field(key)
	if v == nil {
		return ""
	}
	s, err := v.AsString()
	if err != nil {
		r.fail(key, "a string", v)
	}
	return s
}

func (r *mapReader) integer(key string, lo, hi int64) int64 {
	v := r.field(key)
	if v == nil {
		return 0
	}
	i, err := v.AsInt()
	if err != nil {
		r.fail(key, "an integer", v)
		return 0
	}
	if i < lo || i > hi {
		if r.err == nil {
			r.err = fmt.Errorf("%s.%s: %d outside [%d, %d]", r.path, key, i, lo, hi)
		}
		return 0
	}
	return i
}

func (r *mapReader) boolean(key string) bool {
	v := r.field(key)
	if v == nil {
		return false
	}
	b, err := v.AsBool()
	if err != nil {
		r.fail(key, "a boolean", v)
	}
	return b
}

func (r *mapReader) float(key string) float64 {
	v := r.field(key)
	if v == nil {
		return 0
	}
	f, err := v.AsFloat()
	if err != nil {
		r.fail(key, "a float", v)
	}
	return f
}

func (r *mapReader) bytes(key string) []byte {
	v := r.field(key)
	if v == nil {
		return nil
	}
	b, err := v.AsBytes()
	if err != nil {
		r.fail(key, "bytes", v)
	}
	return b
}

func (r *mapReader) link(key string) cid.Cid {
	v := r.field(key)
	if v == nil {
		return cid.Undef
	}
	l, err := v.AsLink()
	if err != nil {
		r.fail(key, "a link", v)
		return cid.Undef
	}
	cl, ok := l.(cidlink.Link)
	if !ok {
		r.fail(key, "a CID link", v)
		return cid.Undef
	}
	return cl.Cid
}

// list calls each for every element of the list at key.
func (r *mapReader) list(key string, each func(i int, v datamodel.Node) error) {
	v := r.field(key)
	if v == nil {
		return
	}
	if v.Kind() != datamodel.Kind_List {
		r.fail(key, "a list", v)
		return
	}
	it := v.ListIterator()
	for !it.Done() {
		i, e, err := it.Next()
		if err == nil {
			err = each(int(i), e)
		}
		if err != nil {
			r.err = fmt.Errorf("%s.%s[%d]: %w", r.path, key, i, err)
			return
		}
	}
}

func (r *mapReader) strings(key string) []string {
	var out []string
	r.list(key, func(_ int, v datamodel.Node) error {
		s, err := v.AsString()
		if err != nil {
			return fmt.Errorf("want a string, got %s", v.Kind())
		}
		out = append(out, s)
		return nil
	})
	return out
}

// done reports the first error, or an unknown key if the map has keys that were never read.
func (r *mapReader) done() error {
	if r.err != nil {
		return r.err
	}
	if int(r.n.Length()) != len(r.seen) {
		it := r.n.MapIterator()
		for !it.Done() {
			k, _, err := it.Next()
			if err != nil {
				return fmt.Errorf("%s: %w", r.path, err)
			}
			ks, _ := k.AsString()
			if !r.seen[ks] {
				return fmt.Errorf("%s: unknown field %q", r.path, ks)
			}
		}
	}
	return nil
}

func manifestFromNode(n datamodel.Node) (*Manifest, error) {
	r := newMapReader(n, "manifest")
	if v := r.integer("v", 0, math.MaxInt32); r.err == nil && v != ManifestVersion {
		return nil, fmt.Errorf("manifest version %d, this node reads version %d", v, ManifestVersion)
	}
	m := &Manifest{
		Name:        r.str("name"),
		Domains:     r.strings("domains"),
		Params:      int(r.integer("params", 0, math.MaxInt32)),
		Weights:     r.link("weights"),
		WeightsSize: r.integer("weightsSize", 0, math.MaxInt64),
		Publisher:   r.str("publisher"),
		Signature:   r.bytes("signature"),
	}
	sub := func(key string, fill func(*mapReader)) {
		v := r.field(key)
		if v == nil {
			return
		}
		s := newMapReader(v, r.path+"."+key)
		fill(s)
		if err := s.done(); err != nil && r.err == nil {
			r.err = err
		}
	}
	sub("input", func(s *mapReader) {
		m.Input = InputSpec{Kind: s.str("kind"), Dim: int(s.integer("dim", 0, math.MaxInt32)), Preprocess: s.str("preprocess")}
	})
	sub("output", func(s *mapReader) {
		m.Output = OutputSpec{Kind: s.str("kind"), Dim: int(s.integer("dim", 0, math.MaxInt32)), Labels: s.strings("labels")}
	})
	sub("arch", func(s *mapReader) {
		m.Arch = Arch{Input: int(s.integer("input", 0, math.MaxInt32)), Normalize: s.boolean("normalize"), Output: s.str("output")}
		s.list("layers", func(_ int, v datamodel.Node) error {
			l := newMapReader(v, "layer")
			spec := LayerSpec{Kind: l.str("kind"), Units: int(l.integer("units", 0, math.MaxInt32)),
				Hidden: int(l.integer("hidden", 0, math.MaxInt32)), Activation: l.str("activation")}
			m.Arch.Layers = append(m.Arch.Layers, spec)
			return l.done()
		})
	})
	r.list("parents", func(_ int, v datamodel.Node) error {
		p := newMapReader(v, "parent")
		m.Parents = append(m.Parents, Parent{ID: p.link("id"), Relation: p.str("relation")})
		return p.done()
	})
	r.list("evals", func(_ int, v datamodel.Node) error {
		e := newMapReader(v, "eval")
		m.Evals = append(m.Evals, EvalResult{Dataset: e.str("dataset"), Digest: e.str("digest"),
			Samples: int(e.integer("samples", 0, math.MaxInt32)), Metric: e.str("metric"), Value: e.float("value")})
		return e.done()
	})
	sub("meta", func(s *mapReader) {
		if s.err != nil {
			return
		}
		m.Meta = map[string]string{}
		it := s.n.MapIterator()
		for !it.Done() {
			k, v, err := it.Next()
			if err != nil {
				s.err = err
				return
			}
			ks, _ := k.AsString()
			s.seen[ks] = true
			vs, err := v.AsString()
			if err != nil {
				s.fail(ks, "a string", v)
				return
			}
			m.Meta[ks] = vs
		}
	})
	if err := r.done(); err != nil {
		return nil, err
	}
	return m, m.Validate()
}
