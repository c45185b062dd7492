package experts

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func rawCID(t testing.TB, data string) cid.Cid {
	t.Helper()
	h, err := multihash.Sum([]byte(data), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func sampleManifest(t testing.TB) *Manifest {
	a := MLP(4, []int{8}, "relu", 3, OutputSoftmax)
	return &Manifest{
		Name:        "iris-small",
		Domains:     []string{"botany", "tabular"},
		Input:       InputSpec{Kind: InputVector, Dim: 4},
		Output:      OutputSpec{Kind: OutputClasses, Dim: 3, Labels: []string{"setosa", "versicolor", "virginica"}},
		Arch:        a,
		Params:      a.ParamCount(),
		Weights:     rawCID(t, "weights"),
		WeightsSize: 1234,
		Parents:     []Parent{{ID: rawCID(t, "parent"), Relation: RelTrainedFrom}},
		Evals:       []EvalResult{{Dataset: "iris:test", Digest: "ab12", Samples: 30, Metric: "accuracy", Value: 0.9666}},
		Meta:        map[string]string{"seed": "1", "epochs": "50"},
	}
}

type edSigner struct {
	id  string
	key ed25519.PrivateKey
}

func (s edSigner) ID() string                      { return s.id }
func (s edSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

func TestManifestRoundTripAndCID(t *testing.T) {
	m := sampleManifest(t)
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := sampleManifest(t).Encode()
	if !bytes.Equal(b, again) {
		t.Fatal("two encodings of one manifest differ")
	}
	got, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(m) {
		t.Fatalf("round trip changed the manifest:\n got %+v\nwant %+v", got, m)
	}
	id, _ := m.CID()
	if id.Prefix().Codec != cid.DagCBOR || id.Prefix().MhType != multihash.SHA2_256 || id.Version() != 1 {
		t.Fatalf("ID %s is not CIDv1 dag-cbor sha2-256", id)
	}
	if _, err := DecodeManifestWithCID(id, b); err != nil {
		t.Fatal(err)
	}
	m.Evals[0].Value = 0.97
	other, _ := m.CID()
	if other.Equals(id) {
		t.Fatal("changing an evaluation did not change the ID")
	}
	if _, err := DecodeManifestWithCID(other, b); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("bytes under the wrong ID: got %v, want ErrInvalidManifest", err)
	}
}

func TestManifestSignatures(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	verify := func(publisher string, msg, sig []byte) error {
		if publisher != "alice" || !ed25519.Verify(pub, msg, sig) {
			return errors.New("bad signature")
		}
		return nil
	}
	m := sampleManifest(t)
	if err := m.Verify(verify); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned: got %v", err)
	}
	if err := m.Sign(edSigner{"alice", priv}); err != nil {
		t.Fatal(err)
	}
	b, _ := m.Encode()
	dec, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Verify(verify); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	dec.Name = "iris-evil"
	if err := dec.Verify(verify); err == nil {
		t.Fatal("a renamed manifest kept a valid signature")
	}
}

func TestDecodeManifestRejectsBadInput(t *testing.T) {
	good, _ := sampleManifest(t).Encode()
	mutate := func(f func(m *Manifest)) []byte {
		m := sampleManifest(t)
		f(m)
		n, err := m.toNode(true)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := encodeNode(n, &buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	cases := []struct {
		name, want string
		b          []byte
	}{
		{"empty", "dag-cbor", nil},
		{"truncated", "dag-cbor", good[:len(good)/2]},
		{"not a map", "want a map", []byte{0x01}},
		{"params lie", "parameters", mutate(func(m *Manifest) { m.Params++ })},
		{"labels short", "labels", mutate(func(m *Manifest) { m.Output.Labels = m.Output.Labels[:2] })},
		{"input dim", "input dimension", mutate(func(m *Manifest) { m.Input.Dim = 5 })},
		{"kind", "input kind", mutate(func(m *Manifest) { m.Input.Kind = "smell" })},
		{"oversized", "limit", make([]byte, MaxManifestSize+1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeManifest(tc.b)
			if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalidManifest mentioning %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeManifest: decoding never panics, and whatever decodes re-encodes to the same bytes.
func FuzzDecodeManifest(f *testing.F) {
	good, _ := sampleManifest(f).Encode()
	f.Add(good)
	f.Add(good[:40])
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			return
		}
		again, err := m.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded manifest does not re-encode to its bytes: %v", err)
		}
	})
}
