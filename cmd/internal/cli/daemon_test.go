package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/node/daemon"
)

func TestDaemonAPIFlagIsLoopbackOnly(t *testing.T) {
	const refused = "the API must listen on a loopback address (127.0.0.1 or [::1])"
	cases := []struct {
		api  string
		want string // "" for accepted, else a part of the error
	}{
		{"", ""}, // the config's
		{"127.0.0.1:0", ""},
		{"127.0.0.1:5081", ""},
		{"[::1]:5081", ""},
		{"0.0.0.0:5081", "--api 0.0.0.0:5081: " + refused},
		{"[::]:5081", refused},
		{":5081", refused},
		{"192.168.1.10:5081", refused},
		{"localhost:5081", refused},
		{"127.0.0.1", refused},
		{"127.0.0.1:http", refused},
		{"127.0.0.1:70000", refused},
	}
	for _, tc := range cases {
		err := checkDaemonOptions(daemon.Options{APIListen: tc.api})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("--api %q: %v", tc.api, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("--api %q: got %v, want an error containing %q", tc.api, err, tc.want)
		}
	}
}

func TestDaemonRefusesAPIOnAllInterfaces(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "n1")
	mustRun(t, "--repo", repo, "init", "--preset", "fast")
	_, err := run(t, "--repo", repo, "daemon", "--api", "0.0.0.0:5081")
	if err == nil || !strings.Contains(err.Error(), "--api 0.0.0.0:5081: the API must listen on a loopback address") {
		t.Fatalf("daemon --api 0.0.0.0:5081: %v", err)
	}
}
