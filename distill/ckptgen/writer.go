package ckptgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/meshnode/meshnode/distill/checkpoint"
	"github.com/meshnode/meshnode/experts/safetensors"
)

// tensorPlan is one tensor of a checkpoint to generate.
type tensorPlan struct {
	Name  string
	DType safetensors.DType
	Shape []int64
}

func (t tensorPlan) elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

func (t tensorPlan) bytes() int64 {
	size, _ := t.DType.Size()
	return t.elements() * int64(size)
}

// contentFunc returns the little-endian bytes of a tensor (exactly t.bytes() of them).
type contentFunc func(t tensorPlan) ([]byte, error)

// shardHeader returns the 8-byte length prefix and the JSON header of a
// shard holding ts in order, padded so the data buffer starts 8-aligned.
func shardHeader(ts []tensorPlan, metadata map[string]string) ([]byte, int64) {
	var js strings.Builder
	js.WriteByte('{')
	if len(metadata) > 0 {
		md, _ := json.Marshal(metadata) // sorted keys; cannot fail for strings
		js.WriteString(`"__metadata__":`)
		js.Write(md)
	}
	var off int64
	for i, t := range ts {
		if i > 0 || len(metadata) > 0 {
			js.WriteByte(',')
		}
		name, _ := json.Marshal(t.Name)
		js.Write(name)
		js.WriteString(`:{"dtype":"`)
		js.WriteString(string(t.DType))
		js.WriteString(`","shape":[`)
		for k, d := range t.Shape {
			if k > 0 {
				js.WriteByte(',')
			}
			js.WriteString(strconv.FormatInt(d, 10))
		}
		end := off + t.bytes()
		fmt.Fprintf(&js, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	js.WriteByte('}')
	for (js.Len()+8)%8 != 0 {
		js.WriteByte(' ')
	}
	out := make([]byte, 8, 8+js.Len())
	binary.LittleEndian.PutUint64(out, uint64(js.Len()))
	return append(out, js.String()...), off
}

// writeShard writes a safetensors shard at path. With content == nil it
// writes only the header and extends the file to its full declared size
// with Truncate, so the data costs no disk (a sparse file of zeros).
func writeShard(ctx context.Context, path string, ts []tensorPlan, metadata map[string]string, content contentFunc) (int64, error) {
	header, dataSize := shardHeader(ts, metadata)
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.Write(header); err != nil {
		return 0, fmt.Errorf("writing header of %s: %w", path, err)
	}
	if content != nil {
		for _, t := range ts {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			b, err := content(t)
			if err != nil {
				return 0, fmt.Errorf("tensor %q of %s: %w", t.Name, path, err)
			}
			if int64(len(b)) != t.bytes() {
				return 0, fmt.Errorf("tensor %q of %s: generated %d bytes, want %d", t.Name, path, len(b), t.bytes())
			}
			if _, err := w.Write(b); err != nil {
				return 0, fmt.Errorf("writing tensor %q to %s: %w", t.Name, path, err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	size := int64(len(header)) + dataSize
	if content == nil {
		if err := f.Truncate(size); err != nil {
			return 0, fmt.Errorf("extending %s to %d bytes: %w", path, size, err)
		}
	}
	return size, f.Close()
}

// splitShards cuts plan into n contiguous, non-empty shards of roughly
// equal bytes (fewer if there are fewer tensors).
func splitShards(plan []tensorPlan, n int) [][]tensorPlan {
	n = max(1, min(n, len(plan)))
	var total int64
	for _, t := range plan {
		total += t.bytes()
	}
	out := make([][]tensorPlan, n)
	var cum int64
	k := 0
	for i, t := range plan {
		want := int(float64(cum) / float64(max(total, 1)) * float64(n))
		// Never skip a shard, and leave at least one tensor for each later one.
		k = min(max(want, k, n-(len(plan)-i)), k+1, n-1)
		out[k] = append(out[k], t)
		cum += t.bytes()
	}
	return out
}

// shardName is the Hugging Face shard naming Kimi-K2 uses.
func shardName(i, n int) string { return fmt.Sprintf("model-%d-of-%d.safetensors", i+1, n) }

// writeCheckpoint writes plan as shards plus model.safetensors.index.json
// into dir and returns the total declared size of the shards.
func writeCheckpoint(ctx context.Context, dir string, plan []tensorPlan, shards int, content contentFunc) (int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	parts := splitShards(plan, shards)
	weightMap := map[string]string{}
	var total, fileBytes int64
	for i, part := range parts {
		name := shardName(i, len(parts))
		size, err := writeShard(ctx, filepath.Join(dir, name), part, map[string]string{"format": "pt"}, content)
		if err != nil {
			return 0, err
		}
		fileBytes += size
		for _, t := range part {
			weightMap[t.Name] = name
			total += t.bytes()
		}
	}
	ix := struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": total}, weightMap}
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.IndexFile), append(b, '\n'), 0o644); err != nil {
		return 0, err
	}
	return fileBytes, nil
}
