package querysvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"

	"github.com/meshnode/meshnode/routing"
)

// gateKey is where the gating expert's feedback (the domains callers chose for their texts) is
// kept in the Feedback store.
const gateKey = "/gate/feedback"

// LoadGate restores the gating expert's feedback from the Feedback store (none stored: none
// restored). From the first call on, Close saves the feedback back, even if this one failed.
func (s *Service) LoadGate(ctx context.Context) error {
	s.gateLoaded.Store(true)
	b, err := s.feedback.Get(ctx, ds.NewKey(gateKey))
	if errors.Is(err, ds.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load gate feedback: %w", err)
	}
	var exs []routing.GateExample
	if err := json.Unmarshal(b, &exs); err != nil {
		return fmt.Errorf("load gate feedback: %w", err)
	}
	for _, ex := range exs {
		s.gate.Observe(ex.Text, ex.Domain)
	}
	return nil
}

// saveGate stores the gating expert's feedback.
func (s *Service) saveGate(ctx context.Context) error {
	b, err := json.Marshal(s.gate.Feedback())
	if err != nil {
		return fmt.Errorf("save gate feedback: %w", err)
	}
	if err := s.feedback.Put(ctx, ds.NewKey(gateKey), b); err != nil {
		return fmt.Errorf("save gate feedback: %w", err)
	}
	return nil
}
