// Package integration holds the tests that start several nodes — in-process mesh nodes on
// 127.0.0.1 port 0, and real meshnode daemons as processes — so that only this one test binary
// links libp2p. It has no non-test code besides this file.
package integration
