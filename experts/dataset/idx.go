package dataset

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// MaxIDXElements is the largest number of data elements (the product of the
// dimension sizes) ReadIDX accepts. Fashion-MNIST train images have
// 47,040,000.
const MaxIDXElements = 1 << 31

// idxChunk is the most ReadIDX allocates ahead of data actually read, so a
// header that lies about its size on a short stream fails cheaply.
const idxChunk = 1 << 20

// ReadIDX parses an IDX file: a 4-byte magic 0x00 0x00 <dtype> <ndims>,
// ndims big-endian uint32 sizes, then the data. Only the unsigned byte data
// type (0x08) is supported, with 1 to 4 dimensions. It is strict: a bad
// magic, an unsupported dtype, 0 or more than 4 dimensions, sizes whose
// product overflows or exceeds MaxIDXElements, truncated data and trailing
// bytes after the declared data are all errors. Data is read incrementally,
// so memory use is bounded by what the stream actually contains (plus at
// most 1 MiB), never by what the header claims. Reading to EOF also makes a
// gzip.Reader verify its checksum.
func ReadIDX(r io.Reader) (dims []int, data []byte, err error) {
	dims, total, err := readIDXHeader(r)
	if err != nil {
		return nil, nil, err
	}
	data, err = readIDXData(r, total)
	if err != nil {
		return nil, nil, err
	}
	if err := expectEOF(r); err != nil {
		return nil, nil, err
	}
	return dims, data, nil
}

// readIDXHeader reads the magic and the sizes and returns the dimensions and
// the total number of data bytes.
func readIDXHeader(r io.Reader) (dims []int, total int, err error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, 0, fmt.Errorf("idx: reading magic: %w", eofIsUnexpected(err))
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, 0, fmt.Errorf("idx: bad magic % x: first two bytes must be zero", magic)
	}
	if magic[2] != 0x08 {
		return nil, 0, fmt.Errorf("idx: unsupported data type 0x%02x (only unsigned byte 0x08 is supported)", magic[2])
	}
	nd := int(magic[3])
	if nd < 1 || nd > 4 {
		return nil, 0, fmt.Errorf("idx: %d dimensions (want 1 to 4)", nd)
	}
	var sizes [4 * 4]byte
	if _, err := io.ReadFull(r, sizes[:4*nd]); err != nil {
		return nil, 0, fmt.Errorf("idx: reading %d dimension sizes: %w", nd, eofIsUnexpected(err))
	}
	dims = make([]int, nd)
	prod := uint64(1)
	for i := range nd {
		s := uint64(binary.BigEndian.Uint32(sizes[4*i:]))
		if s > MaxIDXElements {
			return nil, 0, fmt.Errorf("idx: dimension %d size %d exceeds %d", i, s, uint64(MaxIDXElements))
		}
		// Both factors are ≤ 2^31, so the product fits in uint64.
		prod *= s
		if prod > MaxIDXElements {
			return nil, 0, fmt.Errorf("idx: dimension sizes %v multiply to more than %d elements", sizesOf(sizes[:4*nd]), uint64(MaxIDXElements))
		}
		dims[i] = int(s)
	}
	if prod > math.MaxInt {
		return nil, 0, fmt.Errorf("idx: %d elements do not fit in memory on this platform", prod)
	}
	return dims, int(prod), nil
}

func sizesOf(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return out
}

// readIDXChunks reads exactly n data bytes as a list of chunks of at most
// idxChunk bytes, so memory grows only with data actually read.
func readIDXChunks(r io.Reader, n int) ([][]byte, error) {
	var chunks [][]byte
	for got := 0; got < n; {
		buf := make([]byte, min(n-got, idxChunk))
		m, err := io.ReadFull(r, buf)
		got += m
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("idx: data truncated: got %d of %d bytes", got, n)
			}
			return nil, fmt.Errorf("idx: reading data at byte %d of %d: %w", got, n, err)
		}
		chunks = append(chunks, buf)
	}
	return chunks, nil
}

// readIDXData reads exactly n data bytes into one slice.
func readIDXData(r io.Reader, n int) ([]byte, error) {
	chunks, err := readIDXChunks(r, n)
	if err != nil {
		return nil, err
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	return slices.Concat(chunks...), nil
}

// expectEOF fails unless r is at its end.
func expectEOF(r io.Reader) error {
	var one [1]byte
	n, err := io.ReadAtLeast(r, one[:], 1)
	switch {
	case n > 0:
		return errors.New("idx: trailing data after the declared size")
	case errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("idx: after data: %w", err)
	}
}

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// FashionMNISTClasses returns the ten Fashion-MNIST class names in label
// order (a fresh slice each call).
func FashionMNISTClasses() []string {
	return []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
}

// FashionMNISTDebianDir is where Debian's dataset-fashion-mnist package
// installs the files.
const FashionMNISTDebianDir = "/usr/share/datasets/fashion-mnist"

// FashionMNISTFiles returns the image and label file paths of split ("train"
// or "test") under dir.
func FashionMNISTFiles(dir, split string) (images, labels string, err error) {
	var prefix string
	switch split {
	case "train":
		prefix = "train"
	case "test":
		prefix = "t10k"
	default:
		return "", "", fmt.Errorf("fashion-mnist: unknown split %q (want \"train\" or \"test\")", split)
	}
	return filepath.Join(dir, prefix+"-images-idx3-ubyte.gz"), filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"), nil
}

// LoadFashionMNIST reads split "train" (60000 samples) or "test" (10000)
// from the gzip IDX files in dir, as installed by Debian's
// dataset-fashion-mnist package. Pixels are scaled to [0,1] as
// float32(p)/255; Dim is 784. limit>0 keeps only the first limit samples
// (and reads only that much of each file, so the gzip checksum is then not
// verified). The data set is named "fashion-mnist:"+split.
func LoadFashionMNIST(dir, split string, limit int) (*Dataset, error) {
	imgPath, lblPath, err := FashionMNISTFiles(dir, split)
	if err != nil {
		return nil, err
	}
	imgDims, imgR, imgClose, err := openIDXGzip(imgPath)
	if err != nil {
		return nil, err
	}
	defer imgClose()
	lblDims, lblR, lblClose, err := openIDXGzip(lblPath)
	if err != nil {
		return nil, err
	}
	defer lblClose()

	if len(imgDims) != 3 || imgDims[1] < 1 || imgDims[2] < 1 {
		return nil, fmt.Errorf("fashion-mnist: %s: dims %v, want [n rows cols]", imgPath, imgDims)
	}
	if len(lblDims) != 1 {
		return nil, fmt.Errorf("fashion-mnist: %s: dims %v, want [n]", lblPath, lblDims)
	}
	n := imgDims[0]
	if lblDims[0] != n {
		return nil, fmt.Errorf("fashion-mnist: %d images in %s but %d labels in %s", n, imgPath, lblDims[0], lblPath)
	}
	full := limit <= 0 || limit >= n
	if !full {
		n = limit
	}
	dim := imgDims[1] * imgDims[2]
	pix, err := readIDXChunks(imgR, n*dim)
	if err != nil {
		return nil, fmt.Errorf("fashion-mnist: %s: %w", imgPath, err)
	}
	lbl, err := readIDXData(lblR, n)
	if err != nil {
		return nil, fmt.Errorf("fashion-mnist: %s: %w", lblPath, err)
	}
	if full {
		if err := expectEOF(imgR); err != nil {
			return nil, fmt.Errorf("fashion-mnist: %s: %w", imgPath, err)
		}
		if err := expectEOF(lblR); err != nil {
			return nil, fmt.Errorf("fashion-mnist: %s: %w", lblPath, err)
		}
	}
	classes := FashionMNISTClasses()
	d := &Dataset{
		Name:    "fashion-mnist:" + split,
		Dim:     dim,
		X:       make([]float32, n*dim),
		Y:       make([]int, n),
		Classes: classes,
	}
	for i, l := range lbl {
		if int(l) >= len(classes) {
			return nil, fmt.Errorf("fashion-mnist: %s: sample %d has label %d (want 0-%d)", lblPath, i, l, len(classes)-1)
		}
		d.Y[i] = int(l)
	}
	var scale [256]float32
	for i := range scale {
		scale[i] = float32(i) / 255
	}
	x := d.X
	for _, c := range pix {
		for i, p := range c {
			x[i] = scale[p]
		}
		x = x[len(c):]
	}
	return d, nil
}

// openIDXGzip opens a gzip IDX file and reads its header.
func openIDXGzip(path string) (dims []int, r io.Reader, closeFn func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil, fmt.Errorf("fashion-mnist: %s not found: install the Debian package dataset-fashion-mnist (run scripts/setup.sh) or set MESHNODE_FASHION_MNIST: %w", path, err)
		}
		return nil, nil, nil, fmt.Errorf("fashion-mnist: %w", err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("fashion-mnist: %s: %w", path, err)
	}
	dims, _, err = readIDXHeader(zr)
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("fashion-mnist: %s: %w", path, err)
	}
	return dims, zr, func() { f.Close() }, nil
}
