package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/mesh/advert"
)

// ServiceOf describes a stored expert as the mesh advertises it.
func ServiceOf(id cid.Cid, m *experts.Manifest) advert.Service {
	s := advert.Service{ID: id.String(), Weights: m.Weights.String(), Name: m.Name, Domains: m.Domains, Params: m.Params, Spec: SpecDigest(m)}
	for _, e := range m.Evals {
		if e.Metric == "accuracy" {
			s.Quality = e.Value
			break
		}
	}
	return s
}

// SpecDigest identifies an expert's interface: what it takes and what it returns. Two experts
// with one digest accept the same queries and answer in the same terms.
func SpecDigest(m *experts.Manifest) string {
	b, _ := json.Marshal(struct { // plain structs, cannot fail
		In  experts.InputSpec  `json:"in"`
		Out experts.OutputSpec `json:"out"`
	}{m.Input, m.Output})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}
