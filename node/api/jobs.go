package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// JobEvent is one line of a job's answer. Long work that the daemon runs for a command (train,
// validate, blob put, a fetch with progress) answers with newline-delimited JobEvents: progress
// lines, then exactly one line with Result or with Error and its Code. An answer that ends
// before that line is a job the daemon did not finish (it stopped or restarted): RunJob
// reports ErrInterrupted. Closing the request cancels the job.
type JobEvent[P, R any] struct {
	Progress *P     `json:"progress,omitempty"`
	Result   *R     `json:"result,omitempty"`
	Error    string `json:"error,omitempty"`
	Code     string `json:"code,omitempty"` // Error's kind (APIErrors)
}

// ResultEvent is the last line of a job that ended with rep or err.
func ResultEvent[P, R any](rep *R, err error) JobEvent[P, R] {
	if err != nil {
		return JobEvent[P, R]{Error: err.Error(), Code: KindOf(err).Code}
	}
	return JobEvent[P, R]{Result: rep}
}

// RunJob posts body to a job's path and hands each progress line to progress (nil: ignore
// them) until the result. The daemon's failure comes back as a *CallError of its kind; an
// answer that ends without a result as one of kind ErrInterrupted; ctx's end as ctx.Err().
func RunJob[P, R any](ctx context.Context, c *Client, path string, body any, progress func(P)) (*R, error) {
	var last *JobEvent[P, R]
	err := c.PostEvents(ctx, path, body, func(line []byte) error {
		var ev JobEvent[P, R]
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("daemon API %s: a line of the answer: %w", path, err)
		}
		if ev.Progress != nil {
			if progress != nil {
				progress(*ev.Progress)
			}
			return nil
		}
		last = &ev
		return nil
	})
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("daemon API %s: %w", path, ctx.Err())
	case last != nil && last.Result != nil:
		return last.Result, nil
	case last != nil && last.Error != "":
		code := last.Code
		if code == "" {
			code = ErrInternal.Code
		}
		return nil, &CallError{Path: path, Status: 200, Code: code, Message: last.Error}
	case err == nil || errors.Is(err, errStreamBroken):
		return nil, interrupted(path, err)
	}
	return nil, err // no answer at all, or a refusal before the job started
}

// errStreamBroken marks a streamed answer that broke off (the daemon went away mid-answer).
var errStreamBroken = errors.New("the answer broke off")

func interrupted(path string, cause error) error {
	msg := "interrupted: the daemon's answer ended before the job's result (did the daemon stop?); the store holds a job's result whole or not at all: list it, or run the job again"
	if cause != nil {
		msg += " (" + cause.Error() + ")"
	} else {
		msg += " (daemon API " + path + ")"
	}
	return &CallError{Path: path, Code: ErrInterrupted.Code, Message: msg}
}
