package advert

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

const expertID = "bafyreifjxgzfxnytwsoazbg3gjpwjhqiikvtyrsmk7aanciamn4m5vbwby"

func testPeer(t testing.TB, seed byte) peer.ID {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func valid(p peer.ID, now time.Time) Advert {
	return Advert{V: Version, Provider: p.String(), ID: expertID, Name: "fashion", Domains: []string{"vision"},
		Params: 79510, Quality: 0.878, Time: now.UnixMilli(), TTL: 30000, Seq: 1}
}

func TestDecodeAcceptsValidAndRejectsEachFault(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	alice, mallory := testPeer(t, 1), testPeer(t, 2)
	enc := func(a Advert) []byte {
		b, err := a.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := valid(alice, now)
	if got, err := Decode(enc(good), alice, now, 4096); err != nil || got.Name != "fashion" {
		t.Fatalf("valid advert: %v", err)
	}
	hinted := good
	hinted.Weights = expertID
	if got, err := Decode(enc(hinted), alice, now, 4096); err != nil || got.Weights != expertID {
		t.Fatalf("valid advert with a weights CID: %+v, %v", got, err)
	}
	stale := good
	stale.Time = now.Add(-31 * time.Second).UnixMilli()
	future := good
	future.Time = now.Add(time.Minute).UnixMilli()
	big := good
	big.Name = strings.Repeat("x", 200)
	big.Domains = []string{strings.Repeat("d", 64), strings.Repeat("e", 64)}
	cases := []struct {
		name string
		data []byte
		from peer.ID
		want error
	}{
		{"forged provider", enc(good), mallory, ErrForged},
		{"stale", enc(stale), alice, ErrStale},
		{"from the future", enc(future), alice, ErrStale},
		{"oversized", enc(big), alice, ErrSize},
		{"not json", []byte("{nope"), alice, ErrMalformed},
		{"unknown field", []byte(strings.Replace(string(enc(good)), `"v":1`, `"v":1,"bogus":"AAAA"`, 1)), alice, ErrMalformed},
		{"weights not a CID", []byte(strings.Replace(string(enc(good)), `"v":1`, `"v":1,"weights":"AAAA"`, 1)), alice, ErrMalformed},
		{"trailing data", append(enc(good), []byte(" {}")...), alice, ErrMalformed},
		{"bad cid", []byte(strings.Replace(string(enc(good)), expertID, "not-a-cid", 1)), alice, ErrMalformed},
		{"quality > 1", []byte(strings.Replace(string(enc(good)), `"quality":0.878`, `"quality":7`, 1)), alice, ErrMalformed},
		{"version 2", []byte(strings.Replace(string(enc(good)), `"v":1`, `"v":2`, 1)), alice, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data, tc.from, now, 300)
			if tc.name != "oversized" {
				_, err = Decode(tc.data, tc.from, now, 4096)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if Reason(err) != tc.want.Error() {
				t.Fatalf("reason %q, want %q", Reason(err), tc.want.Error())
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	now := time.UnixMilli(1_800_000_000_000)
	alice := testPeer(f, 1)
	good := valid(alice, now)
	b, _ := good.Encode()
	f.Add(b)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Decode(data, alice, now, 4096)
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		again, err := a.Encode()
		if err != nil {
			t.Fatalf("decoded advert does not encode: %v", err)
		}
		if _, err := Decode(again, alice, now, 1<<20); err != nil {
			t.Fatalf("re-encoded advert does not decode: %v", err)
		}
	})
}
