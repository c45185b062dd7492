package rpc

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestFramesRoundTripAndRefuseOversize(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	for _, p := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{7}, 70000)} {
		if err := writeFrame(w, frameRequest, p); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(bytes.NewReader(buf.Bytes()))
	for _, want := range []int{0, 5, 70000} {
		kind, p, err := readFrame(r, 1<<20, nil)
		if err != nil || kind != frameRequest || len(p) != want {
			t.Fatalf("frame of %d bytes: kind %d, %d bytes, %v", want, kind, len(p), err)
		}
	}
	// A header announcing 1 GiB is refused before anything is allocated.
	huge := []byte{frameRequest, 0x80, 0x80, 0x80, 0x80, 0x04}
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(huge)), 1<<20, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("1 GiB frame: %v", err)
	}
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader([]byte{frameRequest, 5, 'a'})), 1<<20, nil); err == nil {
		t.Fatal("truncated frame: no error")
	}
}

func TestTokenBucketPerPeer(t *testing.T) {
	b := newBuckets(10, 5) // 10 a second, bursts of 5
	now := time.Unix(1_800_000_000, 0)
	greedy, polite := peer.ID("greedy"), peer.ID("polite")
	allowed := 0
	for i := 0; i < 20; i++ {
		if b.allow(greedy, now) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("a burst of 20 let %d through, want the bucket's 5", allowed)
	}
	if !b.allow(polite, now) {
		t.Fatal("another peer was starved by the greedy one")
	}
	if !b.allow(greedy, now.Add(150*time.Millisecond)) || b.allow(greedy, now.Add(150*time.Millisecond)) {
		t.Fatal("after 150 ms at 10/s the greedy peer should have exactly one new token")
	}
	if unlimited := newBuckets(0, 0); !unlimited.allow(greedy, now) {
		t.Fatal("rate 0 means no limit")
	}
}

// TestBusyBudgetPerPeer: a peer's handler time is paid for after the fact; a peer in debt is
// refused until the budget's refill repays it, and other peers are not affected.
func TestBusyBudgetPerPeer(t *testing.T) {
	b := newBuckets(0.25, 0) // a quarter of a second of handling a second
	b.burst = 1              // one second at once
	now := time.Unix(1_800_000_000, 0)
	heavy, light := peer.ID("heavy"), peer.ID("light")
	for i, want := range []bool{true, true, false} {
		if got := b.ready(heavy, now); got != want {
			t.Fatalf("request %d: ready %v, want %v", i+1, got, want)
		}
		if want {
			b.charge(heavy, now, 0.6) // each request took 600 ms
		}
	}
	if !b.ready(light, now) {
		t.Fatal("another peer was refused for the heavy peer's debt")
	}
	if b.ready(heavy, now.Add(500*time.Millisecond)) {
		t.Fatal("the debt of 0.2 s was repaid after 0.5 s at 0.25 s/s (0.125 s)")
	}
	if !b.ready(heavy, now.Add(time.Second)) {
		t.Fatal("after 1 s at 0.25 s/s the debt of 0.2 s is repaid")
	}
	if unlimited := newBuckets(0, 0); !unlimited.ready(heavy, now) {
		t.Fatal("rate 0 means no limit")
	}
}
