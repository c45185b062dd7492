package trainsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/node/api"
)

// emptyStore hosts no expert.
type emptyStore struct{}

func (emptyStore) Resolve(_ context.Context, ref string) (cid.Cid, error) {
	return cid.Undef, fmt.Errorf("expert %s: %w", ref, store.ErrNotFound)
}
func (emptyStore) GetExpert(_ context.Context, id cid.Cid) (*experts.Manifest, error) {
	return nil, fmt.Errorf("expert %s: %w", id, store.ErrNotFound)
}
func (emptyStore) LoadNetwork(context.Context, *experts.Manifest) (*experts.Network, error) {
	return nil, errors.New("no network")
}
func (emptyStore) AddNetwork(context.Context, *experts.Manifest, *experts.Network, experts.Signer) (cid.Cid, error) {
	return cid.Undef, errors.New("no store in tests")
}

// keySigner signs with a libp2p key, as node.Identity does.
type keySigner struct {
	key crypto.PrivKey
	id  peer.ID
}

func (k keySigner) ID() string                      { return k.id.String() }
func (k keySigner) Sign(msg []byte) ([]byte, error) { return k.key.Sign(msg) }

// countRefresh counts the exposure's rebuilds.
type countRefresh struct{ n int }

func (c *countRefresh) Refresh(context.Context) error { c.n++; return nil }

// noFetcher fetches nothing.
type noFetcher struct{}

func (noFetcher) FetchExpertGuided(context.Context, cid.Cid, cid.Cid) (api.BlobInfo, *experts.Manifest, *experts.Network, error) {
	return api.BlobInfo{}, nil, nil, errors.New("no fetch in tests")
}

// newHost starts a libp2p host on the loopback.
func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// newService starts a service with the state given, on a host and gossip of its own.
func newService(t *testing.T, state StateStore) (*Service, host.Host) {
	t.Helper()
	h := newHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Deps{Store: emptyStore{}, State: state, Signer: keySigner{h.Peerstore().PrivKey(h.ID()), h.ID()},
		Host: h, PubSub: ps, Exposure: &countRefresh{}, Fetcher: noFetcher{},
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, h
}

// handle is a minimal version of the daemon's wrapper: the value as JSON, or the error's
// message with the status of its kind.
func handle(f func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			http.Error(w, err.Error(), api.KindOf(err).Status)
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}
}

// New names every required dependency that is missing.
func TestNewNamesMissingDeps(t *testing.T) {
	_, err := New(Deps{})
	if err == nil {
		t.Fatal("New with no deps: no error")
	}
	for _, name := range []string{"Store", "State", "Signer", "Host", "PubSub", "Exposure", "Fetcher", "Registerer"} {
		if !strings.Contains(err.Error(), "deps: "+name+" is nil") {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

// A job coordinated before a restart is listed again and its models stay exposed, to its
// roster only once it is done; a job only heard of is listed too.
func TestRestoredJobsAreListedAndExposed(t *testing.T) {
	state := dssync.MutexWrap(ds.NewMapDatastore())
	ctx := context.Background()
	done := coordState{Spec: fedjob.Spec{Base: "base", Domain: "d", Rounds: 1, Created: 2}, Round: 2, Model: "v1",
		Roster: []string{"peerA"}, History: []fedjob.RoundSummary{{Round: 1, Model: "v1", Parent: "base"}},
		State: fedjob.StateDone}
	heard := seenJob{Ann: &fedjob.Announcement{Spec: fedjob.Spec{Base: "other", Domain: "d", Rounds: 3, Created: 1},
		State: fedjob.StateRound, Round: 2, Model: "o2"}}
	for key, v := range map[string]any{"/coord/" + done.Spec.ID(): done, "/seen/" + heard.Ann.Spec.ID(): heard} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := state.Put(ctx, ds.NewKey(key), b); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := newService(t, state)

	mux := http.NewServeMux()
	s.Routes(mux, handle)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.PathTrainJobs, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", api.PathTrainJobs, rec.Code, rec.Body)
	}
	var jobs []api.TrainJobInfo
	if err := json.Unmarshal(rec.Body.Bytes(), &jobs); err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != done.Spec.ID() || jobs[1].ID != heard.Ann.Spec.ID() {
		t.Fatalf("jobs %+v, want the coordinated job then the heard one", jobs)
	}
	if !jobs[0].Coordinator || jobs[0].State != fedjob.StateDone || jobs[0].Model != "v1" || jobs[1].Coordinator {
		t.Errorf("jobs %+v: want the first coordinated and done at v1, the second not coordinated", jobs)
	}

	exposed := s.ExposedModels()
	if len(exposed) != 1 {
		t.Fatalf("exposed %+v, want one job", exposed)
	}
	j := exposed[0]
	if !slices.Equal(j.Models, []string{"base", "v1", "v1"}) || j.Anyone || !j.Peers["peerA"] || len(j.Peers) != 1 {
		t.Errorf("exposed %+v, want base and v1 to peerA only", j)
	}
}

// Joining a job nobody announced is the caller's mistake, and leaving one this node takes no
// part in too.
func TestJoinAndLeaveUnknownJob(t *testing.T) {
	s, _ := newService(t, dssync.MutexWrap(ds.NewMapDatastore()))
	mux := http.NewServeMux()
	s.Routes(mux, handle)
	for _, c := range []struct{ path, body, want string }{
		{api.PathTrainJoin, `{"job":"nope","dataset":"iris"}`, "no job nope has been announced"},
		{api.PathTrainJoin, `{"job":"nope"}`, "job and dataset are required"},
		{api.PathTrainJoin, `{"job":"nope","dataset":"iris","extra":1}`, "request body"},
		{api.PathTrainLeave, `{"job":"nope"}`, "takes no part in job nope"},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body)))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("POST %s %s: %d %q, want a bad request saying %q", c.path, c.body, rec.Code, rec.Body, c.want)
		}
	}
}

// A peer's update for a job this node does not coordinate is answered unknown_job over the
// protocol, and counted.
func TestUpdateForUnknownJob(t *testing.T) {
	s, h := newService(t, dssync.MutexWrap(ds.NewMapDatastore()))
	other := newHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := other.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	u := &fedjob.Update{Job: "nope", Round: 1, Samples: 1, Delta: []float32{0.5}}
	if err := u.Sign(keySigner{other.Peerstore().PrivKey(other.ID()), other.ID()}); err != nil {
		t.Fatal(err)
	}
	client := rpc.NewClient(other, Protocol, 1<<16, 1)
	defer client.Close()
	raw, err := client.Call(ctx, h.ID(), u.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var r fedjob.Reply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Code != fedjob.ReplyUnknown {
		t.Errorf("reply %+v, want %s", r, fedjob.ReplyUnknown)
	}
	if n := testutil.ToFloat64(s.metrics.updates.WithLabelValues(fedjob.ReplyUnknown)); n != 1 {
		t.Errorf("%s updates counted: %v, want 1", fedjob.ReplyUnknown, n)
	}
}
