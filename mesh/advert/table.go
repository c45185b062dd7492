package advert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// Entry is a live advert in the table, with when it arrived here.
type Entry struct {
	Advert
	Received time.Time `json:"received"`
}

type tableKey struct{ id, provider string }

// Limits bound what strangers can make a table hold. A slot is one (expert, provider) pair,
// live or withdrawn (a withdrawal is remembered until the advert would have expired).
type Limits struct {
	PerProvider int // slots one provider may hold
	Total       int // slots in all
}

// Default limits: 256 experts per provider is more than a node hosts; 20,000 slots is a few
// MB of memory and disk, whatever the size of the mesh.
const (
	DefaultPerProvider = 256
	DefaultTotal       = 20_000
)

// ErrFull is why an advert for a new slot was refused; ErrProviderFull (which is also ErrFull)
// when the provider already holds its limit: the provider's own doing, so spam.
var (
	ErrFull         = errors.New("table full")
	ErrProviderFull = fmt.Errorf("%w: the provider holds its limit", ErrFull)
)

// Table is the remote advert table: expert → providers, each with its latest advert, kept until
// it expires or is withdrawn. It is safe for concurrent use. Its logic is a function of the
// adverts and times it is given; persistence happens only in Load and Flush.
//
// Its size is bounded by Limits. A provider at its own limit first loses its soonest-expiring
// withdrawal; with none, its new advert is refused. When the whole table is full, the provider
// holding the most slots loses its soonest-expiring one to a newcomer that would still hold
// fewer slots than it after the exchange; otherwise the newcomer is refused. So a flood from
// one identity, or many, can take at most the slots that honest providers with fewer adverts
// do not claim: a provider with few adverts always gets in.
type Table struct {
	mu      sync.Mutex
	limits  Limits
	entries map[tableKey]*Entry
	// withdrawn remembers the sequence number of withdrawals until they would have expired, so
	// an older advert still in flight cannot bring a withdrawn entry back.
	withdrawn map[tableKey]tombstone
	dirty     map[tableKey]bool
	// slots indexes entries and withdrawals by provider; bucket[n] holds the providers with n
	// slots, and most is the largest n with a provider in it.
	slots  map[string]map[string]struct{}
	bucket map[int]map[string]struct{}
	most   int
}

type tombstone struct {
	seq     uint64
	expires time.Time
}

// NewTable returns an empty table with the default limits.
func NewTable() *Table {
	return NewTableWithLimits(Limits{PerProvider: DefaultPerProvider, Total: DefaultTotal})
}

// NewTableWithLimits returns an empty table bounded by l (values below 1 count as 1).
func NewTableWithLimits(l Limits) *Table {
	l.PerProvider, l.Total = max(l.PerProvider, 1), max(l.Total, 1)
	return &Table{limits: l, entries: map[tableKey]*Entry{}, withdrawn: map[tableKey]tombstone{},
		dirty: map[tableKey]bool{}, slots: map[string]map[string]struct{}{}, bucket: map[int]map[string]struct{}{}}
}

// Apply records a validated advert received at now. It returns whether the table changed, and
// an error wrapping ErrFull when the advert needed a new slot the limits do not give it.
// Adverts older (by sequence number) than what the table holds for the same expert and provider
// are ignored.
func (t *Table) Apply(a *Advert, now time.Time) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tableKey{a.ID, a.Provider}
	if old, ok := t.entries[k]; ok && old.Seq >= a.Seq {
		return false, nil
	}
	if w, ok := t.withdrawn[k]; ok && w.seq >= a.Seq {
		return false, nil
	}
	if err := t.admit(k, true); err != nil {
		return false, err
	}
	t.dirty[k] = true
	if a.Withdraw {
		delete(t.entries, k)
		t.withdrawn[k] = tombstone{seq: a.Seq, expires: a.Expires()}
		return true, nil
	}
	delete(t.withdrawn, k)
	t.entries[k] = &Entry{Advert: *a, Received: now}
	return true, nil
}

// Admits says whether Apply would find a slot for a, without changing the table. Gossip asks
// it before forwarding, so adverts this node would drop are not passed on either.
func (t *Table) Admits(a *Advert) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.admit(tableKey{a.ID, a.Provider}, false)
}

// admit finds a slot for k, making room as the Table doc says when take is set; with take
// unset it only reports whether it could. The caller holds mu.
func (t *Table) admit(k tableKey, take bool) error {
	own := t.slots[k.provider]
	if _, ok := own[k.id]; ok {
		return nil
	}
	if len(own) >= t.limits.PerProvider {
		w, ok := t.soonest(k.provider, true)
		if !ok {
			return fmt.Errorf("%w: provider %s already holds %d adverts here, the limit per provider", ErrProviderFull, k.provider, len(own))
		}
		if take {
			t.drop(w)
		}
		return nil // dropping one of its own keeps the total unchanged
	}
	if len(t.entries)+len(t.withdrawn) >= t.limits.Total {
		if len(own)+1 >= t.most {
			return fmt.Errorf("%w: %d adverts, the limit, and provider %s would hold %d, no fewer than the largest provider's %d",
				ErrFull, t.limits.Total, k.provider, len(own)+1, t.most)
		}
		if take {
			var largest string
			for p := range t.bucket[t.most] {
				largest = p
				break
			}
			victim, _ := t.soonest(largest, false)
			t.drop(victim)
		}
	}
	if take {
		t.addSlot(k)
	}
	return nil
}

// soonest is provider p's slot that expires first; withdrawnOnly restricts it to withdrawals.
func (t *Table) soonest(p string, withdrawnOnly bool) (tableKey, bool) {
	var best tableKey
	var bestAt time.Time
	found := false
	for id := range t.slots[p] {
		k := tableKey{id, p}
		var at time.Time
		if w, ok := t.withdrawn[k]; ok {
			at = w.expires
		} else if e, ok := t.entries[k]; ok && !withdrawnOnly {
			at = e.Expires()
		} else {
			continue
		}
		if !found || at.Before(bestAt) || (at.Equal(bestAt) && id < best.id) {
			best, bestAt, found = k, at, true
		}
	}
	return best, found
}

// drop removes slot k (entry or withdrawal).
func (t *Table) drop(k tableKey) {
	if _, ok := t.entries[k]; ok {
		delete(t.entries, k)
		t.dirty[k] = true
	}
	delete(t.withdrawn, k)
	own := t.slots[k.provider]
	if _, ok := own[k.id]; !ok {
		return
	}
	n := len(own)
	delete(own, k.id)
	t.move(k.provider, n, n-1)
	if n == 1 {
		delete(t.slots, k.provider)
	}
}

// addSlot indexes the new slot k.
func (t *Table) addSlot(k tableKey) {
	own := t.slots[k.provider]
	if own == nil {
		own = map[string]struct{}{}
		t.slots[k.provider] = own
	}
	n := len(own)
	own[k.id] = struct{}{}
	t.move(k.provider, n, n+1)
}

// move keeps bucket and most right when provider p goes from holding from to to slots.
func (t *Table) move(p string, from, to int) {
	if b := t.bucket[from]; b != nil {
		delete(b, p)
		if len(b) == 0 {
			delete(t.bucket, from)
		}
	}
	if to > 0 {
		b := t.bucket[to]
		if b == nil {
			b = map[string]struct{}{}
			t.bucket[to] = b
		}
		b[p] = struct{}{}
	}
	if to > t.most {
		t.most = to
	}
	for t.most > 0 && len(t.bucket[t.most]) == 0 {
		t.most--
	}
}

// Sweep removes expired entries and tombstones and returns how many entries it removed.
func (t *Table) Sweep(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, e := range t.entries {
		if !now.Before(e.Expires()) {
			t.drop(k)
			n++
		}
	}
	for k, w := range t.withdrawn {
		if !now.Before(w.expires) {
			t.drop(k)
		}
	}
	return n
}

// List returns the live entries at now, sorted by expert ID then provider.
func (t *Table) List(now time.Time) []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Entry, 0, len(t.entries))
	for _, e := range t.entries {
		if now.Before(e.Expires()) {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Provider < out[j].Provider
	})
	return out
}

// Providers returns the live entries for one expert.
func (t *Table) Providers(id string, now time.Time) []Entry {
	var out []Entry
	for _, e := range t.List(now) {
		if e.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// Len is the number of entries, live or not yet swept.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

func (k tableKey) dsKey() ds.Key { return ds.NewKey(k.id).ChildString(k.provider) }

// Flush writes changed entries to the datastore (and deletes removed ones).
func (t *Table) Flush(ctx context.Context, d ds.Datastore) error {
	t.mu.Lock()
	type write struct {
		k   tableKey
		val []byte
	}
	var writes []write
	for k := range t.dirty {
		var val []byte
		if e, ok := t.entries[k]; ok {
			val, _ = json.Marshal(e) // plain struct, cannot fail
		}
		writes = append(writes, write{k, val})
	}
	clear(t.dirty)
	t.mu.Unlock()
	for _, w := range writes {
		var err error
		if w.val == nil {
			err = d.Delete(ctx, w.k.dsKey())
		} else {
			err = d.Put(ctx, w.k.dsKey(), w.val)
		}
		if err != nil {
			return fmt.Errorf("persist advert table: %w", err)
		}
	}
	return nil
}

// Load reads the entries persisted by Flush, keeping those still live at now.
func (t *Table) Load(ctx context.Context, d ds.Datastore, now time.Time) (int, error) {
	res, err := d.Query(ctx, dsq.Query{})
	if err != nil {
		return 0, fmt.Errorf("load advert table: %w", err)
	}
	defer res.Close()
	n := 0
	for r := range res.Next() {
		if r.Error != nil {
			return n, fmt.Errorf("load advert table: %w", r.Error)
		}
		var e Entry
		if err := json.Unmarshal(r.Value, &e); err != nil || e.check() != nil {
			continue // a damaged record is dropped; the next refresh brings the advert back
		}
		if !now.Before(e.Expires()) {
			_ = d.Delete(ctx, ds.NewKey(r.Key))
			continue
		}
		t.mu.Lock()
		k := tableKey{e.ID, e.Provider}
		if old, ok := t.entries[k]; !ok || old.Seq < e.Seq {
			if t.admit(k, true) == nil {
				delete(t.withdrawn, k)
				t.entries[k] = &e
				n++
			}
		}
		t.mu.Unlock()
	}
	return n, nil
}
