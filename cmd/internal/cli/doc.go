// Package cli holds the command code of both binaries: meshnode (everything) and kimi-analyzer
// (the offline toolkit alone). Each command parses flags, calls package node, and prints a
// human summary or, with --json, one JSON document on stdout. Errors come back to main, which
// prints one line and exits non-zero.
package cli
