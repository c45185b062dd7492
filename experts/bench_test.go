package experts

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/meshnode/meshnode/experts/dataset"
)

// benchSizes are 784-input, 10-class experts of about 10K, 50K and 100K parameters.
var benchSizes = []struct {
	name   string
	hidden int
}{{"10K", 12}, {"50K", 63}, {"100K", 126}}

func randomInput(rows, dim int) []float64 {
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float64, rows*dim)
	for i := range x {
		x[i] = rng.Float64()
	}
	return x
}

// BenchmarkForward measures inference: one input (latency) and batches of 256 (throughput),
// reporting achieved GFLOP/s (2 FLOPs per weight per row).
func BenchmarkForward(b *testing.B) {
	for _, sz := range benchSizes {
		n, err := NewNetwork(MLP(784, []int{sz.hidden}, "relu", 10, OutputSoftmax), 1)
		if err != nil {
			b.Fatal(err)
		}
		for _, rows := range []int{1, 256} {
			b.Run(fmt.Sprintf("params=%s/batch=%d", sz.name, rows), func(b *testing.B) {
				x := randomInput(rows, 784)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := n.Forward(x, rows); err != nil {
						b.Fatal(err)
					}
				}
				flops := 2 * float64(n.ParamCount()) * float64(rows)
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(flops/sec/1e9, "GFLOP/s")
				b.ReportMetric(float64(rows)/sec, "rows/s")
				b.ReportMetric(float64(n.ParamCount()), "params")
			})
		}
	}
}

// BenchmarkDgemm is gonum's matrix multiply on the shape of each expert's first layer, and on a
// 512³ product: the BLAS rate of this machine, measured in the same run as BenchmarkForward.
func BenchmarkDgemm(b *testing.B) {
	shapes := []struct {
		name    string
		m, k, n int
	}{{"256x784x12", 256, 784, 12}, {"256x784x63", 256, 784, 63}, {"256x784x126", 256, 784, 126}, {"512x512x512", 512, 512, 512}}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			a := blas64.General{Rows: s.m, Cols: s.k, Stride: s.k, Data: randomInput(s.m, s.k)}
			w := blas64.General{Rows: s.k, Cols: s.n, Stride: s.n, Data: randomInput(s.k, s.n)}
			c := blas64.General{Rows: s.m, Cols: s.n, Stride: s.n, Data: make([]float64, s.m*s.n)}
			for b.Loop() {
				blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, a, w, 0, c)
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(2*float64(s.m*s.k*s.n)/sec/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkTrain measures training throughput of a 784-100-10 expert with Adam, batches of 64,
// on 4096 real Fashion-MNIST images and on dense random inputs of the same shape. (gonum's
// multiply skips zero multiplicands, so the sparse real images train faster than dense noise.)
func BenchmarkTrain(b *testing.B) {
	const rows = 4096
	fm, err := dataset.LoadFashionMNIST(dataset.DefaultCatalog().FashionMNISTDir, "train", rows)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	random := Samples{X: make([]float32, rows*784), Dim: 784, Labels: make([]int, rows)}
	for i := range random.X {
		random.X[i] = float32(rng.Float64())
	}
	for i := range random.Labels {
		random.Labels[i] = rng.IntN(10)
	}
	for _, data := range []struct {
		name string
		s    Samples
	}{{"fashion-mnist", Samples{X: fm.X, Dim: fm.Dim, Labels: fm.Y}}, {"random", random}} {
		b.Run("data="+data.name, func(b *testing.B) {
			n, err := NewNetwork(MLP(784, []int{100}, "relu", 10, OutputSoftmax), 1)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Train(context.Background(), n, data.s, Samples{}, TrainConfig{Epochs: 1, BatchSize: 64, Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(rows/sec, "samples/s")
		})
	}
}
