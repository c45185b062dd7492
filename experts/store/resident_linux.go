//go:build linux

package store

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseValueLog asks the kernel to reclaim the resident pages of the value-log files under
// dir that this process maps (badger names them NNNNNN.vlog). It reads the mappings from
// /proc/self/maps and applies madvise(MADV_PAGEOUT) to each.
//
// MADV_PAGEOUT only reclaims: it never changes what a mapping holds, whatever the range maps by
// then. That matters because badger may unmap a file between the read of /proc/self/maps and
// the madvise (value-log gc deletes files), and the range may by then hold other memory, which
// MADV_DONTNEED would have zeroed. Dirty pages are written back first; the store syncs every
// write, so the value log's pages are clean by the time this runs.
func releaseValueLog(dir string) error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return fmt.Errorf("release value log: %w", err)
	}
	defer f.Close()
	prefix := strings.TrimSuffix(dir, "/") + "/"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		path := fields[5]
		if !strings.HasPrefix(path, prefix) || !strings.HasSuffix(path, ".vlog") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT); errno != 0 {
			return fmt.Errorf("release value log %s: madvise: %w", path, errno)
		}
	}
	return sc.Err()
}
