//go:build linux

package netlab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// run executes a command and returns its stdout. Its error names the whole
// command line and carries stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// inNS runs a command inside network namespace ns.
func inNS(ctx context.Context, ns, name string, args ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// ipt runs iptables inside namespace ns. -w waits for the xtables lock
// instead of failing when another lab is editing rules at the same moment.
func ipt(ctx context.Context, ns string, args ...string) error {
	_, err := inNS(ctx, ns, "iptables", append([]string{"-w"}, args...)...)
	return err
}
