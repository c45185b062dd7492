//go:build linux && (amd64 || arm64)

package analyze

import (
	"os"
	"syscall"
)

// dropCache asks the kernel to evict path's pages from the page cache
// (posix_fadvise POSIX_FADV_DONTNEED), so the next read comes from disk.
func dropCache(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	const fadvDontNeed = 4
	_, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0)
	return errno == 0
}
