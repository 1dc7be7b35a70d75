package kernels

import (
	"slices"
	"testing"

	"github.com/pad-dreaming/pad/internal/cu"
)

// KernelArgs records each slot's C width, which TestPTXParametersMatchLaunchers
// compares with the compiled kernels; recording it costs the launchers no
// allocation.
func TestKernelArgsWidths(t *testing.T) {
	var a cu.KernelArgs
	a.Reset().Ptr(1).Int32(-1).Uint32(2).Int64(-3).Uint64(4).Float32(0.5).Float64(0.25)
	if got, want := a.Widths(), []uint8{8, 4, 4, 8, 8, 4, 8}; !slices.Equal(got, want) || len(a.Values()) != len(want) {
		t.Errorf("widths %v for %d values, want %v", got, len(a.Values()), want)
	}
	if a.Reset(); len(a.Widths()) != 0 {
		t.Errorf("widths %v after Reset", a.Widths())
	}
	for i := 0; i < cu.MaxKernelArgs+2; i++ {
		a.Float32(1)
	}
	if len(a.Widths()) != cu.MaxKernelArgs || a.Len() != cu.MaxKernelArgs+2 {
		t.Errorf("%d widths, Len %d, after %d arguments", len(a.Widths()), a.Len(), cu.MaxKernelArgs+2)
	}

	k, _ := fake(t)
	bytes := 0
	k.launchFn = func(f cu.Function, grid, block [3]uint32, s cu.Stream, a *cu.KernelArgs) error {
		for _, w := range a.Widths() {
			bytes += int(w)
		}
		return nil
	}
	p := cu.DevicePtr(0x1000)
	allocs := testing.AllocsPerRun(100, func() {
		if k.Fill(0, p, 10, 1) != nil || k.ApplyMask(0, p, p, 2, 3, 4, true) != nil || k.Mean(0, p, 10, p, p) != nil {
			panic("launch failed")
		}
	})
	if allocs != 0 || bytes == 0 {
		t.Errorf("launches reading their widths allocate %v times (%d bytes of arguments)", allocs, bytes)
	}
}
