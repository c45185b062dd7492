package listing

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/meshnode/meshnode/market/ledger"
)

func TestSyncMessagesAreStrict(t *testing.T) {
	heads := &SyncRequest{Heads: &HeadsRequest{After: "b", Limit: 2}}
	chain := &SyncRequest{Chains: []ledger.Want{{Author: "a", From: 3}, {Author: "b", From: 1}}}
	for name, tc := range map[string]struct {
		req  *SyncRequest
		body string
		ok   bool
	}{
		"heads":               {heads, `{"heads":[{"author":"c","seq":1},{"author":"d","seq":4}]}`, true},
		"heads out of order":  {heads, `{"heads":[{"author":"d","seq":1},{"author":"c","seq":4}]}`, false},
		"heads before after":  {heads, `{"heads":[{"author":"a","seq":1}]}`, false},
		"too many heads":      {heads, `{"heads":[{"author":"c"},{"author":"d"},{"author":"e"}]}`, false},
		"entries for heads":   {heads, `{"entries":[{"author":"a","seq":3,"prev":"x","kind":"grant","time":0}]}`, false},
		"chain":               {chain, `{"entries":[{"author":"a","seq":3,"prev":"x","kind":"grant","time":0},{"author":"a","seq":4,"prev":"y","kind":"grant","time":0}]}`, true},
		"two chains":          {chain, `{"entries":[{"author":"a","seq":3,"prev":"x","kind":"grant","time":0},{"author":"b","seq":1,"prev":"","kind":"grant","time":0}]}`, true},
		"chains out of order": {chain, `{"entries":[{"author":"b","seq":1,"prev":"","kind":"grant","time":0},{"author":"a","seq":3,"prev":"x","kind":"grant","time":0}]}`, false},
		"another author":      {chain, `{"entries":[{"author":"c","seq":3,"prev":"x","kind":"grant","time":0}]}`, false},
		"a gap":               {chain, `{"entries":[{"author":"a","seq":4,"prev":"x","kind":"grant","time":0}]}`, false},
		"one-entry proof":     {chain, `{"proofs":[{"author":"a","seq":3,"prev":"x","kind":"grant","time":0}]}`, false},
		"proof of another":    {chain, `{"proofs":[{"author":"c","seq":3,"prev":"x","kind":"grant","time":0},{"author":"c","seq":3,"prev":"y","kind":"grant","time":0}]}`, false},
		"proof":               {chain, `{"proofs":[{"author":"a","seq":3,"prev":"x","kind":"grant","time":0},{"author":"a","seq":3,"prev":"y","kind":"grant","time":0}]}`, true},
		"unknown field":       {chain, `{"more":1}`, false},
	} {
		_, err := DecodeSyncResponse(tc.req, []byte(tc.body))
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, body := range map[string]string{
		"both":      `{"heads":{"after":"","limit":1},"chain":{"author":"a","from":1}}`,
		"neither":   `{}`,
		"big page":  `{"heads":{"after":"","limit":100000}}`,
		"seq 0":     `{"chain":{"author":"a","from":0}}`,
		"no author": `{"chain":{"author":"","from":1}}`,
	} {
		if _, err := DecodeSyncRequest([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := DecodeSyncRequest([]byte(`{"chains":[{"author":"a","from":1,"proof":true}]}`)); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeSync(f *testing.F) {
	f.Add([]byte(`{"heads":{"after":"","limit":10}}`), []byte(`{"heads":[{"author":"c","seq":1}]}`))
	f.Add([]byte(`{"chains":[{"author":"a","from":1},{"author":"b","from":2}]}`), []byte(`{"entries":[{"author":"a","seq":1,"prev":"","kind":"grant","time":0},{"author":"b","seq":2,"prev":"x","kind":"grant","time":0}]}`))
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		r, err := DecodeSyncRequest(req)
		if err != nil {
			return
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatal(err)
		}
		out, err := DecodeSyncResponse(r, resp)
		if err != nil {
			return
		}
		if r.Heads != nil && len(out.Heads) > r.Heads.Limit {
			t.Fatal("more heads than asked for")
		}
		from := map[string]uint64{}
		for _, w := range r.Chains {
			from[w.Author] = w.From
		}
		next := map[string]uint64{}
		for _, e := range out.Entries {
			f, ok := from[e.Author]
			if !ok {
				t.Fatal("an entry of a chain not asked for")
			}
			if n, seen := next[e.Author]; (seen && e.Seq != n) || (!seen && e.Seq != f) {
				t.Fatal("an entry out of the chain part asked for")
			}
			next[e.Author] = e.Seq + 1
		}
	})
}
