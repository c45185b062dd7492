package apisvc

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/meshnode/meshnode/node/api"
)

// jobSlots bounds how many jobs of one kind the daemon runs at once.
type jobSlots chan struct{}

func newJobSlots(n int) jobSlots { return make(jobSlots, n) }

// runJob answers a job (api.JobEvent): a busy daemon refuses it before any work (503), else
// its progress lines stream as work reports them, then its result or error. The client going
// away cancels work through r's context; a daemon that stops mid-job ends the answer without a
// result, which the client reports as interrupted (api.ErrInterrupted).
func runJob[P, R any](w http.ResponseWriter, r *http.Request, slots jobSlots, work func(ctx context.Context, progress func(P)) (*R, error)) {
	if slots != nil {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			writeError(w, api.ErrUnavailable.Wrap(errors.New("the daemon runs as many jobs of this kind as it takes; try again when one ends")))
			return
		}
	}
	send := ndjson(w)
	rep, err := work(r.Context(), func(p P) { send(api.JobEvent[P, R]{Progress: &p}) })
	if err != nil && errors.Is(context.Cause(r.Context()), errStopping) {
		err = api.ErrInterrupted.Wrap(fmt.Errorf("interrupted: the daemon stopped during the job, which stored nothing; run it again (%w)", err))
	}
	send(api.ResultEvent[P](rep, err))
}
