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

// readFrame reads one frame, refusing payloads over max before allocating them.
func readFrame(r *bufio.Reader, max int) (byte, []byte, error) {
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
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("frame payload: %w", err)
	}
	return kind, buf, nil
}
