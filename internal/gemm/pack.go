package gemm

// panelStride is the distance between packed micro-panels of width rows
// or columns and kc steps. The panels are spaced a cache line more than
// their size so that packing, which writes to many panels in turn, does
// not map them all to the same cache sets.
func panelStride(width, kc int) int { return width*kc + 16 }

// packA copies the mc×kc block of op(A) whose top-left element is
// op(A)(i0, p0) into dst as ⌈mc/mr⌉ micro-panels of mr = k.mr rows: panel
// q holds op(A)(i0+q·mr+r, p0+p) at dst[q·ps + p·mr + r] where ps =
// panelStride(mr, kc). Rows past mc are zero so that the micro-kernel can
// always compute full tiles.
func packA(dst, a []float32, lda int, trans bool, i0, mc, p0, kc int, k *kernel) {
	mr := k.mr
	ps := panelStride(mr, kc)
	q0 := 0
	if trans {
		// op(A)(i, p) = a[p*lda+i]: read each step's run of mc values in
		// one go and deal it out to the full panels.
		q0 = scatter(dst, ps, a, lda, p0*lda+i0, kc, mc/mr, mr, k)
	}
	for q := q0; q*mr < mc; q++ {
		rows := min(mr, mc-q*mr)
		d := dst[q*ps : q*ps+mr*kc]
		i := i0 + q*mr
		if trans {
			// op(A)(i, p) = a[p*lda+i]: each step is a contiguous run.
			copyInto(d, mr, a[p0*lda+i:(p0+kc-1)*lda+i+rows], lda, kc, rows, mr, k.copy)
			continue
		}
		// op(A)(i, p) = a[i*lda+p]: rows of a become columns of the panel.
		transposeInto(d, mr, a[i*lda+p0:(i+rows-1)*lda+p0+kc], lda, rows, kc, mr, k.transpose, k.tw)
	}
}

// packB copies the kc×nc block of op(B) whose top-left element is
// op(B)(p0, j0) into dst as ⌈nc/nr⌉ micro-panels of nr = k.nr columns:
// panel q holds op(B)(p0+p, j0+q·nr+c) at dst[q·ps + p·nr + c] where ps =
// panelStride(nr, kc). Columns past nc are zero.
func packB(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc int, k *kernel) {
	nr := k.nr
	ps := panelStride(nr, kc)
	q0 := 0
	if !trans {
		// op(B)(p, j) = b[p*ldb+j]: read each step's run of nc values in
		// one go and deal it out to the full panels.
		q0 = scatter(dst, ps, b, ldb, p0*ldb+j0, kc, nc/nr, nr, k)
	}
	for q := q0; q*nr < nc; q++ {
		cols := min(nr, nc-q*nr)
		d := dst[q*ps : q*ps+nr*kc]
		j := j0 + q*nr
		if !trans {
			// op(B)(p, j) = b[p*ldb+j]: each step is a contiguous run.
			copyInto(d, nr, b[p0*ldb+j:(p0+kc-1)*ldb+j+cols], ldb, kc, cols, nr, k.copy)
			continue
		}
		// op(B)(p, j) = b[j*ldb+p]: rows of b become columns of the panel,
		// tw at a time for the transposition.
		tw := k.tw
		if k.transpose == nil || nr%tw != 0 {
			transposeInto(d, nr, b[j*ldb+p0:(j+cols-1)*ldb+p0+kc], ldb, cols, kc, nr, nil, 0)
			continue
		}
		for h := 0; h < nr; h += tw {
			w := min(tw, max(0, cols-h))
			var src []float32
			if w > 0 {
				src = b[(j+h)*ldb+p0 : (j+h+w-1)*ldb+p0+kc]
			}
			transposeInto(d[h:], nr, src, ldb, w, kc, tw, k.transpose, tw)
		}
	}
}

// scatter packs panels full panels of width floats, ps apart, whose
// elements are contiguous runs of x: dst[q*ps + p*width + c] = x[off +
// p*ld + q*width + c], with k.scatter or k.copy where k has them, and
// returns the number of panels it packed (0 when k has neither).
func scatter(dst []float32, ps int, x []float32, ld, off, steps, panels, width int, k *kernel) int {
	if panels == 0 || steps == 0 {
		return 0
	}
	src := x[off : off+(steps-1)*ld+panels*width]
	_ = dst[(panels-1)*ps+width*steps-1]
	switch {
	case k.scatter != nil && (width == 8 || width == 16 || width == 32):
		k.scatter(dst, src, ld, ps, steps, panels, width)
	case k.copy != nil:
		for p := 0; p < steps; p++ {
			k.copy(dst[p*width:], ps, src[p*ld:], width, panels, width)
		}
	default:
		return 0
	}
	return panels
}

// copyInto sets d[i*ldd : i*ldd+width] = src[i*lds : i*lds+width] and
// clears d[i*ldd+width : i*ldd+fill] for i < count, using cp if not nil.
func copyInto(d []float32, ldd int, src []float32, lds int, count, width, fill int, cp copyFunc) {
	if count == 0 {
		return
	}
	_ = d[(count-1)*ldd+fill-1]
	_ = src[(count-1)*lds+width-1]
	if cp != nil {
		cp(d, ldd, src, lds, count, width)
	} else {
		for i := 0; i < count; i++ {
			copy(d[i*ldd:i*ldd+width], src[i*lds:i*lds+width])
		}
	}
	if width < fill {
		for i := 0; i < count; i++ {
			clear(d[i*ldd+width : i*ldd+fill])
		}
	}
}

// transposeInto sets d[p*ldd+r] = src[r*lds+p] for p < kc and r < rows,
// and d[p*ldd+r] = 0 for rows ≤ r < width, using tr (if not nil and width
// ≤ tw) for whole blocks of tw steps.
func transposeInto(d []float32, ldd int, src []float32, lds int, rows, kc, width int, tr transposeFunc, tw int) {
	p := 0
	if tr != nil && width <= tw && kc >= tw {
		blocks := kc / tw
		// tr reads src[r*lds : r*lds+tw·blocks] for r < rows and writes
		// d[p*ldd : p*ldd+width] for p < tw·blocks.
		_ = d[(tw*blocks-1)*ldd+width-1]
		if rows > 0 {
			_ = src[(rows-1)*lds+tw*blocks-1]
		}
		tr(d, ldd, src, lds, rows, blocks, width)
		p = tw * blocks
	}
	for r := 0; r < rows; r++ {
		s := src[r*lds+p : r*lds+kc]
		for i, v := range s {
			d[(p+i)*ldd+r] = v
		}
	}
	if rows < width {
		for ; p < kc; p++ {
			clear(d[p*ldd+rows : p*ldd+width])
		}
	}
}
