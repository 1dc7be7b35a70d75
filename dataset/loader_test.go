package dataset

import (
	"errors"
	"math"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/internal/rng"
)

// synthSet makes n 1×32×32 images whose pixel values encode the image index,
// so a batch shows which images it holds.
func synthSet(n, c int) *Set {
	d := c * Size * Size
	s := &Set{Name: "synth", Images: make([]byte, n*d), N: n, C: c, H: Size, W: Size,
		Labels: make([]uint8, n), Classes: digitClasses}
	for i := 0; i < n; i++ {
		img := s.Images[i*d : (i+1)*d]
		img[0], img[1] = byte(i), byte(i>>8)
		for p := 2; p < d; p++ {
			img[p] = byte(p*7 + i)
		}
		s.Labels[i] = uint8(i % 10)
	}
	return s
}

// batchIndex decodes the image index from image j of a batch.
func batchIndex(b *Batch, j, d int) int {
	px := func(v float32) int { return int(math.Round(float64((v*0.5 + 0.5) * 255))) }
	return px(b.X[j*d]) | px(b.X[j*d+1])<<8
}

type snap struct {
	epoch, index int
	x            []float32
	labels       []uint8
}

func take(t *testing.T, l *Loader, n int, slow bool) []snap {
	t.Helper()
	var out []snap
	for i := 0; i < n; i++ {
		b, err := l.Next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, snap{b.Epoch, b.Index, append([]float32(nil), b.X...), append([]uint8(nil), b.Labels...)})
		if slow && i%3 == 0 {
			time.Sleep(time.Millisecond)
		}
		l.Release(b)
	}
	return out
}

func sameSnaps(t *testing.T, a, b []snap) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d vs %d batches", len(a), len(b))
	}
	for i := range a {
		if a[i].epoch != b[i].epoch || a[i].index != b[i].index || string(a[i].labels) != string(b[i].labels) {
			t.Fatalf("batch %d: epoch/index/labels differ: %d/%d vs %d/%d", i, a[i].epoch, a[i].index, b[i].epoch, b[i].index)
		}
		for k := range a[i].x {
			if math.Float32bits(a[i].x[k]) != math.Float32bits(b[i].x[k]) {
				t.Fatalf("batch %d element %d differs", i, k)
			}
		}
	}
}

func TestLoaderOrder(t *testing.T) {
	s := synthSet(103, 1)
	l, err := NewLoader(s, 10, 42)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.BatchesPerEpoch() != 10 || l.BatchSize() != 10 {
		t.Fatalf("batches per epoch %d", l.BatchesPerEpoch())
	}
	perm := make([]int, 103)
	for e := 0; e < 3; e++ {
		rng.Permutation(perm, rng.Key{Seed: 42, Stream: rng.StreamShuffle, Seq: uint64(e)})
		seen := map[int]bool{}
		for i := 0; i < 10; i++ {
			b, err := l.Next()
			if err != nil {
				t.Fatal(err)
			}
			if b.Epoch != e || b.Index != i || len(b.X) != 10*1024 || len(b.Labels) != 10 {
				t.Fatalf("batch (%d, %d): got (%d, %d), %d floats", e, i, b.Epoch, b.Index, len(b.X))
			}
			for j := 0; j < 10; j++ {
				k := batchIndex(b, j, 1024)
				if k != perm[i*10+j] || b.Labels[j] != uint8(k%10) || seen[k] {
					t.Fatalf("epoch %d batch %d image %d: index %d label %d, want %d", e, i, j, k, b.Labels[j], perm[i*10+j])
				}
				seen[k] = true
				// Every pixel is scaled as PyTorch scales it.
				for p := 2; p < 1024; p++ {
					if b.X[j*1024+p] != scaleLUT[s.Images[k*1024+p]] {
						t.Fatalf("pixel %d of image %d scaled wrong", p, k)
					}
				}
			}
			l.Release(b)
		}
		if len(seen) != 100 {
			t.Fatalf("epoch %d: %d distinct images", e, len(seen))
		}
	}
}

func TestLoaderScaleRange(t *testing.T) {
	if scaleLUT[0] != -1 || scaleLUT[255] != 1 {
		t.Fatalf("0 → %v, 255 → %v", scaleLUT[0], scaleLUT[255])
	}
	for v := 1; v < 256; v++ {
		if !(scaleLUT[v] > scaleLUT[v-1]) {
			t.Fatalf("not increasing at %d", v)
		}
	}
}

func TestLoaderDeterministic(t *testing.T) {
	s := synthSet(257, 3)
	var runs [][]snap
	for _, tc := range []struct {
		prefetch int
		slow     bool
	}{{1, false}, {3, true}, {8, false}, {2, true}} {
		l, err := NewLoader(s, 16, 7, WithPrefetch(tc.prefetch))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, take(t, l, 40, tc.slow))
		l.Close()
	}
	for _, r := range runs[1:] {
		sameSnaps(t, runs[0], r)
	}
	// Another seed gives another order.
	l, _ := NewLoader(s, 16, 8)
	other := take(t, l, 1, false)
	l.Close()
	if string(other[0].labels) == string(runs[0][0].labels) && other[0].x[0] == runs[0][0].x[0] {
		t.Error("seeds 7 and 8 gave the same first batch")
	}
}

func TestLoaderSeek(t *testing.T) {
	s := synthSet(100, 1)
	l, err := NewLoader(s, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	all := take(t, l, 40, false) // 12 batches per epoch: into epoch 3
	for _, pos := range [][2]int{{0, 0}, {1, 5}, {2, 11}, {0, 3}, {3, 0}} {
		// Hold a batch across the seek: it stays valid and can be released.
		held, err := l.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Seek(pos[0], pos[1]); err != nil {
			t.Fatal(err)
		}
		got := take(t, l, 4, false)
		l.Release(held)
		k := pos[0]*12 + pos[1]
		sameSnaps(t, all[k:k+4], got)
	}
	for _, bad := range [][2]int{{-1, 0}, {0, -1}, {0, 12}} {
		if err := l.Seek(bad[0], bad[1]); err == nil {
			t.Errorf("Seek%v: no error", bad)
		}
	}
	// A fresh loader seeked to a position agrees too.
	l2, _ := NewLoader(s, 8, 3)
	defer l2.Close()
	if err := l2.Seek(2, 7); err != nil {
		t.Fatal(err)
	}
	sameSnaps(t, all[31:35], take(t, l2, 4, false))
}

func TestLoaderWithBuffers(t *testing.T) {
	s := synthSet(50, 1)
	var mu sync.Mutex
	var given [][]float32
	alloc := func(n int) []float32 {
		mu.Lock()
		defer mu.Unlock()
		b := make([]float32, n+5)
		given = append(given, b)
		return b
	}
	l, err := NewLoader(s, 4, 1, WithBuffers(alloc), WithPrefetch(2))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if len(given) != 2 {
		t.Fatalf("alloc called %d times", len(given))
	}
	for i := 0; i < 6; i++ {
		b, err := l.Next()
		if err != nil {
			t.Fatal(err)
		}
		if len(b.X) != 4*1024 || (&b.X[0] != &given[0][0] && &b.X[0] != &given[1][0]) {
			t.Fatal("batch memory is not from WithBuffers")
		}
		l.Release(b)
	}
	if _, err := NewLoader(s, 4, 1, WithBuffers(func(n int) []float32 { return make([]float32, n-1) })); err == nil {
		t.Error("short buffers: no error")
	}
}

func TestLoaderBadArgs(t *testing.T) {
	s := synthSet(10, 1)
	for _, batch := range []int{0, -1, 11} {
		if _, err := NewLoader(s, batch, 0); err == nil {
			t.Errorf("batch %d: no error", batch)
		}
	}
	if _, err := NewLoader(s, 2, 0, WithPrefetch(0)); err == nil {
		t.Error("prefetch 0: no error")
	}
	bad := *s
	bad.Labels = bad.Labels[:3]
	if _, err := NewLoader(&bad, 2, 0); err == nil {
		t.Error("invalid set: no error")
	}
	if _, err := NewLoader(nil, 2, 0); err == nil {
		t.Error("nil set: no error")
	}
}

func TestLoaderCloseAndRelease(t *testing.T) {
	before := runtime.NumGoroutine()
	s := synthSet(64, 1)
	var loaders []*Loader
	for i := 0; i < 20; i++ {
		l, err := NewLoader(s, 8, uint64(i), WithPrefetch(1+i%4))
		if err != nil {
			t.Fatal(err)
		}
		loaders = append(loaders, l)
		if i%2 == 0 {
			b, _ := l.Next()
			l.Release(b)
			l.Release(b)   // twice: ignored
			l.Release(nil) // ignored
		}
	}
	// Batches from another loader are ignored.
	b, _ := loaders[1].Next()
	loaders[0].Release(b)
	// Close while a consumer waits: Next returns ErrClosed.
	l := loaders[3]
	var held []*Batch
	for i := 0; i < 4; i++ { // prefetch 4: take every buffer
		b, err := l.Next()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, b)
	}
	done := make(chan error)
	go func() {
		_, err := l.Next()
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	for _, l := range loaders {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l.Close() // idempotent
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Next after Close: %v", err)
	}
	for _, b := range held {
		l.Release(b) // after Close: harmless
	}
	if _, err := l.Next(); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	if err := l.Seek(0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Seek after Close: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after closing:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestLoaderNoAllocs(t *testing.T) {
	s := synthSet(200, 1)
	l, err := NewLoader(s, 16, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Warm up past the first epoch boundary.
	take(t, l, 15, false)
	allocs := testing.AllocsPerRun(100, func() { // crosses several epochs
		b, err := l.Next()
		if err != nil {
			panic(err)
		}
		l.Release(b)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
}

func TestSetHelpers(t *testing.T) {
	s := synthSet(5, 3)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(s.Image(4)) != 3072 || s.Image(5) != nil || s.Image(-1) != nil {
		t.Error("Image bounds")
	}
	sub := s.Subset(2)
	if sub.N != 2 || len(sub.Images) != 2*3072 || len(sub.Labels) != 2 || sub.Validate() != nil {
		t.Errorf("Subset(2): %+v", sub)
	}
	if s.Subset(99).N != 5 || s.Subset(-3).N != 0 {
		t.Error("Subset clamps")
	}
	bad := []func(s *Set){
		func(s *Set) { s.C = 0 },
		func(s *Set) { s.N = 6 },
		func(s *Set) { s.Images = s.Images[:10] },
		func(s *Set) { s.Labels = s.Labels[:4] },
		func(s *Set) { s.Labels[2] = 10 },
		func(s *Set) { s.Classes = nil },
		func(s *Set) { s.H = 1 << 40; s.W = 1 << 40 },
	}
	for i, f := range bad {
		c := synthSet(5, 3)
		f(c)
		if c.Validate() == nil {
			t.Errorf("case %d: no error", i)
		}
	}
	var nilSet *Set
	if nilSet.Validate() == nil {
		t.Error("nil set")
	}
	names := Names()
	if !sort.StringsAreSorted(names) || len(names) != 6 {
		t.Errorf("Names() = %v", names)
	}
}

// BenchmarkLoader: batch 64 of an MNIST-sized set (60,000 synthetic 1×32×32
// images), through Next and Release.
func BenchmarkLoader(b *testing.B) {
	s := synthSet(60000, 1)
	l, err := NewLoader(s, 64, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt, err := l.Next()
		if err != nil {
			b.Fatal(err)
		}
		l.Release(bt)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/batch")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
}
