package experts

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"

	"github.com/meshnode/meshnode/experts/dataset"
)

func TestTextInputIsDeterministicAndNormalised(t *testing.T) {
	tf := dataset.TextFeatures{Dim: 256, CharMin: 2, CharMax: 3, WordMin: 1, WordMax: 1}
	spec := InputSpec{Kind: InputText, Dim: 256, Preprocess: tf.Spec()}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := spec.FromText("How do I sort a list in Go?")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := spec.FromText("how do i sort a LIST in go?")
	var norm float64
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("case changed the features")
		}
		norm += a[i] * a[i]
	}
	if math.Abs(norm-1) > 1e-6 {
		t.Fatalf("features have squared norm %v, want 1", norm)
	}
	if _, err := (InputSpec{Kind: InputText, Dim: 100, Preprocess: tf.Spec()}).FromText("x"); err == nil {
		t.Fatal("text features of 256 for a 100-wide input: no error")
	}
}

func TestImageInputIsResizedGrayAndScaled(t *testing.T) {
	spec := InputSpec{Kind: InputImage, Dim: 4, Preprocess: ImagePreprocess(2, 2)}
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			if x < 4 {
				img.Set(x, y, color.White)
			} else {
				img.Set(x, y, color.Black)
			}
		}
	}
	v, err := spec.FromImage(img, false)
	if err != nil {
		t.Fatal(err)
	}
	// Bilinear scaling blends a little across the edge; the halves stay light and dark.
	if v[0] < 0.75 || v[1] > 0.25 || v[2] != v[0] || v[3] != v[1] {
		t.Fatalf("white-left 8×8 image became %v, want about [1 0 1 0]", v)
	}
	inv, _ := spec.FromImage(img, true)
	if math.Abs(inv[0]-(1-v[0])) > 1e-9 || math.Abs(inv[1]-(1-v[1])) > 1e-9 {
		t.Fatalf("inverted %v is not 1 - %v", inv, v)
	}
	for _, bad := range []InputSpec{
		{Kind: InputImage, Dim: 5, Preprocess: ImagePreprocess(2, 2)},
		{Kind: InputImage, Dim: 4, Preprocess: "image-color/v9?w=2&h=2"},
		{Kind: InputImage, Dim: 4, Preprocess: "image-gray/v1?w=2"},
		{Kind: "smell", Dim: 4},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("spec %+v: no error", bad)
		}
	}
	if _, err := (InputSpec{Kind: InputVector, Dim: 4}).FromImage(img, false); err == nil || !strings.Contains(err.Error(), "not images") {
		t.Fatalf("image to a vector expert: %v", err)
	}
}
