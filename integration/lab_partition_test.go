package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshnode/meshnode/internal/netlab"
	"github.com/meshnode/meshnode/node/api"
)

// TestLabPartitionHeals splits a six-node mesh (5 ms one-way links) in two at the lab's
// router. In each half a node sells an expert to another and the purchase is acknowledged
// (payment and receipt); the other half does not learn of it while split. After the partition
// heals, every node holds both sales and the six books are identical, and each half's adverts
// reach the other.
func TestLabPartitionHeals(t *testing.T) {
	lab := newLab(t, "part")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var nodes []*labNode
	var names []string
	for i := range 6 {
		h, err := lab.AddPublic(ctx, fmt.Sprintf("q%d", i), netlab.Link{Delay: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, initLabNode(t, h, "public"))
		names = append(names, h.Name)
	}
	sideA, sideB := nodes[:3], nodes[3:]
	idA, _ := labExpert(t, sideA[1], "iris-side-a", []float64{5.9, 3.0, 5.1, 1.8})
	idB, _ := labExpert(t, sideB[1], "iris-side-b", []float64{5.9, 3.0, 5.1, 1.8})

	nodes[0].start(t)
	seed := nodes[0].addr(t)
	for _, n := range nodes[1:] {
		n.start(t, seed)
	}
	for _, n := range nodes {
		waitFor(t, 30*time.Second, n.name+" connected to the other five", func() (bool, error) {
			st, err := n.status()
			return err == nil && st.Peers >= 5, err
		})
	}

	if err := lab.Partition(ctx, names[:3], names[3:]); err != nil {
		t.Fatal(err)
	}
	buys := make([]api.BuyResult, 2)
	for i, side := range [][]*labNode{sideA, sideB} {
		seller, buyer := side[1], side[2]
		id := []string{idA, idB}[i]
		var pub api.ListingView
		if err := seller.json(&pub, "market", "publish", id, "--price", "7"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, buyer.name+" hears "+seller.name+"'s listing", func() (bool, error) {
			var ls []api.ListingView
			err := buyer.json(&ls, "market", "list")
			return slices.ContainsFunc(ls, func(l api.ListingView) bool { return l.ID == pub.ID }), err
		})
		if err := buyer.json(&buys[i], "market", "buy", pub.ID); err != nil {
			t.Fatalf("buy in half %d during the partition: %v", i, err)
		}
		if buys[i].ReceiptID == "" || buys[i].PaymentID == "" {
			t.Fatalf("buy in half %d not acknowledged: %+v", i, buys[i])
		}
	}
	// While split, neither half holds the other's sale, once its own sale has reached all
	// three of its nodes (so the other's had as long to leak across).
	for _, side := range [][]*labNode{sideA, sideB} {
		for _, n := range side {
			waitFor(t, 30*time.Second, n.name+" holds its half's sale", func() (bool, error) {
				k, ok, err := bookKey(n, side[2].d.PeerID)
				return ok && k.Balance == 993, err
			})
		}
	}
	for i, side := range [][]*labNode{sideA, sideB} {
		otherBuyer := [][]*labNode{sideA, sideB}[1-i][2]
		for _, n := range side {
			if k, ok, err := bookKey(n, otherBuyer.d.PeerID); err != nil || ok {
				t.Fatalf("%s's book holds the other half's buyer during the partition (%+v, %v): the partition leaks", n.name, k, err)
			}
		}
	}

	if err := lab.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	took := waitFor(t, 90*time.Second, "six identical books holding both sales", func() (bool, error) {
		var first []byte
		for _, n := range nodes {
			var b api.BookView
			if err := n.json(&b, "market", "book"); err != nil {
				return false, err
			}
			for _, side := range [][]*labNode{sideA, sideB} {
				for key, want := range map[string]uint64{side[1].d.PeerID: 1007, side[2].d.PeerID: 993} {
					i := slices.IndexFunc(b.Keys, func(k api.BookKey) bool { return k.Key == key })
					if i < 0 || b.Keys[i].Balance != want {
						return false, fmt.Errorf("%s's book lacks a sale", n.name)
					}
				}
			}
			enc, _ := json.Marshal(b)
			if first == nil {
				first = enc
			} else if string(enc) != string(first) {
				return false, fmt.Errorf("%s's book differs", n.name)
			}
		}
		return true, nil
	})
	t.Logf("books identical %s after the heal", took.Round(time.Millisecond))
	waitFor(t, 60*time.Second, "each half sees the other's listing", func() (bool, error) {
		for i, side := range [][]*labNode{sideA, sideB} {
			for _, n := range side {
				var ls []api.ListingView
				if err := n.json(&ls, "market", "list"); err != nil {
					return false, err
				}
				if !slices.ContainsFunc(ls, func(l api.ListingView) bool { return l.ID == buys[1-i].Listing }) {
					return false, nil
				}
			}
		}
		return true, nil
	})
	t.Logf("listings across the healed partition %s after the heal", time.Since(healed).Round(time.Millisecond))
}

// bookKey is what a node's book says of a key (ok false: the key has no chain there).
func bookKey(n *labNode, key string) (api.BookKey, bool, error) {
	var b api.BookView
	if err := n.json(&b, "market", "book"); err != nil {
		return api.BookKey{}, false, err
	}
	i := slices.IndexFunc(b.Keys, func(k api.BookKey) bool { return k.Key == key })
	if i < 0 {
		return api.BookKey{}, false, nil
	}
	return b.Keys[i], true, nil
}
