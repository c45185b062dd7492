package ledger

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/meshnode/meshnode/internal/testkeys"
)

// cachedVerify checks each signature once (the books of a schedule share entries); the check
// itself is the ring's real ed25519 one.
func cachedVerify(ring testkeys.Ring) Verifier {
	var mu sync.Mutex
	seen := map[string]error{}
	return func(author string, msg, sig []byte) error {
		k := author + "\x00" + string(msg) + "\x00" + string(sig)
		mu.Lock()
		defer mu.Unlock()
		if err, ok := seen[k]; ok {
			return err
		}
		err := ring.Verify(author, msg, sig)
		seen[k] = err
		return err
	}
}

// history writes entries as honest keys and one double spender would.
type history struct {
	t       testing.TB
	keys    map[string]testkeys.Key
	seq     map[string]uint64
	prev    map[string]string
	entries []*Entry
	unpaid  []*Entry // payments without a receipt yet
	paid    []*Entry // payments with one
	proof   [2]*Entry
}

func newHistory(t testing.TB, ring testkeys.Ring, names ...string) *history {
	h := &history{t: t, keys: map[string]testkeys.Key{}, seq: map[string]uint64{}, prev: map[string]string{}}
	for i, n := range names {
		h.keys[n] = ring.New(n, byte(i+1))
	}
	return h
}

// write signs key's next entry; fork leaves the chain where it was (the second branch).
func (h *history) write(key, kind string, fill func(*Entry), fork bool) *Entry {
	e := &Entry{Author: key, Seq: h.seq[key] + 1, Prev: h.prev[key], Kind: kind, Time: int64(len(h.entries))}
	fill(e)
	if err := e.Sign(h.keys[key]); err != nil {
		h.t.Fatal(err)
	}
	if !fork {
		h.seq[key]++
		h.prev[key] = e.ID()
	}
	h.entries = append(h.entries, e)
	if kind == KindPayment {
		h.unpaid = append(h.unpaid, e)
	}
	return e
}

func (h *history) pay(from, to string, amount uint64, fork bool) *Entry {
	return h.write(from, KindPayment, func(e *Entry) {
		e.To, e.Amount, e.Listing = to, amount, fmt.Sprintf("L%d", len(h.entries))
	}, fork)
}

func (h *history) receipt(i int) {
	p := h.unpaid[i]
	h.unpaid = append(h.unpaid[:i], h.unpaid[i+1:]...)
	h.paid = append(h.paid, p)
	h.write(p.To, KindReceipt, func(e *Entry) { e.Ref, e.Listing = p.ID(), p.Listing }, false)
}

// randomHistory: grants, payments (some beyond their payer's means), receipts, second
// receipts, and one double spend by "dave" whose victims pay on with what he paid them.
func randomHistory(t testing.TB, ring testkeys.Ring, r *rand.Rand) *history {
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	h := newHistory(t, ring, append([]string{"issuer", "dave"}, users...)...)
	steps := 40 + r.IntN(40)
	spendAt := r.IntN(steps)
	for i := range steps {
		if i == spendAt {
			a := h.pay("dave", "u0", 80, true)
			b := h.pay("dave", "u1", 80, false)
			h.proof = [2]*Entry{a, b}
			if r.IntN(2) == 0 { // dave's chain goes on past the fork
				h.pay("dave", "u2", 5, false)
			}
			continue
		}
		switch x := r.IntN(100); {
		case x < 15:
			h.write("issuer", KindGrant, func(e *Entry) { e.To, e.Amount = users[r.IntN(len(users))], uint64(1+r.IntN(50)) }, false)
		case x < 55:
			from := users[r.IntN(len(users))]
			to := users[r.IntN(len(users))]
			if to == from {
				to = "dave"
			}
			h.pay(from, to, uint64(1+r.IntN(60)), false)
		case x < 92 && len(h.unpaid) > 0:
			h.receipt(r.IntN(len(h.unpaid)))
		case len(h.paid) > 0: // a second receipt for a paid payment: void
			p := h.paid[r.IntN(len(h.paid))]
			h.write(p.To, KindReceipt, func(e *Entry) { e.Ref, e.Listing = p.ID(), p.Listing }, false)
		}
	}
	return h
}

// fingerprint is everything a book concludes: each entry's verdict, each key's balance and
// refusal.
func fingerprint(b *Book, entries []*Entry, keys []string) string {
	var s strings.Builder
	for _, e := range entries {
		st := b.Status(e.ID())
		if st == StatusWaiting {
			st = StatusUnknown // not in the book's verdicts (yet)
		}
		fmt.Fprintf(&s, "%s ", st)
	}
	for _, k := range keys {
		fmt.Fprintf(&s, "| %s %d %v", k, b.Balance(k), b.Refuses(k))
	}
	fmt.Fprintf(&s, "| %d entries", b.Len())
	return s.String()
}

// syncFrom does what the sync protocol does, with no network: b asks peer for what Wants
// lists, and adds it. It reports whether b changed.
func syncFrom(b, peer *Book) bool {
	before := b.Len()
	forks := len(b.Refused())
	for _, w := range b.Wants(peer.Heads("", 1<<30)) {
		if f := peer.Fork(w.Author); f != nil && w.Proof {
			_, _ = b.Prove(f.A, f.B)
		}
		for _, e := range peer.ChainFrom(w.Author, w.From, 1<<30) {
			_, _ = b.Add(e)
		}
	}
	return b.Len() != before || len(b.Refused()) != forks
}

// TestBooksConvergeWhateverTheOrder is the ledger's convergence property: books that receive
// the same entries in random orders, with duplicates, some dropped and some refused for want
// of room, and then sync with each other, reach the same verdict on every entry and the same
// balances as a book that received the entries in the order they were written.
func TestBooksConvergeWhateverTheOrder(t *testing.T) {
	schedules := 2000
	if testing.Short() {
		schedules = 200
	}
	ring := testkeys.Ring{}
	verify := cachedVerify(ring)
	keys := []string{"issuer", "dave", "u0", "u1", "u2", "u3", "u4", "u5"}
	policy := Policy{Issuers: map[string]bool{"issuer": true}, Genesis: 100}
	var healed, unfunded, proven int // schedules where sync had work, where a payment was unfunded, where dave was caught
	for s := range schedules {
		r := rand.New(rand.NewPCG(uint64(s), 18))
		h := randomHistory(t, ring, r)
		books := make([]*Book, 4)
		for i := range books {
			p := policy
			if r.IntN(2) == 0 {
				p.Limits = Limits{WaitingPerKey: 1 + r.IntN(4)} // early entries refused: sync brings them
			}
			books[i] = NewBook(p, verify)
			var batch []*Entry // half the books hear entries in batches (AddAll), half one by one
			for _, j := range r.Perm(len(h.entries)) {
				if r.IntN(8) == 0 {
					continue // dropped on the way
				}
				for range 1 + r.IntN(2) { // sometimes twice
					if i%2 == 0 {
						batch = append(batch, h.entries[j])
					} else {
						_, _ = books[i].Add(h.entries[j])
					}
				}
				if len(batch) > 0 && r.IntN(8) == 0 {
					books[i].AddAll(batch)
					batch = nil
				}
			}
			books[i].AddAll(batch)
			if r.IntN(3) == 0 { // a proof heard as a proof message
				_, _ = books[i].Prove(h.proof[0], h.proof[1])
			}
		}
		// The reference hears, in the order they were written, the entries some book holds
		// (an entry no book kept cannot be synced) and the proof if some book holds it.
		ref := NewBook(policy, verify)
		for _, e := range h.entries {
			for _, b := range books {
				if b.Status(e.ID()) != StatusUnknown {
					_, _ = ref.Add(e)
					break
				}
			}
		}
		for _, b := range books {
			if f := b.Fork("dave"); f != nil {
				_, _ = ref.Prove(f.A, f.B)
			}
		}
		want := fingerprint(ref, h.entries, keys)
		if fingerprint(books[0], h.entries, keys) != want {
			healed++
		}
		if strings.Contains(want, "unfunded") {
			unfunded++
		}
		if ref.Refuses("dave") {
			proven++
		}
		for round := 0; ; round++ {
			changed := false
			for i := range books {
				for j := range books {
					if i != j && syncFrom(books[i], books[j]) {
						changed = true
					}
				}
			}
			if !changed {
				break
			}
			if round > 20 {
				t.Fatalf("schedule %d: books still change after %d sync rounds", s, round)
			}
		}
		for i, b := range books {
			if got := fingerprint(b, h.entries, keys); got != want {
				t.Fatalf("schedule %d: book %d disagrees with the reference:\n got %s\nwant %s", s, i, got, want)
			}
		}
	}
	t.Logf("%d schedules: %d needed sync to agree, %d had an unfunded payment, %d caught the double spend", schedules, healed, unfunded, proven)
	if healed < schedules/2 || unfunded < schedules/10 || proven < schedules*9/10 {
		t.Fatal("the schedules do not exercise sync, unfunded payments and double spends enough to show anything")
	}
}

// TestDoubleSpendLeavesInnocentChainsAlone is the case the old book got wrong: dave double
// spends; meanwhile alice pays carol and carol pays sam. Whether a book hears the proof first
// or last, it accepts carol's entries (before and after) and shows the same balances; the
// victims of the double spend lose what dave paid them, and a victim's payment made from it
// is unfunded on every book alike.
func TestDoubleSpendLeavesInnocentChainsAlone(t *testing.T) {
	ring := testkeys.Ring{}
	h := newHistory(t, ring, "alice", "carol", "sam", "dave", "vic", "val")
	a := h.pay("alice", "carol", 30, false)
	h.receipt(0)
	d1 := h.pay("dave", "vic", 90, true)
	d2 := h.pay("dave", "val", 90, false)
	c := h.pay("carol", "sam", 60, false)
	h.receipt(0)                         // vic acknowledges d1
	h.receipt(0)                         // val acknowledges d2
	h.receipt(0)                         // sam acknowledges c
	v := h.pay("vic", "sam", 150, false) // needs dave's 90
	h.receipt(0)
	c2 := h.pay("carol", "alice", 10, false)
	policy := Policy{Genesis: 100}
	results := map[string]string{}
	keys := []string{"alice", "carol", "sam", "dave", "vic", "val"}
	for name, order := range map[string][]*Entry{
		"written":     h.entries,
		"proof first": append([]*Entry{d1, d2}, h.entries...),
		"proof last":  append(without2(h.entries, d2), d2),
		"reversed":    reversed(h.entries),
	} {
		b := NewBook(policy, ring.Verify)
		for _, e := range order {
			if _, err := b.Add(e); err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatal(err)
			}
		}
		for _, e := range []*Entry{a, c, c2} {
			if b.Status(e.ID()) != StatusOK {
				t.Fatalf("%s: an innocent payment (%d of %s) is %s", name, e.Seq, e.Author, b.Status(e.ID()))
			}
		}
		if b.Status(v.ID()) != StatusUnfunded || !b.Refuses("dave") {
			t.Fatalf("%s: vic's payment from dave's money is %s, dave refused %v", name, b.Status(v.ID()), b.Refuses("dave"))
		}
		results[name] = fingerprint(b, h.entries, keys)
	}
	want := results["written"]
	for name, got := range results {
		if got != want {
			t.Fatalf("%s order: %s\nwritten order: %s", name, got, want)
		}
	}
	b := NewBook(policy, ring.Verify)
	for _, e := range h.entries {
		_, _ = b.Add(e)
	}
	// alice 100-30 (carol's 10 is not receipted), carol 100+30-60-10, sam 100+60 (vic's 150
	// never moved), vic and val 100.
	for k, bal := range map[string]uint64{"alice": 70, "carol": 60, "sam": 160, "vic": 100, "val": 100, "dave": 0} {
		if got := b.Balance(k); got != bal {
			t.Errorf("%s holds %d, want %d", k, got, bal)
		}
	}
}

func without2(es []*Entry, x *Entry) []*Entry {
	var out []*Entry
	for _, e := range es {
		if e != x {
			out = append(out, e)
		}
	}
	return out
}

func reversed(es []*Entry) []*Entry {
	out := append([]*Entry(nil), es...)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
