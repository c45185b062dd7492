package fedjob

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/internal/testkeys"
)

const testCID = "bafyreigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"

func testSpec() Spec {
	return Spec{Base: testCID, Domain: "fashion", Input: experts.InputSpec{Kind: "vector", Dim: 4},
		Output: experts.OutputSpec{Kind: "classes", Dim: 2, Labels: []string{"a", "b"}},
		Rounds: 3, LocalEpochs: 1, BatchSize: 32, LR: 0.01, MinParticipants: 2, MaxParticipants: 3,
		SoftDeadlineMS: 1000, DeadlineMS: 5000, Aggregator: "fedavg", Created: 1}
}

func TestSpecCheck(t *testing.T) {
	ring := testkeys.Ring{}
	k := ring.New("coord", 1)
	other := ring.New("other", 2)
	cases := []struct {
		name   string
		mutate func(*Spec)
		resign bool
		want   string
	}{
		{"valid", func(*Spec) {}, true, ""},
		{"base not a CID", func(s *Spec) { s.Base = "x" }, true, "base"},
		{"no rounds", func(s *Spec) { s.Rounds = 0 }, true, "rounds"},
		{"max below min", func(s *Spec) { s.MaxParticipants = 1 }, true, "max participants"},
		{"soft after hard", func(s *Spec) { s.SoftDeadlineMS = 6000 }, true, "soft deadline"},
		{"deadline under a second", func(s *Spec) { s.DeadlineMS, s.SoftDeadlineMS = 999, 0 }, true, "round deadline"},
		{"multi-krum below its quorum", func(s *Spec) { s.Aggregator = "multi-krum"; s.Byzantine = 1 }, true, "quorum of at least 5"},
		{"unknown aggregator", func(s *Spec) { s.Aggregator = "mean" }, true, "unknown aggregator"},
		{"noise without clipping", func(s *Spec) { s.NoiseStd = 1 }, true, "clip_norm"},
		{"learning rate", func(s *Spec) { s.LR = 0 }, true, "learning rate"},
		{"learning-rate decay above 1", func(s *Spec) { s.LRDecay = 1.5 }, true, "learning-rate decay"},
		{"learning-rate decay", func(s *Spec) { s.LRDecay = 0.95 }, true, ""},
		{"record DP without clip", func(s *Spec) { s.RecordTargetEpsilon, s.DPDelta = 4, 1e-5 }, true, "record_clip_norm"},
		{"record DP without noise or target", func(s *Spec) { s.RecordClipNorm, s.DPDelta = 1, 1e-5 }, true, "record_noise or record_target_epsilon"},
		{"record DP without delta", func(s *Spec) { s.RecordClipNorm, s.RecordNoise = 1, 1 }, true, "dp_delta"},
		{"record DP", func(s *Spec) { s.RecordClipNorm, s.RecordTargetEpsilon = 1, 4; s.FillPrivacyDefaults() }, true, ""},
		{"unknown optimizer", func(s *Spec) { s.Optimizer = "lion" }, true, "unknown optimizer"},
		{"sgd", func(s *Spec) { s.Optimizer = "sgd" }, true, ""},
		{"server momentum 1", func(s *Spec) { s.ServerMomentum = 1 }, true, "server momentum"},
		{"noise with median", func(s *Spec) { s.NoiseStd, s.ClipNorm, s.DPDelta, s.Aggregator = 1, 1, 1e-5, "median" }, true, "calibrated for fedavg"},
		{"noise without delta", func(s *Spec) { s.NoiseStd, s.ClipNorm = 1, 1 }, true, "dp_delta"},
		{"target epsilon without noise", func(s *Spec) { s.TargetEpsilon = 4 }, true, "target_epsilon"},
		{"secure with trimmed mean", func(s *Spec) {
			s.SecureAggregation, s.ClipNorm, s.Aggregator = true, 1, "trimmed-mean"
			s.FillPrivacyDefaults()
		}, true, "robust aggregators"},
		{"secure without clipping", func(s *Spec) { s.SecureAggregation = true; s.FillPrivacyDefaults() }, true, "clip_norm"},
		{"secure, threshold half", func(s *Spec) {
			s.SecureAggregation, s.ClipNorm = true, 1
			s.FillPrivacyDefaults()
			s.SecAggThreshold = 0.5
		}, true, "secagg_threshold"},
		{"secure, many, complete graph", func(s *Spec) {
			s.SecureAggregation, s.ClipNorm, s.MaxParticipants = true, 1, 100
			s.FillPrivacyDefaults()
		}, true, "secagg_neighbours"},
		{"secure and DP", func(s *Spec) {
			s.SecureAggregation, s.ClipNorm, s.NoiseStd, s.TargetEpsilon = true, 1, 1, 8
			s.FillPrivacyDefaults()
		}, true, ""},
		{"changed after signing", func(s *Spec) { s.Rounds = 4 }, false, "signature"},
		{"signed by another", func(s *Spec) { s.Coordinator = other.ID() }, false, "signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testSpec()
			if !c.resign {
				if err := s.Sign(k); err != nil {
					t.Fatal(err)
				}
			}
			c.mutate(&s)
			if c.resign {
				if err := s.Sign(k); err != nil {
					t.Fatal(err)
				}
			}
			err := s.Check(ring.Verify)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an ErrInvalid naming %q", err, c.want)
			}
		})
	}
}

func TestSpecIDChangesWithTheSpec(t *testing.T) {
	a, b := testSpec(), testSpec()
	if a.ID() != b.ID() {
		t.Fatal("same spec, different IDs")
	}
	b.Seed = 7
	if a.ID() == b.ID() {
		t.Fatal("different seeds, same ID")
	}
}

func signedAnnouncement(t *testing.T, k testkeys.Key, mutate func(*Announcement)) []byte {
	t.Helper()
	s := testSpec()
	if err := s.Sign(k); err != nil {
		t.Fatal(err)
	}
	a := Announcement{Spec: s, State: StateRound, Round: 1, Model: testCID, Deadline: 10, Issued: time.Now().UnixMilli(),
		Last: &RoundSummary{Round: 1, Model: testCID, Parent: testCID, Updates: 2}}
	mutate(&a)
	if err := a.Sign(k); err != nil {
		t.Fatal(err)
	}
	return a.Encode()
}

func TestDecodeAnnouncement(t *testing.T) {
	ring := testkeys.Ring{}
	k := ring.New("coord", 1)
	now := time.Now()
	cases := []struct {
		name string
		data []byte
		from string
		want string
	}{
		{"valid", signedAnnouncement(t, k, func(*Announcement) {}), "coord", ""},
		{"relayed by another sender", signedAnnouncement(t, k, func(*Announcement) {}), "mallory", "arrived from mallory"},
		{"stale", signedAnnouncement(t, k, func(a *Announcement) { a.Issued = now.Add(-time.Hour).UnixMilli() }), "coord", "TTL"},
		{"future", signedAnnouncement(t, k, func(a *Announcement) { a.Issued = now.Add(time.Hour).UnixMilli() }), "coord", "future"},
		{"round past the end", signedAnnouncement(t, k, func(a *Announcement) { a.Round = 4 }), "coord", "round 4"},
		{"unknown state", signedAnnouncement(t, k, func(a *Announcement) { a.State = "paused" }), "coord", "unknown job state"},
		{"model not a CID", signedAnnouncement(t, k, func(a *Announcement) { a.Model = "m" }), "coord", "model"},
		{"weights not a CID", signedAnnouncement(t, k, func(a *Announcement) { a.Weights = "w" }), "coord", "weights"},
		{"tampered", bytes.Replace(signedAnnouncement(t, k, func(*Announcement) {}), []byte(`"round":1`), []byte(`"round":2`), 1), "coord", "announcement signature"},
		{"unknown field", []byte(`{"spec":{},"extra":1}`), "coord", "unknown field"},
		{"too big", bytes.Repeat([]byte(" "), MaxAnnouncementBytes+1), "coord", "limit"},
		{"not JSON", []byte("{"), "coord", "announcement"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := DecodeAnnouncement(c.data, c.from, now, ring.Verify)
			if c.want == "" {
				if err != nil || a.Round != 1 {
					t.Fatalf("got %+v, %v", a, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an ErrInvalid naming %q", err, c.want)
			}
		})
	}
}

func TestUpdateRoundTripAndSignature(t *testing.T) {
	ring := testkeys.Ring{}
	p := ring.New("p1", 3)
	u := &Update{Job: "job", Round: 2, Samples: 10, TrainLoss: 0.5, Seconds: 1.5, Delta: []float32{1, -2.5, 3e-7}}
	if err := u.Sign(p); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeUpdate(u.Encode(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(ring.Verify); err != nil {
		t.Fatal(err)
	}
	if got.Participant != "p1" || got.Round != 2 || got.Samples != 10 || len(got.Delta) != 3 || got.Delta[1] != -2.5 {
		t.Fatalf("round trip changed the update: %+v", got)
	}
	got.Delta[0] = 2 // a value changed in flight
	if err := got.Verify(ring.Verify); err == nil {
		t.Fatal("a changed delta still verifies")
	}
	if _, err := DecodeUpdate(u.Encode(), 2); err == nil || !strings.Contains(err.Error(), "limit 2") {
		t.Fatalf("an update over the value limit: %v", err)
	}
}

func TestDecodeUpdateRejects(t *testing.T) {
	good := (&Update{Job: "j", Round: 1, Samples: 1, Delta: []float32{1}}).Encode()
	nan := (&Update{Job: "j", Round: 1, Samples: 1, Delta: []float32{float32(nanValue())}}).Encode()
	cases := map[string][]byte{
		"no magic":         []byte("hello"),
		"truncated":        good[:len(good)-2],
		"extra bytes":      append(append([]byte{}, good...), 0),
		"no samples":       (&Update{Job: "j", Round: 1, Delta: []float32{1}}).Encode(),
		"round zero":       (&Update{Job: "j", Samples: 1}).Encode(),
		"not finite":       nan,
		"header too long":  append(append([]byte{}, updateMagic...), 0xff, 0xff, 0, 0),
		"samples overflow": (&Update{Job: "j", Round: 1, Samples: MaxSamples + 1, Delta: []float32{1}}).Encode(),
		"loss too large":   (&Update{Job: "j", Round: 1, Samples: 1, TrainLoss: 1e308, Delta: []float32{1}}).Encode(),
	}
	for name, b := range cases {
		if _, err := DecodeUpdate(b, 10); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

func nanValue() float64 { z := 0.0; return z / z }

func TestCollectorClosesOnQuorumAndDeadlines(t *testing.T) {
	s := testSpec() // min 2, max 3, soft 1 s, hard 5 s
	t0 := time.Unix(1000, 0)
	upd := func(who string, round int) *Update {
		return &Update{Job: s.ID(), Round: round, Participant: who, Samples: 10, Delta: []float32{1, 2}}
	}
	c := NewCollector(&s, 1, 2, t0, nil)
	if err := c.Add(upd("a", 1), 100, t0); err != nil {
		t.Fatal(err)
	}
	if due, _ := c.Due(t0.Add(2 * time.Second)); due {
		t.Fatal("closed below quorum before the hard deadline")
	}
	if err := c.Add(upd("a", 1), 100, t0); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := c.Add(upd("b", 2), 100, t0); !errors.Is(err, ErrWrongRound) {
		t.Fatalf("wrong round: %v", err)
	}
	if err := c.Add(&Update{Job: s.ID(), Round: 1, Participant: "b", Samples: 1, Delta: []float32{1}}, 100, t0); !errors.Is(err, ErrShape) {
		t.Fatalf("wrong shape: %v", err)
	}
	if err := c.Add(upd("b", 1), 100, t0.Add(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if due, next := c.Due(t0.Add(600 * time.Millisecond)); due || !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("quorum reached: should wait for the soft deadline, got due=%v next=%v", due, next)
	}
	if due, _ := c.Due(t0.Add(time.Second)); !due {
		t.Fatal("quorum and soft deadline passed: round should close")
	}
	if err := c.Add(upd("c", 1), 100, t0.Add(6*time.Second)); !errors.Is(err, ErrLate) {
		t.Fatalf("late: %v", err)
	}
	r := c.Close()
	if len(r.Updates) != 2 || r.Participants[0] != "a" || r.Bytes != 200 || r.Dropped != 4 || r.Samples != 20 {
		t.Fatalf("result %+v", r)
	}

	// The roster carries over: a fourth peer is refused once three have taken part.
	c2 := NewCollector(&s, 2, 2, t0, []string{"a", "b", "c"})
	if err := c2.Add(upd("d", 2), 1, t0); !errors.Is(err, ErrFull) {
		t.Fatalf("over the maximum: %v", err)
	}
	if err := c2.Add(upd("c", 2), 1, t0); err != nil {
		t.Fatalf("a rostered peer: %v", err)
	}
	if due, _ := c2.Due(t0.Add(5 * time.Second)); !due {
		t.Fatal("hard deadline passed: round should close with what it has")
	}
}

func FuzzDecodeUpdate(f *testing.F) {
	f.Add((&Update{Job: "j", Round: 1, Samples: 3, Delta: []float32{1, 2}}).Encode())
	f.Add([]byte("MNFU1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeUpdate(b, 1<<16)
		if err != nil {
			return
		}
		again, err := DecodeUpdate(u.Encode(), 1<<16)
		if err != nil || len(again.Delta) != len(u.Delta) {
			t.Fatalf("re-encoded update does not decode: %v", err)
		}
	})
}

func FuzzDecodeAnnouncement(f *testing.F) {
	ring := testkeys.Ring{}
	k := ring.New("coord", 1)
	s := testSpec()
	_ = s.Sign(k)
	a := Announcement{Spec: s, State: StateRound, Round: 1, Model: testCID, Issued: 1000}
	_ = a.Sign(k)
	f.Add(a.Encode())
	f.Add([]byte(`{"state":"done"}`))
	now := time.UnixMilli(1000)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeAnnouncement(b, "coord", now, ring.Verify)
		if err == nil && got.Spec.Coordinator != "coord" {
			t.Fatal("accepted an announcement not from its coordinator")
		}
	})
}

func TestPeekUpdateJobAndReplyCodes(t *testing.T) {
	b := (&Update{Job: "job-7", Round: 1, Samples: 1, Delta: []float32{1, 2}}).Encode()
	if job, err := PeekUpdateJob(b); err != nil || job != "job-7" {
		t.Fatalf("peek: %q, %v", job, err)
	}
	for _, bad := range [][]byte{nil, []byte("MNFU1"), append([]byte("MNFU1"), 9, 0, 0, 0, '{')} {
		if _, err := PeekUpdateJob(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("peek %q: %v", bad, err)
		}
	}
	cases := map[error]string{nil: ReplyAccepted, ErrDuplicate: ReplyDuplicate, ErrFull: ReplyFull, ErrShape: ReplyShape, ErrLate: ReplyLate, ErrWrongRound: ReplyLate}
	for err, want := range cases {
		if got := ReplyCode(err); got != want {
			t.Errorf("ReplyCode(%v) = %s, want %s", err, got, want)
		}
	}
}

func TestRoundLR(t *testing.T) {
	s := Spec{LR: 0.01}
	if got := s.RoundLR(5); got != 0.01 {
		t.Errorf("no decay: round 5 at %g, want 0.01", got)
	}
	s.LRDecay = 0.5
	for _, c := range []struct {
		round int
		want  float64
	}{{1, 0.01}, {2, 0.005}, {4, 0.00125}} {
		if got := s.RoundLR(c.round); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("decay 0.5: round %d at %g, want %g", c.round, got, c.want)
		}
	}
}
