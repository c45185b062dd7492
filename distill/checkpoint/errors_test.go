package checkpoint_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/distill/ckptgen"
)

type headerEntry struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// editShard rewrites a shard's header with edit, keeping its data bytes.
func editShard(t *testing.T, path string, edit func(h map[string]json.RawMessage)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(data)
	var h map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	edit(h)
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	out = append(append(out, js...), data[8+n:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// byOffset returns the shard's tensor names in data order.
func byOffset(h map[string]json.RawMessage) ([]string, map[string]headerEntry) {
	entries := map[string]headerEntry{}
	var names []string
	for k, v := range h {
		if k == "__metadata__" {
			continue
		}
		var e headerEntry
		_ = json.Unmarshal(v, &e)
		entries[k] = e
		names = append(names, k)
	}
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			if entries[names[j]].Offsets[0] < entries[names[i]].Offsets[0] {
				names[i], names[j] = names[j], names[i]
			}
		}
	}
	return names, entries
}

func setEntry(h map[string]json.RawMessage, name string, e headerEntry) {
	b, _ := json.Marshal(e)
	h[name] = b
}

func editJSON(t *testing.T, path string, edit func(m map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOpenBadInput corrupts a generated checkpoint in one way at a time and
// checks that Open fails with an error naming the tensor and the file.
func TestOpenBadInput(t *testing.T) {
	const shard1, shard2, shard3 = "model-1-of-3.safetensors", "model-2-of-3.safetensors", "model-3-of-3.safetensors"
	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string) []string // returns the substrings the error must contain
	}{
		{"missing shard", func(t *testing.T, dir string) []string {
			os.Remove(filepath.Join(dir, shard2))
			return []string{shard2, `"model.layers.`, "no such file"}
		}},
		{"truncated shard", func(t *testing.T, dir string) []string {
			var last string
			editShard(t, filepath.Join(dir, shard3), func(h map[string]json.RawMessage) {
				names, _ := byOffset(h)
				last = names[len(names)-1]
			})
			st, _ := os.Stat(filepath.Join(dir, shard3))
			os.Truncate(filepath.Join(dir, shard3), st.Size()-3)
			return []string{shard3, `"` + last + `"`, "past the end"}
		}},
		{"overlapping offsets", func(t *testing.T, dir string) []string {
			var second, first string
			editShard(t, filepath.Join(dir, shard1), func(h map[string]json.RawMessage) {
				names, e := byOffset(h)
				first, second = names[0], names[1]
				s := e[second]
				s.Offsets = []int64{s.Offsets[0] - 2, s.Offsets[1] - 2}
				setEntry(h, second, s)
			})
			return []string{shard1, `"` + second + `"`, `"` + first + `"`, "overlap"}
		}},
		{"offsets past the end", func(t *testing.T, dir string) []string {
			var last string
			editShard(t, filepath.Join(dir, shard2), func(h map[string]json.RawMessage) {
				names, e := byOffset(h)
				last = names[len(names)-1]
				s := e[last]
				s.Offsets = []int64{s.Offsets[0] + 64, s.Offsets[1] + 64}
				setEntry(h, last, s)
			})
			return []string{shard2, `"` + last + `"`, "past the end"}
		}},
		{"shape disagrees with config", func(t *testing.T, dir string) []string {
			editJSON(t, filepath.Join(dir, checkpoint.ConfigFile), func(m map[string]any) { m["moe_intermediate_size"] = 48 })
			return []string{`"model.layers.1.mlp.experts.0.gate_proj.weight"`, ".safetensors", "[40 64]", "[48 64]", "moe_intermediate_size"}
		}},
		{"layer missing from the checkpoint", func(t *testing.T, dir string) []string {
			editJSON(t, filepath.Join(dir, checkpoint.ConfigFile), func(m map[string]any) { m["num_hidden_layers"] = 5 })
			return []string{`"model.layers.4.mlp.gate.weight"`, "missing", checkpoint.IndexFile}
		}},
		{"index names the wrong shard", func(t *testing.T, dir string) []string {
			name := "model.layers.1.mlp.experts.3.up_proj.weight"
			editJSON(t, filepath.Join(dir, checkpoint.IndexFile), func(m map[string]any) {
				wm := m["weight_map"].(map[string]any)
				wrong := shard1
				if wm[name] == shard1 {
					wrong = shard3
				}
				wm[name] = wrong
			})
			return []string{`"` + name + `"`, checkpoint.IndexFile, "no such tensor"}
		}},
		{"FP8 weight without its scales", func(t *testing.T, dir string) []string {
			name := "model.layers.2.mlp.experts.5.down_proj.weight"
			var file string
			editJSON(t, filepath.Join(dir, checkpoint.IndexFile), func(m map[string]any) {
				wm := m["weight_map"].(map[string]any)
				file = wm[name+checkpoint.ScaleSuffix].(string)
				delete(wm, name+checkpoint.ScaleSuffix)
				wm[name+"_scale_other"] = file
			})
			editShard(t, filepath.Join(dir, file), func(h map[string]json.RawMessage) {
				h[name+"_scale_other"] = h[name+checkpoint.ScaleSuffix]
				delete(h, name+checkpoint.ScaleSuffix)
			})
			return []string{`"` + name + `"`, "without its block scales", ".safetensors"}
		}},
		{"scales of the wrong shape", func(t *testing.T, dir string) []string {
			editJSON(t, filepath.Join(dir, checkpoint.ConfigFile), func(m map[string]any) {
				m["quantization_config"].(map[string]any)["weight_block_size"] = []int{16, 16}
			})
			return []string{checkpoint.ScaleSuffix + `"`, ".safetensors", "weight_block_size"}
		}},
		{"unusable dtype", func(t *testing.T, dir string) []string {
			name := "model.layers.3.mlp.experts.0.gate_proj.weight"
			var file string
			editJSON(t, filepath.Join(dir, checkpoint.IndexFile), func(m map[string]any) {
				file = m["weight_map"].(map[string]any)[name].(string)
			})
			editShard(t, filepath.Join(dir, file), func(h map[string]json.RawMessage) {
				_, e := byOffset(h)
				x := e[name]
				x.DType = "I8"
				setEntry(h, name, x)
			})
			return []string{`"` + name + `"`, file, "dtype I8"}
		}},
		{"malformed index", func(t *testing.T, dir string) []string {
			os.WriteFile(filepath.Join(dir, checkpoint.IndexFile), []byte(`{"weight_map":{"a":"../x"}}`), 0o644)
			return []string{checkpoint.IndexFile, `"a"`, "plain file name"}
		}},
		{"missing config", func(t *testing.T, dir string) []string {
			os.Remove(filepath.Join(dir, checkpoint.ConfigFile))
			return []string{checkpoint.ConfigFile, "no such file"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			if _, err := ckptgen.Tiny(ctx, dir, ckptgen.TinyOptions{}); err != nil {
				t.Fatal(err)
			}
			want := tc.corrupt(t, dir)
			ck, err := checkpoint.Open(ctx, dir)
			if err == nil {
				ck.Close()
				t.Fatal("Open succeeded on a corrupt checkpoint")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

// A shard that shrinks after Open makes reads fail with an error, not a crash.
func TestReadAfterTruncation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := ckptgen.Tiny(ctx, dir, ckptgen.TinyOptions{Shards: 1}); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if err := os.Truncate(filepath.Join(dir, "model-1-of-1.safetensors"), 4096); err != nil {
		t.Fatal(err)
	}
	name := ck.Config.ExpertTensor(3, 15, checkpoint.Down)
	_, err = ck.Read(ctx, name)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "model-1-of-1.safetensors") {
		t.Fatalf("read of a truncated shard: %v", err)
	}
}
