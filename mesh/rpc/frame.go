// Package rpc is request/response over libp2p streams: length-prefixed messages with a maximum
// size, a deadline on every read and write, streams kept open and reused for later requests
// (no stream set-up per call), a per-peer token bucket on the server, and errors carried back to
// the caller as text. It knows nothing of what the messages mean.
package rpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is returned for a message over the size limit.
var ErrTooLarge = errors.New("message too large")

// Frame kinds: the first byte of every frame.
const (
	frameRequest  byte = 1
	frameResponse byte = 2
	frameError    byte = 3
)

// writeFrame writes kind, a uvarint length and the payload.
func writeFrame(w *bufio.Writer, kind byte, payload []byte) error {
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = kind
	n := binary.PutUvarint(hdr[1:], uint64(len(payload)))
	if _, err := w.Write(hdr[:1+n]); err != nil {
		return err
	}
	if _, err := w.Write(payload); err != nil {
		return err
	}
	return w.Flush()
}

// readChunk is how much of a frame's payload is allocated ahead of the bytes that arrived: a
// peer that declares a large frame and sends little of it costs little.
const readChunk = 32 << 10

// readFrame reads one frame, refusing payloads over max before reading them. The payload's
// buffer grows with the bytes that arrive (at most readChunk ahead of them, then doubling),
// never to the declared size up front. reserve, when not nil, is asked for the declared size
// before the payload is read (libp2p's resource manager); release gives it back.
func readFrame(r *bufio.Reader, max int, reserve func(int) (release func(), err error)) (byte, []byte, error) {
	kind, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	size, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, fmt.Errorf("frame length: %w", err)
	}
	if size > uint64(max) {
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, max)
	}
	if reserve != nil && size > readChunk {
		release, err := reserve(int(size))
		if err != nil {
			return 0, nil, fmt.Errorf("frame of %d bytes: %w", size, err)
		}
		defer release()
	}
	want := int(size)
	buf := make([]byte, 0, min(want, readChunk))
	for len(buf) < want {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(want, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && len(buf) < want {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, fmt.Errorf("frame payload: %d of %d bytes: %w", len(buf), size, err)
		}
	}
	return kind, buf, nil
}
