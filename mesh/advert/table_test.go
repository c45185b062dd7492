package advert

import (
	"context"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

func TestTableKeepsNewestAndHonoursWithdrawals(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	alice, bob := testPeer(t, 1), testPeer(t, 2)
	tab := NewTable()
	a1 := valid(alice, now)
	a1.Seq = 5
	if !tab.Apply(&a1, now) {
		t.Fatal("first advert did not change the table")
	}
	older := a1
	older.Seq, older.Quality = 4, 0.1
	if tab.Apply(&older, now) {
		t.Fatal("an older advert replaced a newer one")
	}
	b1 := valid(bob, now)
	tab.Apply(&b1, now)
	if got := tab.Providers(expertID, now); len(got) != 2 {
		t.Fatalf("%d providers, want 2", len(got))
	}
	w := a1
	w.Seq, w.Withdraw = 6, true
	tab.Apply(&w, now)
	late := a1 // an advert from before the withdrawal, still in flight
	if tab.Apply(&late, now) {
		t.Fatal("an advert older than the withdrawal brought the entry back")
	}
	if got := tab.Providers(expertID, now); len(got) != 1 || got[0].Provider != bob.String() {
		t.Fatalf("after alice's withdrawal: %+v", got)
	}
	// bob's advert expires after its TTL.
	later := now.Add(30 * time.Second)
	if got := tab.List(later); len(got) != 0 {
		t.Fatalf("expired entries listed: %+v", got)
	}
	if n := tab.Sweep(later); n != 1 || tab.Len() != 0 {
		t.Fatalf("sweep removed %d, %d left", n, tab.Len())
	}
}

func TestTablePersistsLiveEntries(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(1_800_000_000_000)
	store := dssync.MutexWrap(ds.NewMapDatastore())
	tab := NewTable()
	short := valid(testPeer(t, 1), now)
	short.TTL = 2000
	long := valid(testPeer(t, 2), now)
	tab.Apply(&short, now)
	tab.Apply(&long, now)
	if err := tab.Flush(ctx, store); err != nil {
		t.Fatal(err)
	}
	again := NewTable()
	n, err := again.Load(ctx, store, now.Add(5*time.Second))
	if err != nil || n != 1 {
		t.Fatalf("loaded %d entries (%v), want only the one still live", n, err)
	}
	if got := again.List(now.Add(5 * time.Second)); len(got) != 1 || got[0].Provider != long.Provider {
		t.Fatalf("after reload: %+v", got)
	}
}
