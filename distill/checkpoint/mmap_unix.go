//go:build unix

package checkpoint

import (
	"fmt"
	"math"
	"os"
	"syscall"
)

const pageSize = 4096

// mapping is a read-only memory map of a whole shard.
type mapping struct {
	data []byte
}

// mapFile maps f (size bytes) read-only. It returns (nil, nil) when the file
// cannot be mapped on this platform (too large for the address space), in
// which case reads fall back to ReadAt.
func mapFile(f *os.File, size int64) (*mapping, error) {
	if size == 0 || size > math.MaxInt {
		return nil, nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", f.Name(), err)
	}
	return &mapping{data: data}, nil
}

// adviceChunk bounds one MADV_WILLNEED call: the kernel reads at most
// its readahead window (often 128 KiB, up to a few MiB) per call, so a
// large range is advised in pieces of this size.
const adviceChunk = 128 << 10

// willNeed asks the kernel to start reading [off, off+n) ahead of use.
func (m *mapping) willNeed(off, n int64) {
	start := off &^ (pageSize - 1)
	end := min(off+n, int64(len(m.data)))
	for ; start < end; start += adviceChunk {
		_ = syscall.Madvise(m.data[start:min(start+adviceChunk, end)], syscall.MADV_WILLNEED) // advice only
	}
}

func (m *mapping) close() error {
	if m == nil || m.data == nil {
		return nil
	}
	err := syscall.Munmap(m.data)
	m.data = nil
	return err
}
