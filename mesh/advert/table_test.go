package advert

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

func TestTableKeepsNewestAndHonoursWithdrawals(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	alice, bob := testPeer(t, 1), testPeer(t, 2)
	tab := NewTable()
	a1 := valid(alice, now)
	a1.Seq = 5
	if !applied(t, tab, &a1, now) {
		t.Fatal("first advert did not change the table")
	}
	older := a1
	older.Seq, older.Quality = 4, 0.1
	if applied(t, tab, &older, now) {
		t.Fatal("an older advert replaced a newer one")
	}
	b1 := valid(bob, now)
	applied(t, tab, &b1, now)
	if got := tab.Providers(expertID, now); len(got) != 2 {
		t.Fatalf("%d providers, want 2", len(got))
	}
	w := a1
	w.Seq, w.Withdraw = 6, true
	applied(t, tab, &w, now)
	late := a1 // an advert from before the withdrawal, still in flight
	if applied(t, tab, &late, now) {
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
	applied(t, tab, &short, now)
	applied(t, tab, &long, now)
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

// applied applies a, failing the test if the table refuses it.
func applied(t *testing.T, tab *Table, a *Advert, now time.Time) bool {
	t.Helper()
	changed, err := tab.Apply(a, now)
	if err != nil {
		t.Fatalf("advert for %s from %s refused: %v", a.ID, a.Provider, err)
	}
	return changed
}

// expertN is a distinct valid expert ID per n.
func expertN(t testing.TB, n int) string {
	t.Helper()
	h, err := mh.Sum([]byte(fmt.Sprint("expert", n)), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagCBOR, h).String()
}

func TestTableLimits(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	advertOf := func(p peer.ID, n int, ttl time.Duration) *Advert {
		a := valid(p, now)
		a.ID, a.TTL = expertN(t, n), ttl.Milliseconds()
		return &a
	}
	alice, bob, carol, mallory := testPeer(t, 1), testPeer(t, 2), testPeer(t, 3), testPeer(t, 4)

	t.Run("per provider", func(t *testing.T) {
		tab := NewTableWithLimits(Limits{PerProvider: 3, Total: 100})
		for i := range 3 {
			applied(t, tab, advertOf(mallory, i, time.Minute), now)
		}
		over := advertOf(mallory, 3, time.Minute)
		if err := tab.Admits(over); !errors.Is(err, ErrFull) {
			t.Fatalf("Admits of a 4th advert: %v, want ErrFull", err)
		}
		if _, err := tab.Apply(over, now); !errors.Is(err, ErrFull) || tab.Len() != 3 {
			t.Fatalf("4th advert: %v, %d entries; want ErrFull and 3", err, tab.Len())
		}
		// A refresh of an advert it holds still goes in.
		again := advertOf(mallory, 0, time.Minute)
		again.Seq = 2
		applied(t, tab, again, now)
		// Its own withdrawal is the first to make room for its new advert.
		w := advertOf(mallory, 1, time.Minute)
		w.Seq, w.Withdraw = 2, true
		applied(t, tab, w, now)
		applied(t, tab, over, now)
		if tab.Len() != 3 {
			t.Fatalf("%d entries after a withdrawal made room, want 3", tab.Len())
		}
	})

	t.Run("a flood cannot keep a small provider out", func(t *testing.T) {
		tab := NewTableWithLimits(Limits{PerProvider: 50, Total: 10})
		applied(t, tab, advertOf(alice, 0, time.Minute), now)
		for i := range 9 {
			applied(t, tab, advertOf(mallory, 100+i, time.Minute), now)
		}
		// Full: mallory, the largest, pays for bob and carol.
		applied(t, tab, advertOf(bob, 1, time.Minute), now)
		applied(t, tab, advertOf(carol, 2, time.Minute), now)
		// And mallory cannot take the slots back.
		if _, err := tab.Apply(advertOf(mallory, 200, time.Minute), now); !errors.Is(err, ErrFull) {
			t.Fatalf("the largest provider's new advert in a full table: %v, want ErrFull", err)
		}
		per := map[string]int{}
		for _, e := range tab.List(now) {
			per[e.Provider]++
		}
		if tab.Len() != 10 || per[alice.String()] != 1 || per[bob.String()] != 1 || per[carol.String()] != 1 || per[mallory.String()] != 7 {
			t.Fatalf("after the flood: %d entries, per provider %v", tab.Len(), per)
		}
	})

	t.Run("the largest loses its soonest-expiring", func(t *testing.T) {
		tab := NewTableWithLimits(Limits{PerProvider: 50, Total: 3})
		applied(t, tab, advertOf(mallory, 0, time.Hour), now)
		applied(t, tab, advertOf(mallory, 1, 2*time.Second), now)
		applied(t, tab, advertOf(mallory, 2, time.Hour), now)
		applied(t, tab, advertOf(alice, 3, time.Minute), now)
		for _, e := range tab.List(now) {
			if e.ID == expertN(t, 1) {
				t.Fatalf("the soonest-expiring advert survived: %+v", tab.List(now))
			}
		}
	})

	t.Run("equals do not evict each other", func(t *testing.T) {
		tab := NewTableWithLimits(Limits{PerProvider: 50, Total: 2})
		applied(t, tab, advertOf(alice, 0, time.Minute), now)
		applied(t, tab, advertOf(bob, 1, time.Minute), now)
		if _, err := tab.Apply(advertOf(carol, 2, time.Minute), now); !errors.Is(err, ErrFull) {
			t.Fatalf("a third provider in a table of two single adverts: %v, want ErrFull", err)
		}
	})

	t.Run("reload respects the limits", func(t *testing.T) {
		ctx := context.Background()
		store := dssync.MutexWrap(ds.NewMapDatastore())
		big := NewTableWithLimits(Limits{PerProvider: 50, Total: 50})
		for i := range 20 {
			applied(t, big, advertOf(mallory, i, time.Minute), now)
		}
		if err := big.Flush(ctx, store); err != nil {
			t.Fatal(err)
		}
		small := NewTableWithLimits(Limits{PerProvider: 5, Total: 50})
		if n, err := small.Load(ctx, store, now); err != nil || n != 5 || small.Len() != 5 {
			t.Fatalf("loaded %d (%v), %d entries; want the 5 the limit allows", n, err, small.Len())
		}
	})

	t.Run("sweep frees slots", func(t *testing.T) {
		tab := NewTableWithLimits(Limits{PerProvider: 2, Total: 10})
		applied(t, tab, advertOf(alice, 0, 2*time.Second), now)
		applied(t, tab, advertOf(alice, 1, 2*time.Second), now)
		tab.Sweep(now.Add(3 * time.Second))
		applied(t, tab, advertOf(alice, 2, time.Minute), now.Add(3*time.Second))
		applied(t, tab, advertOf(alice, 3, time.Minute), now.Add(3*time.Second))
	})
}

// BenchmarkApplyFullTable is the cost of one advert from a flooding provider once the table
// is full at its default size: the case a spammer makes every node pay.
func BenchmarkApplyFullTable(b *testing.B) {
	now := time.UnixMilli(1_800_000_000_000)
	tab := NewTable()
	ids := make([]string, DefaultTotal+b.N)
	for i := range ids {
		ids[i] = expertN(b, i)
	}
	for i := range DefaultTotal {
		a := valid(testPeer(b, byte(i%80)), now)
		a.ID = ids[i]
		if _, err := tab.Apply(&a, now); err != nil {
			b.Fatal(err)
		}
	}
	spammer := testPeer(b, 200)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := valid(spammer, now)
		a.ID = ids[DefaultTotal+i]
		_, _ = tab.Apply(&a, now)
	}
}
