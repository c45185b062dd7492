//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
)

const (
	// queueLen is how many packets one queue may hold, in the kernel and in
	// the delayer; beyond it the kernel accepts packets undelayed (fail-open)
	// rather than dropping them.
	queueLen = 8192
	// batchSlack is how early a packet may leave with a batch already due: well under the
	// delays a lab sets (milliseconds).
	batchSlack = 200 * time.Microsecond
)

// delayer holds the packets the router puts on one NFQUEUE queue and accepts
// each after the queue's current delay. The kernel hands packets over in
// order and they are released in that order, so the link never reorders.
type delayer struct {
	nf      *nfqueue.Nfqueue
	nsFile  *os.File
	delay   atomic.Int64 // time.Duration
	pending chan queued
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

type queued struct {
	id      uint32
	release time.Time
}

// newDelayer binds queue num in namespace ns and starts releasing packets
// (with zero delay until setDelay is called).
func newDelayer(ns string, num uint16) (*delayer, error) {
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return nil, fmt.Errorf("opening namespace for queue %d: %w", num, err)
	}
	nf, err := nfqueue.Open(&nfqueue.Config{
		NetNS:        int(f.Fd()),
		NfQueue:      num,
		MaxQueueLen:  queueLen,
		MaxPacketLen: 0,
		Copymode:     nfqueue.NfQnlCopyMeta,
		Flags:        nfqueue.NfQaCfgFlagFailOpen,
		WriteTimeout: time.Second,
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening queue %d: %w", num, err)
	}
	if err := nf.SetOption(netlink.NoENOBUFS, true); err != nil {
		nf.Close()
		f.Close()
		return nil, fmt.Errorf("queue %d: setting NoENOBUFS: %w", num, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &delayer{nf: nf, nsFile: f, pending: make(chan queued, queueLen), cancel: cancel}
	err = nf.RegisterWithErrorFunc(ctx, d.hook, func(error) int {
		if ctx.Err() != nil {
			return 1 // closing
		}
		return 0 // keep receiving (e.g. a transient read error)
	})
	if err != nil {
		cancel()
		nf.Close()
		f.Close()
		return nil, fmt.Errorf("registering queue %d: %w", num, err)
	}
	d.wg.Add(1)
	go d.releaseLoop(ctx)
	return d, nil
}

func (d *delayer) setDelay(delay time.Duration) { d.delay.Store(int64(delay)) }

// hook runs on the library's receive goroutine and must never block.
func (d *delayer) hook(a nfqueue.Attribute) int {
	if a.PacketID == nil {
		return 0
	}
	q := queued{id: *a.PacketID, release: time.Now().Add(time.Duration(d.delay.Load()))}
	select {
	case d.pending <- q:
	default:
		// Our queue is full: let the packet through undelayed rather than block.
		_ = d.nf.SetVerdict(q.id, nfqueue.NfAccept)
	}
	return 0
}

// releaseLoop accepts queued packets in order, each at its release time. The packets due
// together (a burst arrives within microseconds) get one batch verdict: the kernel accepts
// every packet of the queue up to the last one's id, which is what FIFO order means here, so
// a 100 Mbit/s link costs a verdict per burst rather than per packet.
func (d *delayer) releaseLoop(ctx context.Context) {
	defer d.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var held *queued // taken from pending but not yet due
	for {
		var q queued
		if held != nil {
			q, held = *held, nil
		} else {
			select {
			case <-ctx.Done():
				return
			case q = <-d.pending:
			}
		}
		if wait := time.Until(q.release); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		last := q.id
		due := time.Now().Add(batchSlack)
	drain:
		for {
			select {
			case next := <-d.pending:
				if next.release.After(due) {
					held = &next
					break drain
				}
				last = next.id
			default:
				break drain
			}
		}
		// An error here means the packets are gone (e.g. their namespace was
		// deleted); the kernel drops packets it gets no verdict for.
		_ = d.nf.SetVerdictBatch(last, nfqueue.NfAccept)
	}
}

// Close stops the delayer. Packets still held get no verdict; the kernel
// drops them when the queue is unbound.
func (d *delayer) Close() error {
	d.closeOnce.Do(func() {
		d.cancel()
		d.wg.Wait()
		d.closeErr = errors.Join(d.nf.Close(), d.nsFile.Close())
	})
	return d.closeErr
}
