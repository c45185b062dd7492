package dataset

import (
	"slices"
	"strings"
	"testing"
)

func TestAlignClasses(t *testing.T) {
	fashion := []string{"T-shirt/top", "Trouser", "Pullover", "Dress"}
	cases := []struct {
		name    string
		classes []string
		y       []int
		labels  []string
		want    []int
		err     string
	}{
		{"same classes", []string{"a", "b"}, []int{1, 0}, []string{"a", "b"}, []int{1, 0}, ""},
		{"a share without class 1, by number", []string{"0", "2", "3"}, []int{0, 1, 2}, fashion, []int{0, 2, 3}, ""},
		{"by name", []string{"0", "3"}, []int{1, 0}, []string{"0", "1", "2", "3"}, []int{3, 0}, ""},
		{"index out of range", []string{"0", "7"}, []int{0}, fashion, nil, `class "7"`},
		{"unknown name", []string{"cat"}, []int{0}, fashion, nil, `class "cat"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &Dataset{Name: "d", Classes: c.classes, Y: c.y}
			err := d.AlignClasses(c.labels)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error naming %s", err, c.err)
				}
				return
			}
			if err != nil || !slices.Equal(d.Y, c.want) || !slices.Equal(d.Classes, c.labels) {
				t.Fatalf("got %v %v %v, want %v", d.Y, d.Classes, err, c.want)
			}
		})
	}
}
