package fedjob

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/meshnode/meshnode/distill/federated/fedavg"
	"github.com/meshnode/meshnode/internal/testkeys"
)

// secureSim runs a secure round of n participants over the wire format: every message is
// encoded and decoded on its way. dropAfterMask participants send masked input and vanish.
type secureSim struct {
	spec          Spec
	n, params     int
	dropAfterMask []int
}

func (s *secureSim) run(t *testing.T) ([]float64, Result, []fedavg.Update, error) {
	t.Helper()
	ring := testkeys.Ring{}
	coord := ring.New("coord", 1)
	if err := s.spec.Sign(coord); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	now := time.UnixMilli(1_000_000)
	sr := NewSecureRound(&s.spec, 1, s.params, now, nil)
	wire := func(m *SecureMsg) *SecureMsg {
		b := m.Encode()
		out, err := DecodeSecureMsg(b, s.params+2)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	type part struct {
		key testkeys.Key
		sp  *SecureParticipant
		u   fedavg.Update
	}
	parts := make([]part, s.n)
	for i := range parts {
		k := ring.New(fmt.Sprintf("p%d", i), byte(10+i))
		sp, err := NewSecureParticipant(&s.spec, 1, sr.Instance(), k, ring.Verify)
		if err != nil {
			t.Fatal(err)
		}
		d := make([]float64, s.params)
		for j := range d {
			d[j] = rng.NormFloat64() * 0.3
		}
		parts[i] = part{k, sp, fedavg.Update{Participant: k.ID(), Delta: d, Samples: 100 + 50*i, Loss: 0.5 + 0.1*float64(i)}}
		m, err := sp.Advert(1, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		if err := sr.Add(k.ID(), wire(m), 100, now); err != nil {
			t.Fatal(err)
		}
	}
	step := func(want string) {
		due, _ := sr.Due(now)
		if !due {
			t.Fatalf("step %s not due with everyone in", want)
		}
		if err := sr.Advance(now); err != nil {
			t.Fatal(err)
		}
	}
	poll := func(p part, step string) *SecureReply {
		r, ok := sr.Result(p.key.ID(), step)
		if !ok || r.Code != ReplyAccepted {
			t.Fatalf("poll %s: %+v", step, r)
		}
		return &r
	}
	now = now.Add(time.Duration(s.spec.SoftDeadlineMS) * time.Millisecond)
	step(StepAdvert)
	for _, p := range parts {
		m, err := p.sp.Dealing(poll(p, StepAdvert).Roster)
		if err != nil {
			t.Fatal(err)
		}
		if err := sr.Add(p.key.ID(), wire(m), 100, now); err != nil {
			t.Fatal(err)
		}
	}
	step(StepDealing)
	for _, p := range parts {
		m, err := p.sp.Masked(poll(p, StepDealing).Deliveries, p.u.Delta, p.u.Samples, p.u.Loss)
		if err != nil {
			t.Fatal(err)
		}
		if err := sr.Add(p.key.ID(), wire(m), 100, now); err != nil {
			t.Fatal(err)
		}
	}
	step(StepMasked)
	var sent []fedavg.Update
	for i, p := range parts {
		sent = append(sent, p.u)
		if slices.Contains(s.dropAfterMask, i) {
			continue
		}
		m, err := p.sp.Reveal(poll(p, StepMasked).Survivors)
		if err != nil {
			t.Fatal(err)
		}
		if err := sr.Add(p.key.ID(), wire(m), 100, now); err != nil {
			t.Fatal(err)
		}
	}
	if due, _ := sr.Due(now); due != (len(s.dropAfterMask) == 0) {
		t.Fatalf("reveal step due = %v with %d silent", due, len(s.dropAfterMask))
	}
	now = now.Add(s.spec.SecAggPhase())
	step(StepReveal)
	delta, res, err := sr.Aggregate(fedavg.SecretNoise())
	return delta, res, sent, err
}

func secureSpec() Spec {
	s := testSpec()
	s.SecureAggregation, s.ClipNorm, s.MinParticipants, s.MaxParticipants = true, 1.5, 3, 8
	s.FillPrivacyDefaults()
	return s
}

// TestSecureRoundEqualsFedAvg: the unmasked aggregate of a secure round equals FedAvg of the
// same clipped updates (sample-weighted, no share cap) within the fixed-point error, also when
// a participant vanishes after masking.
func TestSecureRoundEqualsFedAvg(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop []int
	}{{"everyone", nil}, {"one drops after masking", []int{2}}} {
		t.Run(tc.name, func(t *testing.T) {
			sim := &secureSim{spec: secureSpec(), n: 5, params: 300, dropAfterMask: tc.drop}
			got, res, sent, err := sim.run(t)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fedavg.Aggregate(sent, fedavg.Config{ClipNorm: sim.spec.ClipNorm, MaxShare: 1})
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i := range want {
				worst = max(worst, math.Abs(got[i]-want[i]))
			}
			if worst > 1e-6 {
				t.Fatalf("secure aggregate differs from FedAvg by up to %g", worst)
			}
			samples, loss := 0, 0.0
			for _, u := range sent {
				samples += u.Samples
				loss += u.Loss * float64(u.Samples)
			}
			if res.Samples != samples || math.Abs(res.TrainLoss-loss/float64(samples)) > 1e-6 || len(res.Participants) != 5 {
				t.Fatalf("accounting: %d samples (want %d), loss %.6f (want %.6f), %d participants",
					res.Samples, samples, res.TrainLoss, loss/float64(samples), len(res.Participants))
			}
		})
	}
}

// TestSecureRoundWithDP: under differential privacy the aggregate is the equal-weight mean
// of the clipped updates plus noise of z·C/n.
func TestSecureRoundWithDP(t *testing.T) {
	spec := secureSpec()
	spec.NoiseStd = 1.2
	spec.FillPrivacyDefaults()
	sim := &secureSim{spec: spec, n: 4, params: 4000}
	got, res, sent, err := sim.run(t)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sent {
		sent[i].Samples = 1
	}
	mean, err := fedavg.Aggregate(sent, fedavg.Config{ClipNorm: spec.ClipNorm, MaxShare: 1})
	if err != nil {
		t.Fatal(err)
	}
	sq := 0.0
	for i := range mean {
		d := got[i] - mean[i]
		sq += d * d
	}
	want := spec.NoiseStd * spec.ClipNorm / 4
	if std := math.Sqrt(sq / float64(len(mean))); math.Abs(std-want) > 0.05*want {
		t.Fatalf("noise std %.4f, want %.4f", std, want)
	}
	if res.Samples != 4 || res.TrainLoss != 0 {
		t.Fatalf("under DP the round reports %d samples and loss %g: want the count only", res.Samples, res.TrainLoss)
	}
}

func TestSecureRoundFailsWhenTooManyDrop(t *testing.T) {
	spec := secureSpec()
	spec.SecAggThreshold = 0.9
	sim := &secureSim{spec: spec, n: 4, params: 10, dropAfterMask: []int{0, 1}}
	if _, _, _, err := sim.run(t); !errors.Is(err, ErrRoundFailed) {
		t.Fatalf("err = %v, want ErrRoundFailed", err)
	}
}

func TestSecureRoundRefusesOutOfStep(t *testing.T) {
	spec := secureSpec()
	ring := testkeys.Ring{}
	if err := spec.Sign(ring.New("coord", 1)); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(5000)
	sr := NewSecureRound(&spec, 1, 3, now, nil)
	k := ring.New("p", 2)
	sp, err := NewSecureParticipant(&spec, 1, sr.Instance(), k, ring.Verify)
	if err != nil {
		t.Fatal(err)
	}
	adv, err := sp.Advert(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := *adv
	other.Round = 2
	masked := &SecureMsg{Job: spec.ID(), Round: 1, Instance: sr.Instance(), Step: StepMasked, Masked: []uint64{1, 2, 3, 4, 5}}
	for name, tc := range map[string]struct {
		from string
		m    *SecureMsg
		want error
	}{
		"another round":        {k.ID(), &other, ErrWrongRound},
		"advert for another":   {"someone", adv, ErrInvalid},
		"masked while adverts": {k.ID(), masked, ErrLate},
	} {
		if err := sr.Add(tc.from, tc.m, 10, now); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	if err := sr.Add(k.ID(), adv, 10, now.Add(time.Minute)); !errors.Is(err, ErrLate) {
		t.Errorf("advert after the deadline: err = %v", err)
	}
	if err := sr.Add(k.ID(), adv, 10, now); err != nil {
		t.Fatal(err)
	}
	if err := sr.Add(k.ID(), adv, 10, now); !errors.Is(err, ErrDuplicate) {
		t.Errorf("advert twice: err = %v", err)
	}
	if _, ok := sr.Result(k.ID(), StepAdvert); ok {
		t.Error("the roster was given out before the step closed")
	}
	if err := sr.Advance(now.Add(time.Minute)); !errors.Is(err, ErrRoundFailed) {
		t.Errorf("advance with 1 of a quorum of 3: err = %v", err)
	}
}

func FuzzDecodeSecureMsg(f *testing.F) {
	f.Add((&SecureMsg{Job: "j", Round: 1, Step: StepMasked, Masked: []uint64{1, 2}}).Encode())
	f.Add((&SecureMsg{Job: "j", Round: 1, Step: StepPoll, Poll: StepAdvert}).Encode())
	f.Add([]byte("MNSA1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeSecureMsg(b, 1<<12)
		if err != nil {
			return
		}
		if _, err := DecodeSecureMsg(m.Encode(), 1<<12); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
	})
}
