//go:build !(linux && (amd64 || arm64))

package cu

import (
	"errors"
	"runtime"
)

// platformSupported reports whether this build can load the NVIDIA
// libraries at all. CUDA ships for linux/amd64 and linux/arm64 only.
const platformSupported = false

var errPlatform = errors.New("the CUDA bindings support only linux/amd64 and linux/arm64, not " +
	runtime.GOOS + "/" + runtime.GOARCH)

func dlopen(string) (uintptr, error) { return 0, errPlatform }

func dlsym(uintptr, string) (uintptr, error) { return 0, errPlatform }

// syscallN is never reached on this platform: every wrapper loads its
// library first, and loading always fails here.
func syscallN(uintptr, []uintptr) uintptr {
	panic("cu: no C calls on " + runtime.GOOS + "/" + runtime.GOARCH)
}
