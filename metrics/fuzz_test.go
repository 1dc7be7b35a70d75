package metrics

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// sameMeasure compares two optional measures bit for bit, NaNs being equal.
func sameMeasure(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Float64bits(*a) == math.Float64bits(*b) || (math.IsNaN(*a) && math.IsNaN(*b))
}

// FuzzReadMetrics feeds fuzzed metrics.jsonl files to Read and to Open's
// repair of a torn last line. Read must name the file and line in its
// errors, allocate in proportion to its input, and return records that
// survive a round trip; Open must leave whole lines, never touching
// anything but the last line.
func FuzzReadMetrics(f *testing.F) {
	var seed bytes.Buffer
	for _, r := range []Record{
		{Kind: KindTrain, Epoch: 0, Iter: 25, Time: 1.5, WakeRec: F(0.25), NREMRec: F(1e-5), KL: F(3), DLoss: F(1.38), GLoss: F(-0.69), DX: F(0.5), DGZ: F(0.49), LatentNorm: F(0.1), ItPerSec: F(140)},
		{Kind: KindEpoch, Epoch: 1, Iter: 125, Time: 9, WakeRec: F(math.NaN()), KL: F(math.Inf(1)), DLoss: F(math.Inf(-1))},
		{Kind: KindProbe, Epoch: 1, Iter: 125, TrainAcc: F(80.5), TestAcc: F(79), TestAccAll: F(78.9)},
		{Kind: KindOcclusion, Epoch: 3, P: F(0.3), Tile: 4, TestAcc: F(60)},
		{Kind: KindLatent, Epoch: 3, IntraInter: F(0.8), OccInter: F(0.5)},
	} {
		line, err := r.MarshalJSON()
		if err != nil {
			f.Fatal(err)
		}
		seed.Write(line)
		seed.WriteByte('\n')
	}
	whole := seed.Bytes()
	f.Add(whole)
	f.Add(whole[:len(whole)-7])
	f.Add(append(bytes.Clone(whole[:len(whole)-1]), "\n\n  \n"...))
	f.Add([]byte(`{"kind":"train","iter":1e400}` + "\n"))
	f.Add([]byte(`{"kind":"train","wake_rec":"Infinity","kl":null,"x":[1,2]}` + "\n[]\n"))
	f.Add([]byte("{}\n{}\n{}"))
	path := filepath.Join(testkit.ScratchDir(f), FileName)
	f.Fuzz(func(t *testing.T, b []byte) {
		var recs []Record
		var skipped int
		var err error
		alloc := testkit.HeapAllocated(func() { recs, skipped, err = Read(bytes.NewReader(b), "fuzz.jsonl") })
		if limit := 1024*uint64(len(b)) + 1<<20; alloc > limit {
			t.Fatalf("%d bytes made Read allocate %d bytes", len(b), alloc)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "metrics: fuzz.jsonl:") {
				t.Fatalf("error does not name the file and line: %v", err)
			}
		} else {
			if skipped != 0 && skipped != 1 {
				t.Fatalf("skipped = %d", skipped)
			}
			for i, r := range recs {
				line, err := r.MarshalJSON()
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				var back Record
				if err := back.UnmarshalJSON(line); err != nil {
					t.Fatalf("record %d: reading back %s: %v", i, line, err)
				}
				same := back.Kind == r.Kind && back.Epoch == r.Epoch && back.Iter == r.Iter && back.Tile == r.Tile &&
					sameMeasure(&back.Time, &r.Time)
				bm, rm := back.measures(), r.measures()
				for j := range bm {
					same = same && sameMeasure(*bm[j].ptr, *rm[j].ptr)
				}
				if !same {
					t.Fatalf("record %d changed in a round trip: %s", i, line)
				}
			}
		}

		// Open's repair of the tail, on the same bytes as a metrics.jsonl
		// (repairTail directly: Open would also create an event file and
		// sync both, which makes fuzzing a hundred times slower).
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		file, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		dropped, err := repairTail(file, path)
		file.Close()
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("repairTail: error does not name the file: %v", err)
			}
			return
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cut := bytes.LastIndexByte(b, '\n') + 1
		switch {
		case bytes.Equal(got, b) && (len(b) == 0 || b[len(b)-1] == '\n'):
		case bytes.Equal(got, b[:cut]) && dropped == len(b)-cut:
		case bytes.Equal(got, append(bytes.Clone(b), '\n')):
		default:
			t.Fatalf("repairTail turned %q into %q", b, got)
		}
	})
}
