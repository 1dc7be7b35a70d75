package eval

import (
	"bufio"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/pad-dreaming/pad/metrics"
)

// plotDPI is the resolution of the PNG figures.
const plotDPI = 150

// palette is the "tab10" colour cycle: one colour per class or curve.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0xd6, 0x27, 0x28, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
	{0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff}, {0xbc, 0xbd, 0x22, 0xff},
	{0x17, 0xbe, 0xcf, 0xff},
}

// colorAt returns colour i of the palette, cycling.
func colorAt(i int) color.RGBA { return palette[i%len(palette)] }

// renderPNG draws a w×h figure with fn and writes it to path as a PNG.
// gonum/plot reports a few misuses by panicking; they become errors.
func renderPNG(path string, w, h vg.Length, fn func(dc draw.Canvas) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plot: %s: %v", path, r)
		}
	}()
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(plotDPI))
	if err := fn(draw.New(c)); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	bw := bufio.NewWriter(f)
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(bw); err != nil {
		f.Close()
		return fmt.Errorf("plot: writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("plot: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot: closing %s: %w", path, err)
	}
	return nil
}

// newPlot returns a plot with a title and axis labels in pad's style.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Label.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.TextStyle.Font.Size = vg.Points(11)
	p.X.Tick.Marker = shortTicks{}
	p.Y.Tick.Marker = shortTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// shortTicks are gonum/plot's default ticks labelled in their shortest
// decimal form ("25" rather than "25.00").
type shortTicks struct{}

// Ticks implements plot.Ticker.
func (shortTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(math.Round(t.Value*1e9)/1e9, 'f', -1, 64)
		}
	}
	return ticks
}

// drawWithSideLegend draws p on the left of dc and the legend l in a
// column on its right.
func drawWithSideLegend(dc draw.Canvas, p *plot.Plot, l plot.Legend) {
	l.Top, l.Left = true, true
	r := l.Rectangle(dc)
	legendW := r.Max.X - r.Min.X + vg.Points(16)
	if maxW := (dc.Max.X - dc.Min.X) / 2; legendW > maxW {
		legendW = maxW
	}
	plotArea := dc
	plotArea.Max.X -= legendW
	p.Draw(plotArea)
	legendArea := dc
	legendArea.Min.X = plotArea.Max.X + vg.Points(8)
	legendArea.Max.Y -= vg.Points(36) // below the title
	l.Draw(legendArea)
}

// newSideLegend returns an empty legend with pad's text size.
func newSideLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font.Size = vg.Points(10)
	l.ThumbnailWidth = vg.Points(14)
	return l
}

// PlotPCA draws the first two principal coordinates of the latent codes:
// clean[i] as a filled dot and, when occluded is not nil, occluded[i] (the
// same image occluded) as an open ring, coloured by labels[i], with a
// legend naming the classes (classNames[c], or "class c" where it is
// missing). The figure is written to path as a PNG.
func PlotPCA(path string, clean, occluded [][2]float64, labels []uint8, classNames []string) error {
	if len(clean) == 0 {
		return fmt.Errorf("plot: %s: no points", path)
	}
	if len(labels) != len(clean) {
		return fmt.Errorf("plot: %s: %d labels for %d points", path, len(labels), len(clean))
	}
	if occluded != nil && len(occluded) != len(clean) {
		return fmt.Errorf("plot: %s: %d occluded points for %d clean ones", path, len(occluded), len(clean))
	}
	var byClass [256]plotter.XYs
	var occByClass [256]plotter.XYs
	for i, pt := range clean {
		if !finite2(pt) || (occluded != nil && !finite2(occluded[i])) {
			return fmt.Errorf("plot: %s: point %d is not finite", path, i)
		}
		l := labels[i]
		byClass[l] = append(byClass[l], plotter.XY{X: pt[0], Y: pt[1]})
		if occluded != nil {
			occByClass[l] = append(occByClass[l], plotter.XY{X: occluded[i][0], Y: occluded[i][1]})
		}
	}
	title := "PCA of the latent codes"
	if occluded != nil {
		title += " (dots: clean, rings: occluded)"
	}
	p := newPlot(title, "PC 1", "PC 2")
	l := newSideLegend()
	const radius = 1.6
	for c := range byClass {
		if len(byClass[c]) == 0 {
			continue
		}
		col := colorAt(c)
		s, err := plotter.NewScatter(byClass[c])
		if err != nil {
			return fmt.Errorf("plot: %s: %w", path, err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(radius), Shape: draw.CircleGlyph{}}
		p.Add(s)
		name := fmt.Sprintf("class %d", c)
		if c < len(classNames) && classNames[c] != "" {
			name = classNames[c]
		}
		l.Add(name, s)
	}
	if occluded != nil {
		for c := range occByClass {
			if len(occByClass[c]) == 0 {
				continue
			}
			s, err := plotter.NewScatter(occByClass[c])
			if err != nil {
				return fmt.Errorf("plot: %s: %w", path, err)
			}
			s.GlyphStyle = draw.GlyphStyle{Color: colorAt(c), Radius: vg.Points(radius + 0.6), Shape: draw.RingGlyph{}}
			p.Add(s)
		}
		gray := color.RGBA{0x40, 0x40, 0x40, 0xff}
		l.Add("clean", &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: gray, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}})
		l.Add("occluded", &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: gray, Radius: vg.Points(3), Shape: draw.RingGlyph{}}})
	}
	return renderPNG(path, 8*vg.Inch, 6*vg.Inch, func(dc draw.Canvas) error {
		drawWithSideLegend(dc, p, l)
		return nil
	})
}

func finite2(p [2]float64) bool {
	return !math.IsNaN(p[0]) && !math.IsInf(p[0], 0) && !math.IsNaN(p[1]) && !math.IsInf(p[1], 0)
}

// lossPanel is one panel of PlotLosses: a title and the measures drawn.
type lossPanel struct {
	title  string
	series []lossSeries
}

type lossSeries struct {
	name string
	get  func(r metrics.Record) *float64
}

// PlotLosses draws the paper's loss figure (Appendix 1) from the per-epoch
// records (Kind "epoch"; other kinds are ignored): one panel per measure
// against the epoch — discriminator loss, generator loss, Wake
// reconstruction, NREM reconstruction, KL divergence, and the
// discriminator outputs D(x) and D(G(z)) — leaving out the measures no
// record holds (a condition without REM has no adversarial losses).
func PlotLosses(path string, records []metrics.Record) error {
	var epochs []metrics.Record
	for _, r := range records {
		if r.Kind == metrics.KindEpoch {
			epochs = append(epochs, r)
		}
	}
	if len(epochs) == 0 {
		return fmt.Errorf("plot: %s: no per-epoch records", path)
	}
	panels := []lossPanel{
		{"Discriminator loss", []lossSeries{{"D loss", func(r metrics.Record) *float64 { return r.DLoss }}}},
		{"Generator loss", []lossSeries{{"G loss", func(r metrics.Record) *float64 { return r.GLoss }}}},
		{"Wake reconstruction", []lossSeries{{"Wake rec.", func(r metrics.Record) *float64 { return r.WakeRec }}}},
		{"NREM reconstruction", []lossSeries{{"NREM rec.", func(r metrics.Record) *float64 { return r.NREMRec }}}},
		{"KL divergence", []lossSeries{{"KL", func(r metrics.Record) *float64 { return r.KL }}}},
		{"Discriminator outputs", []lossSeries{
			{"D(x)", func(r metrics.Record) *float64 { return r.DX }},
			{"D(G(z))", func(r metrics.Record) *float64 { return r.DGZ }},
		}},
	}
	var plots []*plot.Plot
	for _, pn := range panels {
		p := newPlot(pn.title, "epoch", "")
		drawn := 0
		for si, s := range pn.series {
			var xys plotter.XYs
			for _, r := range epochs {
				if v := s.get(r); v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) {
					xys = append(xys, plotter.XY{X: float64(r.Epoch), Y: *v})
				}
			}
			if len(xys) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(xys)
			if err != nil {
				return fmt.Errorf("plot: %s: %s: %w", path, s.name, err)
			}
			col := colorAt(si)
			line.Color = col
			line.Width = vg.Points(1.5)
			points.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(2), Shape: draw.CircleGlyph{}}
			p.Add(line, points)
			if len(pn.series) > 1 {
				p.Legend.Add(s.name, line, points)
			}
			drawn++
		}
		if drawn > 0 {
			if len(pn.series) > 1 { // the discriminator outputs, in (0, 1)
				p.Y.Min, p.Y.Max = 0, 1
			}
			p.Legend.Top = true
			p.Legend.TextStyle.Font.Size = vg.Points(9)
			plots = append(plots, p)
		}
	}
	if len(plots) == 0 {
		return fmt.Errorf("plot: %s: the per-epoch records hold no losses", path)
	}
	cols := min(3, len(plots))
	rows := (len(plots) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, cols)
	}
	for i, p := range plots {
		grid[i/cols][i%cols] = p
	}
	w := vg.Length(cols) * 4 * vg.Inch
	h := vg.Length(rows) * 3.2 * vg.Inch
	return renderPNG(path, w, h, func(dc draw.Canvas) error {
		tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(18), PadY: vg.Points(18),
			PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(12)}
		canvases := plot.Align(grid, tiles, dc)
		for r := range grid {
			for c, p := range grid[r] {
				if p != nil {
					p.Draw(canvases[r][c])
				}
			}
		}
		return nil
	})
}

// Curve is one line of PlotAccuracy: Y against X, with an optional shaded
// band Y ± SEM.
type Curve struct {
	// Label names the curve in the legend.
	Label string
	// X and Y are the points, of equal length.
	X, Y []float64
	// SEM is the half-width of the band around Y; nil for no band.
	SEM []float64
}

// PlotLabels are the texts of an accuracy figure; empty fields take the
// defaults of PlotAccuracy.
type PlotLabels struct {
	Title, X, Y string
}

// PlotAccuracy draws accuracy curves (with their SEM bands) into a PNG.
// Empty labels default to "Linear probe accuracy", "epoch" and
// "test accuracy (%)"; PlotOcclusion reuses it with an occlusion x axis.
func PlotAccuracy(path string, curves []Curve, labels PlotLabels) error {
	if labels.Title == "" {
		labels.Title = "Linear probe accuracy"
	}
	if labels.X == "" {
		labels.X = "epoch"
	}
	if labels.Y == "" {
		labels.Y = "test accuracy (%)"
	}
	if len(curves) == 0 {
		return fmt.Errorf("plot: %s: no curves", path)
	}
	p := newPlot(labels.Title, labels.X, labels.Y)
	l := newSideLegend()
	for i, c := range curves {
		if err := c.check(); err != nil {
			return fmt.Errorf("plot: %s: curve %q: %w", path, c.Label, err)
		}
		col := colorAt(i)
		var thumbs []plot.Thumbnailer
		if c.SEM != nil {
			band := make(plotter.XYs, 0, 2*len(c.X))
			for j := range c.X {
				band = append(band, plotter.XY{X: c.X[j], Y: c.Y[j] + c.SEM[j]})
			}
			for j := len(c.X) - 1; j >= 0; j-- {
				band = append(band, plotter.XY{X: c.X[j], Y: c.Y[j] - c.SEM[j]})
			}
			poly, err := plotter.NewPolygon(band)
			if err != nil {
				return fmt.Errorf("plot: %s: curve %q: %w", path, c.Label, err)
			}
			poly.Color = color.RGBA{col.R / 4, col.G / 4, col.B / 4, 0x40} // premultiplied, alpha 1/4
			poly.LineStyle = draw.LineStyle{Color: color.Transparent}
			p.Add(poly)
			thumbs = append(thumbs, poly)
		}
		xys := make(plotter.XYs, len(c.X))
		for j := range c.X {
			xys[j] = plotter.XY{X: c.X[j], Y: c.Y[j]}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("plot: %s: curve %q: %w", path, c.Label, err)
		}
		line.Color = col
		line.Width = vg.Points(1.5)
		points.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(2), Shape: draw.CircleGlyph{}}
		p.Add(line, points)
		thumbs = append(thumbs, line, points)
		name := c.Label
		if name == "" {
			name = fmt.Sprintf("curve %d", i+1)
		}
		l.Add(name, thumbs...)
	}
	return renderPNG(path, 8*vg.Inch, 5*vg.Inch, func(dc draw.Canvas) error {
		drawWithSideLegend(dc, p, l)
		return nil
	})
}

// PlotOcclusion draws occlusion-robustness curves: probe accuracy against
// the occlusion probability p (PlotAccuracy with that x axis).
func PlotOcclusion(path string, curves []Curve) error {
	return PlotAccuracy(path, curves, PlotLabels{
		Title: "Accuracy on occluded test images",
		X:     "occlusion probability p",
	})
}

// check validates the lengths and values of a curve.
func (c Curve) check() error {
	if len(c.X) == 0 {
		return errors.New("no points")
	}
	if len(c.Y) != len(c.X) {
		return fmt.Errorf("%d x values, %d y values", len(c.X), len(c.Y))
	}
	if c.SEM != nil && len(c.SEM) != len(c.X) {
		return fmt.Errorf("%d x values, %d SEM values", len(c.X), len(c.SEM))
	}
	for j := range c.X {
		if bad(c.X[j]) || bad(c.Y[j]) || (c.SEM != nil && bad(c.SEM[j])) {
			return fmt.Errorf("point %d is not finite", j)
		}
	}
	return nil
}

func bad(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
