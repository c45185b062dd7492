package fedavg

import (
	"errors"
	"math"
	"testing"
)

func upd(who string, samples int, d ...float64) Update {
	return Update{Participant: who, Delta: d, Samples: samples}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestAggregators(t *testing.T) {
	honest := []Update{upd("a", 100, 1, 2), upd("b", 100, 1.2, 2.2), upd("c", 100, 0.8, 1.8), upd("d", 100, 1.1, 2.1)}
	attacked := append(append([]Update(nil), honest...), upd("evil", 100, -50, -100))
	cases := []struct {
		name  string
		cfg   Config
		in    []Update
		want0 float64
	}{
		{"fedavg", Config{Aggregator: FedAvg}, honest, 1.025},
		{"median ignores an outlier", Config{Aggregator: Median}, attacked, 1.0},
		{"trimmed mean ignores an outlier", Config{Aggregator: TrimmedMean, Trim: 0.2}, attacked, (1 + 1.1 + 1.0 - 0.0 + 0.0) / 3},
		{"multi-krum drops the outlier", Config{Aggregator: MultiKrum, Byzantine: 1}, attacked, 1.025},
	}
	cases[2].want0 = (1.0 + 1.1 + 0.8 + 1.2 - 0.8 - 1.2 + 1.0) / 3 // sorted 0.8 1 1.1 1.2 -50: drop -50 and 1.2
	cases[2].want0 = (0.8 + 1.0 + 1.1) / 3
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Aggregate(tc.in, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got[0], tc.want0) {
				t.Fatalf("got %v, want first value %v", got, tc.want0)
			}
		})
	}
	if got, _ := Aggregate(attacked, Config{Aggregator: FedAvg}); got[0] > -5 {
		t.Fatalf("plain FedAvg should be dragged by the outlier, got %v", got)
	}
}

func TestFedAvgCapsAParticipantsShare(t *testing.T) {
	// "big" holds 90% of the samples; with MaxShare 0.5 it gets half the weight.
	got, err := Aggregate([]Update{upd("big", 900, 1), upd("s1", 50, 0), upd("s2", 50, 0)}, Config{MaxShare: 0.5})
	if err != nil || !near(got[0], 0.5) {
		t.Fatalf("capped weight gives %v (%v), want 0.5", got, err)
	}
	got, _ = Aggregate([]Update{upd("big", 900, 1), upd("s1", 50, 0), upd("s2", 50, 0)}, Config{MaxShare: 1})
	if !near(got[0], 0.9) {
		t.Fatalf("uncapped weight gives %v, want 0.9", got)
	}
}

func TestClippingAndNoise(t *testing.T) {
	got, _ := Aggregate([]Update{upd("a", 1, 30, 40)}, Config{ClipNorm: 5})
	if !near(got[0], 3) || !near(got[1], 4) {
		t.Fatalf("clipped to %v, want [3 4]", got)
	}
}

// TestNoiseIsSecretAndCalibrated: DP noise comes from a secretly seeded source (two
// aggregations of the same updates differ), has standard deviation z·C/n on the mean, and the
// clipped updates weigh equally whatever their sample counts.
func TestNoiseIsSecretAndCalibrated(t *testing.T) {
	const dim, z, c = 20000, 2.0, 0.5
	in := []Update{upd("a", 900, make([]float64, dim)...), upd("b", 100, make([]float64, dim)...)}
	in[0].Delta[0], in[1].Delta[0] = 0.4, -0.4 // equal weights: they cancel
	cfg := Config{ClipNorm: c, NoiseStd: z, Noise: SecretNoise()}
	a, err := Aggregate(in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Noise = SecretNoise()
	b, err := Aggregate(in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	same, sq := 0, 0.0
	for i := 1; i < dim; i++ {
		if a[i] == b[i] {
			same++
		}
		sq += a[i] * a[i]
	}
	if same > 0 {
		t.Fatalf("%d of %d noise values repeat between two aggregations", same, dim)
	}
	want := z * c / 2
	if got := math.Sqrt(sq / (dim - 1)); math.Abs(got-want) > 0.03*want {
		t.Fatalf("noise std %.4f, want z·C/n = %.4f", got, want)
	}
	if math.Abs(a[0]) > 5*want {
		t.Fatalf("the first value %.4f: with equal weights the updates cancel, leaving noise only", a[0])
	}
}

func TestAggregateRejectsBadUpdates(t *testing.T) {
	for name, tc := range map[string]struct {
		in  []Update
		cfg Config
	}{
		"none":             {nil, Config{}},
		"lengths":          {[]Update{upd("a", 1, 1), upd("b", 1, 1, 2)}, Config{}},
		"nan":              {[]Update{upd("a", 1, math.NaN())}, Config{}},
		"aggregator":       {[]Update{upd("a", 1, 1)}, Config{Aggregator: "mode"}},
		"krum few":         {[]Update{upd("a", 1, 1), upd("b", 1, 1)}, Config{Aggregator: MultiKrum, Byzantine: 1}},
		"noise alone":      {[]Update{upd("a", 1, 1)}, Config{NoiseStd: 1}},
		"noise, no source": {[]Update{upd("a", 1, 1)}, Config{NoiseStd: 1, ClipNorm: 1}},
		"noise, median":    {[]Update{upd("a", 1, 1)}, Config{NoiseStd: 1, ClipNorm: 1, Noise: SecretNoise(), Aggregator: Median}},
	} {
		if _, err := Aggregate(tc.in, tc.cfg); err == nil {
			t.Errorf("%s: no error", name)
		} else if name == "none" && !errors.Is(err, ErrNoUpdates) {
			t.Errorf("none: %v", err)
		}
	}
}
