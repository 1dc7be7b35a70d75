#!/usr/bin/env bash
# The GEMM figures of README's Results: internal/gemm's SGEMM on the CPU
# backend's 13 shapes against gonum's pure-Go Sgemm, the micro-kernels
# alone, and the core clock, with the FP32 peak those imply.
#
# Usage: scripts/gemm-rates.sh        (make gemm-rates)
#
# Environment: BENCHTIME (default 5x; the Go -benchtime of the SGEMM runs).
#
# Every rate is 2·m·n·k floating-point operations per product (one
# multiply and one add per term), counted once, over either the wall time
# (GFLOP/s: what the two threads deliver together) or the process's CPU
# time (coreGFLOP/s: per busy core, much less disturbed by other processes
# on a shared machine). The clock comes from a chain of dependent integer
# operations timed the same two ways (BenchmarkClock).
set -euo pipefail

cd "$(dirname "$0")/.."
BENCHTIME=${BENCHTIME:-5x}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# summarize FILE CORES LANES prints the table and the peak from the
# benchmark lines in FILE.
summarize() {
	awk -v cores="$2" -v lanes="$3" '
function metric(unit,   i) { for (i = 3; i < NF; i++) if ($(i+1) == unit) return $i; return "" }
/^BenchmarkClock/ { g = metric("coreGHz"); if (g > ghz) ghz = g }
/^BenchmarkMicroKernel/ { r = metric("coreGFLOP/s"); if (r > micro) { micro = r; microname = $1 } }
/^BenchmarkSgemm/ {
	split($1, p, "/"); shape = p[2]; impl = p[3]; sub(/-[0-9]+$/, "", impl)
	wall[shape, impl] = metric("GFLOP/s"); core[shape, impl] = metric("coreGFLOP/s")
	if (!(shape in seen)) { seen[shape] = 1; order[++n] = shape }
}
function lo(a, b) { return a == "" || b < a ? b : a }
function hi(a, b) { return a == "" || b > a ? b : a }
END {
	printf "\nGFLOP/s by wall time (wall) and per busy core by CPU time (core); pad with %d threads, gonum with its own goroutines\n", cores
	printf "%-22s %9s %9s %9s %9s %8s %8s\n", "shape", "pad wall", "pad core", "gonum wall", "gonum core", "wall ×", "core ×"
	for (i = 1; i <= n; i++) {
		s = order[i]; pw = wall[s, "impl=pad"]; pc = core[s, "impl=pad"]; gw = wall[s, "impl=gonum"]; gc = core[s, "impl=gonum"]
		ratio = (gw > 0) ? sprintf("%.0f×", pw / gw) : "-"
		cratio = (gc > 0) ? sprintf("%.0f×", pc / gc) : "-"
		printf "%-22s %9.1f %9.1f %9.2f %9.2f %8s %8s\n", s, pw, pc, gw, gc, ratio, cratio
		wlo = lo(wlo, pw); whi = hi(whi, pw); clo = lo(clo, pc); chi = hi(chi, pc)
		if (gw > 0) { rlo = lo(rlo, pw / gw); rhi = hi(rhi, pw / gw) }
		if (gc > 0) { qlo = lo(qlo, pc / gc); qhi = hi(qhi, pc / gc) }
	}
	peak = cores * ghz * 2 * lanes * 2
	printf "\npad SGEMM: %.0f–%.0f GFLOP/s by wall time on %d threads (%.0f–%.0f× gonum); %.0f–%.0f GFLOP/s per busy core by CPU time (%.0f–%.0f× gonum per core)\n", wlo, whi, cores, rlo, rhi, clo, chi, qlo, qhi
	printf "clock (CPU time): %.2f GHz; best micro-kernel %s: %.0f GFLOP/s per core = %.1f FLOP per cycle\n", ghz, microname, micro, micro / ghz
	printf "FP32 peak with %d-lane FMA on 2 pipes (%d FLOP per cycle per core): %.0f GFLOP/s per core, %.0f GFLOP/s on %d cores\n", lanes, 4 * lanes, ghz * 4 * lanes, peak, cores
	printf "(a core that splits 512-bit operations in two, e.g. Zen 4, has half that peak: the micro-kernel line above says which)\n"
}' "$1"
}

echo "machine: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), load average $(cut -d' ' -f1-3 /proc/loadavg)"
go test ./internal/gemm -run '^$' -bench 'Clock' -benchtime 100x -count 3 | tee -a "$out" | grep '^Benchmark'
go test ./internal/gemm -run '^$' -bench 'MicroKernel' -benchtime 200000x | tee -a "$out" | grep '^Benchmark'
go test ./internal/gemm -run '^$' -bench 'Sgemm' -benchtime "$BENCHTIME" | tee -a "$out" | grep '^Benchmark'

lanes=8
if grep -qw avx512f /proc/cpuinfo; then lanes=16; fi
summarize "$out" "$(nproc)" "$lanes"
