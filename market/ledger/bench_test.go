package ledger

import (
	"fmt"
	"testing"

	"github.com/meshnode/meshnode/internal/testkeys"
)

// benchBook fills a book with n purchases among 16 keys (payment and receipt each).
func benchBook(b *testing.B, n int) (*Book, testkeys.Ring, []testkeys.Key) {
	b.Helper()
	ring := testkeys.Ring{}
	keys := make([]testkeys.Key, 16)
	for i := range keys {
		keys[i] = ring.New(fmt.Sprintf("k%02d", i), byte(i+1))
	}
	book := NewBook(Policy{Genesis: 1 << 40}, ring.Verify)
	for i := range n {
		buyer, seller := keys[i%16], keys[(i*7+3)%16]
		if buyer.ID() == seller.ID() {
			seller = keys[(i+1)%16]
		}
		p := book.Next(buyer.ID(), KindPayment)
		p.To, p.Amount, p.Listing = seller.ID(), 3, "L"
		if err := p.Sign(buyer); err != nil {
			b.Fatal(err)
		}
		if _, err := book.Add(p); err != nil {
			b.Fatal(err)
		}
		r := book.Next(seller.ID(), KindReceipt)
		r.Ref, r.Listing = p.ID(), "L"
		if err := r.Sign(seller); err != nil {
			b.Fatal(err)
		}
		if _, err := book.Add(r); err != nil {
			b.Fatal(err)
		}
	}
	return book, ring, keys
}

// BenchmarkAddPurchase: verify and add one payment and its receipt to a book of 10,000
// purchases (signatures included).
func BenchmarkAddPurchase(b *testing.B) {
	book, _, keys := benchBook(b, 10000)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		buyer, seller := keys[i%15], keys[15]
		p := book.Next(buyer.ID(), KindPayment)
		p.To, p.Amount, p.Listing = seller.ID(), 1, "M"
		_ = p.Sign(buyer)
		if _, err := book.Add(p); err != nil {
			b.Fatal(err)
		}
		r := book.Next(seller.ID(), KindReceipt)
		r.Ref, r.Listing = p.ID(), "M"
		_ = r.Sign(seller)
		if _, err := book.Add(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClosure: the entries a seller needs to check one payment, in a book of 10,000
// purchases among 16 keys (every chain depends on every other: the worst case).
func BenchmarkClosure(b *testing.B) {
	book, _, keys := benchBook(b, 10000)
	head := book.Head(keys[0].ID()).ID()
	b.ResetTimer()
	for b.Loop() {
		if len(book.Closure(head)) == 0 {
			b.Fatal("empty closure")
		}
	}
}

// BenchmarkSyncBook: a new book catches up with a book of 10,000 purchases (20,000 entries)
// through the sync calls (heads, then each chain from where it stands), signatures checked.
// bytes/op is what the sync protocol carries: the heads and the entries, as encoded.
func BenchmarkSyncBook(b *testing.B) {
	src, ring, _ := benchBook(b, 10000)
	var wire int
	for b.Loop() {
		dst := NewBook(Policy{Genesis: 1 << 40}, ring.Verify)
		wire = 0
		heads := src.Heads("", 1<<20)
		for _, h := range heads {
			wire += len(h.Author) + len(h.ID) + 24
		}
		for _, w := range dst.Wants(heads) {
			for from := w.From; ; {
				part := src.ChainFrom(w.Author, from, 512)
				if len(part) == 0 {
					break
				}
				for _, e := range part {
					wire += len(e.Encode())
					if _, err := dst.Add(e); err != nil {
						b.Fatal(err)
					}
				}
				from = part[len(part)-1].Seq + 1
			}
		}
		if dst.Len() != src.Len() || dst.Balance(heads[0].Author) != src.Balance(heads[0].Author) {
			b.Fatalf("synced book holds %d of %d entries", dst.Len(), src.Len())
		}
	}
	b.ReportMetric(float64(wire), "bytes/sync")
}

// reverseReceipts: key a holds n receipts naming, in reverse, the n payments key p makes to
// it. Added receipts first, each payment that arrives re-judges a's chain from the receipt
// naming it: the order a hostile peer would pick to make a book work hardest.
func reverseReceipts(b *testing.B, n int) (receipts, payments []*Entry, ring testkeys.Ring) {
	b.Helper()
	ring = testkeys.Ring{}
	a, p := ring.New("a", 1), ring.New("p", 2)
	src := NewBook(Policy{Genesis: 1 << 40}, ring.Verify)
	for range n {
		e := src.Next("p", KindPayment)
		e.To, e.Amount = "a", 1
		_ = e.Sign(p)
		if _, err := src.Add(e); err != nil {
			b.Fatal(err)
		}
		payments = append(payments, e)
	}
	for i := n - 1; i >= 0; i-- {
		e := src.Next("a", KindReceipt)
		e.Ref = payments[i].ID()
		_ = e.Sign(a)
		if _, err := src.Add(e); err != nil {
			b.Fatal(err)
		}
		receipts = append(receipts, e)
	}
	return receipts, payments, ring
}

// BenchmarkReceiptsBeforePayments: 2,000 receipts, then their 2,000 payments, one Add each
// against one AddAll of the payments (as the daemon ingests a sync answer or a gossip bundle).
func BenchmarkReceiptsBeforePayments(b *testing.B) {
	receipts, payments, ring := reverseReceipts(b, 2000)
	verify := cachedVerify(ring) // signatures apart: the judging is what is measured
	for _, mode := range []string{"Add", "AddAll"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				book := NewBook(Policy{Genesis: 1 << 40}, verify)
				book.AddAll(receipts)
				if mode == "AddAll" {
					book.AddAll(payments)
				} else {
					for _, e := range payments {
						_, _ = book.Add(e)
					}
				}
				if book.Balance("a") != 1<<40+2000 {
					b.Fatalf("a holds %d", book.Balance("a"))
				}
			}
		})
	}
}
