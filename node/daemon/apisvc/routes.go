package apisvc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/mesh/blobs"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon/internal/httpx"
)

// routes is the API's route table, the registrars' routes among them (after the blob and
// store routes, before metrics), without the token check.
func (s *Service) routes(registrars []func(*http.ServeMux, Handle)) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathID, handle(func(r *http.Request) (any, error) {
		return api.IDInfo{PeerID: s.host.ID().String(), Addrs: s.node.Addrs()}, nil
	}))
	mux.HandleFunc("GET "+api.PathStatus, handle(s.status))
	mux.HandleFunc("GET "+api.PathPeers, handle(s.peers))
	mux.HandleFunc("GET "+api.PathExperts, handle(s.hosted))
	mux.HandleFunc("GET "+api.PathRemote, handle(func(r *http.Request) (any, error) {
		return s.adverts.List(time.Now()), nil
	}))
	mux.HandleFunc("POST "+api.PathServe, handle(func(r *http.Request) (any, error) {
		req, err := decodeServe(r)
		if err != nil {
			return nil, err
		}
		svc, err := s.node.Serve(r.Context(), req.Ref)
		if err != nil {
			return nil, err
		}
		return struct {
			advert.Service
			Exposure string `json:"exposure"`
		}{svc, s.market.ExposureOf(r.Context(), svc.ID)}, nil
	}))
	mux.HandleFunc("POST "+api.PathUnserve, handle(func(r *http.Request) (any, error) {
		req, err := decodeServe(r)
		if err != nil {
			return nil, err
		}
		return map[string]string{"unserved": req.Ref}, s.node.Unserve(r.Context(), req.Ref)
	}))
	mux.HandleFunc("POST "+api.PathQuery, handle(func(r *http.Request) (any, error) {
		var q api.QueryRequest
		if err := httpx.DecodeBodyAs(r, &q, maxQueryBody, "query body"); err != nil {
			return nil, err
		}
		return s.queries.Query(r.Context(), q)
	}))
	mux.HandleFunc("GET "+api.PathRoutes, handle(func(r *http.Request) (any, error) {
		return s.queries.Routes(time.Now()), nil
	}))
	s.blobRoutes(mux)
	for _, register := range registrars {
		register(mux, handle)
	}
	mux.Handle("GET "+api.PathMetrics, promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	return mux
}

// authenticate lets through to next only the requests that carry the token (Authorization:
// Bearer <token>), answering the others unauthorized; the dashboard page (GET PathUI) is ui's,
// without a token.
func authenticate(token string, next http.Handler, ui http.HandlerFunc) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == PathUI {
			ui(w, r) // static, no data: the page itself calls the API with the token
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			writeError(w, api.ErrUnauthorized.Wrap(errors.New("missing or wrong API token (Authorization: Bearer <repo api.token>)")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// handle answers f's value as JSON, or its error with the status and code of its kind
// (api.KindOf: the API's error table).
func handle(f func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// maxQueryBody bounds a query's body (16 MiB: an image is its input).
const maxQueryBody = 16 << 20

// decodeStrict reads a JSON request body of at most 1 MiB into v, refusing unknown fields.
func decodeStrict(r *http.Request, v any) error { return httpx.DecodeBody(r, v, 1<<20) }

// decodeServe reads the body of serve and unserve ({"ref": ID or name}).
func decodeServe(r *http.Request) (api.ServeRequest, error) {
	var req api.ServeRequest
	if err := httpx.DecodeBodyAs(r, &req, api.MaxBodyBytes, `request body: want {"ref": ID or name}`); err != nil {
		return req, err
	}
	if req.Ref == "" {
		return req, api.ErrBadRequest.Wrap(errors.New("request body: ref is empty"))
	}
	return req, nil
}

func (s *Service) status(r *http.Request) (any, error) {
	hosted, err := s.store.ListExperts(r.Context())
	if err != nil {
		return nil, err
	}
	return api.StatusInfo{
		PeerID: s.host.ID().String(), Addrs: s.node.Addrs(),
		Peers: len(s.host.Network().Peers()), Served: s.adverts.Served(), Hosted: len(hosted),
		RemoteAdverts: len(s.adverts.List(time.Now())), UptimeSeconds: time.Since(s.started).Seconds(),
		Reachability: s.node.Reachability(),
	}, nil
}

func (s *Service) peers(*http.Request) (any, error) {
	out := []api.PeerInfo{}
	h := s.host
	for _, p := range h.Network().Peers() {
		pi := api.PeerInfo{ID: p.String(), LatencyMS: float64(h.Peerstore().LatencyEWMA(p).Microseconds()) / 1000}
		conns := h.Network().ConnsToPeer(p)
		pi.Relayed = len(conns) > 0
		for _, c := range conns {
			pi.Addrs = append(pi.Addrs, c.RemoteMultiaddr().String())
			pi.Relayed = pi.Relayed && c.Stat().Limited
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Service) hosted(r *http.Request) (any, error) {
	served := map[string]bool{}
	for _, svc := range s.adverts.Served() {
		served[svc.ID] = true
	}
	return s.repo.HostedExperts(r.Context(), func(id string) bool { return served[id] })
}

// withTimeout bounds a blob route's work: the body's timeout_ms, default 60 s.
func withTimeout(r *http.Request, body cidBody) (context.Context, context.CancelFunc) {
	d := 60 * time.Second
	if body.TimeoutMS > 0 {
		d = time.Duration(body.TimeoutMS) * time.Millisecond
	}
	return context.WithTimeout(r.Context(), d)
}

// fetchHandler answers a fetch request ({"cid", "timeout_ms", "progress"}): with progress, as
// newline-delimited node.FetchEvents (progress at most every 200 ms, then the result or the
// error); without, as one BlobInfo.
func (s *Service) fetchHandler(fetch func(context.Context, cid.Cid) (api.BlobInfo, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, c, err := decodeCIDBody(r)
		ctx, cancel := withTimeout(r, body)
		defer cancel()
		if err != nil || !body.Progress {
			handle(func(*http.Request) (any, error) {
				if err != nil {
					return nil, err
				}
				return fetch(ctx, c)
			})(w, r)
			return
		}
		runJob(w, r, nil, func(_ context.Context, progress func(api.FetchProgress)) (*api.BlobInfo, error) {
			var mu sync.Mutex
			var sent time.Time
			info, err := fetch(s.blobs.WithProgress(ctx, func(p blobs.Progress) {
				mu.Lock()
				defer mu.Unlock()
				if time.Since(sent) < 200*time.Millisecond && (p.Total == 0 || p.Bytes < p.Total) {
					return
				}
				sent = time.Now()
				progress(api.FetchProgress{Bytes: p.Bytes, Total: p.Total, Received: p.Received,
					Blocks: p.Blocks, Seconds: p.Elapsed.Seconds()})
			}), c)
			mu.Lock() // no progress line after the result
			defer mu.Unlock()
			if err != nil {
				return nil, err
			}
			return &info, nil
		})
	}
}

func (s *Service) blobRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+api.PathBlobPut, func(w http.ResponseWriter, r *http.Request) {
		var req api.BlobPutRequest
		err := decodeStrict(r, &req)
		if err == nil && !filepath.IsAbs(req.Path) {
			err = api.ErrBadRequest.Errorf("blob put: path %q is not absolute", req.Path)
		}
		if err != nil || !req.Stream {
			handle(func(r *http.Request) (any, error) {
				if err != nil {
					return nil, err
				}
				return s.blobs.Put(r.Context(), req)
			})(w, r)
			return
		}
		runJob(w, r, nil, func(ctx context.Context, progress func(api.BlobPutProgress)) (*api.BlobInfo, error) {
			req.Progress = progress
			info, err := s.blobs.Put(ctx, req)
			return &info, err
		})
	})
	cidHandler := func(f func(context.Context, cid.Cid) (any, error)) http.HandlerFunc {
		return handle(func(r *http.Request) (any, error) {
			body, c, err := decodeCIDBody(r)
			if err != nil {
				return nil, err
			}
			ctx, cancel := withTimeout(r, body)
			defer cancel()
			return f(ctx, c)
		})
	}
	mux.HandleFunc("POST "+api.PathBlobFetch, s.fetchHandler(s.blobs.Fetch))
	mux.HandleFunc("POST "+api.PathExpertFetch, s.fetchHandler(s.blobs.FetchExpert))
	mux.HandleFunc("POST "+api.PathExpertTrain, s.trainHandler())
	s.expertOpsRoutes(mux)
	mux.HandleFunc("POST "+api.PathBlobPin, cidHandler(func(ctx context.Context, c cid.Cid) (any, error) {
		return map[string]string{"pinned": c.String()}, s.pins.Pin(ctx, c)
	}))
	mux.HandleFunc("POST "+api.PathBlobUnpin, cidHandler(func(ctx context.Context, c cid.Cid) (any, error) {
		return map[string]string{"unpinned": c.String()}, s.pins.Unpin(ctx, c)
	}))
	mux.HandleFunc("POST "+api.PathBlobGC, handle(func(r *http.Request) (any, error) { return s.blobs.GC(r.Context()) }))
	mux.HandleFunc("GET "+api.PathBlobCat, func(w http.ResponseWriter, r *http.Request) {
		c, err := cid.Decode(r.URL.Query().Get("cid"))
		if err != nil {
			writeError(w, api.ErrBadRequest.Wrap(errors.New("cat: ?cid= is not a CID")))
			return
		}
		rd, size, err := s.store.OpenBlob(r.Context(), c)
		if err != nil {
			writeError(w, err)
			return
		}
		defer rd.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		_, _ = io.Copy(w, rd) // a client that goes away ends the copy
	})
}

// ndjson starts a streamed 200 answer of newline-delimited JSON and returns what sends one
// line (safe for concurrent use; each line is flushed at once).
func ndjson(w http.ResponseWriter) func(v any) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	var mu sync.Mutex
	return func(v any) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(v) // a write to a client that went away fails; its request's context ends the work
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// writeError answers a failure: its message, with the status and code of its kind.
func writeError(w http.ResponseWriter, err error) {
	kind := api.KindOf(err)
	writeJSON(w, kind.Status, api.APIError{Error: err.Error(), Code: kind.Code})
}

// cidBody is the body of the blob routes that name one CID: fetch, expert fetch, pin, unpin.
type cidBody struct {
	CID       string `json:"cid"`
	TimeoutMS int    `json:"timeout_ms"` // bounds the work (withTimeout)
	Progress  bool   `json:"progress"`   // a fetch answers as a job's lines
}

// decodeCIDBody reads a request body of the form {"cid": ..., "timeout_ms": ..., "progress": ...}
// (only cid required), and its CID.
func decodeCIDBody(r *http.Request) (cidBody, cid.Cid, error) {
	var body cidBody
	if err := httpx.DecodeBodyAs(r, &body, api.MaxBodyBytes, `request body: want {"cid": ...}`); err != nil {
		return body, cid.Undef, err
	}
	c, err := cid.Decode(body.CID)
	if err != nil {
		return body, cid.Undef, api.ErrBadRequest.Wrap(fmt.Errorf("%q is not a CID: %w", body.CID, err))
	}
	return body, c, nil
}
