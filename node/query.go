package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // decoders for query images
	_ "image/png"
	"io"
	"os"
	"sort"
	"time"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/routing"
)

// QueryInput is one query's raw input: exactly one of Vector, Text or ImagePath.
type QueryInput struct {
	Vector    []float64
	Text      string
	ImagePath string
	// Invert flips image brightness first (photos on white for light-on-dark experts).
	Invert bool
}

// ReadQueryFile reads a query input file: a JSON array of numbers, or a PNG or JPEG image.
func ReadQueryFile(path string) (QueryInput, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return QueryInput{}, fmt.Errorf("read input: %w", err)
	}
	if len(b) > 0 && (b[0] == '[' || b[0] == ' ' || b[0] == '\n') {
		var v []float64
		if err := json.Unmarshal(b, &v); err != nil {
			return QueryInput{}, fmt.Errorf("input %s: want a JSON array of numbers: %w", path, err)
		}
		return QueryInput{Vector: v}, nil
	}
	return QueryInput{ImagePath: path}, nil
}

// Features turns a query input into the expert's feature vector.
func Features(spec experts.InputSpec, in QueryInput) ([]float64, error) {
	switch {
	case in.Vector != nil:
		return spec.FromVector(in.Vector)
	case in.Text != "":
		return spec.FromText(in.Text)
	case in.ImagePath != "":
		f, err := os.Open(in.ImagePath)
		if err != nil {
			return nil, fmt.Errorf("read image: %w", err)
		}
		defer f.Close()
		x, err := ImageFeatures(spec, f, in.Invert)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", in.ImagePath, err)
		}
		return x, nil
	}
	return nil, fmt.Errorf("empty query: give a vector, a text or an image")
}

// MaxImagePixels bounds an image a query may carry (decoding is refused above it, before any
// pixel is allocated).
const MaxImagePixels = 4096 * 4096

// ImageFeatures decodes a PNG or JPEG image and turns it into the expert's features; the image
// may have up to MaxImagePixels (a local file the user chose).
func ImageFeatures(spec experts.InputSpec, r io.Reader, invert bool) ([]float64, error) {
	return ImageFeaturesLimited(spec, r, invert, MaxImagePixels)
}

// ImagePixelLimit is how many pixels an image from the network may have for an expert: 256
// times the pixels of the expert's input (a 28×28 expert takes images up to 512×512, a 64×64
// one up to 1024×1024), between 512×512 and 1024×1024; an expert that takes no images gets the
// minimum. Decoding a 16-bit image costs up to 8 bytes a pixel, so one request costs at most
// 8 MiB however small its file. A local image (ImageFeatures) may have up to MaxImagePixels.
func ImagePixelLimit(spec experts.InputSpec) int {
	const lo, hi = 512 * 512, 1024 * 1024
	if spec.Kind != experts.InputImage || spec.Dim <= 0 {
		return lo
	}
	if spec.Dim >= hi/256 { // Dim is the input's w×h; compared first, so 256×Dim cannot overflow
		return hi
	}
	return max(lo, 256*spec.Dim)
}

// ImageFeaturesLimited is ImageFeatures for images of at most maxPixels (ImagePixelLimit for a
// query from the network), refused from their header, before a pixel is decoded.
func ImageFeaturesLimited(spec experts.InputSpec, r io.Reader, invert bool, maxPixels int) ([]float64, error) {
	if spec.Kind != experts.InputImage { // refused before decoding, not after
		return nil, fmt.Errorf("the expert takes %s input, not images", spec.Kind)
	}
	var head bytes.Buffer
	cfg, _, err := image.DecodeConfig(io.TeeReader(r, &head))
	if err != nil {
		return nil, fmt.Errorf("not a PNG or JPEG image: %w", err)
	}
	// Width and height each first, then their product by division: no overflow on any int.
	w, h := cfg.Width, cfg.Height
	if w <= 0 || h <= 0 || w > maxPixels || h > maxPixels || h > maxPixels/w {
		return nil, fmt.Errorf("image of %d×%d pixels is over this expert's pixel limit of %d pixels: scale it down", w, h, maxPixels)
	}
	img, _, err := image.Decode(io.MultiReader(&head, r))
	if err != nil {
		return nil, fmt.Errorf("not a PNG or JPEG image: %w", err)
	}
	return spec.FromImage(img, invert)
}

// QueryLocal answers a query with a hosted expert, without a daemon: the answer a daemon gives
// when its own expert answers, with the top classes.
func (r *Repo) QueryLocal(ctx context.Context, ref string, in QueryInput) (*api.QueryAnswer, error) {
	st, id, m, err := r.Expert(ctx, ref)
	if err != nil {
		return nil, err
	}
	net, err := st.LoadNetwork(ctx, m)
	if err != nil {
		return nil, err
	}
	x, err := Features(m.Input, in)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", m.Name, err)
	}
	t0 := time.Now()
	y, err := net.Predict(x)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", m.Name, err)
	}
	el := time.Since(t0)
	res := &api.QueryAnswer{Micros: el.Microseconds()}
	res.Candidate = routing.Candidate{Expert: id.String(), Peer: r.Identity.ID(), Local: true, Name: m.Name, Domains: m.Domains}
	res.Response = routing.Response{Expert: id.String(), Output: make([]float32, len(y)), Compute: el}
	for i, v := range y {
		res.Output[i] = float32(v)
	}
	if m.Output.Kind == experts.OutputClasses {
		res.Top = topClasses(m.Output.Labels, y, 3)
		res.Label = res.Top[0].Label
	}
	return res, nil
}

func topClasses(labels []string, p []float64, k int) []api.ClassScore {
	all := make([]api.ClassScore, len(p))
	for i, v := range p {
		all[i] = api.ClassScore{Label: labels[i], Score: v}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Score > all[j].Score })
	return all[:min(k, len(all))]
}
