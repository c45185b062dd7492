package node

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/meshnode/meshnode/experts/dataset"
)

// Sample is one example input written to a file, with its true label.
type Sample struct {
	File  string `json:"file"`
	Index int    `json:"index"`
	Label string `json:"label"`
}

// WriteSamples writes count rows of a data set's test part to dir as query inputs: PNG images
// for Fashion-MNIST, JSON vectors otherwise. They are the rows a user can try `query` on.
func WriteSamples(cat dataset.Catalog, name string, count int, dir string) ([]Sample, error) {
	if count <= 0 {
		return nil, fmt.Errorf("samples: count %d must be positive", count)
	}
	_, test, err := cat.Load(name, 0)
	if err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	var out []Sample
	for i := 0; i < min(count, test.Len()); i++ {
		row := test.Row(i)
		s := Sample{Index: i, Label: test.Classes[test.Y[i]]}
		var b []byte
		if name == "fashion-mnist" {
			s.File = filepath.Join(dir, fmt.Sprintf("%s-%04d.png", name, i))
			img := image.NewGray(image.Rect(0, 0, 28, 28))
			for j, v := range row {
				img.Pix[j] = uint8(v*255 + 0.5)
			}
			f, err := os.Create(s.File)
			if err != nil {
				return nil, fmt.Errorf("samples: %w", err)
			}
			err = png.Encode(f, img)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("samples: write %s: %w", s.File, err)
			}
		} else {
			s.File = filepath.Join(dir, fmt.Sprintf("%s-%04d.json", name, i))
			if b, err = json.Marshal(row); err != nil {
				return nil, err
			}
			if err := os.WriteFile(s.File, b, 0o644); err != nil {
				return nil, fmt.Errorf("samples: %w", err)
			}
		}
		out = append(out, s)
	}
	return out, nil
}
