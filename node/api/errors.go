package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/meshnode/meshnode/experts/store"
)

// ErrorKind is one row of the API's error table: the stable code a script matches on, the
// HTTP status the daemon answers with, and what the failure means to the caller. A kind is an
// error itself, so errors.Is(err, ErrNotFound) works on the daemon's side and, through
// CallError, on the client's.
type ErrorKind struct {
	Code    string
	Status  int
	Meaning string
}

func (k *ErrorKind) Error() string { return k.Code }

// Wrap marks err as a failure of kind k; the daemon answers it with k's status and code.
func (k *ErrorKind) Wrap(err error) error { return &KindError{Kind: k, Err: err} }

// Errorf is Wrap(fmt.Errorf(format, args...)).
func (k *ErrorKind) Errorf(format string, args ...any) error {
	return k.Wrap(fmt.Errorf(format, args...))
}

// The API's error table. Every failure the daemon answers carries one of these codes; codes
// never change meaning once released.
var (
	ErrBadRequest = &ErrorKind{"bad_request", http.StatusBadRequest,
		"the request is wrong (a malformed body, a relative path, an unknown data set, a refused trade): fix it, do not retry"}
	ErrUnauthorized = &ErrorKind{"unauthorized", http.StatusUnauthorized,
		"no API token or a wrong one (Authorization: Bearer <repo>/api.token)"}
	ErrNotFound = &ErrorKind{"not_found", http.StatusNotFound,
		"no such expert, blob, listing or job in this node"}
	ErrUnavailable = &ErrorKind{"unavailable", http.StatusServiceUnavailable,
		"full or busy (a table at its limit, as many jobs as the daemon runs): the same request may succeed later"}
	ErrInternal = &ErrorKind{"internal", http.StatusInternalServerError,
		"the daemon failed; its log says more"}
	ErrInterrupted = &ErrorKind{"interrupted", http.StatusServiceUnavailable,
		"the daemon stopped or restarted during a job (its answer says so, or ends without a result); the job stored nothing: run it again"}
)

// APIErrors is the table in the order the README lists it.
func APIErrors() []*ErrorKind {
	return []*ErrorKind{ErrBadRequest, ErrUnauthorized, ErrNotFound, ErrUnavailable, ErrInternal, ErrInterrupted}
}

// KindError is an error marked with its kind (ErrorKind.Wrap).
type KindError struct {
	Kind *ErrorKind
	Err  error
}

func (e *KindError) Error() string { return e.Err.Error() }

// Unwrap gives errors.Is and errors.As both the kind and the cause.
func (e *KindError) Unwrap() []error { return []error{e.Kind, e.Err} }

// KindOf is the kind the daemon answers err with: the innermost mark, a missing record of the
// store as ErrNotFound, and anything unmarked as ErrInternal.
func KindOf(err error) *ErrorKind {
	var ke *KindError
	switch {
	case errors.As(err, &ke):
		return ke.Kind
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	}
	return ErrInternal
}

// kindOfStatus is the kind of an HTTP status, for an answer whose body names no code (a proxy's
// or a router's own answer).
func kindOfStatus(status int) *ErrorKind {
	for _, k := range APIErrors() {
		if k.Status == status {
			return k
		}
	}
	if status >= 400 && status < 500 {
		return ErrBadRequest
	}
	return ErrInternal
}

// WriteErrorTable writes the table as the README's markdown table.
func WriteErrorTable(w io.Writer) error {
	if _, err := fmt.Fprintln(w, "| code | HTTP status | meaning |\n|---|---|---|"); err != nil {
		return err
	}
	for _, k := range APIErrors() {
		if _, err := fmt.Fprintf(w, "| `%s` | %d | %s |\n", k.Code, k.Status, k.Meaning); err != nil {
			return err
		}
	}
	return nil
}
