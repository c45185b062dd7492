package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPresetsAreValidAndRoundTrip(t *testing.T) {
	for _, name := range Presets() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("preset %s: %v", name, err)
		}
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		back, err := LoadConfig(path)
		if err != nil {
			t.Fatalf("preset %s: %v", name, err)
		}
		if back.Training != c.Training || back.Store != c.Store || back.API != c.API {
			t.Fatalf("preset %s changed on the way through YAML: %+v vs %+v", name, back, c)
		}
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"preset: fast\ntraining:\n  batch_size: 0\n", "training.batch_size"},
		{"preset: fast\nstore:\n  memtable_mib: 99999\n", "store.memtable_mib"},
		{"preset: fast\ntraining:\n  bogus: 1\n", "bogus"},
		{"preset: turbo\n", "unknown preset"},
		{"preset: fast\napi:\n  listen: 0.0.0.0:80\n", "api.listen"},
		{"preset: [\n", "yaml"},
	}
	for _, tc := range cases {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error naming %q", tc.yaml, err, tc.want)
		}
	}
}
