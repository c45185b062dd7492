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
// append-only log of entry IDs in the order the book linked them, the double-spend proofs, and
// the rules (issuers, genesis) in force from each log position on. Loading replays proofs,
// then the log through Book.Add, each entry under the rules it was journaled with: a journal
// that was tampered with fails to load rather than yielding balances its entries do not
// justify, and a change of the rules in the config applies to entries journaled after it.
// Appends are one batch: with a datastore that syncs its writes (the node's badger store
// does), an entry whose Append returned survives a crash of the process at any later moment.
//
// A Journal is not safe for concurrent use; callers serialise (with the book they persist).
type Journal struct {
	d     ds.Batching
	next  uint64 // position of the next log record
	rules bool   // the journal records rules (an older one may not yet)
}

var (
	jEntries = ds.NewKey("/entries")
	jLog     = ds.NewKey("/log")
	jProofs  = ds.NewKey("/proofs")
	jRules   = ds.NewKey("/rules")
)

// ErrCorrupt marks a journal whose records do not match each other.
var ErrCorrupt = errors.New("ledger journal is corrupt")

// OpenJournal wraps d (a namespace of its own).
func OpenJournal(d ds.Batching) *Journal { return &Journal{d: d} }

type positioned struct {
	pos uint64
	val []byte
}

// records reads the records under prefix keyed by log position, in position order.
func (j *Journal) records(ctx context.Context, prefix ds.Key) ([]positioned, error) {
	res, err := j.d.Query(ctx, dsq.Query{Prefix: prefix.String()})
	if err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", prefix, err)
	}
	recs, err := res.Rest()
	if err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", prefix, err)
	}
	out := make([]positioned, 0, len(recs))
	for _, r := range recs {
		pos, err := strconv.ParseUint(ds.NewKey(r.Key).BaseNamespace(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: key %s", ErrCorrupt, r.Key)
		}
		out = append(out, positioned{pos, r.Value})
	}
	sort.Slice(out, func(a, c int) bool { return out[a].pos < out[c].pos })
	return out, nil
}

// Load adds every journaled proof and entry to b (which should be empty) and returns how many
// entries it replayed. Entries the proofs refuse and entries the book has no room for are
// skipped; whatever else does not verify is ErrCorrupt.
func (j *Journal) Load(ctx context.Context, b *Book) (int, error) {
	if err := j.loadProofs(ctx, b); err != nil {
		return 0, err
	}
	rules, err := j.records(ctx, jRules)
	if err != nil {
		return 0, err
	}
	epochs := rules
	j.rules = len(epochs) > 0
	if j.rules && epochs[0].pos == 0 {
		var r Rules
		if err := json.Unmarshal(epochs[0].val, &r); err != nil {
			return 0, fmt.Errorf("%w: rules at 0: %v", ErrCorrupt, err)
		}
		b.epochs[len(b.epochs)-1] = r
		epochs = epochs[1:]
	}
	log, err := j.records(ctx, jLog)
	if err != nil {
		return 0, err
	}
	full := 0 // entries the book had no room for (its limits were lowered since)
	for i, r := range log {
		if r.pos != uint64(i) {
			return i, fmt.Errorf("%w: log record %d is missing", ErrCorrupt, i)
		}
		for len(epochs) > 0 && epochs[0].pos <= r.pos {
			var rs Rules
			if err := json.Unmarshal(epochs[0].val, &rs); err != nil {
				return i, fmt.Errorf("%w: rules at %d: %v", ErrCorrupt, epochs[0].pos, err)
			}
			b.SetRules(rs)
			epochs = epochs[1:]
		}
		id := string(r.val)
		raw, err := j.d.Get(ctx, jEntries.ChildString(id))
		if err != nil {
			return i, fmt.Errorf("%w: log record %d names entry %s: %v", ErrCorrupt, i, id, err)
		}
		e, err := Decode(raw)
		if err != nil {
			return i, fmt.Errorf("%w: entry %s: %v", ErrCorrupt, id, err)
		}
		if e.ID() != id {
			return i, fmt.Errorf("%w: entry stored as %s has ID %s", ErrCorrupt, id, e.ID())
		}
		_, err = b.Add(e)
		if errors.Is(err, ErrFull) {
			full++
			continue
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			return i, fmt.Errorf("%w: entry %d (%s) does not verify: %v", ErrCorrupt, i, id, err)
		}
	}
	for _, r := range epochs { // rules recorded after the last entry
		var rs Rules
		if err := json.Unmarshal(r.val, &rs); err != nil {
			return len(log), fmt.Errorf("%w: rules at %d: %v", ErrCorrupt, r.pos, err)
		}
		b.SetRules(rs)
	}
	if b.Waiting() > 0 && full == 0 {
		return len(log), fmt.Errorf("%w: %d journaled entries do not link to their chains", ErrCorrupt, b.Waiting())
	}
	j.next = uint64(len(log))
	return len(log), nil
}

// UseRules makes r the rules of entries journaled from now on (recorded, then set in b), when
// they differ from b's. A journal that records no rules yet records b's first.
func (j *Journal) UseRules(ctx context.Context, b *Book, r Rules) error {
	if !j.rules {
		if err := j.putRules(ctx, 0, b.epochs[0]); err != nil {
			return err
		}
		j.rules = true
	}
	if b.Rules().Equal(r) {
		return nil
	}
	if err := j.putRules(ctx, j.next, r); err != nil {
		return err
	}
	b.SetRules(r)
	return nil
}

func (j *Journal) putRules(ctx context.Context, pos uint64, r Rules) error {
	v, _ := json.Marshal(r) // a map of bools and a number, cannot fail
	if err := j.d.Put(ctx, jRules.ChildString(logKey(pos)), v); err != nil {
		return fmt.Errorf("journal the ledger rules: %w", err)
	}
	return nil
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
