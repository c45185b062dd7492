package checkpoint

import (
	"slices"
	"strings"
	"testing"
)

func TestParseIndex(t *testing.T) {
	ix, err := ParseIndex([]byte(`{"metadata":{"total_size":1234,"format":"pt"},"weight_map":{"a":"model-1-of-2.safetensors",
		"b":"model-2-of-2.safetensors","c":"model-1-of-2.safetensors"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ix.TotalSize != 1234 || len(ix.WeightMap) != 3 || ix.WeightMap["b"] != "model-2-of-2.safetensors" {
		t.Fatalf("parsed %+v", ix)
	}
	if got := ix.Shards(); !slices.Equal(got, []string{"model-1-of-2.safetensors", "model-2-of-2.safetensors"}) {
		t.Errorf("shards %v", got)
	}
	if ix, err := ParseIndex([]byte(`{"weight_map":{"a":"x.safetensors"},"metadata":{"total_size":5.0}}`)); err != nil || ix.TotalSize != 5 {
		t.Errorf("float total_size: %+v, %v", ix, err)
	}
}

func TestParseIndexErrors(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"not an object", `[]`, "must be a JSON object"},
		{"no weight map", `{"metadata":{}}`, `no "weight_map"`},
		{"empty weight map", `{"weight_map":{}}`, "empty"},
		{"duplicate tensor", `{"weight_map":{"a":"x","a":"y"}}`, `tensor "a" appears twice`},
		{"duplicate key", `{"weight_map":{"a":"x"},"weight_map":{"b":"y"}}`, `duplicate key "weight_map"`},
		{"path traversal", `{"weight_map":{"a":"../secret"}}`, "not a plain file name"},
		{"absolute path", `{"weight_map":{"a":"/etc/passwd"}}`, "not a plain file name"},
		{"subfolder", `{"weight_map":{"a":"sub/x.safetensors"}}`, "not a plain file name"},
		{"non-string shard", `{"weight_map":{"a":3}}`, "must be a string"},
		{"empty tensor name", `{"weight_map":{"":"x"}}`, "empty name"},
		{"negative total", `{"weight_map":{"a":"x"},"metadata":{"total_size":-1}}`, "total_size"},
		{"fractional total", `{"weight_map":{"a":"x"},"metadata":{"total_size":1.5}}`, "total_size"},
		{"trailing data", `{"weight_map":{"a":"x"}} {}`, "trailing"},
		{"truncated", `{"weight_map":{"a":"x"`, "malformed"},
		{"invalid UTF-8", "{\"weight_map\":{\"a\xff\":\"x\"}}", "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIndex([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
