package train

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pad-dreaming/pad/phases"
)

// ProgressMode says how a run shows its progress.
type ProgressMode int

const (
	// ProgressLines prints one plain line every train.log_every iterations
	// (for logs, pipes and cluster jobs).
	ProgressLines ProgressMode = iota
	// ProgressBar redraws one status line in place (for terminals), with
	// the plain lines' content printed at each log step above it.
	ProgressBar
	// ProgressNone prints nothing but notices.
	ProgressNone
)

type progress struct {
	w        io.Writer
	mode     ProgressMode
	epochs   int
	bpe      int
	maxIters int // train.max_iters (0 = no limit)
	start    time.Time
	startIt  int
	lastDraw time.Time
	drawn    bool
}

func newProgress(w io.Writer, mode ProgressMode, epochs, bpe, maxIters int) *progress {
	return &progress{w: w, mode: mode, epochs: epochs, bpe: bpe, maxIters: maxIters, start: time.Now(), startIt: -1}
}

// totalIters is the number of iterations of the whole run: every batch of
// every epoch, or train.max_iters when that is fewer.
func totalIters(epochs, bpe, maxIters int) int {
	total := epochs * bpe
	if maxIters > 0 && maxIters < total {
		total = maxIters
	}
	return total
}

// itersLeft is the number of iterations the run still does after pos.
func itersLeft(pos Position, epochs, bpe, maxIters int) int {
	left := epochs*bpe - (pos.Epoch*bpe + pos.Index)
	if maxIters > 0 {
		left = min(left, maxIters-pos.Iter)
	}
	return max(left, 0)
}

// timeLeft estimates the time the run still takes at itPerSec.
func timeLeft(pos Position, epochs, bpe, maxIters int, itPerSec float64) time.Duration {
	if !(itPerSec > 0) {
		return 0
	}
	return time.Duration(float64(itersLeft(pos, epochs, bpe, maxIters)) / itPerSec * float64(time.Second))
}

// eta formats a duration as h:mm:ss or m:ss.
func eta(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s < 0 {
		s = 0
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func (p *progress) rate(pos Position) (itPerSec float64, remaining time.Duration) {
	if p.startIt < 0 {
		return 0, 0
	}
	done := pos.Iter - p.startIt
	el := time.Since(p.start).Seconds()
	if done <= 0 || el <= 0 {
		return 0, 0
	}
	itPerSec = float64(done) / el
	return itPerSec, timeLeft(pos, p.epochs, p.bpe, p.maxIters, itPerSec)
}

// update is called after every iteration.
func (p *progress) update(pos Position, s [phases.NumStats]float32) {
	if p.startIt < 0 {
		p.startIt, p.start = pos.Iter-1, time.Now()
	}
	if p.mode != ProgressBar || time.Since(p.lastDraw) < 100*time.Millisecond {
		return
	}
	p.lastDraw = time.Now()
	total := totalIters(p.epochs, p.bpe, p.maxIters)
	done := total - itersLeft(pos, p.epochs, p.bpe, p.maxIters)
	const width = 24
	fill := 0
	if total > 0 {
		fill = width * done / total
	}
	r, left := p.rate(pos)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	fmt.Fprintf(p.w, "\r[%s] epoch %d/%d  batch %d/%d  %.2f it/s  ETA %s  rec %.4f  nrem %.4f  kl %.3f\x1b[K",
		bar, pos.Epoch+1, p.epochs, pos.Index, p.bpe, r, eta(left), s[phases.StatWakeRec], s[phases.StatNREM], s[phases.StatKL])
	p.drawn = true
}

// clear removes the status line so that a plain line can be printed.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// line prints the log step's means, as the reference prints them.
func (p *progress) line(pos Position, w window, itPerSec float64) {
	if p.mode == ProgressNone || w.n == 0 {
		return
	}
	p.clear()
	m := func(s phases.Stat) float64 { return w.sum[s] / float64(w.n) }
	_, left := p.rate(pos)
	fmt.Fprintf(p.w, "[%d/%d][%d/%d] it %d  %.2f it/s  ETA %s  Loss_D %.4f  Loss_G %.4f  wake_rec %.4f  nrem_rec %.4f  kl %.4f  D(x) %.4f  D(G(z)) %.4f  |z| %.3f\n",
		pos.Epoch+1, p.epochs, pos.Index, p.bpe, pos.Iter, itPerSec, eta(left),
		m(phases.StatReal)+m(phases.StatFake), -m(phases.StatFake), m(phases.StatWakeRec), m(phases.StatNREM),
		m(phases.StatKL), m(phases.StatDX), m(phases.StatDGZ), m(phases.StatLatentNorm))
}

// pause shows what the run does between iterations (probing, saving).
func (p *progress) pause(what string) {
	if p.mode == ProgressBar {
		p.clear()
		fmt.Fprintf(p.w, "%s…\x1b[K", what)
		p.drawn = true
	}
}

// probeStart says that a probe begins: a line of its own in lines mode,
// the status line in bar mode.
func (p *progress) probeStart(what string) {
	switch p.mode {
	case ProgressLines:
		fmt.Fprintf(p.w, "%s…\n", what)
	case ProgressBar:
		p.pause(what)
	}
}

// message prints a notice on its own line.
func (p *progress) message(s string) {
	p.clear()
	fmt.Fprintln(p.w, s)
}

func (p *progress) done() { p.clear() }
