//go:build linux && (amd64 || arm64)

package cu

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// libc functions exercise the C-call helpers on machines without a GPU:
// every arity the package uses, register and stack arguments (snprintf's
// variadic integers are passed like ordinary ones on linux/amd64 and
// linux/arm64, and purego clears %al), pointer passing and the absence of
// allocations.
func libc(t *testing.T) (strlen, strnlen, snprintf, getpid uintptr) {
	t.Helper()
	h, err := dlopen("libc.so.6")
	if err != nil {
		t.Skipf("no glibc: %v", err)
	}
	get := func(name string) uintptr {
		p, err := dlsym(h, name)
		if err != nil || p == 0 {
			t.Skipf("libc lacks %s: %v", name, err)
		}
		return p
	}
	return get("strlen"), get("strnlen"), get("snprintf"), get("getpid")
}

func TestCallArities(t *testing.T) {
	strlen, strnlen, snprintf, getpid := libc(t)
	if pid := int32(call0(getpid)); pid <= 0 {
		t.Errorf("getpid = %d", pid)
	}
	s := cstr("hello, cuda")
	if n := call1(strlen, uintptr(unsafe.Pointer(&s[0]))); n != 11 {
		t.Errorf("strlen = %d", n)
	}
	if n := call2(strnlen, uintptr(unsafe.Pointer(&s[0])), 5); n != 5 {
		t.Errorf("strnlen = %d", n)
	}

	buf := make([]byte, 256)
	check := func(nargs int, got uintptr, ints []int) {
		t.Helper()
		var want []string
		for _, v := range ints {
			want = append(want, fmt.Sprint(v))
		}
		w := strings.Join(want, " ")
		if g := cbytes(buf); g != w || int(got) != len(w) {
			t.Errorf("call%d: snprintf wrote %q (returned %d), want %q", nargs, g, got, w)
		}
	}
	format := func(n int) []byte { return cstr(strings.TrimSpace(strings.Repeat("%d ", n))) }
	b, sz := uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf))
	f := format(0)
	check(3, call3(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0]))), nil)
	f = format(1)
	check(4, call4(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), 1), []int{1})
	f = format(2)
	check(5, call5(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), 1, 2), []int{1, 2})
	f = format(3)
	check(6, call6(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), 1, 2, 3), []int{1, 2, 3})
	f = format(4)
	check(7, call7(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), 1, 2, 3, 4), []int{1, 2, 3, 4})
	f = format(5)
	check(8, call8(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), 1, 2, 3, 4, 5), []int{1, 2, 3, 4, 5})
	f = format(6)
	check(9, call9(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), 1, 2, 3, 4, 5, 6), []int{1, 2, 3, 4, 5, 6})
	f = format(8)
	check(11, call11(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), 1, 2, 3, 4, 5, 6, 7, 8), []int{1, 2, 3, 4, 5, 6, 7, 8})
	f = format(10)
	check(13, call13(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
		[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f = format(11)
	check(14, call14(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
		[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	f = format(15)
	check(18, call18(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
		[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	// Negative C ints travel as the low 32 bits of the register.
	f = cstr("%d")
	neg := -7
	check(4, call4(snprintf, b, sz, uintptr(unsafe.Pointer(&f[0])), uintptr(neg)), []int{-7})
}

// A C call through the helpers, with a pointer into a long-lived heap
// object as the hot paths have (KernelArgs, the alpha/beta of a handle),
// allocates nothing.
func TestCallAllocations(t *testing.T) {
	strlen, _, _, _ := libc(t)
	obj := new(struct{ s [16]byte })
	copy(obj.s[:], "abc")
	allocs := testing.AllocsPerRun(1000, func() {
		if call1(strlen, uintptr(unsafe.Pointer(&obj.s[0]))) != 3 {
			panic("strlen")
		}
	})
	if allocs != 0 {
		t.Errorf("a C call allocates %v times", allocs)
	}
}

// Symbol resolution: the first exported alternative wins, optional symbols
// may be absent, a missing required one names itself in the error.
func TestSymbolResolution(t *testing.T) {
	libc(t)
	spec := libSpec{lib: "libc", paths: func() []string { return []string{"libc.so.6"} }, sonames: []string{"libc.so.6"},
		missing: "libc not found", install: "install glibc", sentinel: ErrNoLibrary}
	var alt, opt, req uintptr
	loaded, err := spec.load([]symbol{need(&alt, "no_such_function_v2", "strlen"), maybe(&opt, "no_such_function")})
	if err != nil || loaded.path != "libc.so.6" || alt == 0 || opt != 0 {
		t.Fatalf("load: %q %v, strlen %#x, optional %#x", loaded.path, err, alt, opt)
	}
	_, err = spec.load([]symbol{need(&req, "no_such_function")})
	var le *LoadError
	if !errors.As(err, &le) || le.Missing != "no_such_function" || le.Loaded != "libc.so.6" ||
		err.Error() != "libc: libc.so.6 does not export no_such_function (too old?): install glibc, or run with --device cpu" {
		t.Errorf("got %v", err)
	}
}

// mappedFile names the file a code address lies in.
func TestMappedFile(t *testing.T) {
	strlen, _, _, _ := libc(t)
	p := mappedFile(strlen)
	if !filepath.IsAbs(p) || !strings.Contains(filepath.Base(p), "libc") {
		t.Errorf("strlen is mapped from %q, want libc", p)
	}
	if p := mappedFile(0); p != "" {
		t.Errorf("address 0 is mapped from %q", p)
	}
}
