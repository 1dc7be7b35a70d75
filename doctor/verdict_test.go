package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testIdentity() Identity {
	return Identity{GPU: "Test GPU", Capability: "9.0", Driver: "13.0 (580.1)", Pad: "pad v1.2.3",
		Libraries: []LibraryID{{Lib: "cuda", Path: "/usr/lib/libcuda.so.1", Version: "13.0"}, {Lib: "cudnn", Path: "/opt/libcudnn.so.9", Version: "9.14.0"}}}
}

func TestVerdictCache(t *testing.T) {
	c := Cache{Dir: filepath.Join(t.TempDir(), "doctor")}
	id := testIdentity()
	if v, err := c.Load(id); v != nil || err != nil {
		t.Fatalf("empty cache: %v, %v", v, err)
	}
	r := &Report{Checks: []Check{{Name: "op Tanh", Status: Pass, Quick: true}, {Name: "memory", Status: Fail}}}
	v := NewVerdict(id, r)
	if !v.Pass || v.Err() != nil {
		t.Fatalf("a failure outside the quick part fails the verdict: %+v", v)
	}
	if err := c.Store(v); err != nil {
		t.Fatal(err)
	}
	got, err := c.Load(id)
	if err != nil || got == nil || !got.Pass || got.Identity.Key() != id.Key() {
		t.Fatalf("load: %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(c.Dir)
	if len(entries) != 1 || entries[0].Name() != id.Key()+".json" {
		t.Errorf("cache holds %v, want only %s.json (no temporary files)", entries, id.Key())
	}

	// Every part of the identity is in the key.
	for _, change := range []func(*Identity){
		func(i *Identity) { i.Pad = "pad v1.2.4" },
		func(i *Identity) { i.Driver = "13.1 (590.1)" },
		func(i *Identity) { i.GPU = "Other GPU" },
		func(i *Identity) { i.Capability = "8.9" },
		func(i *Identity) { i.Ordinal = 1 },
		func(i *Identity) { i.Libraries[1].Version = "9.15.0" },
		func(i *Identity) { i.Libraries[1].Path = "/other/libcudnn.so.9" },
		func(i *Identity) { i.Build = "0123abcd" },
		func(i *Identity) { i.Kernels = "0123abcd" },
	} {
		other := testIdentity()
		change(&other)
		if other.Key() == id.Key() {
			t.Errorf("%+v has the same key as %+v", other, id)
		}
		if v, err := c.Load(other); v != nil || err != nil {
			t.Errorf("another identity finds a verdict: %v, %v", v, err)
		}
	}

	// A failed quick check names the check and suggests pad doctor.
	fail := NewVerdict(id, &Report{Checks: []Check{{Name: "op ConvForward tf32", Status: Fail, Quick: true, Detail: "ConvForward differs"}}})
	if err := fail.Err(); err == nil || !strings.Contains(err.Error(), "op ConvForward tf32") || !strings.Contains(err.Error(), "pad doctor") {
		t.Errorf("failed verdict: %v", err)
	}
	if NewVerdict(id, &Report{}).Pass {
		t.Error("a report without checks passes")
	}

	// A corrupt file, or one holding another identity, is an error.
	os.WriteFile(c.Path(id), []byte("{not json"), 0o644)
	if v, err := c.Load(id); v != nil || err == nil {
		t.Errorf("corrupt file: %v, %v", v, err)
	}
	other := testIdentity()
	other.Pad = "pad v0"
	c.Store(NewVerdict(other, r))
	os.Rename(c.Path(other), c.Path(id))
	if v, err := c.Load(id); v != nil || err == nil {
		t.Errorf("another identity's file: %v, %v", v, err)
	}

	// No directory: nothing kept, nothing found.
	if err := (Cache{}).Store(v); err == nil {
		t.Error("storing without a directory succeeds")
	}
	if v, err := (Cache{}).Load(id); v != nil || err != nil {
		t.Errorf("loading without a directory: %v, %v", v, err)
	}
}

func TestVerdictCacheUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o644)
	c := Cache{Dir: filepath.Join(blocker, "doctor")} // a folder under a file
	if err := c.Store(NewVerdict(testIdentity(), &Report{Checks: []Check{{Status: Pass, Quick: true}}})); err == nil {
		t.Fatal("store under a file succeeded")
	}
}

func TestDefaultCacheDirBesideKernels(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/tmp/xdg-test")
	if got, want := DefaultCacheDir(), filepath.Join("/tmp/xdg-test", "pad", "doctor"); got != want {
		t.Errorf("DefaultCacheDir() = %q, want %q", got, want)
	}
}

func TestBuildAndKernelHashes(t *testing.T) {
	if buildHash("pad v1.2.3") != "" {
		t.Error("a release has a build hash")
	}
	if h := buildHash("pad (devel)"); len(h) != 24 || buildHash("pad v1.2.3-0.20260101+dirty") != h {
		t.Errorf("development build hash %q", h)
	}
	if h := kernelsHash(); len(h) != 24 || h != kernelsHash() {
		t.Errorf("kernel hash %q", h)
	}
}
