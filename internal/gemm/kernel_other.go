//go:build !amd64 || purego

package gemm

// availableKernels lists the micro-kernels this CPU can run, best first.
func availableKernels() []kernel { return []kernel{genericKernel} }

// addVec adds nothing: addTo does it all in Go.
func addVec(dst, src []float32) int { return 0 }
