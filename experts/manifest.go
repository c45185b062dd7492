package experts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multihash"
)

// ManifestVersion is the version of the manifest schema this package writes and reads.
const ManifestVersion = 1

// MaxManifestSize bounds an encoded manifest; anything larger is rejected before decoding.
const MaxManifestSize = 256 << 10

// ErrInvalidManifest marks every manifest that fails to decode or validate.
var ErrInvalidManifest = errors.New("invalid manifest")

// Input kinds.
const (
	InputVector = "vector"
	InputText   = "text"
	InputImage  = "image"
)

// Output kinds.
const (
	OutputClasses = "classes"
	OutputVector  = "vector"
)

// Relations of a parent link.
const (
	RelTrainedFrom   = "trained-from"   // further training of the parent
	RelDistilledFrom = "distilled-from" // the parent was the teacher
	RelFederated     = "federated-round"
	RelImported      = "imported"
)

// InputSpec says what an expert takes and how raw input becomes its feature vector.
type InputSpec struct {
	Kind       string `json:"kind"`       // vector | text | image
	Dim        int    `json:"dim"`        // width of the feature vector
	Preprocess string `json:"preprocess"` // canonical spec of the feature extraction ("" for vectors)
}

// OutputSpec says what an expert returns.
type OutputSpec struct {
	Kind   string   `json:"kind"` // classes | vector
	Dim    int      `json:"dim"`
	Labels []string `json:"labels,omitempty"` // one per class
}

// Parent links a version to the version it came from.
type Parent struct {
	ID       cid.Cid `json:"id"`
	Relation string  `json:"relation"`
}

// EvalResult is one measured quality figure, with the data it was measured on.
type EvalResult struct {
	Dataset string  `json:"dataset"` // e.g. "fashion-mnist:test"
	Digest  string  `json:"digest"`  // sha256 of the exact evaluation data
	Samples int     `json:"samples"`
	Metric  string  `json:"metric"` // accuracy | loss | mse | ...
	Value   float64 `json:"value"`
}

// Manifest describes one version of a micro-expert. Its canonical encoding is IPLD dag-cbor and
// the CID of that encoding (CIDv1, dag-cbor, sha2-256) is the expert's ID.
type Manifest struct {
	Name        string            `json:"name"`
	Domains     []string          `json:"domains"`
	Input       InputSpec         `json:"input"`
	Output      OutputSpec        `json:"output"`
	Arch        Arch              `json:"arch"`
	Params      int               `json:"params"`
	Weights     cid.Cid           `json:"weights"`
	WeightsSize int64             `json:"weights_size"`
	Parents     []Parent          `json:"parents,omitempty"`
	Evals       []EvalResult      `json:"evals,omitempty"`
	Meta        map[string]string `json:"meta,omitempty"` // how it was made: dataset, seed, epochs...
	Publisher   string            `json:"publisher,omitempty"`
	Signature   []byte            `json:"signature,omitempty"`
}

// Validate checks the manifest's fields against each other.
func (m *Manifest) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidManifest, fmt.Sprintf(format, a...))
	}
	if m.Name == "" || len(m.Name) > 200 {
		return bad("name must have 1 to 200 bytes")
	}
	for _, d := range m.Domains {
		if d == "" || len(d) > 64 {
			return bad("domain tag %q must have 1 to 64 bytes", d)
		}
	}
	if err := m.Arch.Validate(); err != nil {
		return bad("%v", err)
	}
	switch m.Input.Kind {
	case InputVector, InputText, InputImage:
	default:
		return bad("unknown input kind %q", m.Input.Kind)
	}
	if m.Input.Dim != m.Arch.Input {
		return bad("input dimension %d does not match the architecture's %d", m.Input.Dim, m.Arch.Input)
	}
	if err := m.Input.Validate(); err != nil {
		return bad("input: %v", err)
	}
	switch m.Output.Kind {
	case OutputClasses:
		if m.Arch.Output != OutputSoftmax {
			return bad("class output needs a softmax head")
		}
		if len(m.Output.Labels) != m.Output.Dim {
			return bad("%d labels for %d classes", len(m.Output.Labels), m.Output.Dim)
		}
	case OutputVector:
		if len(m.Output.Labels) != 0 {
			return bad("vector output has labels")
		}
	default:
		return bad("unknown output kind %q", m.Output.Kind)
	}
	if m.Output.Dim != m.Arch.OutputDim() {
		return bad("output dimension %d does not match the architecture's %d", m.Output.Dim, m.Arch.OutputDim())
	}
	if m.Params != m.Arch.ParamCount() {
		return bad("declares %d parameters, the architecture has %d", m.Params, m.Arch.ParamCount())
	}
	if !m.Weights.Defined() {
		return bad("no weights link")
	}
	if m.WeightsSize <= 0 {
		return bad("weights size %d must be positive", m.WeightsSize)
	}
	for i, p := range m.Parents {
		if !p.ID.Defined() || p.Relation == "" {
			return bad("parent %d needs an ID and a relation", i)
		}
	}
	for i, e := range m.Evals {
		if e.Dataset == "" || e.Metric == "" || e.Samples < 0 || math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
			return bad("evaluation %d: needs a dataset, a metric, samples ≥ 0 and a finite value", i)
		}
	}
	if len(m.Signature) > 0 && m.Publisher == "" {
		return bad("signature without a publisher")
	}
	return nil
}

// Encode returns the canonical dag-cbor encoding of the manifest.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	n, err := m.toNode(true)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	var buf bytes.Buffer
	if err := encodeNode(n, &buf); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return buf.Bytes(), nil
}

func encodeNode(n datamodel.Node, w io.Writer) error { return dagcbor.Encode(n, w) }

// SigningBytes is what a publisher signs: the canonical encoding without the signature.
func (m *Manifest) SigningBytes() ([]byte, error) {
	c := *m
	c.Signature = nil
	return c.Encode()
}

// CID computes the manifest's ID.
func (m *Manifest) CID() (cid.Cid, error) {
	b, err := m.Encode()
	if err != nil {
		return cid.Undef, err
	}
	return ManifestCID(b)
}

// ManifestCID is the CID of an encoded manifest: CIDv1, dag-cbor, sha2-256.
func ManifestCID(encoded []byte) (cid.Cid, error) {
	h, err := multihash.Sum(encoded, multihash.SHA2_256, -1)
	if err != nil {
		return cid.Undef, fmt.Errorf("hash manifest: %w", err)
	}
	return cid.NewCidV1(cid.DagCBOR, h), nil
}

// DecodeManifest parses and validates an encoded manifest. It accepts only the canonical
// encoding, so one manifest has exactly one CID.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrInvalidManifest, len(b), MaxManifestSize)
	}
	nb := basicnode.Prototype.Any.NewBuilder()
	opts := dagcbor.DecodeOptions{AllowLinks: true, AllocationBudget: 4 * MaxManifestSize}
	if err := opts.Decode(nb, bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: dag-cbor: %v", ErrInvalidManifest, err)
	}
	m, err := manifestFromNode(nb.Build())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	again, err := m.Encode()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical dag-cbor form", ErrInvalidManifest)
	}
	return m, nil
}

// DecodeManifestWithCID decodes b and checks that it is the manifest named id.
func DecodeManifestWithCID(id cid.Cid, b []byte) (*Manifest, error) {
	got, err := ManifestCID(b)
	if err != nil {
		return nil, err
	}
	if !got.Equals(id) {
		return nil, fmt.Errorf("%w: bytes hash to %s, not %s", ErrInvalidManifest, got, id)
	}
	return DecodeManifest(b)
}

func (m *Manifest) toNode(withSig bool) (datamodel.Node, error) {
	metaKeys := make([]string, 0, len(m.Meta))
	for k := range m.Meta {
		metaKeys = append(metaKeys, k)
	}
	sort.Strings(metaKeys)
	return qp.BuildMap(basicnode.Prototype.Any, -1, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "v", qp.Int(ManifestVersion))
		qp.MapEntry(ma, "name", qp.String(m.Name))
		qp.MapEntry(ma, "domains", stringList(m.Domains))
		qp.MapEntry(ma, "input", qp.Map(3, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "kind", qp.String(m.Input.Kind))
			qp.MapEntry(ma, "dim", qp.Int(int64(m.Input.Dim)))
			qp.MapEntry(ma, "preprocess", qp.String(m.Input.Preprocess))
		}))
		qp.MapEntry(ma, "output", qp.Map(3, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "kind", qp.String(m.Output.Kind))
			qp.MapEntry(ma, "dim", qp.Int(int64(m.Output.Dim)))
			qp.MapEntry(ma, "labels", stringList(m.Output.Labels))
		}))
		qp.MapEntry(ma, "arch", qp.Map(4, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "input", qp.Int(int64(m.Arch.Input)))
			qp.MapEntry(ma, "normalize", qp.Bool(m.Arch.Normalize))
			qp.MapEntry(ma, "output", qp.String(m.Arch.Output))
			qp.MapEntry(ma, "layers", qp.List(int64(len(m.Arch.Layers)), func(la datamodel.ListAssembler) {
				for _, l := range m.Arch.Layers {
					qp.ListEntry(la, qp.Map(4, func(ma datamodel.MapAssembler) {
						qp.MapEntry(ma, "kind", qp.String(l.Kind))
						qp.MapEntry(ma, "units", qp.Int(int64(l.Units)))
						qp.MapEntry(ma, "hidden", qp.Int(int64(l.Hidden)))
						qp.MapEntry(ma, "activation", qp.String(l.Activation))
					}))
				}
			}))
		}))
		qp.MapEntry(ma, "params", qp.Int(int64(m.Params)))
		qp.MapEntry(ma, "weights", qp.Link(cidlink.Link{Cid: m.Weights}))
		qp.MapEntry(ma, "weightsSize", qp.Int(m.WeightsSize))
		qp.MapEntry(ma, "parents", qp.List(int64(len(m.Parents)), func(la datamodel.ListAssembler) {
			for _, p := range m.Parents {
				qp.ListEntry(la, qp.Map(2, func(ma datamodel.MapAssembler) {
					qp.MapEntry(ma, "id", qp.Link(cidlink.Link{Cid: p.ID}))
					qp.MapEntry(ma, "relation", qp.String(p.Relation))
				}))
			}
		}))
		qp.MapEntry(ma, "evals", qp.List(int64(len(m.Evals)), func(la datamodel.ListAssembler) {
			for _, e := range m.Evals {
				qp.ListEntry(la, qp.Map(5, func(ma datamodel.MapAssembler) {
					qp.MapEntry(ma, "dataset", qp.String(e.Dataset))
					qp.MapEntry(ma, "digest", qp.String(e.Digest))
					qp.MapEntry(ma, "samples", qp.Int(int64(e.Samples)))
					qp.MapEntry(ma, "metric", qp.String(e.Metric))
					qp.MapEntry(ma, "value", qp.Float(e.Value))
				}))
			}
		}))
		qp.MapEntry(ma, "meta", qp.Map(int64(len(metaKeys)), func(ma datamodel.MapAssembler) {
			for _, k := range metaKeys {
				qp.MapEntry(ma, k, qp.String(m.Meta[k]))
			}
		}))
		qp.MapEntry(ma, "publisher", qp.String(m.Publisher))
		if withSig {
			qp.MapEntry(ma, "signature", qp.Bytes(m.Signature))
		}
	})
}

func stringList(s []string) qp.Assemble {
	return qp.List(int64(len(s)), func(la datamodel.ListAssembler) {
		for _, v := range s {
			qp.ListEntry(la, qp.String(v))
		}
	})
}
