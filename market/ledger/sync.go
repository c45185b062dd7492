package ledger

import "sort"

// Head is what a book holds of one key's chain, as a peer that syncs with it sees it.
type Head struct {
	Author string `json:"author"`
	Seq    uint64 `json:"seq"`            // entries in the chain
	ID     string `json:"id,omitempty"`   // the last one's ID
	Fork   uint64 `json:"fork,omitempty"` // the sequence its double-spend proof refuses from
}

// Heads lists the book's chains with an author after the given one, in author order, at most
// limit: a peer pages through them with the last author of each page.
func (b *Book) Heads(after string, limit int) []Head {
	keys := make([]string, 0, len(b.accounts))
	for k, a := range b.accounts {
		if k > after && (len(a.chain) > 0 || a.fork != nil) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]Head, len(keys))
	for i, k := range keys {
		a := b.accounts[k]
		out[i] = Head{Author: k, Seq: uint64(len(a.chain))}
		if n := len(a.chain); n > 0 {
			out[i].ID = a.chain[n-1].id
		}
		if a.fork != nil {
			out[i].Fork = a.fork.Seq
		}
	}
	return out
}

// ChainFrom returns key's chain entries from sequence from on, at most limit.
func (b *Book) ChainFrom(key string, from uint64, limit int) []*Entry {
	a := b.accounts[key]
	if a == nil || from == 0 || from > uint64(len(a.chain)) {
		return nil
	}
	part := a.chain[from-1:]
	if len(part) > limit {
		part = part[:limit]
	}
	out := make([]*Entry, len(part))
	for i, h := range part {
		out[i] = h.e
	}
	return out
}

// Want is a part of a chain this book lacks: from sequence From on, and the author's
// double-spend proof when Proof is set.
type Want struct {
	Author string `json:"author"`
	From   uint64 `json:"from"`
	Proof  bool   `json:"proof,omitempty"`
}

// Wants compares a peer's heads with this book and lists what to ask it for: the chain past
// this book's end (from its last entry, so a chain that parted from this one shows it), the
// entry where the peer's shorter chain parts from this one's (the two prove a double spend),
// and proofs this book lacks or that refuse from a lower sequence.
func (b *Book) Wants(heads []Head) []Want {
	var out []Want
	for _, h := range heads {
		a := b.accounts[h.Author]
		var n uint64
		var fork uint64
		if a != nil {
			n = uint64(len(a.chain))
			if a.fork != nil {
				fork = a.fork.Seq
			}
		}
		w := Want{Author: h.Author, From: n + 1}
		if h.Fork > 0 && (fork == 0 || h.Fork < fork) {
			w.Proof = true
		}
		switch {
		case h.Seq > 0 && h.Seq <= n && a.chain[h.Seq-1].id != h.ID:
			w.From = h.Seq // the peer holds another entry at h.Seq: a double spend
		case h.Seq > n && (fork == 0 || n+1 < fork):
			// From this book's last entry on: if the peer's entry there is another, the two
			// prove a double spend; if it is the same, the hash links make every earlier one so.
			w.From = max(n, 1)
		case !w.Proof:
			continue
		}
		out = append(out, w)
	}
	return out
}
