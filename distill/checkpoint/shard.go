package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/meshnode/meshnode/experts/safetensors"
)

// shard is one open safetensors file of a checkpoint. Its data is read
// through a memory map created on first use, so a shard is never copied into
// the heap as a whole; tensors are decoded straight from the mapping.
type shard struct {
	name   string // file name inside the checkpoint folder
	path   string
	file   *os.File
	size   int64
	header *safetensors.Header

	mu     sync.Mutex
	mapped bool // the mapping was attempted
	m      *mapping
	mapErr error
}

func openShard(dir, name string) (*shard, error) {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	h, err := safetensors.ReadHeader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	return &shard{name: name, path: path, file: f, size: st.Size(), header: h}, nil
}

// mapping returns the shard's memory map, creating it on first use; nil
// means the platform cannot map it and reads use ReadAt.
func (s *shard) mapping() (*mapping, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil, fmt.Errorf("%s: checkpoint is closed", s.name)
	}
	if !s.mapped {
		s.mapped = true
		s.m, s.mapErr = mapFile(s.file, s.size)
	}
	return s.m, s.mapErr
}

// raw returns the bytes of tensor ti: a view into the mapping, or a copy read
// with ReadAt when the shard is not mapped.
func (s *shard) raw(ti safetensors.TensorInfo) ([]byte, error) {
	m, err := s.mapping()
	if err != nil {
		return nil, err
	}
	off, n := s.header.DataOffset+ti.Begin, ti.End-ti.Begin
	if m != nil {
		return m.data[off : off+n : off+n], nil
	}
	buf := make([]byte, n)
	if _, err := s.file.ReadAt(buf, off); err != nil {
		return nil, err
	}
	return buf, nil
}

// prefetch asks the kernel to read tensor ti ahead of use.
func (s *shard) prefetch(ti safetensors.TensorInfo) {
	if m, err := s.mapping(); err == nil && m != nil {
		m.willNeed(s.header.DataOffset+ti.Begin, ti.End-ti.Begin)
	}
}

func (s *shard) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.m.close()
	if s.file != nil {
		if cerr := s.file.Close(); err == nil {
			err = cerr
		}
		s.file = nil
	}
	return err
}

// guardFault runs f, turning a memory fault while reading a mapped file
// (the file shrank after it was opened) into an error instead of a crash.
func guardFault(what string, f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		// With SetPanicOnFault, a fault on a mapped page panics with a
		// runtime.Error that also reports the faulting address.
		if re, ok := r.(interface {
			runtime.Error
			Addr() uintptr
		}); ok {
			err = fmt.Errorf("%s: memory fault at %#x reading the mapped file (was it truncated while open?)", what, re.Addr())
			return
		}
		panic(r)
	}()
	return f()
}
