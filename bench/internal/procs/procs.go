// Package procs starts meshnode daemons as processes for benchmarks: it makes their repos,
// starts each daemon bootstrapped to the one before, and stops or kills them.
package procs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/meshnode/meshnode/node/api"
)

// Daemon is one meshnode daemon process and its repo.
type Daemon struct {
	Repo   string
	Cmd    *exec.Cmd   // nil until Start, and again after Stop
	Addr   string      // its first listen address, from its ready line
	Client *api.Client // its local API
}

// Init makes n repos dir/n00, dir/n01, … with `bin init --config cfg` and returns a daemon,
// not yet started, for each.
func Init(bin, dir, cfg string, n int) ([]*Daemon, error) {
	ds := make([]*Daemon, n)
	for i := range ds {
		ds[i] = &Daemon{Repo: filepath.Join(dir, fmt.Sprintf("n%02d", i))}
		if err := Run(bin, "--repo", ds[i].Repo, "init", "--config", cfg); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// StartChain starts the daemons in order, each bootstrapped to the one before it, with JSON
// output and only errors logged.
func StartChain(bin string, ds []*Daemon) error {
	for i, d := range ds {
		args := []string{"--repo", d.Repo, "--json", "daemon", "--log-level", "error"}
		if i > 0 {
			args = append(args, "--bootstrap", ds[i-1].Addr)
		}
		if err := d.Start(bin, args); err != nil {
			return fmt.Errorf("daemon %d: %w", i, err)
		}
	}
	return nil
}

// Start runs `bin args...` (a daemon command with --json), waits for its ready line and
// connects a client to its repo's API. Its stderr goes to ours; the rest of its stdout is
// discarded.
func (d *Daemon) Start(bin string, args []string) error {
	d.Cmd = exec.Command(bin, args...)
	d.Cmd.Stderr = os.Stderr
	stdout, err := d.Cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := d.Cmd.Start(); err != nil {
		return err
	}
	var info api.IDInfo
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&info); err != nil {
		return fmt.Errorf("ready line: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	d.Addr = info.Addrs[0]
	d.Client, err = api.DaemonClient(d.Repo)
	return err
}

// Stop asks the daemon to shut down (SIGTERM) and waits for it to exit.
func (d *Daemon) Stop() {
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	_ = d.Cmd.Wait()
	d.Cmd = nil
}

// KillAll kills (SIGKILL) every daemon in ds that is still running and waits for it; it is
// meant to be deferred as soon as ds exists.
func KillAll(ds []*Daemon) {
	for _, d := range ds {
		if d != nil && d.Cmd != nil {
			_ = d.Cmd.Process.Signal(syscall.SIGKILL)
			_ = d.Cmd.Wait()
		}
	}
}

// Run runs `bin args...` to completion with its stderr going to ours and its stdout
// discarded.
func Run(bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	cmd.Stdout = io.Discard
	return cmd.Run()
}
