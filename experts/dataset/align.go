package dataset

import (
	"fmt"
	"slices"
	"strconv"
)

// AlignClasses re-indexes d's labels to an expert's output classes, so a data set read from a
// file (whose classes are only the labels it happens to contain) feeds the expert's outputs
// in the right places. Classes are matched by name when every class of d names one of labels
// (digits "0".."9"), or else by number when every class of d is an integer index into labels
// (a Fashion-MNIST share written by Partition, whose classes are "0".."9" while the expert's
// are "T-shirt/top"...). d takes labels as its classes. Anything else is an error naming the
// class that fits nowhere.
func (d *Dataset) AlignClasses(labels []string) error {
	if slices.Equal(d.Classes, labels) {
		return nil
	}
	index := make([]int, len(d.Classes))
	byName := true
	for i, c := range d.Classes {
		j := slices.Index(labels, c)
		if j < 0 {
			byName = false
			break
		}
		index[i] = j
	}
	if !byName {
		for i, c := range d.Classes {
			n, err := strconv.Atoi(c)
			if err != nil || n < 0 || n >= len(labels) {
				return fmt.Errorf("%s: class %q is neither one of the expert's %d classes nor an index into them", d.Name, c, len(labels))
			}
			index[i] = n
		}
	}
	y := make([]int, len(d.Y))
	for i, v := range d.Y {
		y[i] = index[v]
	}
	d.Y, d.Classes = y, slices.Clone(labels)
	return nil
}
