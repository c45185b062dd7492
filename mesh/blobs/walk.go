package blobs

import (
	"fmt"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/verifcid"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// visit accounts for a block held (refs times: a DAG may repeat a chunk) and puts its links on
// the stack.
func (f *fetch) visit(b blocks.Block, refs int) error {
	c := b.Cid()
	if f.linked != nil && !f.settled && c.Equals(f.root) {
		if err := f.checkGuess(b); err != nil {
			return err
		}
	}
	var links []link
	var size int64
	total := int64(-1) // the blob's size if c is a root: the file size its block gives
	switch c.Type() {
	case cid.Raw:
		size = int64(len(b.RawData()))
		total = size
	case cid.DagProtobuf:
		node, err := merkledag.DecodeProtobuf(b.RawData())
		if err != nil {
			return fmt.Errorf("decode block %s: %w", c, err)
		}
		fsn, err := unixfs.FSNodeFromBytes(node.Data())
		if err != nil {
			fsn = nil // a dag-pb node that is not UnixFS: follow its links, count no bytes
		}
		if fsn != nil {
			size = int64(len(fsn.Data()))
			total = int64(fsn.FileSize())
		}
		links = make([]link, 0, len(node.Links()))
		for i, l := range node.Links() {
			if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, l.Cid); err != nil {
				return fmt.Errorf("block %s links to %s: %w", c, l.Cid, err)
			}
			child := link{c: l.Cid, size: -1}
			if fsn != nil && fsn.NumChildren() == len(node.Links()) {
				child.size = int64(fsn.BlockSize(i))
			}
			links = append(links, child)
		}
	default:
		size = int64(len(b.RawData()))
		total = size
	}
	apply := func() {
		if total >= 0 {
			f.rootSize(c, total)
		}
		if c.Type() == cid.Raw {
			f.leaves[c] = size
		}
		for range refs {
			// Push in reverse so the blob's blocks come off the stack in file order.
			for i := len(links) - 1; i >= 0; i-- {
				f.stack = append(f.stack, links[i])
			}
			f.account(size)
		}
	}
	if f.linked != nil && !f.settled && c.Equals(f.guess) {
		f.onConfirm = apply // a guess the root may not confirm: nothing of it counts yet
		return nil
	}
	apply()
	return nil
}

// checkGuess compares the guessed second root with what the first root's block links to, and
// replaces a wrong guess with the real blob.
func (f *fetch) checkGuess(b blocks.Block) error {
	f.settled = true
	confirm, blk := f.onConfirm, f.guessBlock
	f.onConfirm, f.guessBlock = nil, nil
	target, err := f.linked(b)
	if err != nil {
		return fmt.Errorf("block %s: %w", b.Cid(), err)
	}
	if target.Equals(f.guess) {
		if blk != nil {
			f.queue(blk)
		}
		if confirm != nil {
			confirm()
		}
		return nil
	}
	if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, target); err != nil {
		return fmt.Errorf("block %s links to %s: %w", b.Cid(), target, err)
	}
	// Drop the guess's own request (only its stack entry: the real DAG may contain the same
	// block and then asks for it again) and fetch what the root names.
	f.guessDropped = true
	delete(f.roots, f.guess)
	if f.guessInflight {
		if n := f.inflight[f.guess]; n > 1 {
			f.inflight[f.guess] = n - 1
		} else {
			delete(f.inflight, f.guess)
		}
	}
	f.roots[target] = true
	f.stack = append(f.stack, link{c: target, size: -1})
	return nil
}

// rootSize adds a root's size to the total when c is a root not yet counted.
func (f *fetch) rootSize(c cid.Cid, size int64) {
	if f.roots[c] {
		delete(f.roots, c)
		f.p.Total += size
	}
}

// link is a block to fetch and, when its parent says, the file bytes it holds (-1: unknown).
// guess marks FetchGuided's guessed root.
type link struct {
	c     cid.Cid
	size  int64
	guess bool
}

func (f *fetch) account(fileBytes int64) {
	f.p.Blocks++
	f.p.Bytes += fileBytes
	if f.progress != nil {
		f.p.Elapsed = time.Since(f.start)
		if s := f.p.Elapsed.Seconds(); s > 0 {
			f.p.Rate = float64(f.p.Received) / s
		}
		f.progress(f.p)
	}
}
