// Package safetensors reads and writes the safetensors file format, the
// tensor container used by Hugging Face and loadable from PyTorch.
//
// # Format
//
// A safetensors file is laid out as
//
//	[8 bytes]  N, little-endian uint64: length of the JSON header
//	[N bytes]  UTF-8 JSON object (optionally padded with trailing spaces)
//	[rest]     the data buffer
//
// The JSON object maps each tensor name to
//
//	{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//
// where the offsets are byte offsets relative to the start of the data
// buffer, plus an optional "__metadata__" object whose values are strings.
// Tensor data is stored little-endian in row-major (C) order.
//
// # What this package owns
//
// This package is the single place in meshnode that parses or produces the
// format. It provides
//
//   - [ReadHeader], which validates only the header of a file of known size
//     through an [io.ReaderAt], so it can index multi-gigabyte checkpoints (or
//     an mmap) without touching the tensor data, and [Header.ReadTensor] to
//     decode individual tensors from such a file on demand;
//   - [Decode] / [ReadFile], which parse a whole file and convert every
//     F32, F16, BF16 and F64 tensor to float32;
//   - [Encode] / [WriteFile], which write float32 tensors as F32
//     deterministically (same input, identical bytes), with the header padded
//     so the data buffer starts on an 8-byte boundary; [WriteFile] replaces
//     the destination atomically;
//   - the element converters [Float16ToFloat32], [Float32ToFloat16],
//     [BFloat16ToFloat32] and [Float32ToBFloat16], shared with the MoE
//     analyzer.
//
// Reading is strict: the header length must fit in the file and not exceed
// 100 MB; the header must be valid UTF-8 JSON starting with '{' with nothing
// but whitespace after the object; keys must be unique at every level the
// format defines (duplicates are rejected rather than silently overwritten);
// tensor names must be non-empty; dtypes must be known; shapes must be
// non-negative and their byte size must match data_offsets exactly, without
// overflow; and the tensors must tile the data buffer exactly, with no
// overlaps and no holes. Every such violation is reported as an error that satisfies errors.Is(err, [ErrInvalid]) and
// names the offending tensor or field. Unknown fields inside a tensor entry
// are ignored, as the reference implementation does.
//
// # Example
//
//	err := safetensors.WriteFile("expert.safetensors",
//		map[string]string{"format": "pt"},
//		[]safetensors.Tensor{
//			{Name: "w1", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}},
//			{Name: "b1", Shape: []int{2}, Data: []float32{0.5, -0.5}},
//		})
//	if err != nil {
//		return err
//	}
//	md, tensors, err := safetensors.ReadFile("expert.safetensors")
//	if err != nil {
//		return err // errors.Is(err, safetensors.ErrInvalid) for a corrupt file
//	}
//	_ = md["format"]     // "pt"
//	_ = tensors[0].Name  // "b1": tensors come back sorted by name
//
// To inspect a large checkpoint without loading it:
//
//	f, _ := os.Open(path)
//	st, _ := f.Stat()
//	h, err := safetensors.ReadHeader(f, st.Size())
//	if err != nil {
//		return err
//	}
//	for _, ti := range h.Tensors {
//		fmt.Println(ti.Name, ti.DType, ti.Shape, ti.End-ti.Begin)
//	}
//	w, err := h.ReadTensor(f, "model.layers.0.mlp.experts.3.w1")
package safetensors
