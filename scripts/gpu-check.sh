#!/usr/bin/env bash
# GPU checks of the CUDA backend, run on a machine with an NVIDIA GPU:
# the bindings' self-tests, every custom kernel and cuDNN path against the
# CPU backend, the PyTorch fixture parity on the GPU, 200 MNIST iterations
# GPU vs CPU, memory over 2,000 iterations, and pad bench beside the
# PyTorch peer. It prints a short table last; full logs go to $OUT (or
# ./gpu-check-logs).
#
# The machine needs no Go: build the binaries elsewhere first, e.g.
#   mkdir -p .dev/bin && for p in internal/cu backend/cuda phases train; do
#     CGO_ENABLED=0 go test -c -ldflags='-s -w' -o bin/$(basename $p).test ./$p; done
#   CGO_ENABLED=0 go build -ldflags='-s -w' -o bin/pad ./cmd/pad
#   for f in bin/*; do gzip -c $f > .dev/bin/$(basename $f).gz; done
# and put MNIST in .dev/data/mnist and the peer (bench_torch.py) in .dev/.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/gpu-check-logs}
mkdir -p "$out"
bin=/tmp/padbin
mkdir -p $bin
for f in "$root"/.dev/bin/*.gz; do gunzip -c "$f" > $bin/$(basename "$f" .gz); chmod +x $bin/$(basename "$f" .gz); done
export PAD_KERNEL_CACHE=/tmp/pad-kernels PAD_MNIST="$root/.dev/data/mnist"
summary=()
step() { # name timeout command...
  local name=$1 to=$2; shift 2
  local t0=$(date +%s%N)
  ( cd "$root" && timeout "$to" "$@" ) > "$out/$name.log" 2>&1
  local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  summary+=("$(printf '%-22s rc=%-3s %7d ms' "$name" "$rc" "$ms")")
  echo "== $name rc=$rc (${ms} ms)"; tail -n 25 "$out/$name.log"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.log" 2>&1
step info 60 $bin/pad info
step cu 90 $bin/cu.test -test.v
step kernels 120 bash -c "cd backend/cuda && $bin/cuda.test -test.v"
step fixture 90 bash -c "cd phases && $bin/phases.test -test.v -test.run 'FixtureParity'"
step torch-fixture 90 python3 scripts/torch_fixture32.py testdata/fixtures
step mnist-gpu-cpu 240 bash -c "cd train && $bin/train.test -test.v -test.run 'MNISTGPUMatchesCPU|GPUMemoryIsFlat'"
for c in 3 1; do
  step bench-fp32-c$c 60 $bin/pad bench --device cuda --set device.precision=fp32 --channels $c --iters 200 --warmup 20
  step bench-tf32-c$c 60 $bin/pad bench --device cuda --channels $c --iters 200 --warmup 20
  step peer-c$c 150 python3 .dev/bench_torch.py --iters 200 --channels $c
done
echo
echo "== summary"
for s in "${summary[@]}"; do echo "$s"; done
grep -h "worst\|within\|ms/iteration\|per epoch\|peak memory\|s_per_epoch\|device  \|PASS\|FAIL" "$out"/*.log | grep -v "^=== RUN" | head -80
