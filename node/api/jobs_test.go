package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// RunJob reads a job's stream: progress lines, then a result, an error of a kind, or nothing
// (interrupted); a refusal before the stream keeps its kind.
func TestRunJobReadsEveryEnding(t *testing.T) {
	answers := map[string]func(w http.ResponseWriter){
		"/result": func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, `{"progress":1}`+"\n"+`{"progress":2}`+"\n"+`{"result":"done"}`+"\n")
		},
		"/error": func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, `{"progress":1}`+"\n"+`{"error":"no such data set","code":"bad_request"}`+"\n")
		},
		"/cut": func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"progress":1}`+"\n") },
		"/busy": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"as many jobs as it takes","code":"unavailable"}`)
		},
		"/garbage": func(w http.ResponseWriter) { _, _ = io.WriteString(w, "not json\n") },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answers[r.URL.Path](w) }))
	defer srv.Close()
	c := &Client{base: srv.URL, http: srv.Client()}
	for _, tc := range []struct {
		path     string
		result   string
		kind     *ErrorKind
		progress int
	}{
		{"/result", "done", nil, 2},
		{"/error", "", ErrBadRequest, 1},
		{"/cut", "", ErrInterrupted, 1},
		{"/busy", "", ErrUnavailable, 0},
		{"/garbage", "", nil, 0},
	} {
		seen := 0
		got, err := RunJob[int, string](t.Context(), c, tc.path, struct{}{}, func(int) { seen++ })
		switch {
		case tc.result != "":
			if err != nil || got == nil || *got != tc.result {
				t.Errorf("%s: %v, %v; want %q", tc.path, got, err, tc.result)
			}
		case tc.kind != nil:
			if !errors.Is(err, tc.kind) {
				t.Errorf("%s: %v, want an error of kind %s", tc.path, err, tc.kind.Code)
			}
		default:
			var ce *CallError
			if err == nil || errors.As(err, &ce) {
				t.Errorf("%s: %v, want a client-side error (the daemon's answer is not a job stream)", tc.path, err)
			}
		}
		if seen != tc.progress {
			t.Errorf("%s: %d progress lines handed on, want %d", tc.path, seen, tc.progress)
		}
	}
}
