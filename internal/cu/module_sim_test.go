package cu

import (
	"os"
	"strings"
	"testing"
)

// simModuleMappings counts the mappings of the simulated modules' shared
// objects in this process (the simulated driver names their files
// padsim-module-*.so).
func simModuleMappings(t *testing.T) int {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	return strings.Count(string(maps), "padsim-module-")
}

// TestSimModuleUnloadUnmaps: the simulated driver unmaps a module's code
// once the module is unloaded and nothing queued can still run it, so a
// process that loads and unloads modules many times (a test binary that
// opens hundreds of backends) does not run out of memory mappings. A
// launch queued before the unload (the lazy schedule runs it only at the
// synchronisation) keeps the code mapped until it has run.
func TestSimModuleUnloadUnmaps(t *testing.T) {
	dev := simGPU(t)
	needLib(t, LoadNVRTC)
	major, minor, err := dev.ComputeCapability()
	must(t, err)
	image, _, err := Compile(testKernels, "kernels.cu", []string{ArchFlag(major, minor)})
	must(t, err)
	before := simModuleMappings(t)

	m, err := ModuleLoadData(image)
	must(t, err)
	loaded := simModuleMappings(t)
	if loaded <= before {
		t.Fatalf("%d mappings of module code after a load, %d before: the count does not see them", loaded, before)
	}
	s := newStream(t, StreamNonBlocking)
	x := upload(t, []float32{1, 2, 3, 4, 5})
	must(t, LaunchKernelArgs(function(t, m, "add"), [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, s, new(KernelArgs).Ptr(x).Float32(10).Int32(5)))
	must(t, m.Unload())
	if got := simModuleMappings(t); got != loaded {
		t.Fatalf("a queued launch's module was unmapped at its unload (%d mappings, %d while loaded)", got, loaded)
	}
	must(t, s.Synchronize())
	if got := download(t, x, 5); got[0] != 11 || got[4] != 15 {
		t.Fatalf("the launch queued before the unload: %v", got)
	}
	if got := simModuleMappings(t); got != before {
		t.Fatalf("%d mappings of module code after the launch ran, %d before the load", got, before)
	}
	for range 200 {
		m, err := ModuleLoadData(image)
		must(t, err)
		must(t, m.Unload())
	}
	if got := simModuleMappings(t); got != before {
		t.Fatalf("%d mappings of module code after 200 loads and unloads, %d before", got, before)
	}
}
