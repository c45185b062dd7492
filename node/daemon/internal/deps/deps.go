// Package deps holds what the daemon's services share about their dependencies: naming the
// required ones that are missing, the logger a service uses when given none, and the
// interfaces several services take (the node's signer, the mesh's gossip).
package deps

import (
	"errors"
	"fmt"
	"log/slog"
)

// Required is one dependency a service cannot start without.
type Required struct {
	Name  string
	IsNil bool
}

// Missing names every required dependency that is nil, in one error (nil when none is).
func Missing(deps ...Required) error {
	var missing []error
	for _, d := range deps {
		if d.IsNil {
			missing = append(missing, fmt.Errorf("deps: %s is nil", d.Name))
		}
	}
	return errors.Join(missing...)
}

// Logger is l, or a logger that discards everything when l is nil.
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
