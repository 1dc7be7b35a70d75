package metrics

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// A TensorBoard event file is a sequence of TFRecords:
//
//	uint64 length (little-endian)
//	uint32 masked CRC-32C of the 8 length bytes
//	length bytes of data: one serialized tensorflow.Event protobuf
//	uint32 masked CRC-32C of the data
//
// The Event messages are encoded by hand; only the fields pad writes exist:
//
//	Event      { double wall_time = 1; int64 step = 2;
//	             string file_version = 3; Summary summary = 5;
//	             SessionLog session_log = 6; }
//	Summary    { repeated Value value = 1; }
//	Value      { string tag = 1; float simple_value = 2; }
//	SessionLog { SessionStatus status = 1; }  // START = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC returns the masked CRC-32C TFRecords store: the CRC rotated
// right by 15 bits plus 0xa282ead8.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

func appendTag(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field)<<3|uint64(wire))
}

func appendBytesField(b []byte, field int, data []byte) []byte {
	b = appendTag(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

// Scalar is one TensorBoard scalar: a tag such as "train/wake_rec" and its
// value.
type Scalar struct {
	// Tag names the curve, e.g. "train/wake_rec".
	Tag string
	// Value is the scalar's value at the event's step.
	Value float32
}

// encodeEvent serializes a tensorflow.Event holding the wall time, the step
// and either the file version (when version is not empty) or a summary of
// the scalars.
func encodeEvent(wall float64, step int64, version string, scalars []Scalar) []byte {
	b := eventHeader(wall, step)
	if version != "" {
		b = appendBytesField(b, 3, []byte(version))
	}
	if len(scalars) > 0 {
		var summary, value []byte
		for _, s := range scalars {
			value = appendBytesField(value[:0], 1, []byte(s.Tag))
			value = appendTag(value, 2, wireFixed32)
			value = binary.LittleEndian.AppendUint32(value, math.Float32bits(s.Value))
			summary = appendBytesField(summary, 1, value)
		}
		b = appendBytesField(b, 5, summary)
	}
	return b
}

// sessionStart is SessionLog.SessionStatus START.
const sessionStart = 1

// encodeSessionStart serializes a tensorflow.Event at step holding a
// SessionLog with status START.
func encodeSessionStart(wall float64, step int64) []byte {
	log := appendTag(nil, 1, wireVarint)
	log = binary.AppendUvarint(log, sessionStart)
	return appendBytesField(eventHeader(wall, step), 6, log)
}

// eventHeader serializes the fields every tensorflow.Event pad writes
// starts with: the wall time and the step.
func eventHeader(wall float64, step int64) []byte {
	b := appendTag(nil, 1, wireFixed64)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(wall))
	b = appendTag(b, 2, wireVarint)
	return binary.AppendUvarint(b, uint64(step)) // int64: two's complement, as protobuf does
}

// frameRecord wraps data in a TFRecord frame.
func frameRecord(data []byte) []byte {
	b := make([]byte, 0, len(data)+16)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = binary.LittleEndian.AppendUint32(b, maskedCRC(b[:8]))
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, maskedCRC(data))
}

// EventFile writes TensorBoard scalars to an event file. Every event goes
// to the file in one write as soon as it is made, so TensorBoard sees it
// at once. An EventFile is safe for concurrent use.
type EventFile struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// CreateEventFile creates events.out.tfevents.<unix seconds>.<hostname>.pad
// in dir (with a numeric suffix when that name is taken) and writes the
// file-version event that starts every event file.
func CreateEventFile(dir string) (*EventFile, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' {
			return '_'
		}
		return r
	}, host)
	now := time.Now()
	base := fmt.Sprintf("events.out.tfevents.%d.%s.pad", now.Unix(), host)
	var f *os.File
	path := filepath.Join(dir, base)
	for i := 1; ; i++ {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			break
		}
		if !os.IsExist(err) || i >= 1000 {
			return nil, fmt.Errorf("metrics: creating event file in %s: %w", dir, err)
		}
		path = filepath.Join(dir, fmt.Sprintf("%s%d", base, i+1))
	}
	e := &EventFile{f: f, path: path}
	if err := e.write(encodeEvent(wallTime(now), 0, "brain.Event:2", nil)); err != nil {
		f.Close()
		return nil, err
	}
	return e, nil
}

// wallTime returns t as fractional seconds since the Unix epoch.
func wallTime(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Path returns the event file's path.
func (e *EventFile) Path() string { return e.path }

func (e *EventFile) write(event []byte) error {
	if e.f == nil {
		return fmt.Errorf("metrics: event file %s is closed", e.path)
	}
	if _, err := e.f.Write(frameRecord(event)); err != nil {
		return fmt.Errorf("metrics: writing %s: %w", e.path, err)
	}
	return nil
}

// WriteSessionStart writes an event with SessionLog START at step. A
// TensorBoard reading the run's event files in order discards, on meeting
// it, every point with a step of step or more read from the earlier files
// ("purge orphaned data", on by default): the points that a process which
// died after its last checkpoint logged and that the resumed run logs
// again.
func (e *EventFile) WriteSessionStart(step int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.write(encodeSessionStart(wallTime(time.Now()), step))
}

// WriteScalars writes one event holding the scalars at the given step,
// stamped with the current wall time. It writes nothing for no scalars.
func (e *EventFile) WriteScalars(step int64, scalars []Scalar) error {
	if len(scalars) == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.write(encodeEvent(wallTime(time.Now()), step, "", scalars))
}

// Sync commits the file to stable storage.
func (e *EventFile) Sync() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f == nil {
		return nil
	}
	if err := e.f.Sync(); err != nil {
		return fmt.Errorf("metrics: syncing %s: %w", e.path, err)
	}
	return nil
}

// Close closes the file; later writes return an error.
func (e *EventFile) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f == nil {
		return nil
	}
	err := e.f.Close()
	e.f = nil
	if err != nil {
		return fmt.Errorf("metrics: closing %s: %w", e.path, err)
	}
	return nil
}
