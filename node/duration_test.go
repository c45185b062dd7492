package node

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseDurationTakesSecondsAndDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5": 5 * time.Second, "2.5": 2500 * time.Millisecond, " 0 ": 0, "90s": 90 * time.Second,
		"2m": 2 * time.Minute, "1h30m": 90 * time.Minute, "250ms": 250 * time.Millisecond,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "five", "-1", "NaN", "Inf", "1e300", "5 minutes"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
}

// TestConfigTakesPlainSeconds: a duration field written as a plain number, in the file or in
// an environment override, means seconds (YAML alone reads it as nanoseconds).
func TestConfigTakesPlainSeconds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("preset: fast\nmarket:\n  republish: 5\n  default_expiry: 2h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvName("market.sync"), "30")
	t.Setenv(EnvName("mesh.advert_ttl"), "90.5")
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Market.Republish != 5*time.Second || c.Market.DefaultExpiry != 2*time.Hour || c.Market.Sync != 30*time.Second || c.Mesh.AdvertTTL != 90500*time.Millisecond {
		t.Fatalf("republish %s, expiry %s, sync %s, advert ttl %s", c.Market.Republish, c.Market.DefaultExpiry, c.Market.Sync, c.Mesh.AdvertTTL)
	}
}
