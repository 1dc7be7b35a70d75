package cu

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// LibInfo describes one of the NVIDIA libraries pad loads: where it came
// from and its version, or why it did not load and where pad looked.
type LibInfo struct {
	Lib     string   // "cuda" (the driver), "nvrtc", "cublas", "cudnn"
	Path    string   // the file loaded, "" if none
	From    string   // where it was found: one of the From constants
	Version string   // e.g. "9.14.0"; for the driver the CUDA version it supports and its release, "13.0 (580.159.04)"
	Err     error    // why it did not load (a *LoadError: one sentence); nil if it did
	Tried   []string // the names handed to the dynamic loader, in order
	// Searched lists the places looked in, "from: folder", in order.
	Searched []string
}

// Libraries loads each library (once, as the rest of the package does)
// and reports what it found: the driver, NVRTC, cuBLAS and cuDNN, in that
// order. It needs no device.
func Libraries() []LibInfo {
	out := []LibInfo{
		libInfo("cuda", loadDriver(), drv.lib, func() string {
			v, err := DriverVersion()
			if err != nil {
				return ""
			}
			s := fmt.Sprintf("%d.%d", v/1000, v%1000/10)
			if r := DriverRelease(); r != "" {
				s += " (" + r + ")"
			}
			return s
		}),
		libInfo("nvrtc", LoadNVRTC(), nvrtc.lib, func() string {
			ma, mi, err := NVRTCVersion()
			if err != nil {
				return ""
			}
			return fmt.Sprintf("%d.%d", ma, mi)
		}),
		libInfo("cublas", LoadBLAS(), blas.lib, func() string {
			ma, mi, pa, err := BLASLibraryVersion()
			if err != nil {
				return ""
			}
			return fmt.Sprintf("%d.%d.%d", ma, mi, pa)
		}),
		libInfo("cudnn", LoadDNN(), dnn.lib, func() string {
			v, err := DNNVersion()
			if err != nil {
				return ""
			}
			ma, mi, pa := DecodeDNNVersion(v)
			return fmt.Sprintf("%d.%d.%d", ma, mi, pa)
		}),
	}
	return out
}

func libInfo(name string, err error, l loaded, version func() string) LibInfo {
	li := LibInfo{Lib: name, Tried: l.tried, Searched: l.searched}
	if err != nil {
		li.Err = err
		var le *LoadError
		if errors.As(err, &le) {
			li.Tried, li.Searched = le.Tried, le.Searched
		}
		return li
	}
	li.Path, li.From, li.Version = l.path, l.from, version()
	return li
}

// DriverRelease returns the NVIDIA kernel module's release (e.g.
// "580.159.04") from /proc/driver/nvidia/version, or "" where there is
// none (no GPU, or a container that does not expose it).
func DriverRelease() string {
	b, err := os.ReadFile("/proc/driver/nvidia/version")
	if err != nil {
		return ""
	}
	return parseDriverRelease(string(b))
}

func parseDriverRelease(text string) string {
	// "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu ..."
	// "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  535.309.01  Release Build ..."
	line, _, _ := strings.Cut(text, "\n")
	if _, rest, ok := strings.Cut(line, "Kernel Module"); ok {
		line = rest
	}
	for _, f := range strings.Fields(line) {
		if isRelease(f) {
			return f
		}
	}
	return ""
}

// isRelease reports whether f looks like a driver release: digits and at
// least one dot.
func isRelease(f string) bool {
	if !strings.Contains(f, ".") {
		return false
	}
	for _, r := range f {
		if r != '.' && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
