// Package exposure decides what a node shows to whom: which blocks its bitswap server hands to
// which peer, which experts its query service answers for, and which roots it announces in the
// DHT. It is a pure function of grants the daemon gathers (served experts, public blobs, paid
// listings and purchases, training jobs); it does no I/O.
//
// The rules, applied to each requested block:
//
//  1. A block that belongs to a restricted root (an expert this node lists for a price, or one
//     it bought) goes only to the peers of that root's grant: the holders of a receipt from
//     its seller. A restriction wins over every other grant of the same block, so publishing
//     the same bytes as a public blob does not open a paid expert.
//  2. Otherwise a block of a served expert or of a public blob goes to anyone.
//  3. Otherwise a block of a training job's model goes to the peers of that job's grant (while
//     the job is open, to anyone: anyone may join it; once it ends, to its roster).
//  4. Every other block is refused: a node serves nothing it did not choose to expose.
//
// A Table is built whole and never changed, so a server can read it without locks; the zero
// Table (and a nil one) refuses everything, which is what a node uses until its first table is
// built and whenever one cannot be computed.
package exposure

// Kind says why a root is exposed.
type Kind int

// Kinds of grant.
const (
	// Served: an expert the node serves; its blocks go to anyone and it answers queries.
	Served Kind = iota + 1
	// Public: a blob the user put or fetched as public; its blocks go to anyone.
	Public
	// Restricted: a paid listing of this node's or a bought expert; its blocks go only to
	// Peers, whatever else is granted for them.
	Restricted
	// Job: a federated job's model; its blocks go to Peers, or to anyone when Anyone is set.
	Job
)

func (k Kind) String() string {
	switch k {
	case Served:
		return "served"
	case Public:
		return "public"
	case Restricted:
		return "restricted"
	case Job:
		return "job"
	}
	return "unknown"
}

// Grant exposes one root and its blocks.
type Grant struct {
	Kind Kind
	// Root is the expert ID or blob root (its CID's string form).
	Root string
	// Blocks are the multihashes (as raw bytes in a string, the blockstore's key) of every
	// block of the root, the root's own included. An expert's grant lists its manifest's and
	// its weights' blocks.
	Blocks []string
	// Peers may get the blocks of a Restricted or Job grant (peer IDs in their string form).
	Peers map[string]bool
	// Anyone opens a Job grant to every peer.
	Anyone bool
	// Announce puts Root among the roots announced in the DHT.
	Announce bool
}

// Decision is the outcome for one request.
type Decision int

// Decisions.
const (
	Denied     Decision = iota // no grant covers the block
	Allowed                    // a grant lets this peer have it
	DeniedPaid                 // the block is restricted and the peer is not among its holders
)

// Table is the decision table built from a set of grants.
type Table struct {
	blocks   map[string][]*Grant // multihash -> grants covering it
	served   map[string]bool     // expert IDs the query service answers for
	announce []string            // roots to announce, in grant order, each once
}

// Build makes the table of grants.
func Build(grants []Grant) *Table {
	t := &Table{blocks: map[string][]*Grant{}, served: map[string]bool{}}
	seen := map[string]bool{}
	for i := range grants {
		g := &grants[i]
		for _, b := range g.Blocks {
			t.blocks[b] = append(t.blocks[b], g)
		}
		if g.Kind == Served {
			t.served[g.Root] = true
		}
		if g.Announce && !seen[g.Root] {
			seen[g.Root] = true
			t.announce = append(t.announce, g.Root)
		}
	}
	return t
}

// Allow decides whether peer p may have the block with multihash mh.
func (t *Table) Allow(p, mh string) Decision {
	if t == nil {
		return Denied
	}
	gs := t.blocks[mh]
	restricted := false
	for _, g := range gs {
		if g.Kind == Restricted {
			restricted = true
			if g.Peers[p] {
				return Allowed
			}
		}
	}
	if restricted {
		return DeniedPaid
	}
	for _, g := range gs {
		switch g.Kind {
		case Served, Public:
			return Allowed
		case Job:
			if g.Anyone || g.Peers[p] {
				return Allowed
			}
		}
	}
	return Denied
}

// Answers reports whether the node answers remote queries for the expert: only served ones.
func (t *Table) Answers(expert string) bool {
	return t != nil && t.served[expert]
}

// Announced lists the roots the node announces in the DHT.
func (t *Table) Announced() []string {
	if t == nil {
		return nil
	}
	return t.announce
}

// Blocks is how many distinct blocks the table exposes to someone.
func (t *Table) Blocks() int {
	if t == nil {
		return 0
	}
	return len(t.blocks)
}
