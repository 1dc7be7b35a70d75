//go:build linux

package cu

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"unsafe"
)

// peekKernel copies x[off] to out[0]: with off past x's end it reads
// memory that is not x's.
const peekKernel = `extern "C" __global__ void peek(const float* x, float* out, long long off) { out[0] = x[off]; }` + "\n"

// TestSimReadPastEndFaults: the simulated device ends every allocation
// with a page that cannot be touched, beyond its 256-byte tail redzone, so
// a kernel that reads past a buffer (which the redzone, checked for
// writes only, cannot see) faults at once instead of reading another
// allocation's data. The fault ends the process (SIGSEGV, as a GPU would
// end the context with an illegal address), so the kernel runs in a
// child; a read inside the buffer runs in the same child first.
func TestSimReadPastEndFaults(t *testing.T) {
	if os.Getenv("PAD_TEST_READ_PAST_END") != "" {
		readPastEndChild(t)
		return
	}
	simGPU(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSimReadPastEndFaults$", "-test.v")
	cmd.Env = append(os.Environ(), "PAD_TEST_READ_PAST_END=1", "PAD_CUDASIM_ENGINE=fibers")
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err == nil || !strings.Contains(text, "SIGSEGV") {
		t.Fatalf("a kernel reading 4 KiB past its buffer: %v; want the child to die of SIGSEGV:\n%s", err, text)
	}
	if !strings.Contains(text, "read inside the buffer: 7") {
		t.Fatalf("the read inside the buffer did not run first:\n%s", text)
	}
	if strings.Contains(text, "read past the end returned") {
		t.Fatalf("the read past the end returned:\n%s", text)
	}
}

func readPastEndChild(t *testing.T) {
	dev := simGPU(t)
	f := function(t, build(t, dev, peekKernel, "peek.cu"), "peek")
	const n = 1024 // 4 KiB: no rounding slack, the redzone, then the guard page
	x, out := devAlloc(t, 4*n), devAlloc(t, 4)
	host := make([]float32, n)
	host[n-1] = 7
	must(t, CopyHtoD(x, host))
	peek := func(off int64) float32 {
		v := make([]float32, 1)
		must(t, LaunchKernel(f, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0, 0,
			unsafe.Pointer(&x), unsafe.Pointer(&out), unsafe.Pointer(&off)))
		must(t, CopyDtoH(v, out))
		return v[0]
	}
	t.Logf("read inside the buffer: %v", peek(n-1))
	v := peek(n + 1024) // 4 KiB past the end
	t.Logf("read past the end returned %v", v)
}
