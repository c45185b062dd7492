package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// Journal persists a book in a datastore: every entry under its ID (content-addressed), an
// append-only log of entry IDs in acceptance order, and the double-spend proofs. Loading
// replays the log through Book.Add, so a journal that was tampered with fails to load rather
// than yielding balances its entries do not justify. Appends are one batch: with a
// datastore that syncs its writes (the node's badger store does), an entry whose Append
// returned survives a crash of the process at any later moment.
//
// A Journal is not safe for concurrent use; callers serialise (with the book they persist).
type Journal struct {
	d    ds.Batching
	next uint64 // position of the next log record
}

var (
	jEntries = ds.NewKey("/entries")
	jLog     = ds.NewKey("/log")
	jProofs  = ds.NewKey("/proofs")
)

// ErrCorrupt marks a journal whose records do not match each other.
var ErrCorrupt = errors.New("ledger journal is corrupt")

// OpenJournal wraps d (a namespace of its own).
func OpenJournal(d ds.Batching) *Journal { return &Journal{d: d} }

// Load adds every journaled entry and proof to b (which should be empty) and returns how many
// entries it replayed.
func (j *Journal) Load(ctx context.Context, b *Book) (int, error) {
	res, err := j.d.Query(ctx, dsq.Query{Prefix: jLog.String()})
	if err != nil {
		return 0, fmt.Errorf("read ledger log: %w", err)
	}
	recs, err := res.Rest()
	if err != nil {
		return 0, fmt.Errorf("read ledger log: %w", err)
	}
	type rec struct {
		pos uint64
		id  string
	}
	log := make([]rec, 0, len(recs))
	for _, r := range recs {
		pos, err := strconv.ParseUint(ds.NewKey(r.Key).BaseNamespace(), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: log key %s", ErrCorrupt, r.Key)
		}
		log = append(log, rec{pos, string(r.Value)})
	}
	sort.Slice(log, func(a, c int) bool { return log[a].pos < log[c].pos })
	for i, r := range log {
		if r.pos != uint64(i) {
			return i, fmt.Errorf("%w: log record %d is missing", ErrCorrupt, i)
		}
		raw, err := j.d.Get(ctx, jEntries.ChildString(r.id))
		if err != nil {
			return i, fmt.Errorf("%w: log record %d names entry %s: %v", ErrCorrupt, i, r.id, err)
		}
		e, err := Decode(raw)
		if err != nil {
			return i, fmt.Errorf("%w: entry %s: %v", ErrCorrupt, r.id, err)
		}
		if e.ID() != r.id {
			return i, fmt.Errorf("%w: entry stored as %s has ID %s", ErrCorrupt, r.id, e.ID())
		}
		if _, err := b.Add(e); err != nil {
			return i, fmt.Errorf("%w: entry %d (%s) does not verify: %v", ErrCorrupt, i, r.id, err)
		}
	}
	j.next = uint64(len(log))
	return len(log), j.loadProofs(ctx, b)
}

type proofRecord struct {
	A []byte `json:"a"`
	B []byte `json:"b"`
}

func (j *Journal) loadProofs(ctx context.Context, b *Book) error {
	res, err := j.d.Query(ctx, dsq.Query{Prefix: jProofs.String()})
	if err != nil {
		return fmt.Errorf("read double-spend proofs: %w", err)
	}
	recs, err := res.Rest()
	if err != nil {
		return fmt.Errorf("read double-spend proofs: %w", err)
	}
	for _, r := range recs {
		var p proofRecord
		if err := json.Unmarshal(r.Value, &p); err != nil {
			return fmt.Errorf("%w: proof %s: %v", ErrCorrupt, r.Key, err)
		}
		x, errA := Decode(p.A)
		y, errB := Decode(p.B)
		if err := errors.Join(errA, errB); err != nil {
			return fmt.Errorf("%w: proof %s: %v", ErrCorrupt, r.Key, err)
		}
		if _, err := b.Prove(x, y); err != nil {
			return fmt.Errorf("%w: proof %s: %v", ErrCorrupt, r.Key, err)
		}
	}
	return nil
}

// Append journals entries the book has just accepted, in that order, in one batch.
func (j *Journal) Append(ctx context.Context, entries ...*Entry) error {
	if len(entries) == 0 {
		return nil
	}
	batch, err := j.d.Batch(ctx)
	if err != nil {
		return fmt.Errorf("journal ledger entries: %w", err)
	}
	for i, e := range entries {
		id := e.ID()
		if err := batch.Put(ctx, jEntries.ChildString(id), e.Encode()); err != nil {
			return fmt.Errorf("journal entry %s: %w", id, err)
		}
		if err := batch.Put(ctx, jLog.ChildString(logKey(j.next+uint64(i))), []byte(id)); err != nil {
			return fmt.Errorf("journal entry %s: %w", id, err)
		}
	}
	if err := batch.Commit(ctx); err != nil {
		return fmt.Errorf("journal %d ledger entries: %w", len(entries), err)
	}
	j.next += uint64(len(entries))
	return nil
}

// Commit journals entries b has just accepted (the newest it holds, in that order) in one
// batch. If the write fails, b forgets them again (Book.Undo): a book never holds an entry
// its journal lacks, so later entries are never logged ahead of one that is missing and the
// journal keeps loading.
func (j *Journal) Commit(ctx context.Context, b *Book, entries ...*Entry) error {
	err := j.Append(ctx, entries...)
	if err == nil {
		return nil
	}
	if uerr := b.Undo(entries...); uerr != nil {
		return errors.Join(err, uerr)
	}
	return err
}

// SaveProof journals a double-spend proof.
func (j *Journal) SaveProof(ctx context.Context, d DoubleSpend) error {
	if d.A == nil || d.B == nil {
		return fmt.Errorf("save double-spend proof of %s: entries missing", d.Author)
	}
	b, _ := json.Marshal(proofRecord{A: d.A.Encode(), B: d.B.Encode()}) // byte slices, cannot fail
	if err := j.d.Put(ctx, jProofs.ChildString(d.Author), b); err != nil {
		return fmt.Errorf("save double-spend proof of %s: %w", d.Author, err)
	}
	return nil
}

// logKey pads positions so keys sort in numeric order too.
func logKey(pos uint64) string {
	s := strconv.FormatUint(pos, 10)
	return strings.Repeat("0", 20-len(s)) + s
}
