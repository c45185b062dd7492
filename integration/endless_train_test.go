package integration

import (
	"bufio"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// endlessTraining is `expert train` of an iris expert that would run for a million epochs,
// started and seen to stream its first epoch from the daemon.
type endlessTraining struct {
	cmd    *exec.Cmd
	stderr *bufio.Scanner
}

func startEndlessTraining(t *testing.T, repo, name string) *endlessTraining {
	t.Helper()
	cmd := exec.Command(meshnodeBin, "--repo", repo, "expert", "train", "--dataset", "iris", "--hidden", "8",
		"--epochs", "1000000", "--patience", "1000000", "--name", name)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	sc := bufio.NewScanner(stderr)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "epoch ") {
		t.Fatalf("no epoch line from the daemon's training: %q", sc.Text())
	}
	return &endlessTraining{cmd: cmd, stderr: sc}
}

// end waits up to limit for the command to exit and checks that it exited with an error of
// its own (code 1, not killed by a signal) whose output says want. It returns that output.
func (e *endlessTraining) end(t *testing.T, limit time.Duration, want string) string {
	t.Helper()
	var tail strings.Builder
	done := make(chan error, 1)
	go func() {
		for e.stderr.Scan() {
			tail.WriteString(e.stderr.Text() + "\n")
		}
		done <- e.cmd.Wait()
	}()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signaled() || ee.ExitCode() != 1 {
			t.Fatalf("the training command exited with %v, want exit code 1 of its own\n%s", err, tail.String())
		}
		if !strings.Contains(tail.String(), want) {
			t.Fatalf("the training command said:\n%s\nwant it to say %q", tail.String(), want)
		}
	case <-time.After(limit):
		t.Fatalf("the training command did not end within %s", limit)
	}
	return tail.String()
}
