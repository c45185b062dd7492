package api

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/experts/store"
)

// The README lists the error table as the code has it.
func TestREADMEListsTheAPIErrorTable(t *testing.T) {
	var table bytes.Buffer
	if err := WriteErrorTable(&table); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, table.Bytes()) {
		t.Fatalf("README.md does not hold the API error table; put this in it:\n%s", table.String())
	}
}

func TestKindOfAnError(t *testing.T) {
	cause := errors.New("no such data set")
	for _, tc := range []struct {
		err  error
		want *ErrorKind
	}{
		{ErrBadRequest.Wrap(cause), ErrBadRequest},
		{fmt.Errorf("eval: %w", ErrBadRequest.Wrap(cause)), ErrBadRequest},
		{fmt.Errorf("inspect x: %w", store.ErrNotFound), ErrNotFound},
		{ErrUnavailable.Wrap(fmt.Errorf("table: %w", store.ErrNotFound)), ErrUnavailable}, // the outer mark wins
		{cause, ErrInternal},
	} {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("KindOf(%v) = %s, want %s", tc.err, got.Code, tc.want.Code)
		}
		if !errors.Is(tc.err, tc.want) && tc.want != ErrInternal && tc.want != ErrNotFound {
			t.Errorf("errors.Is(%v, %s) is false", tc.err, tc.want.Code)
		}
	}
	if !errors.Is(ErrBadRequest.Wrap(cause), cause) {
		t.Error("a marked error hides its cause")
	}
	ce := &CallError{Code: ErrNotFound.Code, Message: "no such expert"}
	if !errors.Is(ce, ErrNotFound) || errors.Is(ce, ErrBadRequest) {
		t.Error("a client's CallError does not match its kind alone")
	}
	codes := map[string]bool{}
	for _, k := range APIErrors() {
		if codes[k.Code] || k.Status < 400 || strings.TrimSpace(k.Meaning) == "" {
			t.Errorf("table row %+v: codes are unique, statuses are errors, meanings are written", k)
		}
		codes[k.Code] = true
	}
}
