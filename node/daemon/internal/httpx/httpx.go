// Package httpx holds what the daemon's API handlers share: one way to read a JSON request
// body, and the type of the function that turns a handler's value or error into the answer.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/meshnode/meshnode/node/api"
)

// Handle turns a function answering a request with a value or an error into the API's
// handler: the value as JSON, or the error with the status and code of its kind (the API's
// handle). The services that register routes on the API take one.
type Handle = func(func(*http.Request) (any, error)) http.HandlerFunc

// DecodeBody reads a JSON request body of at most limit bytes into v, refusing unknown fields.
// A malformed body, or one over the limit, is an api.ErrBadRequest.
func DecodeBody(r *http.Request, v any, limit int64) error {
	return DecodeBodyAs(r, v, limit, "request body")
}

// DecodeBodyAs is DecodeBody whose error for a malformed body starts with what, the route's
// name for its body or the shape it wants (`request body: want {"ref": ID or name}`), instead
// of "request body".
func DecodeBodyAs(r *http.Request, v any, limit int64, what string) error {
	body := http.MaxBytesReader(nil, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return api.ErrBadRequest.Wrap(fmt.Errorf("request body is over the limit of %s", size(limit)))
		}
		return api.ErrBadRequest.Wrap(fmt.Errorf("%s: %w", what, err))
	}
	return nil
}

// size spells a limit in the largest unit that divides it: MiB, KiB or bytes.
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
