package node

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
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
		if !reflect.DeepEqual(back.Training, c.Training) || back.Store != c.Store || back.API != c.API {
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
		{"preset: fast\ntraining:\n  join: [{domain: fashion}]\n", "training.join[0]"},
		{"preset: fast\napi:\n  listen: 0.0.0.0:80\n", "api.listen"},
		{"preset: fast\napi:\n  listen: localhost:80\n", "must listen on a loopback address"},
		{"preset: fast\napi:\n  listen: 127.0.0.1\n", "api.listen"},
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

func TestEveryConfigFieldIsDocumented(t *testing.T) {
	c, _ := Preset("production")
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		t.Fatal(err)
	}
	docs := configDocs()
	walkConfig(&n, "", func(path string, _, _ *yaml.Node) {
		if docs[path] == "" {
			t.Errorf("config field %s has no comment", path)
		}
	})
}

func TestEnvironmentOverridesFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("preset: fast\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MESHNODE_MESH_ADVERT_TTL", "5s")
	t.Setenv("MESHNODE_MESH_ADVERT_REFRESH", "1s")
	t.Setenv("MESHNODE_MESH_BOOTSTRAP", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDywLWxBokMM6geraoY7dcvUmDZDVZx1PfHH4cQt3gDH9, /ip4/127.0.0.1/tcp/2")
	t.Setenv("MESHNODE_TRAINING_EPOCHS", "7")
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mesh.AdvertTTL != 5*time.Second || c.Training.Epochs != 7 || len(c.Mesh.Bootstrap) != 2 || c.Training.BatchSize != 128 {
		t.Fatalf("overrides not applied: %+v", c)
	}
	t.Setenv("MESHNODE_TRAINING_EPOCHS", "lots")
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "lots") {
		t.Fatalf("a bad override: %v", err)
	}
	t.Setenv("MESHNODE_TRAINING_EPOCHS", "-3")
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "training.epochs") {
		t.Fatalf("an out-of-range override: %v", err)
	}
}
