package node

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshnode/meshnode/experts"
)

// encodePNG encodes img as a PNG.
func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func imageSpec(w, h int) experts.InputSpec {
	return experts.InputSpec{Kind: experts.InputImage, Dim: w * h, Preprocess: experts.ImagePreprocess(w, h)}
}

func TestImagePixelLimitFollowsTheSpec(t *testing.T) {
	cases := []struct {
		name string
		spec experts.InputSpec
		want int
	}{
		{"28×28", imageSpec(28, 28), 512 * 512},
		{"1×1", imageSpec(1, 1), 512 * 512},
		{"48×48", imageSpec(48, 48), 256 * 48 * 48},
		{"64×64", imageSpec(64, 64), 1024 * 1024},
		{"4096×4096", imageSpec(4096, 4096), 1024 * 1024},
		{"absurd dim", experts.InputSpec{Kind: experts.InputImage, Dim: 1 << 62}, 1024 * 1024},
		{"vector", experts.InputSpec{Kind: experts.InputVector, Dim: 1 << 20}, 512 * 512},
		{"text", experts.InputSpec{Kind: experts.InputText, Dim: 4096}, 512 * 512},
	}
	for _, c := range cases {
		if got := ImagePixelLimit(c.spec); got != c.want {
			t.Errorf("%s: limit %d, want %d", c.name, got, c.want)
		}
	}
}

func TestNetworkImagesAreLimitedBeforeDecoding(t *testing.T) {
	// 4096×4096 of 16-bit grey: 32 MiB of pixels (more once decoded) in a file of a few KB.
	bomb := encodePNG(t, image.NewGray16(image.Rect(0, 0, 4096, 4096)))
	if len(bomb) > 256<<10 {
		t.Fatalf("the 4096×4096 PNG is %d bytes; the test wants a small file", len(bomb))
	}
	photo := image.NewRGBA(image.Rect(0, 0, 300, 300))
	for y := range 300 {
		for x := range 300 {
			photo.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	digit := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range digit.Pix {
		digit.Pix[i] = uint8(i)
	}
	spec := imageSpec(28, 28)
	limit := ImagePixelLimit(spec)
	cases := []struct {
		name   string
		file   []byte
		spec   experts.InputSpec
		refuse string // "" for accepted
	}{
		{"4096×4096 16-bit", bomb, spec, "4096×4096 pixels is over this expert's pixel limit of 262144"},
		{"one pixel too many", encodePNG(t, image.NewGray(image.Rect(0, 0, 513, 512))), spec, "pixel limit"},
		{"thin: 1×300000", encodePNG(t, image.NewGray(image.Rect(0, 0, 1, 300000))), spec, "pixel limit"},
		{"for a vector expert", encodePNG(t, digit), experts.InputSpec{Kind: experts.InputVector, Dim: 784}, "not images"},
		{"28×28", encodePNG(t, digit), spec, ""},
		{"300×300 photo", encodePNG(t, photo), spec, ""},
		{"512×512 16-bit", encodePNG(t, image.NewGray16(image.Rect(0, 0, 512, 512))), spec, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			t0 := time.Now()
			x, err := ImageFeaturesLimited(c.spec, bytes.NewReader(c.file), false, ImagePixelLimit(c.spec))
			took := time.Since(t0)
			runtime.ReadMemStats(&after)
			if c.refuse == "" {
				if err != nil || len(x) != c.spec.Dim {
					t.Fatalf("refused: %d features, %v", len(x), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.refuse) {
				t.Fatalf("got %v, want an error containing %q", err, c.refuse)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
				t.Errorf("refusing a %d-byte file allocated %d bytes", len(c.file), alloc)
			}
			if took > time.Second {
				t.Errorf("refusing took %v", took)
			}
		})
	}
	// A local file the user chose keeps the generous limit: 1024×1024 is over the network
	// limit of a 28×28 expert but fine there.
	if limit >= MaxImagePixels {
		t.Fatalf("network limit %d is not under the local one %d", limit, MaxImagePixels)
	}
	if _, err := ImageFeatures(spec, bytes.NewReader(encodePNG(t, image.NewGray(image.Rect(0, 0, 1024, 1024)))), false); err != nil {
		t.Fatalf("a local 1024×1024 image: %v", err)
	}
}
