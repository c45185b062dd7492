package blobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bsclient "github.com/ipfs/boxo/bitswap/client"
	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/verifcid"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

// Progress reports how far a fetch has got. Bytes and Total count the blob's file bytes (the
// data of its leaves), so Bytes reaches Total when the fetch is done.
type Progress struct {
	// Blocks is the number of the blob's blocks now held locally (fetched or found).
	Blocks int
	// Bytes is the number of the blob's file bytes now held locally.
	Bytes int64
	// Total is the blob's size as its root block gives it (for several blobs, the sum); it is
	// complete once every root is known.
	Total int64
	// Received is the number of block bytes this fetch received from peers.
	Received int64
	// Elapsed is the time since the fetch started.
	Elapsed time.Duration
	// Rate is Received / Elapsed, in bytes per second.
	Rate float64
}

// Fetch pulls the whole DAG of the blob root into the local blockstore from whichever peers
// hold it, and returns when every block is stored. Blocks already held are not fetched again,
// so Fetch resumes an interrupted fetch and returns quickly for a blob that is complete.
//
// Every block is checked against its CID before it is written: bitswap derives a received
// block's CID by hashing its bytes (boxo/bitswap/message), so a tampered block reaches Fetch as
// one nobody asked for and is dropped (the exchange then bans the peer that sent it, see
// Exchange.admit), and Fetch does not hash the bytes a second time; it checks that the CID's hash
// function is one that cannot be forged. Memory is bounded: at most Config.MaxBlocksInFlight
// blocks are held between being requested and being written, whatever the blob's size. Links
// of raw and dag-pb (UnixFS) blocks are followed; a block of another codec is fetched alone.
// progress, if not nil, is called from Fetch's goroutine after every block and must return
// quickly.
//
// Fetch fails with ErrUnavailable when no block arrives for Config.FetchTimeout, with
// ErrClosed when the exchange is closed, and with the context's error when ctx is done.
func (x *Exchange) Fetch(ctx context.Context, root cid.Cid, progress func(Progress)) error {
	return x.FetchAll(ctx, []cid.Cid{root}, progress)
}

// FetchAll is Fetch for several blobs at once: their first blocks go out in one request, so
// blobs a caller knows it needs together (an expert's manifest and weights) cost one round trip
// to a peer instead of one each. Progress counts all of them; Total is known once every root
// is. Provider searches look for the first root.
func (x *Exchange) FetchAll(ctx context.Context, roots []cid.Cid, progress func(Progress)) error {
	return x.fetch(ctx, roots, nil, progress, x.swap.first)
}

// FetchGuided fetches root and the blob it links to when the caller can guess that blob's CID
// (an advert or a job announcement names an expert's weights): both are asked for in one
// request. When root's block is at hand, linked(block) gives the CID it really links to; a
// wrong guess is dropped (its want no longer holds the fetch up) and the real blob fetched in
// its place. An error from linked fails the fetch.
//
// The guess is only a hint: nothing of it counts in the progress, is written or has its links
// followed until root's block confirms it. Without a usable guess (undefined, root itself, or
// a CID whose hash function is not allowed), root is fetched first and then what it links to.
func (x *Exchange) FetchGuided(ctx context.Context, root, guess cid.Cid, linked func(blocks.Block) (cid.Cid, error), progress func(Progress)) error {
	if linked == nil {
		return x.Fetch(ctx, root, progress)
	}
	if guess.Defined() && !guess.Equals(root) && verifcid.ValidateCid(verifcid.DefaultAllowlist, guess) == nil {
		return x.fetch(ctx, []cid.Cid{root, guess}, linked, progress, x.swap.first)
	}
	var first Progress
	if err := x.Fetch(ctx, root, func(p Progress) {
		first = p
		if progress != nil {
			progress(p)
		}
	}); err != nil {
		return err
	}
	blk, err := x.bs.Get(ctx, root)
	if err != nil {
		return fmt.Errorf("fetch %s: read it back: %w", root, err)
	}
	target, err := linked(blk)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", root, err)
	}
	// Through the second client (with Config.FollowClient): the first has just sent root's
	// want and would hold this one for up to 20 ms.
	return x.fetch(ctx, []cid.Cid{target}, nil, func(p Progress) {
		if progress == nil {
			return
		}
		p.Blocks += first.Blocks
		p.Bytes += first.Bytes
		p.Total += first.Total
		p.Received += first.Received
		p.Elapsed += first.Elapsed
		if s := p.Elapsed.Seconds(); s > 0 {
			p.Rate = float64(p.Received) / s
		}
		progress(p)
	}, x.swap.followFor(target))
}

// fetch runs one fetch, its requests going through the bitswap client via.
func (x *Exchange) fetch(ctx context.Context, roots []cid.Cid, linked func(blocks.Block) (cid.Cid, error), progress func(Progress), via *bsclient.Client) error {
	if len(roots) == 0 {
		return errors.New("fetch: no CID")
	}
	root := roots[0]
	if x.closed.Load() {
		return fmt.Errorf("fetch %s: %w", root, ErrClosed)
	}
	pending := make(map[cid.Cid]bool, len(roots))
	stack := make([]link, 0, len(roots))
	for i := len(roots) - 1; i >= 0; i-- { // the first root comes off the stack first
		r := roots[i]
		if !r.Defined() {
			return errors.New("fetch: undefined CID")
		}
		if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, r); err != nil {
			return fmt.Errorf("fetch %s: %w", r, err)
		}
		if !pending[r] {
			pending[r] = true
			stack = append(stack, link{c: r, size: -1})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &fetch{
		x:          x,
		ctx:        ctx,
		root:       root,
		roots:      pending,
		linked:     linked,
		sess:       via.NewSession(ctx),
		progress:   progress,
		start:      time.Now(),
		results:    make(chan blocks.Block),
		writes:     make(chan []blocks.Block, 4), // the window bounds what they hold
		wrote:      make(chan struct{}, 1),
		writeErr:   make(chan error, 1),
		writerDone: make(chan struct{}),
		inflight:   make(map[cid.Cid]int),
		leaves:     make(map[cid.Cid]int64),
		stack:      stack,
	}
	if linked != nil {
		f.guess = roots[1]
		f.stack[0].guess = true // roots[1] is below roots[0]
	}
	go f.writer()
	err := f.run()
	if err != nil && len(f.batch) > 0 {
		// Keep the verified blocks of a failed fetch, so the next one resumes after them.
		select {
		case f.writes <- f.batch:
		case <-f.writerDone:
		}
		f.batch = nil
	}
	// Let the writer finish what it was given; it stops early only on an error.
	close(f.writes)
	<-f.writerDone
	if err == nil {
		select {
		case err = <-f.writeErr:
		default:
		}
	}
	cancel()
	f.wg.Wait()
	if err != nil {
		return fmt.Errorf("fetch %s: %w", root, err)
	}
	return nil
}

// fetch is the state of one Fetch call. Only run's goroutine touches its maps and stack.
type fetch struct {
	x     *Exchange
	ctx   context.Context
	root  cid.Cid          // the first root: provider searches look for it
	roots map[cid.Cid]bool // roots whose size is not yet in p.Total
	// For FetchGuided: linked checks the guess (the second root) against the first root's
	// block. Until then (settled), the guess's own accounting and links wait in onConfirm and
	// its block, if it came first, in guessBlock.
	linked        func(blocks.Block) (cid.Cid, error)
	guess         cid.Cid
	settled       bool
	guessDropped  bool
	guessInflight bool // the guess's stack entry holds a reference in inflight
	onConfirm     func()
	guessBlock    blocks.Block
	sess          exchange.Fetcher
	progress      func(Progress)
	start         time.Time
	p             Progress

	stack    []link          // blocks still to look at, next on top
	inflight map[cid.Cid]int // requested blocks -> references waiting for them
	// unwritten counts received blocks not yet written (in the batch or with the writer); with
	// inflight it makes the window.
	unwritten atomic.Int64
	wrote     chan struct{}     // the writer wrote a batch
	leaves    map[cid.Cid]int64 // raw blocks already held -> their size, for repeated chunks
	results   chan blocks.Block // blocks from the bitswap session

	batch      []blocks.Block // verified blocks not yet handed to the writer
	batchBytes int
	writes     chan []blocks.Block
	writeErr   chan error
	writerDone chan struct{}

	searching atomic.Bool    // a provider search is running
	wg        sync.WaitGroup // the session forwarders and the provider search
}

func (f *fetch) run() error {
	stall := time.NewTimer(f.x.cfg.FetchTimeout)
	defer stall.Stop()
	// While no block arrives, look for providers of the root, at growing intervals: bitswap
	// searches by the wants it still has, the blob's inner blocks, which have no provider
	// records when only roots are announced.
	searchDelay := f.x.cfg.ProviderSearchDelay
	search := time.NewTimer(searchDelay)
	defer search.Stop()
	progressed := func() {
		stall.Reset(f.x.cfg.FetchTimeout)
		searchDelay = f.x.cfg.ProviderSearchDelay
		search.Reset(searchDelay)
	}
	for {
		if err := f.request(); err != nil {
			return err
		}
		if len(f.inflight) == 0 && len(f.stack) == 0 {
			return f.flush(true)
		}
		select {
		case b := <-f.results:
			if err := f.receive(b); err != nil {
				return err
			}
			progressed()
		case <-f.wrote:
			progressed()
		case <-search.C:
			f.findProviders()
			searchDelay = min(2*searchDelay, f.x.cfg.RebroadcastDelay)
			search.Reset(searchDelay)
		case err := <-f.writeErr:
			return err
		case <-stall.C:
			return fmt.Errorf("%w: no block arrived for %s; %d blocks (%d bytes) held, %d asked for and not received",
				ErrUnavailable, f.x.cfg.FetchTimeout, f.p.Blocks, f.p.Bytes, len(f.inflight))
		case <-f.x.done:
			return ErrClosed
		case <-f.ctx.Done():
			return f.ctx.Err()
		}
	}
}

// findProviders looks up providers of the root in the background and connects to them (the
// provider query manager dials what it finds), so bitswap's next broadcast of the fetch's wants
// reaches them. One search runs at a time.
func (f *fetch) findProviders() {
	if f.x.pqm == nil || !f.searching.CompareAndSwap(false, true) {
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer f.searching.Store(false)
		for range f.x.pqm.FindProvidersAsync(f.ctx, f.root, f.x.cfg.MaxProviders) {
		}
	}()
}

// request takes blocks off the stack until the window is full: blocks held locally are walked
// at once, the others are asked for in one session request.
func (f *fetch) request() error {
	var want []cid.Cid
	for len(f.inflight)+int(f.unwritten.Load()) < f.x.cfg.MaxBlocksInFlight && len(f.stack) > 0 {
		l := f.stack[len(f.stack)-1]
		f.stack = f.stack[:len(f.stack)-1]
		c := l.c
		if l.guess {
			if f.guessDropped {
				continue
			}
			f.guessInflight = !f.settled
		}
		if n, ok := f.inflight[c]; ok { // a repeated chunk already asked for
			f.inflight[c] = n + 1
			continue
		}
		if size, ok := f.leaves[c]; ok { // a repeated chunk already held
			f.account(size)
			continue
		}
		local, err := f.local(l)
		if err != nil {
			return err
		}
		if local {
			continue
		}
		f.inflight[c] = 1
		want = append(want, c)
	}
	if len(want) == 0 {
		return nil
	}
	f.x.wanted.add(want...)
	ch, err := f.sess.GetBlocks(f.ctx, want)
	if err != nil {
		return fmt.Errorf("request %d blocks: %w", len(want), err)
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for b := range ch {
			select {
			case f.results <- b:
			case <-f.ctx.Done():
				return
			}
		}
	}()
	return nil
}

// local handles l if the blockstore already holds it (or its CID inlines its data) and reports
// whether it did.
func (f *fetch) local(l link) (bool, error) {
	c := l.c
	if c.Prefix().MhType == mh.IDENTITY {
		dmh, err := mh.Decode(c.Hash())
		if err != nil {
			return false, fmt.Errorf("decode identity CID %s: %w", c, err)
		}
		b, err := blocks.NewBlockWithCid(dmh.Digest, c)
		if err != nil {
			return false, fmt.Errorf("inline block %s: %w", c, err)
		}
		return true, f.visit(b, 1)
	}
	if c.Type() == cid.Raw && l.size >= 0 {
		// A leaf whose size its parent gave: no need to read it.
		has, err := f.x.bs.Has(f.ctx, c)
		if err != nil {
			return false, fmt.Errorf("look up block %s: %w", c, err)
		}
		if has {
			f.leaves[c] = l.size
			f.account(l.size)
		}
		return has, nil
	}
	b, err := f.x.bs.Get(f.ctx, c)
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("read block %s: %w", c, err)
	}
	return true, f.visit(b, 1)
}

// receive handles a block from the session: it queues it for writing and walks it. bitswap
// computed the block's CID from its bytes, and every CID asked for passed verifcid's allowlist.
func (f *fetch) receive(b blocks.Block) error {
	c := b.Cid()
	refs, ok := f.inflight[c]
	if !ok {
		return nil // not asked for, or already handled
	}
	delete(f.inflight, c)
	f.p.Received += int64(len(b.RawData()))
	if f.linked != nil && !f.settled && c.Equals(f.guess) {
		f.guessBlock = b // written once the root confirms it
	} else {
		f.queue(b)
	}
	if err := f.visit(b, refs); err != nil {
		return err
	}
	return f.flush(false)
}

func isNotFound(err error) bool {
	return ipld.IsNotFound(err) || errors.Is(err, ds.ErrNotFound)
}
