package advert

import (
	"context"
	"encoding/json"
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

// Table is the remote advert table: expert → providers, each with its latest advert, kept until
// it expires or is withdrawn. It is safe for concurrent use. Its logic is a function of the
// adverts and times it is given; persistence happens only in Load and Flush.
type Table struct {
	mu      sync.Mutex
	entries map[tableKey]*Entry
	// withdrawn remembers the sequence number of withdrawals until they would have expired, so
	// an older advert still in flight cannot bring a withdrawn entry back.
	withdrawn map[tableKey]tombstone
	dirty     map[tableKey]bool
}

type tombstone struct {
	seq     uint64
	expires time.Time
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{entries: map[tableKey]*Entry{}, withdrawn: map[tableKey]tombstone{}, dirty: map[tableKey]bool{}}
}

// Apply records a validated advert received at now. It returns whether the table changed.
// Adverts older (by sequence number) than what the table holds for the same expert and provider
// are ignored.
func (t *Table) Apply(a *Advert, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tableKey{a.ID, a.Provider}
	if old, ok := t.entries[k]; ok && old.Seq >= a.Seq {
		return false
	}
	if w, ok := t.withdrawn[k]; ok && w.seq >= a.Seq {
		return false
	}
	t.dirty[k] = true
	if a.Withdraw {
		delete(t.entries, k)
		t.withdrawn[k] = tombstone{seq: a.Seq, expires: a.Expires()}
		return true
	}
	delete(t.withdrawn, k)
	t.entries[k] = &Entry{Advert: *a, Received: now}
	return true
}

// Sweep removes expired entries and tombstones and returns how many entries it removed.
func (t *Table) Sweep(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, e := range t.entries {
		if !now.Before(e.Expires()) {
			delete(t.entries, k)
			t.dirty[k] = true
			n++
		}
	}
	for k, w := range t.withdrawn {
		if !now.Before(w.expires) {
			delete(t.withdrawn, k)
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
			t.entries[k] = &e
			n++
		}
		t.mu.Unlock()
	}
	return n, nil
}
