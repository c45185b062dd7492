package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestDurationFlagsTakeSeconds: `monitor --interval 5` failed with "missing unit in duration"
// although the design writes `--interval S`; every duration flag takes plain seconds now.
func TestDurationFlagsTakeSeconds(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want time.Duration
		err  string
	}{
		{"5", 5 * time.Second, ""},
		{"0.25", 250 * time.Millisecond, ""},
		{"2m", 2 * time.Minute, ""},
		{"five", 0, "want seconds"},
	} {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		var d time.Duration
		durationFlag(fs, &d, "interval", time.Second, "refresh interval")
		err := fs.Parse([]string{"--interval", tc.arg})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error mentioning %q", tc.arg, err, tc.err)
			}
			continue
		}
		if err != nil || d != tc.want {
			t.Errorf("%q: %v %v, want %v", tc.arg, d, err, tc.want)
		}
	}
}
