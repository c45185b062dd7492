package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/meshnode/meshnode/experts"
)

// MaxWeightsSize bounds a weights blob: 4 bytes a parameter for a few million parameters.
const MaxWeightsSize = 64 << 20

// Entry is the index record of a hosted expert.
type Entry struct {
	ID      cid.Cid   `json:"id"`
	Name    string    `json:"name"`
	Domains []string  `json:"domains"`
	Params  int       `json:"params"`
	Added   time.Time `json:"added"`
}

// PutExpert stores an expert version: its weights blob, its manifest block and an index entry.
// The weights must hash to the manifest's weights CID and decode to its architecture. Putting
// an expert that is already stored is a no-op that returns the same ID.
func (s *Store) PutExpert(ctx context.Context, m *experts.Manifest, weights []byte) (cid.Cid, error) {
	enc, err := m.Encode()
	if err != nil {
		return cid.Undef, fmt.Errorf("put expert %q: %w", m.Name, err)
	}
	id, err := experts.ManifestCID(enc)
	if err != nil {
		return cid.Undef, err
	}
	if err := CheckWeights(ctx, m, weights); err != nil {
		return cid.Undef, fmt.Errorf("put expert %s: %w", id, err)
	}
	wc, _, err := s.PutBlob(ctx, bytes.NewReader(weights))
	if err != nil {
		return cid.Undef, fmt.Errorf("put expert %s: %w", id, err)
	}
	if !wc.Equals(m.Weights) { // CheckWeights computed the same import; this is a loud invariant
		return cid.Undef, fmt.Errorf("put expert %s: stored weights as %s, manifest names %s", id, wc, m.Weights)
	}
	blk, err := blocks.NewBlockWithCid(enc, id)
	if err != nil {
		return cid.Undef, fmt.Errorf("put expert %s: %w", id, err)
	}
	if err := s.blocks.Put(ctx, blk); err != nil {
		return cid.Undef, fmt.Errorf("put expert %s: store manifest: %w", id, err)
	}
	if err := s.addEntry(ctx, id, m); err != nil {
		return cid.Undef, fmt.Errorf("put expert %s: %w", id, err)
	}
	return id, nil
}

// addEntry adds an expert's index entry unless it has one.
func (s *Store) addEntry(ctx context.Context, id cid.Cid, m *experts.Manifest) error {
	if old, err := s.entry(ctx, id); err == nil && old.ID.Defined() {
		return nil
	}
	e := Entry{ID: id, Name: m.Name, Domains: m.Domains, Params: m.Params, Added: time.Now().UTC()}
	rec, _ := json.Marshal(e) // plain struct, cannot fail
	if err := s.index.Put(ctx, ds.NewKey(id.String()), rec); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// Install hosts an expert whose manifest block and weights blob are already in the block store
// (fetched by bitswap, every block checked against its CID): it decodes the manifest block id
// names, checks that the weights are the blob it links and decode to its architecture, and adds
// the index entry. Unlike PutExpert it writes no block again. It returns the manifest and the
// network.
func (s *Store) Install(ctx context.Context, id cid.Cid) (*experts.Manifest, *experts.Network, error) {
	raw, err := s.GetManifestBytes(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	m, err := experts.DecodeManifestWithCID(id, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("install expert %s: %w", id, err)
	}
	_, n, err := s.weights(ctx, m)
	if err != nil {
		return nil, nil, fmt.Errorf("install expert %s: %w", id, err)
	}
	if err := s.addEntry(ctx, id, m); err != nil {
		return nil, nil, fmt.Errorf("install expert %s: %w", id, err)
	}
	return m, n, nil
}

// CheckWeights verifies that weights are the blob the manifest links to and that they decode to
// the manifest's architecture.
func CheckWeights(ctx context.Context, m *experts.Manifest, weights []byte) error {
	_, err := checkAndDecode(ctx, m, weights)
	return err
}

// checkAndDecode is CheckWeights returning the network it decoded.
func checkAndDecode(ctx context.Context, m *experts.Manifest, weights []byte) (*experts.Network, error) {
	if int64(len(weights)) != m.WeightsSize {
		return nil, fmt.Errorf("weights are %d bytes, the manifest says %d", len(weights), m.WeightsSize)
	}
	wc, _, err := BlobCID(ctx, bytes.NewReader(weights))
	if err != nil {
		return nil, err
	}
	if !wc.Equals(m.Weights) {
		return nil, fmt.Errorf("weights hash to %s, the manifest names %s", wc, m.Weights)
	}
	n, err := experts.DecodeWeights(weights)
	if err != nil {
		return nil, err
	}
	if n.Arch.MarshalCanonical() != m.Arch.MarshalCanonical() {
		return nil, fmt.Errorf("weights hold architecture %s, the manifest says %s", n.Arch, m.Arch)
	}
	return n, nil
}

// GetManifestBytes returns the encoded manifest of a stored expert.
func (s *Store) GetManifestBytes(ctx context.Context, id cid.Cid) ([]byte, error) {
	blk, err := s.blocks.Get(ctx, id)
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("expert %s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("expert %s: %w", id, err)
	}
	return blk.RawData(), nil
}

// GetExpert returns a stored expert's manifest, checked against its ID.
func (s *Store) GetExpert(ctx context.Context, id cid.Cid) (*experts.Manifest, error) {
	b, err := s.GetManifestBytes(ctx, id)
	if err != nil {
		return nil, err
	}
	m, err := experts.DecodeManifestWithCID(id, b)
	if err != nil {
		return nil, fmt.Errorf("expert %s: %w", id, err)
	}
	return m, nil
}

// Weights returns the weights blob of a manifest, checked against it.
func (s *Store) Weights(ctx context.Context, m *experts.Manifest) ([]byte, error) {
	b, _, err := s.weights(ctx, m)
	return b, err
}

// weights reads and checks a manifest's weights blob, and returns the network it decodes to.
func (s *Store) weights(ctx context.Context, m *experts.Manifest) ([]byte, *experts.Network, error) {
	if m.WeightsSize > MaxWeightsSize {
		return nil, nil, fmt.Errorf("weights of %q: %d bytes is over the %d-byte limit", m.Name, m.WeightsSize, MaxWeightsSize)
	}
	b, err := s.ReadBlob(ctx, m.Weights, m.WeightsSize)
	if err != nil {
		return nil, nil, fmt.Errorf("weights of %q: %w", m.Name, err)
	}
	n, err := checkAndDecode(ctx, m, b)
	if err != nil {
		return nil, nil, fmt.Errorf("weights of %q: %w", m.Name, err)
	}
	return b, n, nil
}

// LoadNetwork loads a manifest's network from its stored weights (checked against it).
func (s *Store) LoadNetwork(ctx context.Context, m *experts.Manifest) (*experts.Network, error) {
	_, n, err := s.weights(ctx, m)
	return n, err
}

func (s *Store) entry(ctx context.Context, id cid.Cid) (Entry, error) {
	b, err := s.index.Get(ctx, ds.NewKey(id.String()))
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, fmt.Errorf("index entry %s: %w", id, err)
	}
	return e, nil
}

// ListExperts returns the hosted experts, oldest first.
func (s *Store) ListExperts(ctx context.Context) ([]Entry, error) {
	res, err := s.index.Query(ctx, dsq.Query{})
	if err != nil {
		return nil, fmt.Errorf("list experts: %w", err)
	}
	defer res.Close()
	var out []Entry
	for r := range res.Next() {
		if r.Error != nil {
			return nil, fmt.Errorf("list experts: %w", r.Error)
		}
		var e Entry
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return nil, fmt.Errorf("list experts: entry %s: %w", r.Key, err)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Added.Equal(out[j].Added) {
			return out[i].Added.Before(out[j].Added)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out, nil
}

// Resolve turns what a user typed into an expert ID: a full CID, or the name of a hosted expert
// (the most recently added one of that name).
func (s *Store) Resolve(ctx context.Context, ref string) (cid.Cid, error) {
	if c, err := cid.Decode(ref); err == nil {
		if has, err := s.blocks.Has(ctx, c); err != nil {
			return cid.Undef, fmt.Errorf("resolve %s: %w", ref, err)
		} else if !has {
			return cid.Undef, fmt.Errorf("expert %s: %w", ref, ErrNotFound)
		}
		return c, nil
	}
	list, err := s.ListExperts(ctx)
	if err != nil {
		return cid.Undef, err
	}
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Name == ref {
			return list[i].ID, nil
		}
	}
	return cid.Undef, fmt.Errorf("expert %q: no hosted expert has that ID or name: %w", ref, ErrNotFound)
}

// AddNetwork encodes n's weights, completes m from the network (architecture, parameter count,
// input and output widths, weights link and size), signs it when signer is not nil, and stores
// the expert. It returns the new ID; m is updated in place.
func (s *Store) AddNetwork(ctx context.Context, m *experts.Manifest, n *experts.Network, signer experts.Signer) (cid.Cid, error) {
	weights, err := experts.EncodeWeights(n)
	if err != nil {
		return cid.Undef, err
	}
	wc, size, err := BlobCID(ctx, bytes.NewReader(weights))
	if err != nil {
		return cid.Undef, err
	}
	m.Arch, m.Params = n.Arch, n.ParamCount()
	m.Input.Dim, m.Output.Dim = n.Arch.Input, n.OutputDim()
	m.Weights, m.WeightsSize = wc, size
	if signer != nil {
		if err := m.Sign(signer); err != nil {
			return cid.Undef, err
		}
	}
	return s.PutExpert(ctx, m, weights)
}
