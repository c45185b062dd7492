package exposure

import (
	"slices"
	"testing"
)

func TestAllow(t *testing.T) {
	grants := []Grant{
		{Kind: Served, Root: "free", Blocks: []string{"free-m", "free-w", "shared"}, Announce: true},
		{Kind: Public, Root: "blob", Blocks: []string{"blob-1", "blob-2", "paid-w"}, Announce: true},
		{Kind: Restricted, Root: "paid", Blocks: []string{"paid-m", "paid-w"}, Peers: map[string]bool{"buyer": true}, Announce: true},
		{Kind: Served, Root: "paid", Blocks: []string{"paid-m", "paid-w"}},
		{Kind: Job, Root: "round", Blocks: []string{"round-m", "shared"}, Peers: map[string]bool{"member": true}},
		{Kind: Job, Root: "open", Blocks: []string{"open-m"}, Anyone: true},
	}
	tab := Build(grants)
	cases := []struct {
		name, peer, block string
		want              Decision
	}{
		{"served expert to a stranger", "stranger", "free-w", Allowed},
		{"public blob to a stranger", "stranger", "blob-2", Allowed},
		{"block nobody exposed", "stranger", "hosted-but-unserved", Denied},
		{"paid expert to a buyer", "buyer", "paid-m", Allowed},
		{"paid expert to a stranger, though served", "stranger", "paid-m", DeniedPaid},
		{"paid weights also put as public stay paid", "stranger", "paid-w", DeniedPaid},
		{"paid weights to a buyer", "buyer", "paid-w", Allowed},
		{"job model to a member", "member", "round-m", Allowed},
		{"job model to a stranger", "stranger", "round-m", Denied},
		{"open job model to a stranger", "stranger", "open-m", Allowed},
		{"block of a served expert and a closed job", "stranger", "shared", Allowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := tab.Allow(c.peer, c.block); got != c.want {
				t.Fatalf("Allow(%s, %s) = %v, want %v", c.peer, c.block, got, c.want)
			}
		})
	}
	if !tab.Answers("free") || !tab.Answers("paid") || tab.Answers("round") || tab.Answers("blob") {
		t.Fatal("Answers must hold for served experts only")
	}
	if got, want := tab.Announced(), []string{"free", "blob", "paid"}; !slices.Equal(got, want) {
		t.Fatalf("Announced = %v, want %v", got, want)
	}
}

func TestEmptyTablesRefuse(t *testing.T) {
	for name, tab := range map[string]*Table{"nil": nil, "zero": {}, "built empty": Build(nil)} {
		if d := tab.Allow("p", "b"); d != Denied {
			t.Fatalf("%s table: Allow = %v, want Denied", name, d)
		}
		if tab.Answers("x") || len(tab.Announced()) != 0 || tab.Blocks() != 0 {
			t.Fatalf("%s table exposes something", name)
		}
	}
}
