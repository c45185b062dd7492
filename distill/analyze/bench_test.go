package analyze

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/meshnode/meshnode/distill/ckptgen"
)

// benchCheckpoint writes a checkpoint of random FP8 weights in the Kimi-K2
// layout with Kimi-K2's expert shape: one MoE layer of 15 routed experts and
// a shared one of 3 × 7168 × 2048 (about 700 MB of expert weights with
// 128×128 block scales; 16 equal jobs keep two workers evenly loaded, as
// Kimi-K2's 385 per layer do).
func benchCheckpoint(b *testing.B) (dir string, shards []string) {
	b.Helper()
	dir = b.TempDir()
	if _, err := ckptgen.Random(context.Background(), dir, ckptgen.RandomOptions{
		Hidden: 7168, Inter: 2048, Experts: 15, Layers: 2, Shards: 4, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	shards, _ = filepath.Glob(filepath.Join(dir, "*.safetensors"))
	return dir, shards
}

// sequentialRead reads every file front to back in 1 MiB chunks and returns the bytes read.
func sequentialRead(b *testing.B, files []string) int64 {
	buf := make([]byte, 1<<20)
	var total int64
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		total += n
	}
	return total
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkScanVsRead measures the standard analysis's scan rate over the
// expert weights against a plain sequential read of the same shard files,
// alternating the two in one run: "cold" evicts the files from the page
// cache before each pass (the case of a checkpoint larger than memory),
// "warm" reads them from the cache. Rates are medians over iterations;
// scan/read is their ratio. The scan rate covers the whole standard
// analysis (open, quick report, every expert's statistics, similarity).
func BenchmarkScanVsRead(b *testing.B) {
	dir, shards := benchCheckpoint(b)
	for _, cold := range []bool{true, false} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			evict := func() {
				for _, s := range shards {
					if cold && !dropCache(s) {
						b.Skip("cannot evict files from the page cache on this platform")
					}
				}
			}
			if !cold {
				sequentialRead(b, shards)
			}
			var reads, scans []float64
			for b.Loop() {
				evict()
				t0 := time.Now()
				n := sequentialRead(b, shards)
				reads = append(reads, float64(n)/time.Since(t0).Seconds()/1e6)
				evict()
				t0 = time.Now()
				rep, err := Run(context.Background(), dir, Options{Depth: DepthStandard})
				if err != nil {
					b.Fatal(err)
				}
				scans = append(scans, float64(rep.Standard.BytesScanned)/time.Since(t0).Seconds()/1e6)
			}
			read, scan := median(reads), median(scans)
			b.ReportMetric(read, "read-MB/s")
			b.ReportMetric(scan, "scan-MB/s")
			b.ReportMetric(scan/read, "scan/read")
		})
	}
}
