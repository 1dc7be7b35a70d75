//go:build amd64 && !purego

#include "textflag.h"

// The AVX2 loops of vec.go. Go's assembler takes the operands of a VEX
// instruction in reverse Intel order: VSUBPS Y1, Y0, Y2 is Y2 = Y0 − Y1.
// Every operation is a plain IEEE one (no FMA), in the order of the Go
// loops, so the bits are theirs.

// func adamAVX2(p, g, m, v []float32, c1, beta2, c2, eps, stepSize, bc2Sqrt float32)
TEXT ·adamAVX2(SB), NOSPLIT, $0-120
	MOVQ p_base+0(FP), DI
	MOVQ p_len+8(FP), CX
	MOVQ g_base+24(FP), SI
	MOVQ m_base+48(FP), R8
	MOVQ v_base+72(FP), R9
	VBROADCASTSS c1+96(FP), Y8
	VBROADCASTSS beta2+100(FP), Y9
	VBROADCASTSS c2+104(FP), Y10
	VBROADCASTSS eps+108(FP), Y11
	VBROADCASTSS stepSize+112(FP), Y12
	VBROADCASTSS bc2Sqrt+116(FP), Y13
	SHRQ $3, CX
	JZ adam_done
adam_loop:
	VMOVUPS (SI), Y0      // g
	VMOVUPS (R8), Y1      // m
	VSUBPS Y1, Y0, Y2     // g − m
	VMULPS Y2, Y8, Y2     // c1·(g − m)
	VADDPS Y2, Y1, Y1     // m + c1·(g − m)
	VMOVUPS Y1, (R8)
	VMOVUPS (R9), Y3      // v
	VMULPS Y3, Y9, Y3     // β2·v
	VMULPS Y0, Y10, Y4    // c2·g
	VMULPS Y0, Y4, Y4     // (c2·g)·g
	VADDPS Y4, Y3, Y3     // β2·v + (c2·g)·g
	VMOVUPS Y3, (R9)
	VSQRTPS Y3, Y5        // √v
	VDIVPS Y13, Y5, Y5    // √v / bc2Sqrt
	VADDPS Y11, Y5, Y5    // + eps
	VMULPS Y1, Y12, Y6    // stepSize·m
	VDIVPS Y5, Y6, Y6     // (stepSize·m) / denom
	VMOVUPS (DI), Y7
	VSUBPS Y6, Y7, Y7     // p − …
	VMOVUPS Y7, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ adam_loop
adam_done:
	VZEROUPPER
	RET

// func leakyAVX2(p []float32, bias, slope float32)
TEXT ·leakyAVX2(SB), NOSPLIT, $0-32
	MOVQ p_base+0(FP), DI
	MOVQ p_len+8(FP), CX
	VBROADCASTSS bias+24(FP), Y15
	VBROADCASTSS slope+28(FP), Y14
	VXORPS Y13, Y13, Y13
	SHRQ $3, CX
	JZ leaky_done
leaky_loop:
	VMOVUPS (DI), Y0
	VADDPS Y15, Y0, Y0          // x = p + bias
	VMULPS Y14, Y0, Y1          // x·slope
	VCMPPS $1, Y13, Y0, Y2      // x < 0 (ordered: false for NaN)
	VBLENDVPS Y2, Y1, Y0, Y0    // x < 0 ? x·slope : x
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	DECQ CX
	JNZ leaky_loop
leaky_done:
	VZEROUPPER
	RET

// func leakyBackwardAVX2(y, g []float32, slope float32)
TEXT ·leakyBackwardAVX2(SB), NOSPLIT, $0-52
	MOVQ y_base+0(FP), SI
	MOVQ y_len+8(FP), CX
	MOVQ g_base+24(FP), DI
	VBROADCASTSS slope+48(FP), Y14
	VXORPS Y13, Y13, Y13
	SHRQ $3, CX
	JZ back_done
back_loop:
	VMOVUPS (SI), Y0            // y
	VMOVUPS (DI), Y1            // g
	VMULPS Y14, Y1, Y2          // g·slope
	VCMPPS $2, Y13, Y0, Y3      // y ≤ 0 (ordered: false for NaN)
	VBLENDVPS Y3, Y2, Y1, Y1    // y ≤ 0 ? g·slope : g
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ back_loop
back_done:
	VZEROUPPER
	RET
