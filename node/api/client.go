package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshnode/meshnode/experts"
)

// maxAnswerBytes bounds one answer of the daemon, or one line of a job's streamed answer (a
// training's report with every epoch, a validation of many experts): far above what they
// reach, and a bound on what a command holds in memory.
const maxAnswerBytes = 64 << 20

// ErrNoDaemon is returned when a repo has no running daemon.
var ErrNoDaemon = errors.New("no daemon running")

// Client talks to a running daemon through its local HTTP API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// DaemonClient returns a client for the daemon running on the repo at path. It fails with
// ErrNoDaemon when the daemon's address file is missing or nothing answers there.
func DaemonClient(path string) (*Client, error) {
	b, err := os.ReadFile(filepath.Join(path, APIFile))
	if err != nil {
		return nil, fmt.Errorf("%w for repo %s: start one with 'meshnode daemon --repo %s'", ErrNoDaemon, path, path)
	}
	tok, err := os.ReadFile(filepath.Join(path, TokenFile))
	if err != nil {
		return nil, fmt.Errorf("read API token: %w", err)
	}
	c := &Client{base: strings.TrimSpace(string(b)), token: strings.TrimSpace(string(tok)),
		http: &http.Client{Timeout: 30 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var id IDInfo
	if err := c.Get(ctx, PathID, &id); err != nil {
		return nil, fmt.Errorf("%w for repo %s (its API at %s does not answer: %v)", ErrNoDaemon, path, c.base, err)
	}
	return c, nil
}

// Get calls a GET endpoint and decodes its JSON answer into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// Post calls a POST endpoint with a JSON body.
func (c *Client) Post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, path, b, out)
}

// Metrics returns the daemon's Prometheus exposition text.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	var raw rawBody
	if err := c.do(ctx, http.MethodGet, PathMetrics, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Stream copies a GET endpoint's raw answer to w (a blob can be larger than memory).
func (c *Client) Stream(ctx context.Context, path string, w io.Writer) error {
	resp, err := c.open(ctx, http.MethodGet, path, nil) // a large blob may take longer than an API call
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("daemon API %s: %w", path, err)
	}
	return nil
}

// open sends a streamed request (a JSON body when body is not nil) without the client's
// timeout, which ctx replaces, and returns the answer if it is a 200; the caller closes its body.
func (c *Client) open(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("daemon API %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, apiError(path, resp, io.LimitReader(resp.Body, 1<<20))
	}
	return resp, nil
}

// apiError is the error for a non-200 answer whose body reads from body: the daemon's own
// message when the body is an APIError that has one, else the HTTP status.
func apiError(path string, resp *http.Response, body io.Reader) error {
	var e APIError
	ce := &CallError{Path: path, Status: resp.StatusCode, Code: kindOfStatus(resp.StatusCode).Code, Message: fmt.Sprintf("daemon API %s: %s", path, resp.Status)}
	if json.NewDecoder(body).Decode(&e) == nil && e.Error != "" {
		ce.Message = e.Error
		if e.Code != "" {
			ce.Code = e.Code
		}
	}
	return ce
}

// rawBody receives an answer as bytes instead of JSON.
type rawBody []byte

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("daemon API %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("daemon API %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return apiError(path, resp, bytes.NewReader(data))
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*rawBody); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("daemon API %s: %w", path, err)
	}
	return nil
}

// PostEvents posts body and hands each line of a newline-delimited JSON answer to onLine
// until the answer ends (streamed answers, such as a fetch with progress).
func (c *Client) PostEvents(ctx context.Context, path string, body any, onLine func([]byte) error) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := c.open(ctx, http.MethodPost, path, b) // a long fetch streams for as long as it takes
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxAnswerBytes) // a job's last line carries its whole report
	for sc.Scan() {
		if err := onLine(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("daemon API %s: %w: %w", path, errStreamBroken, err)
	}
	return nil
}

// TrainExpert trains an expert in the daemon (PathExpertTrain), handing each epoch to
// req.Progress; cancelling ctx cancels the training.
func (c *Client) TrainExpert(ctx context.Context, req TrainRequest) (*TrainReport, error) {
	req.Dataset = AbsDataset(req.Dataset)
	return RunJob[experts.EpochStats, TrainReport](ctx, c, PathExpertTrain, req, req.Progress)
}
