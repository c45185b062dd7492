package node

import (
	"context"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	"github.com/meshnode/meshnode/node/api"
)

// servedRecords is the store's namespace of the experts a node serves (ID -> {}), written by
// the daemon's serve and unserve and read again at its start.
const servedRecords = "/served"

// ServedRecords is the datastore of the experts the node serves, remembered across restarts.
func (r *Repo) ServedRecords() (ds.Datastore, error) {
	st, err := r.Store()
	if err != nil {
		return nil, err
	}
	return st.Datastore(servedRecords), nil
}

// HostedExperts lists the store's experts. Served says whether each is served: isServed when
// given (a running daemon's adverts), else the remembered serve records (what a daemon serves
// when it starts).
func (r *Repo) HostedExperts(ctx context.Context, isServed func(id string) bool) ([]api.HostedExpert, error) {
	st, err := r.Store()
	if err != nil {
		return nil, err
	}
	list, err := st.ListExperts(ctx)
	if err != nil {
		return nil, err
	}
	if isServed == nil {
		served, err := r.ServedRecords()
		if err != nil {
			return nil, err
		}
		isServed = func(id string) bool {
			has, err := served.Has(ctx, ds.NewKey(id))
			return err == nil && has
		}
	}
	out := []api.HostedExpert{}
	for _, e := range list {
		out = append(out, api.HostedExpert{Entry: e, Served: isServed(e.ID.String())})
	}
	return out, nil
}

// InspectExpert reads a hosted expert's manifest and checks its signature.
func (r *Repo) InspectExpert(ctx context.Context, ref string) (*api.InspectReport, error) {
	_, id, m, err := r.Expert(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", ref, err)
	}
	sig := "valid"
	if err := m.Verify(VerifyPeerSignature); err != nil {
		sig = err.Error()
	}
	return &api.InspectReport{ID: id.String(), Signature: sig, Manifest: m}, nil
}
