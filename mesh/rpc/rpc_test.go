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
