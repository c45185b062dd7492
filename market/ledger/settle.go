package ledger

// settle recomputes the verdicts of every dirty chain, in dependency order: a receipt's
// verdict needs the verdict of the payment it names, so the payer's chain is settled up to
// that payment first. Receipts and payments name each other only through IDs (hashes of
// entries that carry their chain's previous link), so the dependencies form no cycle; an
// account already on the stack is therefore never needed again, and if it were (a broken hash)
// the receipt is judged void rather than looping.
func (b *Book) settle() {
	for len(b.dirty) > 0 {
		var start *account
		for a := range b.dirty {
			start = a
			break
		}
		stack := []*account{start}
		on := map[*account]bool{start: true}
		for len(stack) > 0 {
			a := stack[len(stack)-1]
			need := b.evaluate(a, on)
			if need != nil {
				stack = append(stack, need)
				on[need] = true
				continue
			}
			stack = stack[:len(stack)-1]
			delete(on, a)
		}
	}
}

// evaluate recomputes a's verdicts from a.dirty on. It stops and returns the account whose
// chain must be settled first when a receipt names a payment in a dirty part of it.
func (b *Book) evaluate(a *account, on map[*account]bool) *account {
	if a.dirty == 0 || int(a.dirty) > len(a.chain) {
		a.dirty = 0
		delete(b.dirty, a)
		return nil
	}
	base := b.base(a)
	net := b.net(a, a.dirty-1)
	for i := int(a.dirty - 1); i < len(a.chain); i++ {
		h := a.chain[i]
		old := h.status
		switch h.e.Kind {
		case KindPayment:
			if base+net >= int64(h.e.Amount) {
				h.status = StatusOK
				net -= int64(h.e.Amount)
			} else {
				h.status = StatusUnfunded
			}
			if h.status != old {
				for _, r := range b.refs[h.id] {
					if ra := b.accounts[r.e.Author]; ra != a {
						b.markDirty(ra, r.e.Seq)
					}
				}
			}
		case KindReceipt:
			p := b.byID[h.e.Ref]
			h.status = StatusVoid
			if p != nil && p.e.Kind == KindPayment && p.e.To == a.key && p.e.Listing == h.e.Listing && b.firstReceipt(p) == h {
				pa := b.accounts[p.e.Author]
				if pa.dirty != 0 && pa.dirty <= p.e.Seq && !on[pa] {
					a.dirty = h.e.Seq
					return pa
				}
				if p.status == StatusOK {
					h.status = StatusOK
					net += int64(p.e.Amount)
				}
			}
		}
		h.net = net
	}
	a.dirty = 0
	delete(b.dirty, a)
	return nil
}

// firstReceipt is the receipt that counts for payment p: the first in its payee's chain that
// names it for its listing.
func (b *Book) firstReceipt(p *held) *held {
	var first *held
	for _, r := range b.refs[p.id] {
		if r.e.Author == p.e.To && r.e.Listing == p.e.Listing && (first == nil || r.e.Seq < first.e.Seq) {
			first = r
		}
	}
	return first
}

// Status is the book's verdict on the entry with this ID.
func (b *Book) Status(id string) Status {
	if h := b.byID[id]; h != nil {
		return h.status
	}
	for _, a := range b.accounts {
		for _, w := range a.waiting {
			if w.id == id {
				return StatusWaiting
			}
		}
	}
	return StatusUnknown
}
