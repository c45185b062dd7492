package trainsvc

import (
	"errors"
	"net/http"

	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon/internal/httpx"
)

// Handle turns a function answering a request with a value or an error into the API's
// handler: the value as JSON, or the error with the status and code of its kind (the API's
// handle).
type Handle = httpx.Handle

// Routes registers the training API on mux: start, join and leave a job, and list the jobs.
func (s *Service) Routes(mux *http.ServeMux, handle Handle) {
	mux.HandleFunc("POST "+api.PathTrainStart, handle(func(r *http.Request) (any, error) {
		var req api.TrainStartRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return s.startJob(r.Context(), req)
	}))
	mux.HandleFunc("POST "+api.PathTrainJoin, handle(func(r *http.Request) (any, error) {
		var req api.TrainJoinRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		if req.Job == "" || req.Dataset == "" {
			return nil, api.ErrBadRequest.Wrap(errors.New("train join: job and dataset are required"))
		}
		return s.join(r.Context(), req.Job, req.Dataset)
	}))
	mux.HandleFunc("POST "+api.PathTrainLeave, handle(func(r *http.Request) (any, error) {
		var req api.TrainJoinRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return map[string]string{"left": req.Job}, s.leave(r.Context(), req.Job)
	}))
	mux.HandleFunc("GET "+api.PathTrainJobs, handle(func(r *http.Request) (any, error) {
		return s.jobs(), nil
	}))
}

// decodeBody reads a JSON request body of at most api.MaxBodyBytes into v, refusing unknown
// fields.
func decodeBody(r *http.Request, v any) error { return httpx.DecodeBody(r, v, api.MaxBodyBytes) }
