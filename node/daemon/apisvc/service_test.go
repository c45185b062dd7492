package apisvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshnode/meshnode/node/api"
)

// New names every required dependency that is missing.
func TestNewNamesMissingDeps(t *testing.T) {
	_, err := New(Deps{})
	if err == nil {
		t.Fatal("New with no deps: no error")
	}
	for _, name := range []string{"Host", "Node", "Adverts", "Store", "Repo", "Ops", "Queries", "Blobs", "Pins",
		"Market", "Gatherer"} {
		if !strings.Contains(err.Error(), "deps: "+name+" is nil") {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if !strings.Contains(err.Error(), "deps: APIFile is empty") {
		t.Errorf("error %q does not name APIFile", err)
	}
}

// A request without the token, or with a wrong one, is answered 401 with code unauthorized and
// never reaches the routes; one with the right token does; the dashboard page is served
// without a token, and only it.
func TestAuthenticate(t *testing.T) {
	reached := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		writeJSON(w, http.StatusOK, map[string]string{"ok": r.URL.Path})
	})
	h := authenticate("secret", next, serveUI)
	do := func(method, path, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, auth := range []string{"", "Bearer wrong", "secret", "Bearer secret2", "bearer secret"} {
		w := do("GET", api.PathStatus, auth)
		var e api.APIError
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("Authorization %q: answer %q: %v", auth, w.Body, err)
		}
		want := "missing or wrong API token (Authorization: Bearer <repo api.token>)"
		if w.Code != http.StatusUnauthorized || e.Code != "unauthorized" || e.Error != want {
			t.Errorf("Authorization %q: %d %+v, want 401 unauthorized %q", auth, w.Code, e, want)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Authorization %q: Content-Type %q", auth, ct)
		}
	}
	if reached != 0 {
		t.Fatalf("%d refused requests reached the routes", reached)
	}
	if w := do("GET", api.PathStatus, "Bearer secret"); w.Code != http.StatusOK || reached != 1 ||
		!strings.Contains(w.Body.String(), api.PathStatus) {
		t.Errorf("the right token: %d %q, reached %d times", w.Code, w.Body, reached)
	}
	w := do("GET", PathUI, "")
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), dashboardHTML) || len(dashboardHTML) == 0 {
		t.Errorf("the dashboard without a token: %d, %d bytes (the page has %d)", w.Code, w.Body.Len(), len(dashboardHTML))
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("the dashboard's Content-Type %q", ct)
	}
	if xfo := w.Header().Get("X-Frame-Options"); xfo != "DENY" {
		t.Errorf("the dashboard's X-Frame-Options %q", xfo)
	}
	// Only GET of the page itself goes without a token.
	for _, c := range []struct{ method, path string }{{"POST", PathUI}, {"GET", PathUI + "/x"}} {
		if w := do(c.method, c.path, ""); w.Code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", c.method, c.path, w.Code)
		}
	}
	if reached != 1 {
		t.Errorf("the routes were reached %d times, want 1", reached)
	}
}

// Start writes the API's URL to the API file and serves the routes behind the repo's token;
// Close ends a running job at once, which the client reports as interrupted, and removes the
// file.
func TestCloseInterruptsJobs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, api.TokenFile), []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	deps := stubDeps(filepath.Join(dir, api.APIFile))
	deps.Ops = stubOps{train: func(ctx context.Context, req api.TrainRequest) (*api.TrainReport, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	s, err := New(deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, api.APIFile))
	if err != nil || string(b) != s.URL()+"\n" || !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("API file %q (%v), URL %q", b, err, s.URL())
	}
	c, err := api.DaemonClient(dir)
	if err != nil {
		t.Fatal(err)
	}
	var id api.IDInfo
	if err := c.Get(context.Background(), api.PathID, &id); err != nil || id.PeerID != testPeer.String() ||
		len(id.Addrs) != 1 || id.Addrs[0] != "/ip4/127.0.0.1/tcp/1" {
		t.Fatalf("id: %+v, %v", id, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.TrainExpert(context.Background(), api.TrainRequest{Dataset: "iris"})
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the training never started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	err = <-done
	var ce *api.CallError
	if !errors.As(err, &ce) || ce.Code != api.ErrInterrupted.Code ||
		!strings.Contains(ce.Message, "interrupted: the daemon stopped during the job, which stored nothing; run it again") {
		t.Fatalf("the job's end: %v, want interrupted", err)
	}
	if _, err := os.Stat(filepath.Join(dir, api.APIFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("API file after Close: %v", err)
	}
}

var testPeer = peer.ID("a peer")

// stubDeps are deps that answer only what the tests call; the rest panics (nil interfaces).
func stubDeps(apiFile string) Deps {
	return Deps{Host: stubHost{}, Node: stubNode{}, Adverts: stubAdverts{}, Store: stubStore{}, Repo: stubRepo{dir: filepath.Dir(apiFile)},
		Ops: stubOps{}, Queries: stubQueries{}, Blobs: stubBlobs{}, Pins: stubPins{}, Market: stubMarket{},
		Gatherer: prometheus.NewRegistry(), APIFile: apiFile}
}

type stubHost struct{ Host }

func (stubHost) ID() peer.ID { return testPeer }

type stubNode struct{ Node }

func (stubNode) Addrs() []string { return []string{"/ip4/127.0.0.1/tcp/1"} }

func (stubNode) Reachability() string { return "Unknown" }

type stubRepo struct {
	Repo
	dir string
}

func (r stubRepo) Token() (string, error) {
	b, err := os.ReadFile(filepath.Join(r.dir, api.TokenFile))
	return strings.TrimSpace(string(b)), err
}

type stubOps struct {
	StoreOps
	train func(ctx context.Context, req api.TrainRequest) (*api.TrainReport, error)
}

func (o stubOps) TrainExpert(ctx context.Context, req api.TrainRequest) (*api.TrainReport, error) {
	return o.train(ctx, req)
}

type (
	stubAdverts struct{ Adverts }
	stubStore   struct{ Store }
	stubQueries struct{ Queries }
	stubBlobs   struct{ Blobs }
	stubPins    struct{ Pins }
	stubMarket  struct{ Market }
)

// The serve and CID bodies are decoded strictly, their errors naming the shape they want; a
// CID body carries its timeout and whether to stream progress.
func TestDecodeBodies(t *testing.T) {
	post := func(body string) *http.Request { return httptest.NewRequest("POST", "/", strings.NewReader(body)) }
	if req, err := decodeServe(post(`{"ref":"iris"}`)); err != nil || req.Ref != "iris" {
		t.Errorf("serve iris: %+v, %v", req, err)
	}
	for body, want := range map[string]string{
		`{"ref":"iris","x":1}`: `request body: want {"ref": ID or name}: json: unknown field "x"`,
		`{"ref":`:              `request body: want {"ref": ID or name}: unexpected EOF`,
		`{}`:                   "request body: ref is empty",
	} {
		if _, err := decodeServe(post(body)); !errors.Is(err, api.ErrBadRequest) || err.Error() != want {
			t.Errorf("serve body %s: %v, want a bad request saying %q", body, err, want)
		}
	}
	const id = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	body, c, err := decodeCIDBody(post(`{"cid":"` + id + `","timeout_ms":2000,"progress":true}`))
	if err != nil || c.String() != id || body.TimeoutMS != 2000 || !body.Progress {
		t.Errorf("a fetch body: %+v %s, %v", body, c, err)
	}
	for body, want := range map[string]string{
		`{"cid":"` + id + `","x":1}`: `request body: want {"cid": ...}: json: unknown field "x"`,
		`{"cid":"nope"}`:             `"nope" is not a CID: `,
		`{}`:                         `"" is not a CID: `,
	} {
		if _, _, err := decodeCIDBody(post(body)); !errors.Is(err, api.ErrBadRequest) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("CID body %s: %v, want a bad request starting %q", body, err, want)
		}
	}
}
