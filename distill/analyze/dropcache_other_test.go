//go:build !(linux && (amd64 || arm64))

package analyze

// dropCache cannot evict pages on this platform; cold runs are then warm.
func dropCache(string) bool { return false }
