package rpc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// header is a request frame's kind and declared length.
func header(size uint64) []byte {
	b := []byte{frameRequest}
	return binary.AppendUvarint(b, size)
}

func TestReadFrameRoundTripsAndRefusesOversize(t *testing.T) {
	const max = 1 << 20
	cases := []struct {
		name string
		kind byte
		size int
	}{
		{"empty", frameRequest, 0},
		{"one byte", frameResponse, 1},
		{"a chunk less one", frameError, readChunk - 1},
		{"a chunk", frameRequest, readChunk},
		{"a chunk and one", frameRequest, readChunk + 1},
		{"several chunks", frameResponse, 3*readChunk + 7},
		{"exactly the limit", frameRequest, max},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			payload := make([]byte, c.size)
			for i := range payload {
				payload[i] = byte(i*7 + i>>8)
			}
			var wire bytes.Buffer
			w := bufio.NewWriter(&wire)
			if err := writeFrame(w, c.kind, payload); err != nil {
				t.Fatal(err)
			}
			if err := writeFrame(w, frameRequest, []byte("next")); err != nil { // nothing read past a frame
				t.Fatal(err)
			}
			// A reader that hands out a few bytes at a time, as a stream does.
			r := bufio.NewReader(iotest.OneByteReader(bytes.NewReader(wire.Bytes())))
			if c.size > 4096 {
				r = bufio.NewReader(iotest.HalfReader(bytes.NewReader(wire.Bytes())))
			}
			kind, got, err := readFrame(r, max, nil)
			if err != nil || kind != c.kind || !bytes.Equal(got, payload) {
				t.Fatalf("kind %d, %d bytes (identical: %t), %v; want kind %d, %d bytes", kind, len(got), bytes.Equal(got, payload), err, c.kind, c.size)
			}
			if kind, got, err := readFrame(r, max, nil); err != nil || kind != frameRequest || string(got) != "next" {
				t.Fatalf("the next frame: kind %d, %q, %v", kind, got, err)
			}
		})
	}
	for _, size := range []uint64{max + 1, 1 << 30, 1 << 40, 1<<64 - 1} {
		reserved := false
		reserve := func(int) (func(), error) { reserved = true; return func() {}, nil }
		in := append(header(size), make([]byte, 64)...)
		if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), max, reserve); !errors.Is(err, ErrTooLarge) {
			t.Errorf("frame declaring %d bytes: %v, want ErrTooLarge", size, err)
		}
		if reserved {
			t.Errorf("frame declaring %d bytes: memory was reserved before it was refused", size)
		}
	}
}

func TestReadFrameAllocatesWhatArrives(t *testing.T) {
	const declared = 1<<20 - 1
	cases := []struct {
		name string
		sent int
	}{{"10 bytes", 10}, {"40 KB", 40 << 10}, {"all but one byte", declared - 1}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := append(header(declared), bytes.Repeat([]byte{1}, c.sent)...)
			var reserved int
			reserve := func(n int) (func(), error) { reserved = n; return func() { reserved = 0 }, nil }
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), 1<<20, reserve)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncated frame: %v, want unexpected EOF", err)
			}
			if reserved != 0 {
				t.Fatal("the reservation was not released")
			}
			// Buffers double from 32 KiB: at most about twice what arrived, plus the reader's.
			if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(4*c.sent+(64<<10)+(8<<10)); got > limit && c.sent < declared/2 {
				t.Fatalf("%d bytes sent of %d declared: %d bytes allocated, want at most %d", c.sent, declared, got, limit)
			}
		})
	}
}

func TestReadFrameReservesLargeFrames(t *testing.T) {
	in := append(header(100<<10), make([]byte, 100<<10)...)
	refuse := func(int) (func(), error) { return nil, errors.New("over the peer's memory limit") }
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), 1<<20, refuse); err == nil {
		t.Fatal("a frame the resource manager refused was read")
	}
	small := append(header(100), make([]byte, 100)...)
	if _, p, err := readFrame(bufio.NewReader(bytes.NewReader(small)), 1<<20, refuse); err != nil || len(p) != 100 {
		t.Fatalf("a small frame needs no reservation: %d bytes, %v", len(p), err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(append(header(5), "hello"...))
	f.Add(header(1 << 40))
	f.Add(append(header(64<<10+1), make([]byte, 64<<10+1)...))
	f.Add(append(header(3), 'a'))
	f.Add([]byte{frameRequest, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 64 << 10
		_, p, err := readFrame(bufio.NewReader(bytes.NewReader(in)), limit, nil)
		if err == nil && len(p) > limit {
			t.Fatalf("read %d bytes past the limit of %d", len(p), limit)
		}
		if err == nil && len(p) > len(in) {
			t.Fatalf("payload of %d bytes from %d bytes of input", len(p), len(in))
		}
	})
}
