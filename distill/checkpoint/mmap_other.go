//go:build !unix

package checkpoint

import "os"

// mapping is unavailable on this platform: reads use ReadAt, one tensor at a time.
type mapping struct {
	data []byte
}

func mapFile(*os.File, int64) (*mapping, error) { return nil, nil }

func (m *mapping) willNeed(int64, int64) {}

func (m *mapping) close() error { return nil }
