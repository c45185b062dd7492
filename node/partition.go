package node

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/meshnode/meshnode/experts/dataset"
)

// PartitionReport says what Partition wrote.
type PartitionReport struct {
	Dataset string  `json:"dataset"`
	Alpha   float64 `json:"alpha"`
	Seed    uint64  `json:"seed"`
	Parts   []Part  `json:"parts"`
}

// Part is one participant's share.
type Part struct {
	File        string `json:"file"`
	Samples     int    `json:"samples"`
	ClassCounts []int  `json:"class_counts"`
}

// Partition splits a data set's training part among parts participants with Dirichlet(alpha)
// label shares (small alpha: each part dominated by a few classes) and writes each part as a
// CSV (a header of feature names, then features and the class index last), usable as
// csv:FILE wherever a data set is named. limit > 0 splits only the first limit samples.
func Partition(cat dataset.Catalog, name string, parts int, alpha float64, seed uint64, limit int, dir string) (*PartitionReport, error) {
	train, _, err := cat.Load(name, limit)
	if err != nil {
		return nil, fmt.Errorf("partition: %w", err)
	}
	idx, err := dataset.DirichletPartition(train.Y, len(train.Classes), parts, alpha, seed)
	if err != nil {
		return nil, fmt.Errorf("partition: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("partition: %w", err)
	}
	rep := &PartitionReport{Dataset: train.Name, Alpha: alpha, Seed: seed}
	for p, rows := range idx {
		part := train.Subset(fmt.Sprintf("%s-part%02d", name, p), rows)
		file := filepath.Join(dir, fmt.Sprintf("part-%02d.csv", p))
		if err := writePartCSV(file, part); err != nil {
			return nil, fmt.Errorf("partition: %w", err)
		}
		rep.Parts = append(rep.Parts, Part{File: file, Samples: part.Len(), ClassCounts: part.ClassCounts()})
	}
	return rep, nil
}

func writePartCSV(path string, d *dataset.Dataset) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for j := 0; j < d.Dim; j++ {
		fmt.Fprintf(w, "f%d,", j)
	}
	w.WriteString("label\n")
	buf := make([]byte, 0, 32)
	for i := 0; i < d.Len(); i++ {
		for _, v := range d.Row(i) {
			buf = strconv.AppendFloat(buf[:0], float64(v), 'g', -1, 32)
			w.Write(buf)
			w.WriteByte(',')
		}
		w.WriteString(strconv.Itoa(d.Y[i]))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
