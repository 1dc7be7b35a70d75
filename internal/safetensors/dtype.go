// Package safetensors reads and writes the safetensors tensor file format
// (the format of Hugging Face's safetensors library, which PyTorch's
// safetensors.torch.load_file and save_file use).
//
// Layout of a file:
//
//	[8 bytes]  N, little-endian uint64: the length of the header
//	[N bytes]  a JSON object, padded with spaces to a multiple of 8 bytes:
//	           {"__metadata__": {"k": "v", ...},
//	            "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
//	            ...}
//	[rest]     the data section; each tensor's bytes are
//	           data[begin:end], row-major, little-endian
//
// Read and Decode parse defensively: the file may come from anywhere, so
// every length and offset is checked against the file size before anything
// is allocated, and a malformed file yields an error naming the file, the
// tensor and the field at fault, never a panic.
//
// Writer produces files that the reference implementation reads and writes
// byte for byte alike: compact JSON, tensor names in sorted order, header
// padded with spaces to a multiple of 8, tensors packed contiguously.
package safetensors

// DType names the element type of a tensor, spelled as in the header.
type DType string

// The element types this package knows. Files using any other dtype are
// rejected.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	F8E8M0 DType = "F8_E8M0"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	I64    DType = "I64"
	U64    DType = "U64"
	F64    DType = "F64"
)

// dtypeSizes maps every known dtype to the size of one element in bytes.
var dtypeSizes = map[DType]int{
	BOOL: 1, U8: 1, I8: 1, F8E5M2: 1, F8E4M3: 1, F8E8M0: 1,
	I16: 2, U16: 2, F16: 2, BF16: 2,
	I32: 4, U32: 4, F32: 4,
	I64: 8, U64: 8, F64: 8,
}

// Size returns the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Known reports whether d is a dtype this package can read and write.
func (d DType) Known() bool { return dtypeSizes[d] != 0 }
