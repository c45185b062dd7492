//go:build linux

package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseValueLog asks the kernel to reclaim the resident pages of the newest two value-log
// files under dir that this process maps (badger names them NNNNNN.vlog and appends to the
// newest; with 128 MiB files and a release every 32 MiB, what was written since the last
// release is in those two). It reads the mappings from /proc/self/maps and applies
// madvise(MADV_PAGEOUT) to each.
//
// MADV_PAGEOUT only reclaims: it never changes what a mapping holds, whatever the range maps by
// then. That matters because badger may unmap a file between the read of /proc/self/maps and
// the madvise (value-log gc deletes files), and the range may by then hold other memory, which
// MADV_DONTNEED would have zeroed. Dirty pages are written back first; the store syncs every
// write, so the value log's pages are clean by the time this runs. A failed madvise (a range
// unmapped meanwhile, a kernel before 5.4) does not stop the others.
func releaseValueLog(dir string) error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return fmt.Errorf("release value log: %w", err)
	}
	defer f.Close()
	type mapping struct {
		start, end uint64
		fid        int
		path       string
	}
	var vlogs []mapping
	newest := -1
	prefix := strings.TrimSuffix(dir, "/") + "/"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		addrs, path, ok := mapsLine(sc.Text())
		if !ok || !strings.HasPrefix(path, prefix) || !strings.HasSuffix(path, ".vlog") {
			continue
		}
		fid, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(path), ".vlog"))
		if err != nil {
			continue
		}
		lo, hi, ok := strings.Cut(addrs, "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		vlogs = append(vlogs, mapping{start, end, fid, path})
		newest = max(newest, fid)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("release value log: read mappings: %w", err)
	}
	var errs []error
	for _, m := range vlogs {
		if m.fid < newest-1 {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_PAGEOUT); errno != 0 {
			errs = append(errs, fmt.Errorf("release value log %s: madvise: %w", m.path, errno))
		}
	}
	return errors.Join(errs...)
}

// mapsLine splits a /proc/self/maps line ("start-end perms offset dev inode path") into its
// address range and its path, which may contain spaces.
func mapsLine(line string) (addrs, path string, ok bool) {
	rest := line
	var fields [5]string
	for i := range fields {
		rest = strings.TrimLeft(rest, " \t")
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			return "", "", false // no path: an anonymous mapping
		}
		fields[i], rest = rest[:end], rest[end:]
	}
	path = strings.TrimLeft(rest, " \t")
	if path == "" {
		return "", "", false
	}
	return fields[0], path, true
}
