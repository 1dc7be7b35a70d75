// Package gemm is pad's single-precision matrix multiply for the CPU
// backend: C = alpha·op(A)·op(B) + beta·C on row-major matrices, spread over
// a fixed number of threads.
package gemm

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Gemm multiplies matrices using a fixed number of threads.
type Gemm struct {
	threads int
	impl    gonum.Implementation
}

// New returns a Gemm that uses up to threads threads (at least 1).
func New(threads int) *Gemm {
	if threads < 1 {
		threads = 1
	}
	return &Gemm{threads: threads}
}

// Threads returns the number of threads g uses.
func (g *Gemm) Threads() int { return g.threads }

// Sgemm computes C = alpha·op(A)·op(B) + beta·C, where op(X) is X or Xᵀ
// (transA, transB), op(A) is m×k, op(B) is k×n and C is m×n; all matrices
// are row-major with leading dimensions lda, ldb, ldc.
func (g *Gemm) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	g.impl.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
