package node

import (
	"context"
	"fmt"

	"github.com/meshnode/meshnode/distill/validate"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/node/api"
)

// ValidateExperts benchmarks every expert of the store (the `validate` command on a repo
// folder), handing req.Progress each expert before it is measured.
func (r *Repo) ValidateExperts(ctx context.Context, cat dataset.Catalog, req api.ValidateRequest) (*validate.Report, error) {
	st, err := r.Store()
	if err != nil {
		return nil, err
	}
	list, err := st.ListExperts(ctx)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("%w: the repo at %s hosts no experts", validate.ErrNoExperts, r.Path))
	}
	o := validate.Options{Level: req.Level, Catalog: cat, Suites: req.Suites, Seed: req.Seed}
	if req.Progress != nil {
		o.Progress = func(done, total int, name string) {
			req.Progress(api.ValidateProgress{Done: done, Total: total, Expert: name})
		}
	}
	for _, ent := range list {
		m, err := st.GetExpert(ctx, ent.ID)
		if err != nil {
			return nil, fmt.Errorf("validate %s: %w", ent.ID, err)
		}
		w, err := st.Weights(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("validate %s: %w", ent.ID, err)
		}
		ex, err := validate.NewExpert(ctx, r.Path+"#"+ent.ID.String(), m, w)
		if err != nil {
			return nil, fmt.Errorf("validate %s: %w", ent.ID, err)
		}
		o.Experts = append(o.Experts, ex)
	}
	rep, err := validate.Run(ctx, "", o)
	if err != nil {
		return nil, api.ErrBadRequest.Wrap(fmt.Errorf("validate: %w", err))
	}
	return rep, nil
}
