package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/meshnode/meshnode/experts/safetensors"
)

// ConfigFile is the name of the model configuration in a checkpoint folder.
const ConfigFile = "config.json"

const maxConfigSize = 16 << 20

// Checkpoint is an open mixture-of-experts checkpoint: its config, the
// headers of every shard, and lazily mapped tensor data. Methods are safe
// for concurrent use; Close releases the files and mappings.
type Checkpoint struct {
	// Dir is the checkpoint folder.
	Dir string
	// Config is the parsed config.json.
	Config *Config
	// Index is the parsed index, or nil for a single-file checkpoint.
	Index *Index

	shards  []*shard
	tensors map[string]tensorRef
	layers  []Layer
}

type tensorRef struct {
	shard int
	info  safetensors.TensorInfo
}

// TensorInfo describes one stored tensor.
type TensorInfo struct {
	Name  string            `json:"name"`
	File  string            `json:"file"`
	DType safetensors.DType `json:"dtype"`
	Shape []int64           `json:"shape"`
	Bytes int64             `json:"bytes"`
}

// Layer describes one decoder layer.
type Layer struct {
	Index   int  `json:"index"`
	MoE     bool `json:"moe"`
	Experts int  `json:"experts"` // routed experts (0 in a dense layer)
	Shared  int  `json:"shared"`  // shared experts
	// RouterBias reports whether the layer has a selection bias (e_score_correction_bias).
	RouterBias bool `json:"router_bias"`
}

// Open reads dir's config.json, its model.safetensors.index.json (or single
// model.safetensors) and the header of every shard, and checks that the
// tensors the config implies are present with the shapes it implies. Tensor
// data is not read. Errors name the tensor and file at fault.
func Open(ctx context.Context, dir string) (*Checkpoint, error) {
	cfgData, err := readSmallFile(filepath.Join(dir, ConfigFile), maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	cfg, err := ParseConfig(cfgData)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %s: %w", dir, ConfigFile, err)
	}
	ck := &Checkpoint{Dir: dir, Config: cfg, tensors: map[string]tensorRef{}}
	opened := false
	defer func() {
		if !opened {
			ck.Close()
		}
	}()
	var files []string
	ixData, err := readSmallFile(filepath.Join(dir, IndexFile), maxIndexSize)
	switch {
	case err == nil:
		if ck.Index, err = ParseIndex(ixData); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %s: %w", dir, IndexFile, err)
		}
		files = ck.Index.Shards()
	case errors.Is(err, fs.ErrNotExist):
		if _, serr := os.Stat(filepath.Join(dir, SingleFile)); serr != nil {
			return nil, fmt.Errorf("checkpoint %s: neither %s nor %s: %w", dir, IndexFile, SingleFile, serr)
		}
		files = []string{SingleFile}
	default:
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	shards, errs := openShards(ctx, dir, files)
	for _, sh := range shards {
		if sh != nil {
			ck.shards = append(ck.shards, sh)
		}
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: shard %s%s: %w", dir, files[i], ck.indexedBy(files[i]), err)
		}
	}
	for i := range ck.shards {
		if err := ck.addTensors(i); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
		}
	}
	if err := ck.checkIndex(); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if err := ck.buildLayers(); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	opened = true
	return ck, nil
}

// openShards opens the files and reads their headers, several at a time.
// Each file gets either a shard or an error.
func openShards(ctx context.Context, dir string, files []string) ([]*shard, []error) {
	shards, errs := make([]*shard, len(files)), make([]error, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if errs[i] = ctx.Err(); errs[i] == nil {
					shards[i], errs[i] = openShard(dir, files[i])
				}
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	return shards, errs
}

// indexedBy describes which tensors the index puts in file, for errors.
func (ck *Checkpoint) indexedBy(file string) string {
	if ck.Index == nil {
		return ""
	}
	var names []string
	for n, f := range ck.Index.WeightMap {
		if f == file {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return fmt.Sprintf(" (which %s lists for %d tensors, the first %q)", IndexFile, len(names), names[0])
}

// addTensors records shard i's tensors. With an index, a tensor found in two
// shards belongs to the one the index names.
func (ck *Checkpoint) addTensors(i int) error {
	s := ck.shards[i]
	for _, ti := range s.header.Tensors {
		if prev, dup := ck.tensors[ti.Name]; dup {
			if ck.Index == nil {
				return fmt.Errorf("tensor %q is stored in both %s and %s", ti.Name, ck.shards[prev.shard].name, s.name)
			}
			if ck.Index.WeightMap[ti.Name] != s.name {
				continue // the index names another shard; checkIndex verifies it
			}
		}
		ck.tensors[ti.Name] = tensorRef{shard: i, info: ti}
	}
	return nil
}

// checkIndex verifies that every tensor the index lists is in the shard it names.
func (ck *Checkpoint) checkIndex() error {
	if ck.Index == nil {
		return nil
	}
	names := make([]string, 0, len(ck.Index.WeightMap))
	for n := range ck.Index.WeightMap {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		want := ck.Index.WeightMap[n]
		ref, ok := ck.tensors[n]
		if !ok || ck.shards[ref.shard].name != want {
			return fmt.Errorf("tensor %q: %s puts it in %s, whose header has no such tensor", n, IndexFile, want)
		}
	}
	return nil
}

// Close releases the shards' files and memory maps. Matrices returned by
// reads stay valid: they are copies.
func (ck *Checkpoint) Close() error {
	var errs []error
	for _, s := range ck.shards {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}

// Layers returns the decoder layers in order.
func (ck *Checkpoint) Layers() []Layer { return slices.Clone(ck.layers) }

// MoELayers returns the indices of the layers with routed experts.
func (ck *Checkpoint) MoELayers() []int {
	var out []int
	for _, l := range ck.layers {
		if l.MoE {
			out = append(out, l.Index)
		}
	}
	return out
}

// Files returns the shard file names in order, with their sizes in bytes.
func (ck *Checkpoint) Files() (names []string, sizes []int64) {
	for _, s := range ck.shards {
		names = append(names, s.name)
		sizes = append(sizes, s.size)
	}
	return names, sizes
}

// Info returns the stored description of tensor name.
func (ck *Checkpoint) Info(name string) (TensorInfo, bool) {
	ref, ok := ck.tensors[name]
	if !ok {
		return TensorInfo{}, false
	}
	return ck.infoOf(ref), true
}

func (ck *Checkpoint) infoOf(ref tensorRef) TensorInfo {
	return TensorInfo{Name: ref.info.Name, File: ck.shards[ref.shard].name, DType: ref.info.DType,
		Shape: slices.Clone(ref.info.Shape), Bytes: ref.info.End - ref.info.Begin}
}

// Tensors returns every stored tensor, sorted by name.
func (ck *Checkpoint) Tensors() []TensorInfo {
	out := make([]TensorInfo, 0, len(ck.tensors))
	for _, ref := range ck.tensors {
		out = append(out, ck.infoOf(ref))
	}
	slices.SortFunc(out, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// readSmallFile reads a whole file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
