//go:build linux

package netlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// Command returns a command that runs name with args inside h's namespace
// (through "ip netns exec"); ctx kills it.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Do runs fn on an OS thread switched into h's namespace and returns its
// error. Sockets fn creates stay in that namespace for their whole life, so
// they may be used from any goroutine afterwards. Goroutines fn starts do not
// inherit the namespace: create every socket in fn itself. The thread is
// never unlocked, so Go discards it when fn returns and the rest of the
// process is unaffected.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the goroutine exits locked and its thread,
		// whose namespace was changed, is terminated with it.
		f, err := os.Open("/run/netns/" + h.NS)
		if err != nil {
			errc <- fmt.Errorf("netlab: entering %s: %w", h.NS, err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("netlab: entering %s: setns: %w", h.NS, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
