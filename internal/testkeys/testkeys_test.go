package testkeys

import "testing"

func TestRingVerifiesItsKeys(t *testing.T) {
	r := Ring{}
	a, b := r.New("a", 1), r.New("b", 2)
	if a.ID() != "a" || b.ID() != "b" {
		t.Fatalf("ids %q %q", a.ID(), b.ID())
	}
	msg := []byte("hello")
	sig, err := a.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify("a", msg, sig); err != nil {
		t.Fatal(err)
	}
	if r.Verify("b", msg, sig) == nil || r.Verify("c", msg, sig) == nil || r.Verify("a", []byte("other"), sig) == nil {
		t.Fatal("a bad signature verified")
	}
	if again := (Ring{}).New("x", 1); string(again.priv) != string(a.priv) {
		t.Fatal("the same seed gave a different key")
	}
}
