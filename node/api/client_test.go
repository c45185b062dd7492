package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestClientErrors: every way of calling the daemon turns a non-200 answer into the daemon's
// own message when it sent one, and into the HTTP status when it did not.
func TestClientErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/msg" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"no such expert"}`+"\n")
			return
		}
		http.Error(w, "not json", http.StatusInternalServerError)
	}))
	defer srv.Close()
	c := &Client{base: srv.URL, http: srv.Client()}
	ctx := context.Background()
	calls := map[string]func(path string) error{
		"Get":        func(p string) error { return c.Get(ctx, p, nil) },
		"Stream":     func(p string) error { return c.Stream(ctx, p, io.Discard) },
		"PostEvents": func(p string) error { return c.PostEvents(ctx, p, struct{}{}, func([]byte) error { return nil }) },
	}
	for name, call := range calls {
		err := call("/msg")
		var ce *CallError
		if err == nil || err.Error() != "no such expert" || !errors.As(err, &ce) || ce.Code != ErrBadRequest.Code || ce.Status != 400 {
			t.Errorf("%s with a message: %v (%+v)", name, err, ce)
		}
		if err := call("/plain"); err == nil || err.Error() != "daemon API /plain: 500 Internal Server Error" {
			t.Errorf("%s without a message: %v", name, err)
		}
	}
}
