package apisvc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/meshnode/meshnode/distill/kd"
	"github.com/meshnode/meshnode/distill/validate"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/node/api"
)

// maxTrainJobs bounds the trainings the API runs at once (each takes a core or more), and
// maxValidateJobs the validations (each measures latency, which a second one would disturb).
const (
	maxTrainJobs    = 2
	maxValidateJobs = 1
)

// trainHandler runs `expert train` in the daemon (the daemon owns the store): it trains,
// stores the expert signed by this node, and streams node.TrainEvents, one per epoch and then
// the result or the error. The client closing the request cancels the training. The expert
// can be served the moment the result arrives.
func (s *Service) trainHandler() http.HandlerFunc {
	slots := newJobSlots(maxTrainJobs)
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.TrainRequest
		err := decodeStrict(r, &req)
		if err == nil {
			err = needAbsoluteDataset("train", req.Dataset)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		runJob(w, r, slots, func(ctx context.Context, progress func(experts.EpochStats)) (*api.TrainReport, error) {
			req.Progress = progress
			rep, err := s.ops.TrainExpert(ctx, req)
			if err != nil {
				s.log.Info("training through the API ended", "dataset", req.Dataset, "err", err)
				return nil, asBadRequest(err)
			}
			s.log.Info("trained an expert through the API", "id", rep.ID, "name", rep.Manifest.Name)
			return rep, nil
		})
	}
}

// needAbsoluteDataset refuses a csv:PATH data set whose path is relative: the daemon's working
// folder is not the command's.
func needAbsoluteDataset(what, ds string) error {
	if path, ok := strings.CutPrefix(ds, "csv:"); ok && !filepath.IsAbs(path) {
		return api.ErrBadRequest.Errorf("%s: dataset %q: the daemon needs an absolute path", what, ds)
	}
	return nil
}

// expertOpsRoutes serves the store's other commands (eval, export, import, inspect, validate) for a CLI that
// finds the daemon holding the store. Paths are absolute: the daemon's working folder is not
// the command's.
func (s *Service) expertOpsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+api.PathExpertEval, handle(func(r *http.Request) (any, error) {
		var req api.EvalRequest
		if err := decodeStrict(r, &req); err != nil {
			return nil, err
		}
		if err := needAbsoluteDataset("eval", req.Dataset); err != nil {
			return nil, err
		}
		rep, err := s.ops.EvalExpert(r.Context(), req.Ref, req.Dataset, req.Limit)
		return rep, asBadRequest(err)
	}))
	mux.HandleFunc("POST "+api.PathExpertExport, handle(func(r *http.Request) (any, error) {
		var req api.ExportRequest
		if err := decodeStrict(r, &req); err != nil {
			return nil, err
		}
		if !filepath.IsAbs(req.Path) {
			return nil, api.ErrBadRequest.Wrap(fmt.Errorf("export: path %q is not absolute", req.Path))
		}
		rep, err := s.ops.ExportExpert(r.Context(), req.Ref, req.Path)
		return rep, asBadRequest(err)
	}))
	mux.HandleFunc("GET "+api.PathExpertInspect, handle(func(r *http.Request) (any, error) {
		ref := r.URL.Query().Get("ref")
		if ref == "" {
			return nil, api.ErrBadRequest.Errorf("inspect: ?ref= (an expert's ID or name) is missing")
		}
		return s.ops.InspectExpert(r.Context(), ref)
	}))
	validateSlots := newJobSlots(maxValidateJobs)
	mux.HandleFunc("POST "+api.PathValidate, func(w http.ResponseWriter, r *http.Request) {
		var req api.ValidateRequest
		err := decodeStrict(r, &req)
		for _, suite := range req.Suites {
			if err == nil && !filepath.IsAbs(suite) {
				err = api.ErrBadRequest.Errorf("validate: suite %q: the daemon needs an absolute path", suite)
			}
		}
		if err != nil {
			writeError(w, err)
			return
		}
		runJob(w, r, validateSlots, func(ctx context.Context, progress func(api.ValidateProgress)) (*validate.Report, error) {
			req.Progress = progress
			return s.ops.ValidateExperts(ctx, req)
		})
	})
	distillSlots := newJobSlots(maxTrainJobs)
	mux.HandleFunc("POST "+api.PathDistill, func(w http.ResponseWriter, r *http.Request) {
		var req api.DistillRequest
		err := decodeStrict(r, &req)
		if err == nil {
			err = needAbsoluteDataset("distill", req.Dataset)
		}
		for _, p := range []string{req.Output, req.Calibration, req.Prompts} {
			if err == nil && p != "" && !filepath.IsAbs(p) {
				err = api.ErrBadRequest.Errorf("distill: path %q: the daemon needs an absolute path", p)
			}
		}
		if err == nil && req.Output == "" {
			err = api.ErrBadRequest.Errorf("distill: output is missing")
		}
		if err != nil {
			writeError(w, err)
			return
		}
		runJob(w, r, distillSlots, func(ctx context.Context, progress func(kd.Progress)) (*api.DistillResult, error) {
			req.Progress = progress
			res, err := s.ops.Distill(ctx, req)
			if err == nil {
				s.log.Info("distilled an expert through the API", "teacher", req.Teacher, "id", res.Report.ExpertID)
			}
			return res, err
		})
	})
	mux.HandleFunc("POST "+api.PathGenerate, func(w http.ResponseWriter, r *http.Request) {
		var req api.GenerateRequest
		err := decodeStrict(r, &req)
		for _, p := range []string{req.AnalysisDir, req.ModelPath, req.Calibration, req.Output} {
			if err == nil && p != "" && !filepath.IsAbs(p) {
				err = api.ErrBadRequest.Errorf("generate: path %q: the daemon needs an absolute path", p)
			}
		}
		if err != nil {
			writeError(w, err)
			return
		}
		runJob(w, r, distillSlots, func(ctx context.Context, progress func(api.GenerateProgress)) (*api.GenerateResult, error) {
			req.Progress = progress
			return s.ops.Generate(ctx, req)
		})
	})
	mux.HandleFunc("POST "+api.PathExpertImport, handle(func(r *http.Request) (any, error) {
		var req api.ExpertImportRequest
		if err := decodeStrict(r, &req); err != nil {
			return nil, err
		}
		if !filepath.IsAbs(req.Path) {
			return nil, api.ErrBadRequest.Wrap(fmt.Errorf("import: path %q is not absolute", req.Path))
		}
		rep, err := s.ops.ImportExpert(r.Context(), req.Path, req.ImportOptions)
		return rep, asBadRequest(err)
	}))
}

// asBadRequest marks a command's failure as the request's (a missing file, an unknown expert
// or data set), except a missing expert, which stays 404.
func asBadRequest(err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return err
	}
	return api.ErrBadRequest.Wrap(err)
}
