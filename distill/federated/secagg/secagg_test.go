package secagg

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// round plays a whole round in memory: who drops out before dealing, after dealing (before
// masking) and after masking (before revealing).
type round struct {
	n, degree, dim       int
	threshold            float64
	dropDeal, dropMask   []int
	dropReveal           []int
	corruptReveal        []int // these survivors reveal garbage
	inputs               map[string][]uint64
	clients              map[string]*Client
	server               *Server
	masked               map[string][]uint64
	reveals              map[string][]Reveal
	ids                  []string
	rngSeed              uint64
	sentMask, sentReveal []string
}

func pid(i int) string { return fmt.Sprintf("peer-%03d", i) }

// setup makes n clients and a server for vectors of dim values, and when deal is set has every
// client deal its shares.
func setup(t testing.TB, cfg Config, n, dim int, deal bool) ([]*Client, *Server) {
	t.Helper()
	var cs []*Client
	var ads []Advert
	for i := range n {
		c, err := NewClient(rand.Reader, pid(i), cfg)
		if err != nil {
			t.Fatal(err)
		}
		cs, ads = append(cs, c), append(ads, c.Advert())
	}
	srv, err := NewServer(cfg, ads, dim)
	if err != nil {
		t.Fatal(err)
	}
	if deal {
		for i, c := range cs {
			d, err := c.ShareKeys(srv.Roster())
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.AddDealing(pid(i), d); err != nil {
				t.Fatal(err)
			}
		}
	}
	return cs, srv
}

func (rd *round) play(t testing.TB) ([]uint64, error) {
	t.Helper()
	cfg := Config{Session: []byte("job/round-1"), Degree: rd.degree, Threshold: rd.threshold}
	rng := mrand.New(mrand.NewPCG(rd.rngSeed, 7))
	rd.inputs, rd.clients = map[string][]uint64{}, map[string]*Client{}
	var adverts []Advert
	for i := range rd.n {
		id := pid(i)
		rd.ids = append(rd.ids, id)
		c, err := NewClient(rand.Reader, id, cfg)
		if err != nil {
			t.Fatal(err)
		}
		rd.clients[id] = c
		adverts = append(adverts, c.Advert())
		x := make([]uint64, rd.dim)
		for j := range x {
			x[j] = uint64(rng.Int64N(1<<40) - 1<<39)
		}
		rd.inputs[id] = x
	}
	var err error
	if rd.server, err = NewServer(cfg, adverts, rd.dim); err != nil {
		t.Fatal(err)
	}
	roster := rd.server.Roster()
	for i, id := range rd.ids {
		if slices.Contains(rd.dropDeal, i) {
			continue
		}
		d, err := rd.clients[id].ShareKeys(roster)
		if err != nil {
			t.Fatal(err)
		}
		if err := rd.server.AddDealing(id, d); err != nil {
			t.Fatal(err)
		}
	}
	rd.masked = map[string][]uint64{}
	for i, id := range rd.ids {
		if slices.Contains(rd.dropDeal, i) || slices.Contains(rd.dropMask, i) {
			continue
		}
		y, err := rd.clients[id].Mask(rd.server.Deliveries(id), rd.inputs[id])
		if err != nil {
			return nil, err
		}
		rd.masked[id] = y
		rd.sentMask = append(rd.sentMask, id)
	}
	rd.reveals = map[string][]Reveal{}
	for _, id := range rd.sentMask {
		idx := slices.Index(rd.ids, id)
		if slices.Contains(rd.dropReveal, idx) {
			continue
		}
		rv, err := rd.clients[id].Unmask(rd.sentMask)
		if err != nil {
			return nil, err
		}
		if slices.Contains(rd.corruptReveal, idx) {
			for k := range rv {
				rv[k].Value = scalarBytes(t, uint64(k)+99)
			}
		}
		rd.reveals[id] = rv
		rd.sentReveal = append(rd.sentReveal, id)
	}
	return rd.server.Sum(rd.masked, rd.reveals)
}

func scalarBytes(t testing.TB, v uint64) []byte {
	b, err := scalar.NewScalar().SetUint64(v).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// want is the plain sum of what the masked-input senders put in.
func (rd *round) want() []uint64 {
	out := make([]uint64, rd.dim)
	for _, id := range rd.sentMask {
		for j, v := range rd.inputs[id] {
			out[j] += v
		}
	}
	return out
}

func TestSumEqualsPlainSum(t *testing.T) {
	cases := []struct {
		name string
		rd   round
	}{
		{"two, everyone", round{n: 2, dim: 17, threshold: 1}},
		{"five, complete graph", round{n: 5, dim: 300, threshold: 0.6}},
		{"twelve, four neighbours", round{n: 12, degree: 4, dim: 100, threshold: 0.6}},
		{"one drops before dealing", round{n: 6, dim: 50, threshold: 0.6, dropDeal: []int{2}}},
		{"one drops after dealing, before masking", round{n: 6, dim: 50, threshold: 0.6, dropMask: []int{4}}},
		{"one drops after masking", round{n: 6, dim: 50, threshold: 0.6, dropReveal: []int{1}}},
		{"drops at every step, sparse graph", round{n: 20, degree: 6, dim: 64, threshold: 0.6,
			dropDeal: []int{3}, dropMask: []int{7, 15}, dropReveal: []int{11}}},
		{"a survivor reveals garbage", round{n: 7, dim: 40, threshold: 0.6, corruptReveal: []int{5}}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rd := tc.rd
			rd.rngSeed = uint64(i + 1)
			got, err := rd.play(t)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, rd.want()) {
				t.Fatalf("sum differs from the plain sum of %d inputs", len(rd.sentMask))
			}
		})
	}
}

func TestTooManyDropsFailNamingWho(t *testing.T) {
	// Five of a complete graph with threshold 0.8 need 4 shares: two dropping after masking
	// leave 3.
	rd := round{n: 5, dim: 8, threshold: 0.8, dropReveal: []int{0, 1}, rngSeed: 3}
	_, err := rd.play(t)
	if err == nil || !strings.Contains(err.Error(), "valid shares of peer-") {
		t.Fatalf("err = %v, want one naming whose secret lacks shares", err)
	}
}

func TestClientRefusesToUnmaskTooFewSurvivors(t *testing.T) {
	cfg := Config{Session: []byte("s"), Threshold: 0.8}
	cs, srv := setup(t, cfg, 5, 4, true)
	if _, err := cs[0].Mask(srv.Deliveries(pid(0)), make([]uint64, 4)); err != nil {
		t.Fatal(err)
	}
	// A coordinator claiming most dropped would get the mask-key shares of most neighbours.
	if _, err := cs[0].Unmask([]string{pid(0), pid(1)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unmask with 2 of 5 survivors: err = %v, want a refusal", err)
	}
	if _, err := cs[1].Unmask([]string{pid(0), pid(1)}); err == nil {
		t.Fatal("unmask before masking was accepted")
	}
}

func TestServerRefusesBadDealings(t *testing.T) {
	cfg := Config{Session: []byte("s"), Threshold: 0.6}
	cs, srv := setup(t, cfg, 4, 4, false)
	good, err := cs[0].ShareKeys(srv.Roster())
	if err != nil {
		t.Fatal(err)
	}
	mutate := []struct {
		name string
		from string
		f    func(d *Dealing)
	}{
		{"not on the roster", "stranger", func(*Dealing) {}},
		{"share dealt by another", pid(0), func(d *Dealing) { d.Shares[0].From = pid(1) }},
		{"share to itself", pid(0), func(d *Dealing) { d.Shares[0].To = pid(0) }},
		{"a share missing", pid(0), func(d *Dealing) { d.Shares = d.Shares[1:] }},
		{"short commitment", pid(0), func(d *Dealing) { d.Commit.Mask = d.Commit.Mask[1:] }},
		{"commitment not a point", pid(0), func(d *Dealing) { d.Commit.Self[0] = make([]byte, 5) }},
		{"huge box", pid(0), func(d *Dealing) { d.Shares[1].Box = make([]byte, 1<<20) }},
	}
	for _, m := range mutate {
		t.Run(m.name, func(t *testing.T) {
			d := *good
			d.Shares = slices.Clone(good.Shares)
			d.Commit = Commitments{Mask: slices.Clone(good.Commit.Mask), Self: slices.Clone(good.Commit.Self)}
			m.f(&d)
			if err := srv.AddDealing(m.from, &d); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if err := srv.AddDealing(pid(0), good); err != nil {
		t.Fatalf("the good dealing after the bad ones: %v", err)
	}
	if err := srv.AddDealing(pid(0), good); !errors.Is(err, ErrInvalid) {
		t.Fatalf("dealing twice: err = %v", err)
	}
}

func TestClientRefusesBadDeliveries(t *testing.T) {
	cfg := Config{Session: []byte("s"), Threshold: 0.6}
	mk := func() ([]*Client, *Server) { return setup(t, cfg, 3, 2, true) }
	cases := []struct {
		name string
		f    func(ds []Delivery) []Delivery
	}{
		{"box tampered", func(ds []Delivery) []Delivery { ds[0].Box[len(ds[0].Box)-1] ^= 1; return ds }},
		{"box for someone else", func(ds []Delivery) []Delivery { ds[0].From = pid(0); return ds }},
		{"twice from one dealer", func(ds []Delivery) []Delivery { return append(ds, ds[0]) }},
		{"commitment of another polynomial", func(ds []Delivery) []Delivery {
			ds[0].Commit, ds[1].Commit = ds[1].Commit, ds[0].Commit
			return ds
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, srv := mk()
			if _, err := cs[0].Mask(tc.f(srv.Deliveries(pid(0))), make([]uint64, 2)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestCoordinatorViewIndependentOfInput: everything the coordinator can compute about one
// participant's input — its masked input less the self mask it may rebuild — is uniform
// whatever the input. Two inputs far apart (all zeros, and values near the fixed-point
// bound) give samples that a two-sample Kolmogorov–Smirnov test cannot tell apart, and
// neither departs from uniform; without the pairwise masks the test does tell them apart.
func TestCoordinatorViewIndependentOfInput(t *testing.T) {
	const trials = 400
	view := func(x uint64, pairwise bool) []float64 {
		var out []float64
		for range trials {
			cfg := Config{Session: []byte("s"), Threshold: 0.6}
			cs, srv := setup(t, cfg, 3, 4, true)
			in := []uint64{x, x, x, x}
			if !pairwise { // the control: the input itself
				for _, v := range in {
					out = append(out, float64(v>>11)/(1<<53))
				}
				continue
			}
			y, err := cs[0].Mask(srv.Deliveries(pid(0)), in)
			if err != nil {
				t.Fatal(err)
			}
			// The coordinator may learn participant 0's self-mask seed (it sent input).
			seed, err := selfSeed(cs[0].selfSecret, cfg.Session)
			if err != nil {
				t.Fatal(err)
			}
			addMask(y, seed, -1)
			for _, v := range y {
				out = append(out, float64(v>>11)/(1<<53))
			}
		}
		return out
	}
	zeros, big := view(0, true), view(uint64(1<<61-1), true)
	crit := 1.95 * math.Sqrt(2/float64(len(zeros))) // α = 0.001
	if d := ks(zeros, big); d > crit {
		t.Errorf("KS distance between the views of two inputs %.4f > %.4f", d, crit)
	}
	for name, s := range map[string][]float64{"zeros": zeros, "big": big} {
		if d := ksUniform(s); d > 1.95/math.Sqrt(float64(len(s))) {
			t.Errorf("view of %s: KS distance from uniform %.4f", name, d)
		}
	}
	if d := ks(view(0, false), view(uint64(1<<61-1), false)); d < crit {
		t.Errorf("without pairwise masks the views should differ; KS %.4f", d)
	}
}

func ks(a, b []float64) float64 {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Float64s(a)
	sort.Float64s(b)
	i, j, d := 0, 0, 0.0
	for i < len(a) && j < len(b) {
		if a[i] <= b[j] {
			i++
		} else {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	return d
}

func ksUniform(a []float64) float64 {
	a = slices.Clone(a)
	sort.Float64s(a)
	d := 0.0
	for i, v := range a {
		d = max(d, math.Abs(float64(i+1)/float64(len(a))-v), math.Abs(v-float64(i)/float64(len(a))))
	}
	return d
}

func TestNeighbourhoodsAreSymmetricAndSized(t *testing.T) {
	for _, tc := range []struct{ n, degree, want int }{{10, 4, 4}, {10, 0, 9}, {10, 9, 9}, {50, 6, 6}, {7, 3, 4}} {
		ids := make([]string, tc.n)
		for i := range ids {
			ids[i] = pid(i)
		}
		nb := neighbourhoods([]byte("s"), ids, tc.degree)
		for _, id := range ids {
			if len(nb[id]) != tc.want {
				t.Errorf("n=%d degree=%d: %s has %d neighbours, want %d", tc.n, tc.degree, id, len(nb[id]), tc.want)
			}
			for _, o := range nb[id] {
				if o == id || !slices.Contains(nb[o], id) {
					t.Errorf("n=%d degree=%d: %s→%s is not symmetric", tc.n, tc.degree, id, o)
				}
			}
		}
	}
}

func TestFixedPointRoundTrip(t *testing.T) {
	scale, err := Scale(1000, 10)
	if err != nil {
		t.Fatal(err)
	}
	xs := [][]float64{{1.5, -2.25, 9.99, -10}, {0.001, 3, -3, 0}}
	sum := make([]uint64, 4)
	want := make([]float64, 4)
	for _, x := range xs {
		q, err := Quantize(x, scale, 10)
		if err != nil {
			t.Fatal(err)
		}
		for i := range q {
			sum[i] += q[i]
			want[i] += x[i]
		}
	}
	for i, v := range Dequantize(sum, scale) {
		if math.Abs(v-want[i]) > 2/scale {
			t.Errorf("value %d: %g, want %g", i, v, want[i])
		}
	}
	if _, err := Quantize([]float64{11}, scale, 10); err == nil {
		t.Error("a value beyond the bound was quantized")
	}
	if _, err := Scale(1000, 1e18); err == nil {
		t.Error("a bound that cannot fit was given a scale")
	}
}

func BenchmarkRound(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("n=%d,dim=79510,degree=8", n), func(b *testing.B) {
			for b.Loop() {
				rd := round{n: n, degree: 8, dim: 79510, threshold: 0.6, rngSeed: 1}
				if _, err := rd.play(b); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
