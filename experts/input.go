package experts

import (
	"fmt"
	"image"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/image/draw"

	"github.com/meshnode/meshnode/experts/dataset"
)

// ImagePreprocessVersion names the image preprocessing this package implements: convert to
// 8-bit gray (ITU-R 601 luma, as image/color does), scale to w×h with a bilinear filter, map
// each pixel p to p/255, row-major. With invert, p becomes 255-p first (for experts trained on
// light-on-dark images, such as Fashion-MNIST, given a photo on a white background).
const ImagePreprocessVersion = "image-gray/v1"

// ImagePreprocess returns the canonical image preprocessing spec for a w×h gray input.
func ImagePreprocess(w, h int) string {
	return fmt.Sprintf("%s?h=%d&w=%d", ImagePreprocessVersion, h, w)
}

type imageSpec struct{ w, h int }

func parseImageSpec(s string) (imageSpec, error) {
	base, query, _ := strings.Cut(s, "?")
	if base != ImagePreprocessVersion {
		return imageSpec{}, fmt.Errorf("image preprocessing %q: unknown scheme (want %s)", s, ImagePreprocessVersion)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return imageSpec{}, fmt.Errorf("image preprocessing %q: %w", s, err)
	}
	var sp imageSpec
	for key, dst := range map[string]*int{"w": &sp.w, "h": &sp.h} {
		v, err := strconv.Atoi(q.Get(key))
		if err != nil || v <= 0 || v > 4096 {
			return imageSpec{}, fmt.Errorf("image preprocessing %q: %s must be a size in [1, 4096]", s, key)
		}
		*dst = v
	}
	return sp, nil
}

// Validate checks that the input spec can be applied.
func (s InputSpec) Validate() error {
	switch s.Kind {
	case InputVector:
		return nil
	case InputText:
		tf, err := dataset.ParseTextFeatures(s.Preprocess)
		if err != nil {
			return err
		}
		if tf.Dim != s.Dim {
			return fmt.Errorf("text features of dimension %d for an input of dimension %d", tf.Dim, s.Dim)
		}
	case InputImage:
		sp, err := parseImageSpec(s.Preprocess)
		if err != nil {
			return err
		}
		if sp.w*sp.h != s.Dim {
			return fmt.Errorf("a %d×%d image for an input of dimension %d", sp.w, sp.h, s.Dim)
		}
	default:
		return fmt.Errorf("unknown input kind %q", s.Kind)
	}
	return nil
}

// FromVector checks a raw feature vector against the spec.
func (s InputSpec) FromVector(v []float64) ([]float64, error) {
	if len(v) != s.Dim {
		return nil, fmt.Errorf("input has dimension %d, the expert expects %d", len(v), s.Dim)
	}
	return v, nil
}

// FromText turns text into the expert's feature vector.
func (s InputSpec) FromText(text string) ([]float64, error) {
	if s.Kind != InputText {
		return nil, fmt.Errorf("the expert takes %s input, not text", s.Kind)
	}
	tf, err := dataset.ParseTextFeatures(s.Preprocess)
	if err != nil {
		return nil, err
	}
	f := make([]float32, tf.Dim)
	if err := tf.Extract(text, f); err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return s.FromVector(out)
}

// FromImage turns an image into the expert's feature vector.
func (s InputSpec) FromImage(img image.Image, invert bool) ([]float64, error) {
	if s.Kind != InputImage {
		return nil, fmt.Errorf("the expert takes %s input, not images", s.Kind)
	}
	sp, err := parseImageSpec(s.Preprocess)
	if err != nil {
		return nil, err
	}
	gray := image.NewGray(img.Bounds())
	draw.Draw(gray, gray.Bounds(), img, img.Bounds().Min, draw.Src)
	dst := image.NewGray(image.Rect(0, 0, sp.w, sp.h))
	draw.BiLinear.Scale(dst, dst.Bounds(), gray, gray.Bounds(), draw.Src, nil)
	out := make([]float64, 0, sp.w*sp.h)
	for y := 0; y < sp.h; y++ {
		for x := 0; x < sp.w; x++ {
			p := dst.GrayAt(x, y).Y
			if invert {
				p = 255 - p
			}
			out = append(out, float64(p)/255)
		}
	}
	return s.FromVector(out)
}
