package doctor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pad-dreaming/pad/backend"
)

// relErr is ‖a − b‖ / ‖b‖ (‖a − b‖ when b is zero); NaN or a length
// mismatch gives +Inf.
func relErr(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	e := math.Sqrt(num)
	if den != 0 {
		e = math.Sqrt(num / den)
	}
	if math.IsNaN(e) {
		return math.Inf(1)
	}
	return e
}

// bitDiffs counts the values of a and b whose bits differ.
func bitDiffs(a, b []float32) int {
	if len(a) != len(b) {
		return max(len(a), len(b))
	}
	n := 0
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			n++
		}
	}
	return n
}

// fmtErr formats a relative error.
func fmtErr(e float64) string {
	switch {
	case e == 0:
		return "0"
	case math.IsInf(e, 1):
		return "inf"
	}
	return fmt.Sprintf("%.2g", e)
}

// fmtLimit formats a limit ("bit for bit" for 0).
func fmtLimit(l float64) string {
	if l == 0 {
		return "bit for bit"
	}
	return strconv.FormatFloat(l, 'g', 2, 64)
}

// caseResult compares a case's outputs with the reference's.
type caseResult struct {
	c      *opCase
	err    float64 // worst relative error over the outputs
	at     string  // the output it was found in
	diffs  int     // values whose bits differ, over all outputs
	values int
	fail   error // the device reported an error
}

func compareOutputs(c *opCase, got, want []output) caseResult {
	r := caseResult{c: c}
	if len(got) != len(want) {
		r.err, r.fail = math.Inf(1), fmt.Errorf("%d outputs, the reference has %d", len(got), len(want))
		return r
	}
	for i := range got {
		e := relErr(got[i].v, want[i].v)
		if e > r.err || r.at == "" {
			r.err, r.at = e, got[i].name
		}
		r.diffs += bitDiffs(got[i].v, want[i].v)
		r.values += len(want[i].v)
	}
	return r
}

// passes says whether a result is within the limit; a limit of 0 means
// bit for bit.
func (r caseResult) passes(limit float64) bool {
	if r.fail != nil {
		return false
	}
	if limit == 0 {
		return r.diffs == 0
	}
	return r.err <= limit
}

// opParity runs every case on the reference and on the device under test
// at each precision (the convolutions at every precision, the rest at the
// first), one case at a time, and emits one check per op and precision.
// It returns false when a backend could not be opened.
func (rn *runner) opParity() bool {
	start := time.Now()
	cases, err := buildCases(rn.o)
	if err != nil {
		rn.emit(Check{Name: "op parity", Status: Fail, Detail: err.Error(), Quick: true, Seconds: time.Since(start).Seconds()})
		return false
	}
	ref, err := rn.t.Reference()
	if err != nil {
		rn.emit(Check{Name: "op parity", Status: Fail, Detail: "the reference: " + err.Error(), Quick: true})
		return false
	}
	defer ref.Close()
	precisions := rn.t.Precisions
	if len(precisions) == 0 {
		precisions = []string{""}
	}
	duts := make([]backend.Backend, len(precisions))
	defer func() {
		for _, d := range duts {
			if d != nil {
				d.Close()
			}
		}
	}()
	for pi, prec := range precisions {
		v := rn.o.Configured
		v.Precision = prec
		if duts[pi], err = rn.t.Open(v); err != nil {
			name := "open " + rn.t.Kind
			if prec != "" {
				name += " " + prec
			}
			rn.emit(Check{Name: name, Status: Fail, Detail: err.Error(), Quick: true})
			return false
		}
	}
	rn.r.Backend = duts[0].Name()

	// The cases are sorted by op: each op's checks are emitted as soon as
	// its last case has run.
	var results [][]caseResult // per precision, of the current op
	var secs []float64
	flush := func() {
		for pi, res := range results {
			if len(res) == 0 {
				continue
			}
			name := "op " + res[0].c.check
			if len(precisions) > 1 && res[0].c.class == classConv {
				name += " " + precisions[pi]
			}
			c := opCheck(name, res, precisions[pi], rn.t.Ref64)
			c.Seconds = secs[pi]
			rn.emit(c)
		}
		results, secs = make([][]caseResult, len(duts)), make([]float64, len(duts))
	}
	flush()
	for i := range cases {
		c := &cases[i]
		if i > 0 && c.check != cases[i-1].check {
			flush()
		}
		t0 := time.Now()
		want, refErr := safeRun(c, ref)
		runs := 1
		if c.class == classConv {
			runs = len(duts) // only the convolutions depend on the precision
		}
		refSecs := time.Since(t0).Seconds() / float64(runs)
		for pi := 0; pi < runs; pi++ {
			t0 := time.Now()
			got, err := safeRun(c, duts[pi])
			var res caseResult
			switch {
			case refErr != nil:
				res = caseResult{c: c, err: math.Inf(1), fail: fmt.Errorf("the reference failed: %w", refErr)}
			case err != nil:
				res = caseResult{c: c, err: math.Inf(1), fail: err}
			default:
				res = compareOutputs(c, got, want)
			}
			results[pi] = append(results[pi], res)
			secs[pi] += time.Since(t0).Seconds() + refSecs
		}
	}
	flush()
	return true
}

// safeRun runs a case, turning a panic into an error.
func safeRun(c *opCase, b backend.Backend) (out []output, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.run(b)
}

// opCheck summarises the cases of one op: its worst relative error
// against its limit, and which shapes failed.
func opCheck(name string, results []caseResult, precision string, ref64 bool) Check {
	c := Check{Name: name, Status: Pass, Quick: true}
	worst := -1.0
	var worstRes caseResult
	var failed []string
	lim := 0.0
	for _, r := range results {
		l := r.c.limit(precision, ref64)
		// The check's limit is the loosest of its cases' (BiasAct mixes
		// exact and rounded activations).
		lim = max(lim, l)
		score := r.err
		if l > 0 {
			score = r.err / l
		} else if r.diffs > 0 {
			score = math.Inf(1)
		}
		if score > worst {
			worst, worstRes = score, r
		}
		if !r.passes(l) {
			c.Status = Fail
			failed = append(failed, describeFailure(r, l))
		}
	}
	c.Value = fmtErr(worstRes.err)
	c.Limit = fmtLimit(lim)
	if c.Status == Fail {
		if len(failed) > 3 {
			failed = append(failed[:3], fmt.Sprintf("and %d more", len(failed)-3))
		}
		c.Detail = fmt.Sprintf("%s differs from the reference: %s", strings.TrimPrefix(name, "op "), strings.Join(failed, "; "))
		return c
	}
	if worstRes.err == 0 && worstRes.diffs == 0 {
		c.Detail = fmt.Sprintf("%s, all bit for bit", plural(len(results), "shape"))
		return c
	}
	c.Detail = fmt.Sprintf("%s; worst %s", plural(len(results), "shape"), worstRes.c.what)
	if len(worstRes.c.ops) == 1 && worstRes.at != "" {
		c.Detail += " (" + worstRes.at + ")"
	}
	return c
}

func describeFailure(r caseResult, l float64) string {
	if r.fail != nil {
		return fmt.Sprintf("%s: %v", r.c.what, r.fail)
	}
	if l == 0 {
		return fmt.Sprintf("%s: %d of %d values differ (relative error %s), must be identical", r.c.what, r.diffs, r.values, fmtErr(r.err))
	}
	return fmt.Sprintf("%s: relative error %s in %s > %s", r.c.what, fmtErr(r.err), r.at, fmtLimit(l))
}

// plural returns "1 shape", "2 shapes".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
