package listing

import "github.com/meshnode/meshnode/market/ledger"

// Access is what gates a node's blocks of paid experts: which experts are paid and which keys
// hold a receipt for each.
type Access struct {
	Paid    map[string]bool            // expert ID -> its blocks need a receipt
	Allowed map[string]map[string]bool // expert ID -> keys holding a receipt for it
}

// ComputeAccess judges the listings and the book. publisherOf returns the publisher of an
// expert whose manifest this node holds (false when it holds none). Only a listing by the
// expert's publisher counts: anyone can sign a listing of any expert, and a listing by someone
// else must neither put the expert behind a paywall (locking everyone out of a free expert)
// nor open it (a receipt for one's own cheap listing of someone else's expert). An expert
// whose manifest is not held here is never paid here. A receipt counts when its author is the
// listing's seller and the book counts it (ledger.StatusOK: the first receipt of a funded
// payment, so not one of a key refused for double spending from before it paid).
//
// A listing its seller withdrew with Free (lifted, by listing ID) makes its expert paid no
// more; receipts for it still count while another paid listing of the expert does.
func ComputeAccess(book *ledger.Book, listings map[string]*Listing, publisherOf func(expert string) (string, bool), lifted map[string]bool) Access {
	a := Access{Paid: map[string]bool{}, Allowed: map[string]map[string]bool{}}
	byPublisher := func(l *Listing) bool {
		pub, ok := publisherOf(l.Expert)
		return ok && pub != "" && pub == l.Seller
	}
	for id, l := range listings {
		if l.Price > 0 && !a.Paid[l.Expert] && !lifted[id] && byPublisher(l) {
			a.Paid[l.Expert] = true
		}
	}
	for _, e := range book.Entries() {
		if e.Kind != ledger.KindReceipt {
			continue
		}
		l, p := listings[e.Listing], book.Get(e.Ref)
		if l == nil || p == nil || l.Seller != e.Author || book.Status(book.IDOf(e)) != ledger.StatusOK || !byPublisher(l) {
			continue
		}
		if a.Allowed[l.Expert] == nil {
			a.Allowed[l.Expert] = map[string]bool{}
		}
		a.Allowed[l.Expert][p.Author] = true
	}
	return a
}
