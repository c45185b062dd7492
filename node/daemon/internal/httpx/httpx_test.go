package httpx

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/node/api"
)

// A body is decoded into its type; an unknown field, a malformed body and one over the limit
// are bad requests, the last naming the limit.
func TestDecodeBody(t *testing.T) {
	type req struct {
		A string `json:"a"`
	}
	var got req
	if err := DecodeBody(httptest.NewRequest("POST", "/", strings.NewReader(`{"a":"x"}`)), &got, 1<<10); err != nil || got.A != "x" {
		t.Fatalf("a good body: %+v, %v", got, err)
	}
	for _, c := range []struct {
		body  string
		limit int64
		want  string
	}{
		{`{"a":"x","b":1}`, 1 << 10, `request body: json: unknown field "b"`},
		{`{"a":`, 1 << 10, "request body: unexpected EOF"},
		{`{"a":"` + strings.Repeat("x", 2<<20) + `"}`, 1 << 20, "request body is over the limit of 1 MiB"},
		{`{"a":"` + strings.Repeat("x", 128<<10) + `"}`, 64 << 10, "request body is over the limit of 64 KiB"},
		{`{"a":"` + strings.Repeat("x", 100) + `"}`, 10, "request body is over the limit of 10 bytes"},
	} {
		err := DecodeBody(httptest.NewRequest("POST", "/", strings.NewReader(c.body)), &req{}, c.limit)
		if !errors.Is(err, api.ErrBadRequest) || err.Error() != c.want {
			t.Errorf("body of %d bytes, limit %d: %v, want a bad request saying %q", len(c.body), c.limit, err, c.want)
		}
	}
}

// DecodeBodyAs names a malformed body as told; a body over the limit reads as DecodeBody's.
func TestDecodeBodyAs(t *testing.T) {
	for _, c := range []struct {
		body  string
		limit int64
		want  string
	}{
		{`{"a":"x","b":1}`, 1 << 10, `query body: json: unknown field "b"`},
		{``, 1 << 10, "query body: EOF"},
		{`{"a":"` + strings.Repeat("x", 100) + `"}`, 10, "request body is over the limit of 10 bytes"},
	} {
		err := DecodeBodyAs(httptest.NewRequest("POST", "/", strings.NewReader(c.body)), &struct {
			A string `json:"a"`
		}{}, c.limit, "query body")
		if !errors.Is(err, api.ErrBadRequest) || err.Error() != c.want {
			t.Errorf("body %.20q: %v, want a bad request saying %q", c.body, err, c.want)
		}
	}
}
