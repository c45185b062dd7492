package listing

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/meshnode/meshnode/internal/testkeys"
	"github.com/meshnode/meshnode/market/ledger"
)

const expertCID = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"

var now = time.UnixMilli(1_800_000_000_000)

func newListing(t *testing.T, k testkeys.Key, mutate func(*Listing)) *Listing {
	t.Helper()
	l := &Listing{V: Version, Expert: expertCID, Name: "iris", Domains: []string{"iris"}, Params: 35,
		Evals: []Eval{{Dataset: "iris:test", Metric: "accuracy", Value: 0.93, Samples: 30}},
		Price: 25, Licence: "CC-BY-4.0", Time: now.Add(-time.Minute).UnixMilli(), Expires: now.Add(time.Hour).UnixMilli()}
	if mutate != nil {
		mutate(l)
	}
	if err := l.Sign(k); err != nil {
		t.Fatal(err)
	}
	return l
}

func msg(kind string, sent time.Time, f func(*Message)) []byte {
	m := &Message{Kind: kind, Sent: sent.UnixMilli()}
	f(m)
	return m.Encode()
}

func TestListingVerifyAndRoundTrip(t *testing.T) {
	ring := testkeys.Ring{}
	alice := ring.New("alice", 1)
	l := newListing(t, alice, nil)
	if err := l.Verify(ring.Verify, now); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeListing(l.Encode())
	if err != nil || back.ID() != l.ID() {
		t.Fatalf("round trip: %v", err)
	}
	if acc, ok := l.Accuracy(); !ok || acc != 0.93 {
		t.Fatalf("accuracy %v %v", acc, ok)
	}
	cheaper := *back
	cheaper.Price = 1 // changed after signing
	expired := newListing(t, alice, func(l *Listing) { l.Expires = now.Add(-time.Second).UnixMilli() })
	future := newListing(t, alice, func(l *Listing) { l.Time, l.Expires = now.Add(time.Hour).UnixMilli(), now.Add(2*time.Hour).UnixMilli() })
	noCID := newListing(t, alice, func(l *Listing) { l.Expert = "not-a-cid" })
	for name, tc := range map[string]struct {
		l    *Listing
		want error
	}{
		"price changed": {&cheaper, ErrForged},
		"expired":       {expired, ErrExpired},
		"future":        {future, ErrStale},
		"bad expert":    {noCID, ErrMalformed},
	} {
		if err := tc.l.Verify(ring.Verify, now); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	if _, err := DecodeListing(bytes.Replace(l.Encode(), []byte(`,"seller"`), []byte(`, "seller"`), 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("non-canonical listing: %v", err)
	}
}

func TestMessageValidation(t *testing.T) {
	ring := testkeys.Ring{}
	alice, bob := ring.New("alice", 1), ring.New("bob", 2)
	l := newListing(t, alice, nil)
	book := ledger.NewBook(ledger.Policy{Genesis: 100}, ledger.Verifier(ring.Verify))
	pay := book.Next("bob", ledger.KindPayment)
	pay.To, pay.Amount, pay.Listing = "alice", 25, l.ID()
	if err := pay.Sign(bob); err != nil {
		t.Fatal(err)
	}
	pay2 := *pay
	pay2.Sig, pay2.Amount = nil, 24
	if err := pay2.Sign(bob); err != nil {
		t.Fatal(err)
	}
	forged := *pay
	forged.Amount = 1
	rev := &Review{V: Version, Listing: l.ID(), Expert: expertCID, Payment: pay.ID(), Dataset: "iris:test", Samples: 30, Accuracy: 0.9, Rating: 4, Time: now.UnixMilli()}
	if err := rev.Sign(bob); err != nil {
		t.Fatal(err)
	}
	good := map[string]struct {
		data []byte
		from string
	}{
		"listing":                    {msg(KindListing, now, func(m *Message) { m.Listing = l }), "alice"},
		"review":                     {msg(KindReview, now, func(m *Message) { m.Review = rev }), "bob"},
		"entries relayed by another": {msg(KindEntries, now, func(m *Message) { m.Entries = []*ledger.Entry{pay} }), "carol"},
		"proof":                      {msg(KindProof, now, func(m *Message) { m.Entries = []*ledger.Entry{pay, &pay2} }), "carol"},
	}
	for name, tc := range good {
		if _, err := DecodeMessage(tc.data, tc.from, now, ring.Verify); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	badCases := map[string]struct {
		data []byte
		from string
		want error
	}{
		"listing relayed by another": {msg(KindListing, now, func(m *Message) { m.Listing = l }), "bob", ErrForged},
		"review by another":          {msg(KindReview, now, func(m *Message) { m.Review = rev }), "alice", ErrForged},
		"stale":                      {msg(KindListing, now.Add(-3*time.Minute), func(m *Message) { m.Listing = l }), "alice", ErrStale},
		"from the future":            {msg(KindListing, now.Add(time.Minute), func(m *Message) { m.Listing = l }), "alice", ErrStale},
		"forged entry":               {msg(KindEntries, now, func(m *Message) { m.Entries = []*ledger.Entry{&forged} }), "carol", ErrForged},
		"proof of nothing":           {msg(KindProof, now, func(m *Message) { m.Entries = []*ledger.Entry{pay, pay} }), "carol", ErrMalformed},
		"two payloads":               {msg(KindListing, now, func(m *Message) { m.Listing, m.Review = l, rev }), "alice", ErrMalformed},
		"unknown kind":               {msg("gift", now, func(m *Message) {}), "alice", ErrMalformed},
		"oversized":                  {bytes.Repeat([]byte(" "), MaxMessageBytes+1), "alice", ErrSize},
		"unknown field":              {[]byte(`{"kind":"listing","sent":1,"x":2}`), "alice", ErrMalformed},
	}
	for name, tc := range badCases {
		if _, err := DecodeMessage(tc.data, tc.from, now, ring.Verify); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"kind":"listing","sent":1800000000000,"listing":{"v":1,"expert":"` + expertCID + `","seller":"a","name":"n","domains":null,"params":0,"price":0,"time":1,"expires":2}}`))
	f.Add([]byte(`{"kind":"entries","sent":1800000000000,"entries":[{"author":"a","seq":1,"prev":"","kind":"payment","to":"b","amount":1,"time":0}]}`))
	f.Add([]byte(`{"kind":"proof","sent":1800000000000,"entries":[null,null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		never := func(string, []byte, []byte) error { return errors.New("no keys in the fuzz test") }
		always := func(string, []byte, []byte) error { return nil }
		if _, err := DecodeMessage(data, "a", now, never); err == nil {
			var m Message
			_ = strictDecode(data, MaxMessageBytes, &m)
			t.Fatalf("accepted a message without a valid signature: %s", m.Kind)
		}
		m, err := DecodeMessage(data, "a", now, always)
		if err != nil {
			return
		}
		if _, err := DecodeMessage(m.Encode(), "a", now, always); err != nil {
			t.Fatalf("a valid message does not survive re-encoding: %v", err)
		}
	})
}

func FuzzDecodeListing(f *testing.F) {
	f.Add([]byte(`{"v":1,"expert":"` + expertCID + `","seller":"a","name":"n","domains":null,"params":0,"price":0,"time":1,"expires":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeListing(data)
		if err != nil {
			return
		}
		if !bytes.Equal(l.Encode(), data) {
			t.Fatal("decoded listing does not re-encode to its bytes")
		}
	})
}
