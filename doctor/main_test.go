package doctor

import (
	"os"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// TestMain runs the GPU tests on pad's simulated NVIDIA stack where there
// is no GPU (testkit.UseSimulatedGPU).
func TestMain(m *testing.M) { os.Exit(testkit.MainWithSimulatedGPU(m)) }
