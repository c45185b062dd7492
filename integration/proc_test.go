package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// meshnodeBin is the meshnode binary built once for the tests that run real processes.
var meshnodeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshnode-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	meshnodeBin = filepath.Join(dir, "meshnode")
	build := exec.Command("go", "build", "-o", meshnodeBin, "github.com/meshnode/meshnode/cmd/meshnode")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build meshnode:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs one meshnode command to completion and returns its stdout.
func cli(t *testing.T, repo string, args ...string) string {
	t.Helper()
	out, err := cliErr(repo, args...)
	if err != nil {
		t.Fatalf("meshnode %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func cliErr(repo string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, meshnodeBin, append([]string{"--repo", repo}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// cliJSON runs a command with --json and decodes its output.
func cliJSON(t *testing.T, repo string, out any, args ...string) {
	t.Helper()
	s := cli(t, repo, append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		t.Fatalf("meshnode %s printed %q: %v", strings.Join(args, " "), s, err)
	}
}

// testConfig writes a config for a test node: loopback only, random ports, no mDNS (tests
// never multicast on a real interface), and the given advert timings.
func testConfig(t *testing.T, ttl, refresh time.Duration) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := fmt.Sprintf(`preset: development
mesh:
  listen: [/ip4/127.0.0.1/tcp/0, /ip4/127.0.0.1/udp/0/quic-v1]
  mdns: false
  advert_ttl: %s
  advert_refresh: %s
`, ttl, refresh)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemonProc is a meshnode daemon running as a child process.
type daemonProc struct {
	repo    string
	cmd     *exec.Cmd
	PeerID  string
	Addrs   []string
	API     string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // its exit status, valid after exited is closed
	stderr  *bytes.Buffer
}

// startDaemon starts `meshnode daemon` on repo and waits for its ready line.
func startDaemon(t *testing.T, repo string, bootstrap ...string) *daemonProc {
	t.Helper()
	return startDaemonVia(t, nil, repo, bootstrap...)
}

// startDaemonVia starts the daemon under a wrapper command (such as "ip netns exec NS"; nil:
// none) and waits for its ready line.
func startDaemonVia(t *testing.T, wrap []string, repo string, bootstrap ...string) *daemonProc {
	t.Helper()
	args := []string{"--repo", repo, "--json", "daemon", "--log-level", "warn"}
	for _, b := range bootstrap {
		args = append(args, "--bootstrap", b)
	}
	argv := slices.Concat(wrap, []string{meshnodeBin}, args)
	cmd := exec.Command(argv[0], argv[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{repo: repo, cmd: cmd, exited: make(chan struct{}), stderr: &bytes.Buffer{}}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() { d.kill() })
	ready := make(chan error, 1)
	go func() {
		dec := json.NewDecoder(bufio.NewReader(stdout))
		var info struct {
			PeerID string   `json:"peer_id"`
			Addrs  []string `json:"addrs"`
			API    string   `json:"api"`
		}
		err := dec.Decode(&info)
		d.PeerID, d.Addrs, d.API = info.PeerID, info.Addrs, info.API
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("daemon on %s did not report ready: %v\n%s", repo, err, d.stderr)
		}
	case <-d.exited:
		t.Fatalf("daemon on %s exited: %v\n%s", repo, d.waitErr, d.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon on %s not ready after 30s\n%s", repo, d.stderr)
	}
	return d
}

// tcpAddr is the daemon's loopback TCP multiaddr with its peer ID.
func (d *daemonProc) tcpAddr(t *testing.T) string {
	for _, a := range d.Addrs {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	t.Fatalf("daemon %s has no TCP address: %v", d.PeerID, d.Addrs)
	return ""
}

// kill ends the process with SIGKILL (no cleanup: what a crash looks like).
func (d *daemonProc) kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL) // fails only if it has exited already
	<-d.exited
}

// stop ends the process with SIGTERM and waits for it to exit cleanly.
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
		if d.waitErr != nil {
			t.Fatalf("daemon exited with %v after SIGTERM\n%s", d.waitErr, d.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon did not stop within 20s of SIGTERM\n%s", d.stderr)
	}
}

// eventually polls cond every 50 ms until it holds or limit passes, and returns how long it took.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not true after %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}
