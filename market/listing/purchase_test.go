package listing

import (
	"errors"
	"testing"
)

func TestPurchaseDecoding(t *testing.T) {
	good := `{"listing":"L","entries":[{"author":"a","seq":1,"prev":"","kind":"payment","to":"b","amount":1,"time":0}]}`
	r, err := DecodePurchaseRequest([]byte(good))
	if err != nil || r.Payment().Amount != 1 {
		t.Fatalf("good request: %v", err)
	}
	for name, in := range map[string]string{
		"no entries":    `{"listing":"L","entries":[]}`,
		"null entry":    `{"listing":"L","entries":[null]}`,
		"no listing":    `{"entries":[{"author":"a","seq":1}]}`,
		"unknown field": `{"listing":"L","entries":[],"x":1}`,
		"trailing":      good + `{}`,
	} {
		if _, err := DecodePurchaseRequest([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	if _, err := DecodePurchaseResponse([]byte(`{"receipt":null}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a response without a receipt: %v", err)
	}
	if _, err := DecodeEntries([]byte(`[{"author":"a","seq":1,"id":"x","direction":"out"}, null]`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a null entry in a file: %v", err)
	}
}

func FuzzDecodePurchaseRequest(f *testing.F) {
	f.Add([]byte(`{"listing":"L","entries":[{"author":"a","seq":1,"prev":"","kind":"payment","to":"b","amount":1,"time":0}]}`))
	f.Add([]byte(`{"receipt":{"author":"a","seq":1,"prev":"","kind":"receipt","ref":"x","time":0}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodePurchaseRequest(b); err == nil && r.Payment() == nil {
			t.Fatal("a decoded request has no payment")
		}
		if rc, err := DecodePurchaseResponse(b); err == nil && rc == nil {
			t.Fatal("a decoded response has no receipt")
		}
		if es, err := DecodeEntries(b); err == nil {
			for _, e := range es {
				if e == nil {
					t.Fatal("a decoded file holds a null entry")
				}
			}
		}
	})
}
