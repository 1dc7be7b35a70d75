#!/usr/bin/env bash
# GPU checks of the CUDA backend on a machine with an NVIDIA GPU, as one
# script that exits non-zero if any step fails:
#   1. pad doctor --device cuda: libraries, kernel compile, every op against
#      the CPU, two iterations against the CPU float64 twin (graphs on and
#      off, one stream and two), 50 sample iterations, flat memory, a bench
#      line. This is the check a user runs; the binary carries it.
#   2. the Go GPU tests (bindings, kernels, the PyTorch fixtures on the GPU,
#      MNIST GPU vs CPU, memory over 2,000 iterations), with
#      PAD_REQUIRE_GPU=1 so that a library that does not load fails them
#      instead of skipping them;
#   3. pad bench beside the PyTorch peer (scripts/bench-gpu.sh).
# It prints a short table last; full logs go to $OUT (packed into one
# archive) or ./gpu-check-logs.
# PARTS=checks runs 1 and 2, PARTS=bench 1 (quick) and 3: each part fits in
# 10 minutes; both together may not.
#
# The machine needs no Go: build the bundle first with scripts/gpu-bundle.sh
# (make gpu-bundle): gzipped pad and test binaries in .dev/bin, MNIST in
# .dev/data/mnist, the peer in .dev/bench_torch.py.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/gpu-check-logs
[ -n "${OUT:-}" ] && out=/tmp/gpu-check-logs
mkdir -p "$out"
bin=/tmp/padbin
mkdir -p $bin
if ! ls "$root"/.dev/bin/*.gz > /dev/null 2>&1; then
  echo "gpu-check: no binaries in .dev/bin: run scripts/gpu-bundle.sh (make gpu-bundle) first" >&2
  exit 1
fi
for f in "$root"/.dev/bin/*.gz; do
  b="$bin/$(basename "$f" .gz)"
  gunzip -c "$f" > "$b" && chmod +x "$b"
done
parts=${PARTS:-all}
export PAD_KERNEL_CACHE=/tmp/pad-kernels PAD_MNIST="$root/.dev/data/mnist" PAD_REQUIRE_GPU=1
export XDG_CACHE_HOME=/tmp/pad-cache
summary=()
failed=0
step() { # name timeout command...
  local name=$1 to=$2; shift 2
  local t0
  t0=$(date +%s%N)
  ( cd "$root" && timeout "$to" "$@" ) > "$out/$name.log" 2>&1
  local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ $rc -ne 0 ] && failed=$((failed + 1))
  summary+=("$(printf '%-22s %-4s rc=%-3s %7d ms' "$name" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$rc" "$ms")")
  echo "== $name rc=$rc (${ms} ms)"; tail -n 40 "$out/$name.log"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.log" 2>&1
step info 60 $bin/pad info
if [ "$parts" != bench ]; then
  step doctor 400 $bin/pad doctor --device cuda
  step doctor-json 400 bash -c "$bin/pad doctor --device cuda --quick --json > '$out/doctor.json'"
  step cu 90 $bin/cu.test -test.v
  step kernels 120 bash -c "cd backend/cuda && $bin/cuda.test -test.v"
  step fixture 120 bash -c "cd phases && $bin/phases.test -test.v -test.run 'FixtureParity'"
  step mnist-gpu-cpu 240 bash -c "cd train && $bin/train.test -test.v -test.run 'MNISTGPUMatchesCPU|GPUMemoryIsFlat'"
else
  step doctor-quick 120 $bin/pad doctor --device cuda --quick
fi
if [ "$parts" != checks ]; then
  step bench 400 env OUT="$out" bash scripts/bench-gpu.sh $bin/pad .dev/bench_torch.py
fi
if [ -n "${OUT:-}" ]; then
  tar czf "$OUT/gpu-check-logs.tgz" -C "$out" .
fi
echo
echo "== checks that failed or skipped"
grep -h -- "--- FAIL\|--- SKIP\|^FAIL\| FAIL " "$out"/*.log | head -40
echo
echo "== doctor"
for f in "$out"/doctor.log "$out"/doctor-quick.log; do [ -f "$f" ] && tail -n 30 "$f"; done
[ -f "$out/bench.log" ] && { echo; echo "== bench"; sed -n '/^[0-9][0-9][0-9][0-9]-/,$p' "$out/bench.log"; }
echo
echo "== summary ($failed failed)"
for s in "${summary[@]}"; do echo "$s"; done
[ $failed -eq 0 ]
