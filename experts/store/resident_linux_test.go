//go:build linux

package store

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	blocks "github.com/ipfs/go-block-format"
)

// valueLogResident sums the resident bytes of this process's mappings of .vlog files under dir.
func valueLogResident(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	inVlog := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && len(fields) >= 5 { // a mapping's header line
			inVlog = len(fields) >= 6 && strings.HasPrefix(fields[5], dir+"/") && strings.HasSuffix(fields[5], ".vlog")
			continue
		}
		if inVlog && fields[0] == "Rss:" && len(fields) >= 2 {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// The store's writes do not stay resident: after 40 MiB of blocks, the value log's pages the
// process maps are released, and every block reads back intact.
func TestValueLogPagesAreReleased(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mapped, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var written []blocks.Block
	for range 5 { // 5 batches of 8 × 1 MiB: one release after 32 MiB
		batch := make([]blocks.Block, 8)
		for i := range batch {
			data := make([]byte, 1<<20)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			batch[i] = blocks.NewBlock(data)
		}
		if err := s.Blockstore().PutMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
		written = append(written, batch...)
	}
	resident := valueLogResident(t, mapped)
	// 8 MiB were written after the release at 32 MiB; without it all 40 MiB stay resident.
	if resident > 16<<20 {
		t.Fatalf("%d MiB of the value log are resident after writing 40 MiB; want at most 16", resident>>20)
	}
	if err := releaseValueLog(mapped); err != nil {
		t.Fatal(err)
	}
	if resident := valueLogResident(t, mapped); resident > 1<<20 {
		t.Fatalf("%d KiB of the value log are resident after an explicit release", resident>>10)
	}
	for _, b := range written {
		got, err := s.Blockstore().Get(ctx, b.Cid())
		if err != nil {
			t.Fatalf("read %s after the release: %v", b.Cid(), err)
		}
		if !bytes.Equal(got.RawData(), b.RawData()) {
			t.Fatalf("block %s changed after the release", b.Cid())
		}
	}
}

func TestMapsLine(t *testing.T) {
	cases := []struct {
		line, addrs, path string
		ok                bool
	}{
		{"7f0000000000-7f0008000000 rw-s 00000000 fd:01 1234   /tmp/repo/000001.vlog", "7f0000000000-7f0008000000", "/tmp/repo/000001.vlog", true},
		{"7f0000000000-7f0008000000 rw-s 00000000 fd:01 1234   /tmp/my repo/000002.vlog", "7f0000000000-7f0008000000", "/tmp/my repo/000002.vlog", true},
		{"7ffd1000-7ffd2000 rw-p 00000000 00:00 0 ", "", "", false},
		{"7ffd1000-7ffd2000 rw-p 00000000 00:00 0", "", "", false},
		{"garbage", "", "", false},
	}
	for _, tc := range cases {
		addrs, path, ok := mapsLine(tc.line)
		if addrs != tc.addrs || path != tc.path || ok != tc.ok {
			t.Errorf("mapsLine(%q) = %q, %q, %v; want %q, %q, %v", tc.line, addrs, path, ok, tc.addrs, tc.path, tc.ok)
		}
	}
}
