package querysvc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/routing"
)

// emptyStore hosts no expert.
type emptyStore struct{}

func (emptyStore) ListExperts(context.Context) ([]store.Entry, error) { return nil, nil }
func (emptyStore) GetExpert(_ context.Context, id cid.Cid) (*experts.Manifest, error) {
	return nil, fmt.Errorf("expert %s: %w", id, store.ErrNotFound)
}
func (emptyStore) LoadNetwork(context.Context, *experts.Manifest) (*experts.Network, error) {
	return nil, errors.New("no network")
}
func (emptyStore) Resolve(_ context.Context, ref string) (cid.Cid, error) {
	return cid.Undef, fmt.Errorf("expert %s: %w", ref, store.ErrNotFound)
}

// answers answers for the experts it lists.
type answers []string

func (a answers) Answers(expert string) bool { return slices.Contains(a, expert) }

// noAdverts is an empty advert table.
type noAdverts struct{}

func (noAdverts) List(time.Time) []advert.Entry              { return nil }
func (noAdverts) LookupDomain(context.Context, string, bool) {}
func (noAdverts) LookupExpert(context.Context, string, bool) {}

// noFetcher fetches nothing.
type noFetcher struct{}

func (noFetcher) FetchVerified(context.Context, cid.Cid, cid.Cid) (api.BlobInfo, *experts.Manifest, error) {
	return api.BlobInfo{}, nil, errors.New("no fetch in tests")
}
func (noFetcher) AdvertisedWeights(cid.Cid) cid.Cid { return cid.Undef }

// newService starts a service on a host of its own, with the feedback store given.
func newService(t *testing.T, feedback FeedbackStore, exposure Exposure) *Service {
	t.Helper()
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	s, err := New(Deps{Store: emptyStore{}, Host: h, Exposure: exposure, Adverts: noAdverts{}, Fetcher: noFetcher{},
		Feedback: feedback, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// New names every required dependency that is missing.
func TestNewNamesMissingDeps(t *testing.T) {
	_, err := New(Deps{})
	if err == nil {
		t.Fatal("New with no deps: no error")
	}
	for _, name := range []string{"Store", "Host", "Exposure", "Adverts", "Fetcher", "Feedback", "Registerer"} {
		if !strings.Contains(err.Error(), "deps: "+name+" is nil") {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

// The domain a caller chose for a text teaches the gate, and what it learned survives a
// restart: Close saves it and LoadGate restores it. A service that never loaded the feedback
// leaves the stored feedback alone.
func TestGateFeedbackSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	kv := ds.NewMapDatastore()
	first := newService(t, kv, answers(nil))
	if err := first.LoadGate(ctx); err != nil {
		t.Fatalf("load with nothing stored: %v", err)
	}
	// No expert answers the domain, but the caller's choice is observed first.
	if _, err := first.Query(ctx, api.QueryRequest{Domain: "weather", Text: "will it rain"}); err == nil {
		t.Fatal("query with no candidate: no error")
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []routing.GateExample{{Text: "will it rain", Domain: "weather"}}

	unloaded := newService(t, kv, answers(nil))
	if err := unloaded.Close(ctx); err != nil {
		t.Fatal(err)
	}

	second := newService(t, kv, answers(nil))
	if err := second.LoadGate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := second.gate.Feedback(); !slices.Equal(got, want) {
		t.Fatalf("restored feedback %v, want %v", got, want)
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// Feedback that does not decode is an error saying what failed; the gate starts empty.
func TestLoadGateRejectsGarbage(t *testing.T) {
	ctx := context.Background()
	kv := ds.NewMapDatastore()
	if err := kv.Put(ctx, ds.NewKey(gateKey), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	s := newService(t, kv, answers(nil))
	defer s.Close(ctx)
	err := s.LoadGate(ctx)
	if err == nil || !strings.Contains(err.Error(), "load gate feedback") {
		t.Fatalf("LoadGate = %v, want a load gate feedback error", err)
	}
	if got := s.gate.Feedback(); len(got) != 0 {
		t.Fatalf("feedback %v after a failed load, want none", got)
	}
}

// Peers get answers only for the experts the exposure answers for (hosted is not exposed), and
// an exposed expert that is not hosted is an error; each is counted by outcome.
func TestServeAnswersOnlyExposedExperts(t *testing.T) {
	ctx := context.Background()
	const exposed = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	s := newService(t, ds.NewMapDatastore(), answers{exposed})
	defer s.Close(ctx)
	if _, err := s.serve(ctx, "", routing.EncodeRequest(routing.Request{Expert: "other", Text: "hi"})); err == nil ||
		!strings.Contains(err.Error(), "does not serve it") {
		t.Fatalf("unexposed expert: %v, want a refusal", err)
	}
	if _, err := s.serve(ctx, "", routing.EncodeRequest(routing.Request{Expert: exposed, Text: "hi"})); err == nil ||
		!strings.Contains(err.Error(), "does not host it") {
		t.Fatalf("exposed expert not hosted: %v, want an unknown expert error", err)
	}
	for outcome, want := range map[string]float64{"refused": 1, "error": 1, "ok": 0} {
		if got := testutil.ToFloat64(s.metrics.served.WithLabelValues(outcome)); got != want {
			t.Errorf("served{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
}
