package kernels

// These tests compile the kernels with the real NVRTC through pad's own
// bindings (internal/cu), which needs the library but no GPU. CI installs
// Debian's libnvrtc11.2 (CUDA 11.8) and sets PAD_REQUIRE_CUDA_LIBS=1, so
// there they fail rather than skip when NVRTC cannot be loaded; elsewhere
// they skip when no NVRTC is installed.

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pad-dreaming/pad/internal/cu"
)

// cudaLibsRequired reports whether a missing NVIDIA library fails the
// tests instead of skipping them: in CI, or when asked to.
func cudaLibsRequired() bool {
	return os.Getenv("PAD_REQUIRE_CUDA_LIBS") == "1" || os.Getenv("CI") == "true"
}

// requireNVRTC loads NVRTC and returns its version. It skips the test when
// no NVRTC is installed, unless cudaLibsRequired; an NVRTC that is there
// but does not load (a missing dependency or symbol) always fails.
func requireNVRTC(t *testing.T) (major, minor int) {
	t.Helper()
	err := cu.LoadNVRTC()
	if err == nil {
		major, minor, err = cu.NVRTCVersion()
		if err != nil {
			t.Fatalf("nvrtcVersion: %v", err)
		}
		return major, minor
	}
	var le *cu.LoadError
	// The bindings load nothing off linux/amd64 and linux/arm64.
	absent := runtime.GOOS != "linux" || runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" ||
		errors.As(err, &le) && le.Loaded == "" && le.Missing == "" && le.Detail == ""
	if absent && !cudaLibsRequired() {
		t.Skipf("NVRTC not installed (set PAD_REQUIRE_CUDA_LIBS=1 to fail instead): %v", err)
	}
	t.Fatal(err)
	return 0, 0
}

// cubinArchs are the real architectures every family must compile for:
// Volta, Turing, Ampere (A100 and consumer), Ada and Hopper.
var cubinArchs = [][2]int{{7, 0}, {7, 5}, {8, 0}, {8, 6}, {8, 9}, {9, 0}}

// knowsArch reports whether NVRTC major.minor can compile for sm_XY: Ada
// and Hopper arrived in 11.8 (Debian's, which CI uses); pad accepts NVRTC
// 11.2 and later, which know the others.
func knowsArch(major, minor int, arch [2]int) bool {
	if arch[0]*10+arch[1] >= 89 {
		return major > 11 || major == 11 && minor >= 8
	}
	return true
}

// emCUDA is the ELF machine of a CUBIN.
const emCUDA = elf.Machine(190)

// Every family compiles to CUBIN for every architecture with the options
// Load uses and without a single warning; each CUBIN is an ELF image for
// the requested architecture that defines every kernel Load looks up.
func TestNVRTCCompilesEveryFamily(t *testing.T) {
	ma, mi := requireNVRTC(t)
	t.Logf("NVRTC %d.%d (%s)", ma, mi, cu.NVRTCLibrary())
	fams := Families()
	var mu sync.Mutex
	sizes := map[string]int{} // family + " " + arch → CUBIN bytes
	t.Run("compile", func(t *testing.T) {
		for _, fam := range fams {
			src, err := Source(fam)
			if err != nil {
				t.Fatal(err)
			}
			names := kernelNames(src)
			t.Run(fam, func(t *testing.T) {
				for _, a := range cubinArchs {
					arch := fmt.Sprintf("sm_%d%d", a[0], a[1])
					t.Run(arch, func(t *testing.T) {
						if !knowsArch(ma, mi, a) {
							t.Skipf("NVRTC %d.%d predates %s", ma, mi, arch)
						}
						t.Parallel()
						opts := append([]string{cu.ArchFlag(a[0], a[1])}, Options...)
						cubin, log, err := cu.Compile(src, fam+".cu", opts)
						if err != nil {
							t.Fatalf("%s.cu for %s: %v", fam, arch, err)
						}
						if log != "" {
							t.Errorf("%s.cu for %s: NVRTC warns:\n%s", fam, arch, log)
						}
						checkCUBIN(t, cubin, a[0]*10+a[1], names)
						t.Logf("%s.cu %s: %d bytes of CUBIN", fam, arch, len(cubin))
						mu.Lock()
						sizes[fam+" "+arch] = len(cubin)
						mu.Unlock()
					})
				}
			})
		}
	})
	// One table of the sizes: a family per row, an architecture per column.
	var b strings.Builder
	fmt.Fprintf(&b, "CUBIN bytes (NVRTC %d.%d, %s):\n%-12s", ma, mi, strings.Join(Options, " "), "family")
	for _, a := range cubinArchs {
		fmt.Fprintf(&b, " %8s", fmt.Sprintf("sm_%d%d", a[0], a[1]))
	}
	for _, fam := range fams {
		fmt.Fprintf(&b, "\n%-12s", fam)
		for _, a := range cubinArchs {
			if n, ok := sizes[fmt.Sprintf("%s sm_%d%d", fam, a[0], a[1])]; ok {
				fmt.Fprintf(&b, " %8d", n)
			} else {
				fmt.Fprintf(&b, " %8s", "-")
			}
		}
	}
	t.Log(b.String())
}

// checkCUBIN checks that cubin is a CUDA ELF image for sm (e.g. 86) that
// defines every kernel in names as a global function.
func checkCUBIN(t *testing.T, cubin []byte, sm int, names []string) {
	t.Helper()
	if len(cubin) < 64 || !bytes.HasPrefix(cubin, []byte(elf.ELFMAG)) {
		t.Fatalf("CUBIN is not an ELF image (%d bytes)", len(cubin))
	}
	// A CUBIN's e_version holds the CUDA toolchain's own number (0x76 for
	// 11.8) where debug/elf insists on 1: read a copy that says 1.
	img := bytes.Clone(cubin)
	binary.LittleEndian.PutUint32(img[20:24], uint32(elf.EV_CURRENT))
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("CUBIN is not an ELF image: %v", err)
	}
	if f.Machine != emCUDA {
		t.Errorf("CUBIN machine %v, want NVIDIA CUDA (%d)", f.Machine, emCUDA)
	}
	// The target architecture is one byte of e_flags (its low byte, and
	// again in bits 16-23, in the ELF ABI of CUDA 11 and 12); which byte
	// depends on the ABI version, so any may match.
	if f.Class != elf.ELFCLASS64 || f.ByteOrder != binary.LittleEndian {
		t.Fatalf("CUBIN is %v %v, want 64-bit little-endian", f.Class, f.Data)
	}
	flags := binary.LittleEndian.Uint32(cubin[48:52])
	if uint32(sm) != flags&0xff && uint32(sm) != flags>>8&0xff && uint32(sm) != flags>>16&0xff {
		t.Errorf("CUBIN e_flags %#x name no sm_%d", flags, sm)
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("CUBIN symbols: %v", err)
	}
	funcs := map[string]bool{}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && elf.ST_BIND(s.Info) == elf.STB_GLOBAL {
			funcs[s.Name] = true
		}
	}
	for _, n := range names {
		if !funcs[n] {
			t.Errorf("CUBIN for sm_%d does not define kernel %s", sm, n)
		}
	}
}

// ptxParam is one parameter of a PTX .entry.
type ptxParam struct {
	typ   string // the PTX type, e.g. "u64", "f32"; "b8[24]" for an array
	bytes int
}

var (
	ptxEntry = regexp.MustCompile(`\.entry\s+([A-Za-z_$%][\w$]*)\s*\(([^)]*)\)`)
	// ptxParamDecl is one declaration of an entry's parameter list, e.g.
	// ".param .u64 pad_fill_param_0", ".param .align 8 .b8 x_param_1[24]" or
	// ".param .u64 .ptr .global .align 4 x_param_2".
	ptxParamDecl = regexp.MustCompile(`^\.param\s+(?:\.align\s+\d+\s+)?\.([busf](?:8|16|32|64))\s+(?:\.ptr\s+(?:\.(?:global|shared|const|local)\s+)?(?:\.align\s+\d+\s+)?)?[A-Za-z_$%][\w$]*(?:\[(\d+)\])?$`)
)

// ptxTypeBytes maps the width digits of a PTX scalar type to bytes.
var ptxTypeBytes = map[string]int{"8": 1, "16": 2, "32": 4, "64": 8}

// parsePTXEntries returns each kernel (.entry) of a PTX text with its
// parameters in order. A declaration it does not understand is an error.
func parsePTXEntries(ptx string) (map[string][]ptxParam, error) {
	out := map[string][]ptxParam{}
	for _, m := range ptxEntry.FindAllStringSubmatch(ptx, -1) {
		name, list := m[1], strings.TrimSpace(m[2])
		params := []ptxParam{}
		if list != "" {
			for _, decl := range strings.Split(list, ",") {
				decl = strings.Join(strings.Fields(decl), " ")
				pm := ptxParamDecl.FindStringSubmatch(decl)
				if pm == nil {
					return nil, fmt.Errorf(".entry %s: cannot read parameter %q", name, decl)
				}
				p := ptxParam{typ: pm[1], bytes: ptxTypeBytes[pm[1][1:]]}
				if pm[2] != "" {
					n, err := strconv.Atoi(pm[2])
					if err != nil {
						return nil, fmt.Errorf(".entry %s: parameter %q: %v", name, decl, err)
					}
					p.typ += "[" + pm[2] + "]"
					p.bytes *= n
				}
				params = append(params, p)
			}
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf(".entry %s appears twice", name)
		}
		out[name] = params
	}
	return out, nil
}

func TestParsePTXEntries(t *testing.T) {
	ptx := `
.visible .entry k1(
	.param .u64 k1_param_0,
	.param .f32 k1_param_1,
	.param .align 8 .b8 k1_param_2[24],
	.param .u64 .ptr .global .align 4 k1_param_3,
	.param .s16 k1_param_4,
	.param .f64 k1_param_5
)
{
}
.entry k2()
{
}`
	got, err := parsePTXEntries(ptx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]ptxParam{
		"k1": {{"u64", 8}, {"f32", 4}, {"b8[24]", 24}, {"u64", 8}, {"s16", 2}, {"f64", 8}},
		"k2": {},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parsePTXEntries(".entry k3(\n.param .v2 .f32 k3_param_0\n)"); err == nil {
		t.Error("an unknown parameter declaration was accepted")
	}
}

// ptxArchs are the virtual architectures the parameter lists are read
// from; a parameter list does not depend on the architecture, and a
// difference between them fails the test.
var ptxArchs = [][2]int{{7, 0}, {8, 0}, {9, 0}}

// The parameter lists NVRTC compiles (count and byte width of every
// parameter, from the PTX) are what the Go launchers pass: every kernel of
// the PTX is launched by the calls of launcherCalls, with exactly as many
// slots as it has parameters, each appended with the parameter's width.
// The kernels read each slot with their own parameter's width, so a float
// passed for a double, or an int for a long, would read garbage on a GPU.
func TestPTXParametersMatchLaunchers(t *testing.T) {
	ma, mi := requireNVRTC(t)
	entries := map[string][]ptxParam{} // kernel → parameters
	family := map[string]string{}      // kernel → family
	for _, fam := range Families() {
		src, err := Source(fam)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range ptxArchs {
			if !knowsArch(ma, mi, a) {
				continue
			}
			arch := fmt.Sprintf("compute_%d%d", a[0], a[1])
			ptx, log, err := cu.CompilePTX(src, fam+".cu", append([]string{cu.VirtualArchFlag(a[0], a[1])}, Options...))
			if err != nil {
				t.Fatalf("%s.cu for %s: %v", fam, arch, err)
			}
			if log != "" {
				t.Errorf("%s.cu for %s: NVRTC warns:\n%s", fam, arch, log)
			}
			text := string(bytes.TrimRight(ptx, "\x00"))
			if !regexp.MustCompile(`(?m)^\.target\s+sm_` + fmt.Sprintf("%d%d", a[0], a[1]) + `\b`).MatchString(text) {
				t.Errorf("%s.cu for %s: PTX lacks .target sm_%d%d", fam, arch, a[0], a[1])
			}
			got, err := parsePTXEntries(text)
			if err != nil {
				t.Fatalf("%s.cu for %s: %v", fam, arch, err)
			}
			// Load looks the kernels up by the names it reads off the
			// source; the PTX must define exactly those.
			var names []string
			for n := range got {
				names = append(names, n)
			}
			sort.Strings(names)
			want := kernelNames(src)
			sort.Strings(want)
			if !slices.Equal(names, want) {
				t.Errorf("%s.cu for %s: PTX entries %v, the source declares %v", fam, arch, names, want)
			}
			for n, params := range got {
				if prev, ok := entries[n]; ok && fmt.Sprint(prev) != fmt.Sprint(params) {
					t.Errorf("%s: parameters %v for %s, %v for an earlier architecture", n, params, arch, prev)
				}
				if f, ok := family[n]; ok && f != fam {
					t.Errorf("kernel %s is defined in both %s.cu and %s.cu", n, f, fam)
				}
				entries[n], family[n] = params, fam
			}
		}
	}
	if len(entries) == 0 {
		t.Fatal("no .entry found in the PTX")
	}

	launched := map[string]bool{}
	for _, l := range recordLaunches(t) {
		params, ok := entries[l.name]
		if !ok {
			t.Errorf("%s: launched, but no such kernel in the PTX", l.name)
			continue
		}
		launched[l.name] = true
		want := make([]uint8, len(params))
		for i, p := range params {
			want[i] = uint8(min(p.bytes, 255))
		}
		if !slices.Equal(l.widths, want) || l.args != len(params) {
			t.Errorf("%s: the launcher passes %d arguments of %v bytes, the kernel takes %d: %s",
				l.name, l.args, l.widths, len(params), describeParams(params))
		}
	}
	var kernels []string
	for n := range entries {
		kernels = append(kernels, n)
	}
	sort.Strings(kernels)
	nparams := 0
	var b strings.Builder
	for _, n := range kernels {
		nparams += len(entries[n])
		if !launched[n] {
			t.Errorf("kernel %s (%s.cu) is in the PTX but no launcher call launches it", n, family[n])
		}
		fmt.Fprintf(&b, "\n  %-24s %-15s %s", n, family[n]+".cu", describeParams(entries[n]))
	}
	var archs []string
	for _, a := range ptxArchs {
		if knowsArch(ma, mi, a) {
			archs = append(archs, fmt.Sprintf("compute_%d%d", a[0], a[1]))
		}
	}
	t.Logf("PTX of NVRTC %d.%d for %s: %d kernels, %d parameters, each launch's count and widths match:%s",
		ma, mi, strings.Join(archs, ", "), len(kernels), nparams, b.String())
}

// describeParams writes a parameter list as "(u64:8 f32:4 ...)".
func describeParams(params []ptxParam) string {
	s := make([]string, len(params))
	for i, p := range params {
		s[i] = p.typ + ":" + strconv.Itoa(p.bytes)
	}
	return "(" + strings.Join(s, " ") + ")"
}
