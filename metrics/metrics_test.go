package metrics

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestMaskedCRCKnownAnswers(t *testing.T) {
	cases := []struct {
		data []byte
		want uint32
	}{
		// CRC-32C("123456789") = 0xe3069283, masked: rotr15 + 0xa282ead8.
		{[]byte("123456789"), 0xc78ab0e5},
		// CRC-32C of 32 zero bytes = 0x8a9136aa (RFC 3720 B.4).
		{make([]byte, 32), 0x0fd7fffa},
		{nil, 0xa282ead8},
	}
	for _, c := range cases {
		if got := maskedCRC(c.data); got != c.want {
			t.Errorf("maskedCRC(%q) = %#08x, want %#08x", c.data, got, c.want)
		}
	}
}

func TestEncodeEventKnownBytes(t *testing.T) {
	got := encodeEvent(1.5, 3, "", []Scalar{{"a", 2}})
	want := []byte{
		0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // wall_time 1.5
		0x10, 0x03, // step 3
		0x2a, 0x0a, // summary, 10 bytes
		0x0a, 0x08, // value, 8 bytes
		0x0a, 0x01, 'a', // tag "a"
		0x15, 0, 0, 0, 0x40, // simple_value 2.0
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encodeEvent = % x\nwant          % x", got, want)
	}
	first := encodeEvent(0, 0, "brain.Event:2", nil)
	wantFirst := append([]byte{0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0x1a, 13}, "brain.Event:2"...)
	if !bytes.Equal(first, wantFirst) {
		t.Errorf("file-version event = % x, want % x", first, wantFirst)
	}
}

// --- a test-side decoder of event files ---

type decodedValue struct {
	tag   string
	value float32
}

type decodedEvent struct {
	wall    float64
	step    int64
	version string
	values  []decodedValue
}

// readFields splits one protobuf message into (field, wire, payload)
// triples; payload holds the varint value for wire type 0.
func readFields(b []byte, visit func(field, wire int, varint uint64, payload []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad key varint")
		}
		b = b[n:]
		field, wire := int(key>>3), int(key&7)
		switch wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
			if err := visit(field, wire, v, nil); err != nil {
				return err
			}
		case 1, 5:
			size := 8
			if wire == 5 {
				size = 4
			}
			if len(b) < size {
				return errors.New("short fixed field")
			}
			if err := visit(field, wire, 0, b[:size]); err != nil {
				return err
			}
			b = b[size:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errors.New("bad length")
			}
			if err := visit(field, wire, 0, b[n:n+int(l)]); err != nil {
				return err
			}
			b = b[n+int(l):]
		default:
			return fmt.Errorf("unexpected wire type %d", wire)
		}
	}
	return nil
}

func decodeEvent(b []byte) (decodedEvent, error) {
	var e decodedEvent
	err := readFields(b, func(field, wire int, v uint64, p []byte) error {
		switch {
		case field == 1 && wire == 1:
			e.wall = math.Float64frombits(binary.LittleEndian.Uint64(p))
		case field == 2 && wire == 0:
			e.step = int64(v)
		case field == 3 && wire == 2:
			e.version = string(p)
		case field == 5 && wire == 2:
			return readFields(p, func(field, wire int, _ uint64, p []byte) error {
				if field != 1 || wire != 2 {
					return fmt.Errorf("summary field %d wire %d", field, wire)
				}
				var dv decodedValue
				err := readFields(p, func(field, wire int, _ uint64, p []byte) error {
					switch {
					case field == 1 && wire == 2:
						dv.tag = string(p)
					case field == 2 && wire == 5:
						dv.value = math.Float32frombits(binary.LittleEndian.Uint32(p))
					default:
						return fmt.Errorf("value field %d wire %d", field, wire)
					}
					return nil
				})
				e.values = append(e.values, dv)
				return err
			})
		default:
			return fmt.Errorf("event field %d wire %d", field, wire)
		}
		return nil
	})
	return e, err
}

// crc32cTest is an independent bitwise CRC-32C (reflected polynomial
// 0x82f63b78), masked as TFRecords do.
func crc32cTest(b []byte) uint32 {
	c := ^uint32(0)
	for _, x := range b {
		c ^= uint32(x)
		for i := 0; i < 8; i++ {
			if c&1 != 0 {
				c = c>>1 ^ 0x82f63b78
			} else {
				c >>= 1
			}
		}
	}
	c = ^c
	return (c>>15 | c<<17) + 0xa282ead8
}

func decodeEventFile(t *testing.T, path string) []decodedEvent {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []decodedEvent
	for off := 0; off < len(data); {
		if len(data)-off < 12 {
			t.Fatalf("%s: truncated header at offset %d", path, off)
		}
		hdr := data[off : off+8]
		n := int(binary.LittleEndian.Uint64(hdr))
		if got := binary.LittleEndian.Uint32(data[off+8:]); got != crc32cTest(hdr) {
			t.Fatalf("%s: length CRC at offset %d: %#x, want %#x", path, off, got, crc32cTest(hdr))
		}
		off += 12
		if len(data)-off < n+4 {
			t.Fatalf("%s: truncated record at offset %d", path, off)
		}
		payload := data[off : off+n]
		if got := binary.LittleEndian.Uint32(data[off+n:]); got != crc32cTest(payload) {
			t.Fatalf("%s: data CRC at offset %d", path, off)
		}
		off += n + 4
		e, err := decodeEvent(payload)
		if err != nil {
			t.Fatalf("%s: event at offset %d: %v", path, off, err)
		}
		events = append(events, e)
	}
	return events
}

func TestWriterRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mnist-pad-s1")
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{Kind: KindTrain, Epoch: 0, Iter: 50, Time: 1.25, WakeRec: F(0.5), NREMRec: F(0), KL: F(0.01),
			DLoss: F(1.38), GLoss: F(-0.69), DX: F(0.5), DGZ: F(0.49), LatentNorm: F(16), ItPerSec: F(40)},
		{Kind: KindEpoch, Epoch: 1, Iter: 937, Time: 30, WakeRec: F(0.25), KL: F(math.NaN())},
		{Kind: KindProbe, Epoch: 1, Iter: 937, Time: 35, TrainAcc: F(93.5), TestAcc: F(94.25), TestAccAll: F(94.3)},
		{Kind: KindOcclusion, Epoch: 1, Iter: 937, P: F(0.3), Tile: 4, TestAcc: F(80), TestAccAll: F(80.5)},
		{Kind: KindOcclusion, Epoch: 1, Iter: 937, P: F(0), Tile: 8, TestAcc: F(94)},
		{Kind: KindLatent, Epoch: 1, Iter: 937, IntraInter: F(0.7), OccInter: F(0.4)},
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	evPath := w.EventPath()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(recs[0]); err == nil {
		t.Errorf("write after close: no error")
	}

	got, skipped, err := ReadFile(filepath.Join(dir, FileName))
	if err != nil || skipped != 0 {
		t.Fatalf("ReadFile: %v, skipped %d", err, skipped)
	}
	if len(got) != len(recs) {
		t.Fatalf("read %d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		a, _ := recs[i].MarshalJSON()
		b, _ := got[i].MarshalJSON()
		if !bytes.Equal(a, b) {
			t.Errorf("record %d: read back %s, want %s", i, b, a)
		}
	}
	if got[0].NREMRec == nil || *got[0].NREMRec != 0 {
		t.Errorf("a measured 0 was lost: %v", got[0].NREMRec)
	}
	if got[1].KL == nil || !math.IsNaN(*got[1].KL) || got[1].DLoss != nil {
		t.Errorf("NaN or nil measure not kept: KL %v, DLoss %v", got[1].KL, got[1].DLoss)
	}

	base := filepath.Base(evPath)
	host, _ := os.Hostname()
	if !strings.HasPrefix(base, "events.out.tfevents.") || !strings.Contains(base, ".pad") || (host != "" && !strings.Contains(base, host)) {
		t.Errorf("event file name %q", base)
	}
	events := decodeEventFile(t, evPath)
	if len(events) != 1+len(recs) {
		t.Fatalf("%d events, want %d", len(events), 1+len(recs))
	}
	if events[0].version != "brain.Event:2" || len(events[0].values) != 0 || events[0].wall < 1e9 {
		t.Errorf("first event %+v", events[0])
	}
	for _, e := range events[1:] {
		if e.version != "" {
			t.Errorf("file_version repeated in %+v", e)
		}
	}
	type want struct {
		step int64
		vals map[string]float32
	}
	wants := []want{
		{50, map[string]float32{"train/wake_rec": 0.5, "train/nrem_rec": 0, "train/kl": 0.01, "train/d_loss": 1.38,
			"train/g_loss": -0.69, "train/d_x": 0.5, "train/d_g_z": 0.49, "train/latent_norm": 16, "train/it_per_sec": 40}},
		{1, map[string]float32{"epoch/wake_rec": 0.25, "epoch/kl": float32(math.NaN())}},
		{1, map[string]float32{"probe/train_acc": 93.5, "probe/test_acc": 94.25, "probe/test_acc_all": 94.3}},
		{1, map[string]float32{"occlusion/p0.30": 80, "occlusion_all/p0.30": 80.5}},
		{1, map[string]float32{"occlusion_t8/p0.00": 94}},
		{1, map[string]float32{"latent/intra_inter": 0.7, "latent/occ_inter": 0.4}},
	}
	for i, wnt := range wants {
		e := events[i+1]
		if e.step != wnt.step {
			t.Errorf("event %d: step %d, want %d", i+1, e.step, wnt.step)
		}
		if len(e.values) != len(wnt.vals) {
			t.Errorf("event %d: %d values %+v, want %d", i+1, len(e.values), e.values, len(wnt.vals))
		}
		for _, v := range e.values {
			wv, ok := wnt.vals[v.tag]
			if !ok {
				t.Errorf("event %d: unexpected tag %q", i+1, v.tag)
				continue
			}
			if v.value != wv && !(math.IsNaN(float64(wv)) && math.IsNaN(float64(v.value))) {
				t.Errorf("event %d: %s = %v, want %v", i+1, v.tag, v.value, wv)
			}
		}
	}
}

func TestRecordJSONText(t *testing.T) {
	r := Record{Kind: KindOcclusion, Epoch: 0, Iter: 0, Time: 0, P: F(0), Tile: 4, TestAcc: F(12.5), KL: F(math.Inf(-1))}
	b, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"occlusion","epoch":0,"iter":0,"time":0,"kl":"-Inf","test_acc":12.5,"p":0,"tile":4}`
	if string(b) != want {
		t.Errorf("JSON %s\nwant %s", b, want)
	}
	var back Record
	if err := back.UnmarshalJSON([]byte(`{"kind":"probe","epoch":3,"test_acc":null,"train_acc":1e2,"future_field":[1]}`)); err != nil {
		t.Fatal(err)
	}
	if back.Kind != KindProbe || back.Epoch != 3 || back.TestAcc != nil || back.TrainAcc == nil || *back.TrainAcc != 100 {
		t.Errorf("decoded %+v", back)
	}
	for _, bad := range []string{`[1]`, `{"kl":"abc"}`, `{"epoch":"x"}`, `null`} {
		if err := back.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestReadFileTruncatedAndMalformed(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"kind":"train","epoch":0,"iter":1,"time":0.5,"kl":0.1}` + "\n"
	recs, skipped, err := ReadFile(write("trunc.jsonl", good+good+`{"kind":"train","epo`))
	if err != nil || skipped != 1 || len(recs) != 2 {
		t.Errorf("truncated last line: %d records, skipped %d, err %v", len(recs), skipped, err)
	}
	recs, skipped, err = ReadFile(write("nonl.jsonl", good+strings.TrimSuffix(good, "\n")))
	if err != nil || skipped != 0 || len(recs) != 2 {
		t.Errorf("whole last line without newline: %d records, skipped %d, err %v", len(recs), skipped, err)
	}
	recs, _, err = ReadFile(write("blank.jsonl", good+"\n  \n"+good))
	if err != nil || len(recs) != 2 {
		t.Errorf("blank lines: %d records, err %v", len(recs), err)
	}
	p := write("bad.jsonl", good+"{oops}\n"+good)
	if _, _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), p+":2") {
		t.Errorf("malformed line 2: error %v, want one naming %s:2", err, p)
	}
	p = write("badlast.jsonl", good+"{oops}\n")
	if _, _, err := ReadFile(p); err == nil {
		t.Errorf("malformed complete last line: no error")
	}
	if _, _, err := ReadFile(filepath.Join(dir, "missing.jsonl")); err == nil {
		t.Errorf("missing file: no error")
	}
}

func TestOpenRepairsPartialLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	good := `{"kind":"train","epoch":0,"iter":1,"time":0.5}` + "\n"
	partial := `{"kind":"train","epoch":0,"it`
	if err := os.WriteFile(path, []byte(good+partial), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if w.Dropped() != len(partial) {
		t.Errorf("Dropped = %d, want %d", w.Dropped(), len(partial))
	}
	if err := w.Write(Record{Kind: KindEpoch, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, skipped, err := ReadFile(path)
	if err != nil || skipped != 0 || len(recs) != 2 || recs[1].Kind != KindEpoch {
		t.Errorf("after repair: %d records, skipped %d, err %v", len(recs), skipped, err)
	}

	// A whole record without its newline is kept and terminated.
	if err := os.WriteFile(path, []byte(good+strings.TrimSuffix(good, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Record{Kind: KindEpoch, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	recs, _, err = ReadFile(path)
	if err != nil || len(recs) != 3 || w.Dropped() != 0 {
		t.Errorf("kept last record: %d records, dropped %d, err %v", len(recs), w.Dropped(), err)
	}
	// Two writers in the same second get distinct event files.
	w1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if w1.EventPath() == w2.EventPath() {
		t.Errorf("two writers share %s", w1.EventPath())
	}
	w1.Close()
	w2.Close()
}

func TestWriterConcurrent(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := w.Write(Record{Kind: KindTrain, Iter: g*1000 + i, KL: F(float64(i))}); err != nil {
					t.Error(err)
				}
			}
		}(g)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, skipped, err := ReadFile(filepath.Join(dir, FileName))
	if err != nil || skipped != 0 || len(recs) != 200 {
		t.Errorf("%d records, skipped %d, err %v", len(recs), skipped, err)
	}
	if n := len(decodeEventFile(t, w.EventPath())); n != 201 {
		t.Errorf("%d events, want 201", n)
	}
}

func TestCRCTableIsCastagnoli(t *testing.T) {
	data := []byte("pad dreams of tiles")
	if maskedCRC(data) != crc32cTest(data) {
		t.Errorf("maskedCRC disagrees with the bitwise reference")
	}
	c := crc32.Checksum(data, crc32.IEEETable)
	if maskedCRC(data) == (c>>15|c<<17)+0xa282ead8 {
		t.Errorf("maskedCRC uses the IEEE polynomial")
	}
}
