package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// IndexFile is the name of a sharded checkpoint's index.
const IndexFile = "model.safetensors.index.json"

// SingleFile is the name of an unsharded checkpoint's weights.
const SingleFile = "model.safetensors"

// maxIndexSize bounds the index file (Kimi-K2's is about 10 MB).
const maxIndexSize = 256 << 20

// Index is a parsed model.safetensors.index.json.
type Index struct {
	// TotalSize is metadata.total_size when present (the bytes of all tensors), else 0.
	TotalSize int64
	// WeightMap maps each tensor name to the shard file holding it.
	WeightMap map[string]string
}

// Shards returns the distinct shard files, sorted.
func (ix *Index) Shards() []string {
	var files []string
	for _, f := range ix.WeightMap {
		files = append(files, f)
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// ParseIndex parses and validates an index: a JSON object with a
// "weight_map" object of tensor name → shard file name and an optional
// "metadata" object. It rejects duplicate keys (which encoding/json would
// silently resolve), empty names, and shard names that are not plain file
// names in the checkpoint folder.
func ParseIndex(data []byte) (*Index, error) {
	if len(data) > maxIndexSize {
		return nil, fmt.Errorf("index: %d bytes exceeds the %d-byte limit", len(data), maxIndexSize)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("index: not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	ix := &Index{}
	if err := expectDelim(dec, '{', "index"); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for {
		key, done, err := nextKey(dec, "index")
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		if seen[key] {
			return nil, fmt.Errorf("index: duplicate key %q", key)
		}
		seen[key] = true
		switch key {
		case "weight_map":
			if ix.WeightMap, err = parseWeightMap(dec); err != nil {
				return nil, err
			}
		case "metadata":
			if ix.TotalSize, err = parseIndexMetadata(dec); err != nil {
				return nil, err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("index: malformed value of %q: %w", key, err)
			}
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("index: trailing data after the JSON object")
	}
	if ix.WeightMap == nil {
		return nil, errors.New(`index: no "weight_map"`)
	}
	if len(ix.WeightMap) == 0 {
		return nil, errors.New(`index: "weight_map" is empty`)
	}
	return ix, nil
}

func parseWeightMap(dec *json.Decoder) (map[string]string, error) {
	if err := expectDelim(dec, '{', "weight_map"); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for {
		name, done, err := nextKey(dec, "weight_map")
		if err != nil {
			return nil, err
		}
		if done {
			return m, nil
		}
		if name == "" {
			return nil, errors.New("index: weight_map has a tensor with an empty name")
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("index: tensor %q appears twice in weight_map", name)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("index: weight_map entry %q: %w", name, err)
		}
		file, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("index: weight_map entry %q: shard must be a string, got %v", name, tok)
		}
		if err := checkShardName(file); err != nil {
			return nil, fmt.Errorf("index: tensor %q: %w", name, err)
		}
		m[name] = file
	}
}

// checkShardName accepts only plain file names: a shard must live in the
// checkpoint folder, never elsewhere on disk.
func checkShardName(f string) error {
	if f == "" || f == "." || f == ".." || strings.ContainsAny(f, `/\`+"\x00") || filepath.IsAbs(f) || f != filepath.Base(f) {
		return fmt.Errorf("shard %q is not a plain file name in the checkpoint folder", f)
	}
	return nil
}

func parseIndexMetadata(dec *json.Decoder) (int64, error) {
	if err := expectDelim(dec, '{', "metadata"); err != nil {
		return 0, err
	}
	var total int64
	seen := map[string]bool{}
	for {
		key, done, err := nextKey(dec, "metadata")
		if err != nil {
			return 0, err
		}
		if done {
			return total, nil
		}
		if seen[key] {
			return 0, fmt.Errorf("index: duplicate metadata key %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, fmt.Errorf("index: malformed metadata %q: %w", key, err)
		}
		if key == "total_size" {
			var n json.Number
			if err := json.Unmarshal(v, &n); err != nil {
				return 0, fmt.Errorf("index: metadata total_size %s is not a number", v)
			}
			if total, err = n.Int64(); err != nil || total < 0 {
				// Some exporters write a float; accept integral values only.
				var f float64
				if ferr := json.Unmarshal(v, &f); ferr != nil || f < 0 || f > 1<<62 || f != float64(int64(f)) {
					return 0, fmt.Errorf("index: metadata total_size %s is not a non-negative integer", v)
				}
				total = int64(f)
			}
		}
	}
}

func expectDelim(dec *json.Decoder, d json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("index: malformed JSON at %s: %w", what, err)
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("index: %s must be a JSON object, got %v", what, tok)
	}
	return nil
}

// nextKey reads an object key, or reports the end of the object.
func nextKey(dec *json.Decoder, what string) (string, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", false, fmt.Errorf("index: malformed JSON in %s: %w", what, err)
	}
	switch v := tok.(type) {
	case string:
		return v, false, nil
	case json.Delim:
		if v == '}' {
			return "", true, nil
		}
	}
	return "", false, fmt.Errorf("index: malformed JSON in %s: unexpected %v", what, tok)
}
