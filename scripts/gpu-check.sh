#!/usr/bin/env bash
# GPU checks of the CUDA backend, run on a machine with an NVIDIA GPU:
# the bindings' self-tests, every custom kernel and cuDNN path against the
# CPU backend, the PyTorch fixture parity on the GPU, 200 MNIST iterations
# GPU vs CPU (with and without CUDA graphs), memory over 2,000 iterations,
# and pad bench beside the PyTorch peer (scripts/bench-gpu.sh). It prints a
# short table last; full logs go to $OUT (or ./gpu-check-logs).
# PARTS=checks runs only the parity and memory checks, PARTS=bench only the
# benchmarks (each part fits in 10 minutes; both together may not).
#
# The machine needs no Go: build the bundle first with scripts/gpu-bundle.sh
# (make gpu-bundle): gzipped pad and test binaries in .dev/bin, MNIST in
# .dev/data/mnist, the peer in .dev/bench_torch.py. The fixture parity
# test reads ../shared/fixtures or testdata/fixtures.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
# Logs go to a folder of their own; with $OUT set (a folder that comes
# back from the GPU machine, few files allowed) they are packed into one
# archive there at the end.
out=$root/gpu-check-logs
[ -n "${OUT:-}" ] && out=/tmp/gpu-check-logs
mkdir -p "$out"
bin=/tmp/padbin
mkdir -p $bin
for f in "$root"/.dev/bin/*.gz; do
  b="$bin/$(basename "$f" .gz)"
  gunzip -c "$f" > "$b" && chmod +x "$b"
done
parts=${PARTS:-all}
export PAD_KERNEL_CACHE=/tmp/pad-kernels PAD_MNIST="$root/.dev/data/mnist"
summary=()
step() { # name timeout command...
  local name=$1 to=$2; shift 2
  local t0
  t0=$(date +%s%N)
  ( cd "$root" && timeout "$to" "$@" ) > "$out/$name.log" 2>&1
  local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  summary+=("$(printf '%-22s rc=%-3s %7d ms' "$name" "$rc" "$ms")")
  echo "== $name rc=$rc (${ms} ms)"; tail -n 25 "$out/$name.log"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.log" 2>&1
step info 60 $bin/pad info
if [ "$parts" != bench ]; then
  step cu 90 $bin/cu.test -test.v
  step kernels 120 bash -c "cd backend/cuda && $bin/cuda.test -test.v"
  step fixture 120 bash -c "cd phases && $bin/phases.test -test.v -test.run 'FixtureParity'"
  step torch-fixture 90 python3 scripts/torch_fixture32.py testdata/fixtures
  step mnist-gpu-cpu 240 bash -c "cd train && $bin/train.test -test.v -test.run 'MNISTGPUMatchesCPU|GPUMemoryIsFlat'"
fi
if [ "$parts" != checks ]; then
  step bench 400 env OUT="$out" bash scripts/bench-gpu.sh $bin/pad .dev/bench_torch.py
fi
echo
echo "== summary"
for s in "${summary[@]}"; do echo "$s"; done
grep -h "worst\|ms/iteration\|graphs[=:]\|SKIP\|--- FAIL\|^FAIL\|^ok\|^PASS" "$out"/*.log | head -60
[ -f "$out/bench.log" ] && sed -n '/^[0-9][0-9][0-9][0-9]-/,$p' "$out/bench.log"
if [ -n "${OUT:-}" ]; then
  tar czf "$OUT/gpu-check-logs.tgz" -C "$out" .
fi
