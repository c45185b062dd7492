package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/node"
)

// maxTrainJobs bounds the trainings the API runs at once (each takes a core or more).
const maxTrainJobs = 2

// trainHandler runs `expert train` in the daemon (the daemon owns the store): it trains,
// stores the expert signed by this node, and streams node.TrainEvents, one per epoch and then
// the result or the error. The client closing the request cancels the training. The expert
// can be served the moment the result arrives.
func (d *Daemon) trainHandler() http.HandlerFunc {
	slots := make(chan struct{}, maxTrainJobs)
	return func(w http.ResponseWriter, r *http.Request) {
		var req node.TrainRequest
		if err := decodeStrict(r, &req); err != nil {
			d.handle(func(*http.Request) (any, error) { return nil, err })(w, r)
			return
		}
		if path, ok := strings.CutPrefix(req.Dataset, "csv:"); ok && !filepath.IsAbs(path) {
			d.handle(func(*http.Request) (any, error) {
				return nil, badRequest{fmt.Errorf("train: dataset %q: the daemon needs an absolute path", req.Dataset)}
			})(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			d.handle(func(*http.Request) (any, error) {
				return nil, errFull{errors.New("train: the daemon runs as many trainings as it takes; try again when one ends")}
			})(w, r)
			return
		}
		stream := ndjson(w) // a client that went away cancels the training through its context
		send := func(ev node.TrainEvent) { stream(ev) }
		req.Progress = func(s experts.EpochStats) { send(node.TrainEvent{Progress: &s}) }
		rep, err := d.Repo.TrainExpert(r.Context(), dataset.DefaultCatalog(), req)
		if err != nil {
			d.log.Info("training through the API ended", "dataset", req.Dataset, "err", err)
			send(node.TrainEvent{Error: err.Error()})
			return
		}
		d.log.Info("trained an expert through the API", "id", rep.ID, "name", rep.Manifest.Name)
		send(node.TrainEvent{Result: rep})
	}
}

// expertOpsRoutes serves the store's other commands (eval, export, import) for a CLI that
// finds the daemon holding the store. Paths are absolute: the daemon's working folder is not
// the command's.
func (d *Daemon) expertOpsRoutes(mux *http.ServeMux) {
	local := node.LocalOps{Repo: d.Repo, Catalog: dataset.DefaultCatalog()}
	mux.HandleFunc("POST "+node.PathExpertEval, d.handle(func(r *http.Request) (any, error) {
		var req node.EvalRequest
		if err := decodeStrict(r, &req); err != nil {
			return nil, err
		}
		if path, ok := strings.CutPrefix(req.Dataset, "csv:"); ok && !filepath.IsAbs(path) {
			return nil, badRequest{fmt.Errorf("eval: dataset %q: the daemon needs an absolute path", req.Dataset)}
		}
		rep, err := local.EvalExpert(r.Context(), req.Ref, req.Dataset, req.Limit)
		return rep, asBadRequest(err)
	}))
	mux.HandleFunc("POST "+node.PathExpertExport, d.handle(func(r *http.Request) (any, error) {
		var req node.ExportRequest
		if err := decodeStrict(r, &req); err != nil {
			return nil, err
		}
		if !filepath.IsAbs(req.Path) {
			return nil, badRequest{fmt.Errorf("export: path %q is not absolute", req.Path)}
		}
		rep, err := local.ExportExpert(r.Context(), req.Ref, req.Path)
		return rep, asBadRequest(err)
	}))
	mux.HandleFunc("POST "+node.PathExpertImport, d.handle(func(r *http.Request) (any, error) {
		var req node.ExpertImportRequest
		if err := decodeStrict(r, &req); err != nil {
			return nil, err
		}
		if !filepath.IsAbs(req.Path) {
			return nil, badRequest{fmt.Errorf("import: path %q is not absolute", req.Path)}
		}
		rep, err := local.ImportExpert(r.Context(), req.Path, req.ImportOptions)
		return rep, asBadRequest(err)
	}))
}

// asBadRequest marks a command's failure as the request's (a missing file, an unknown expert
// or data set), except a missing expert, which stays 404.
func asBadRequest(err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return err
	}
	return badRequest{err}
}
