#!/usr/bin/env bash
# pad bench and the PyTorch peer (bench_torch.py) in one invocation on a
# GPU machine, printed side by side: seconds per 50,000-image epoch and
# peak device memory, CIFAR-10 shape (C=3) and MNIST shape (C=1), batch 64,
# plus pad's batch-size scaling (64, 256, 1024). pad runs with CUDA graphs
# (the default) and without, with the weight gradients on a second stream
# (the default) and on one, in TF32 (the default, as the peer's vecg and
# graph variants) and FP32, and with a host batch copied every iteration
# (--stream, as training does). The last lines give pad's speed-up over the
# peer's graph variant in the same call.
#
# It exits non-zero if a pad bench run or the peer fails.
#
# Usage: scripts/bench-gpu.sh [PAD_BINARY] [PEER_SCRIPT]
#   defaults: bin/pad and ../shared/bench/bench_torch.py (or .dev/bench_torch.py)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
pad=${1:-$root/bin/pad}
peer=${2:-}
if [ -z "$peer" ]; then
  for p in "$root/../shared/bench/bench_torch.py" "$root/.dev/bench_torch.py"; do [ -f "$p" ] && peer=$p && break; done
fi
out=${OUT:-$root/bench-logs}
mkdir -p "$out"
iters=${ITERS:-200}
rows=()
failed=0
json_field() { python3 -c "import json,sys; d=json.load(open('$1')); print(d$2)" 2>/dev/null || echo "-"; }
for c in 3 1; do
  for v in "tf32||" "fp32|--set device.precision=fp32|" "tf32 nograph|--set device.graphs=false|" "tf32 1stream|--set device.overlap=false|" "tf32 stream|--stream|"; do
    IFS='|' read -r label flags _ <<< "$v"
    tag=$(echo "$label" | tr ' ' '-')
    f="$out/pad-c$c-$tag.json"
    # shellcheck disable=SC2086 # flags are words
    "$pad" bench --device cuda $flags --channels $c --iters "$iters" --warmup 20 --json > "$f" 2> "$out/pad-c$c-$tag.log" || failed=$((failed + 1))
    rows+=("$(printf 'pad (%s)|%d|64|%s|%s' "$label" $c "$(json_field "$f" "['SecPerEpoch']")" "$(json_field "$f" "['PeakMemoryMiB']")")")
  done
  if [ -n "$peer" ]; then
    python3 "$peer" --iters "$iters" --channels $c > "$out/peer-c$c.log" 2>&1 || failed=$((failed + 1))
    while read -r line; do
      v=$(echo "$line" | sed -n 's/.*variant=\([a-z]*\).*s_per_epoch_50k=\([0-9.]*\).*peak_mem_MiB=\([0-9]*\).*/\1|\2|\3/p')
      [ -n "$v" ] && rows+=("torch $(echo "$v" | cut -d'|' -f1)|$c|64|$(echo "$v" | cut -d'|' -f2)|$(echo "$v" | cut -d'|' -f3)")
    done < "$out/peer-c$c.log"
  fi
done
for b in 256 1024; do
  f="$out/pad-c3-b$b.json"
  "$pad" bench --device cuda --channels 3 --batch $b --iters "$iters" --warmup 20 --json > "$f" 2> "$out/pad-c3-b$b.log" || failed=$((failed + 1))
  rows+=("$(printf 'pad (tf32)|3|%d|%s|%s' $b "$(json_field "$f" "['SecPerEpoch']")" "$(json_field "$f" "['PeakMemoryMiB']")")")
done
echo
echo "$(date -u +%Y-%m-%d) $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
printf '%-20s %2s %6s %12s %10s\n' "implementation" "C" "batch" "s/epoch(50k)" "peak MiB"
for r in "${rows[@]}"; do
  IFS='|' read -r name c b s m <<< "$r"
  printf '%-20s %2s %6s %12s %10s\n' "$name" "$c" "$b" "$s" "$m"
done
# Speed-up of pad (TF32, graphs) over the peer's graph variant, per shape.
for c in 3 1; do
  ours=""; theirs=""
  for r in "${rows[@]}"; do
    IFS='|' read -r name rc b s _ <<< "$r"
    [ "$rc" = "$c" ] && [ "$b" = 64 ] && [ "$name" = "pad (tf32)" ] && ours=$s
    [ "$rc" = "$c" ] && [ "$name" = "torch graph" ] && theirs=$s
  done
  if [ -n "$ours" ] && [ -n "$theirs" ] && [ "$ours" != "-" ]; then
    awk -v a="$ours" -v b="$theirs" -v c="$c" 'BEGIN { printf "C=%s batch 64: pad %.3f s/epoch, torch graph %.3f s/epoch, speed-up %.2fx\n", c, a, b, b / a }'
  fi
done
if [ $failed -ne 0 ]; then
  echo "bench-gpu: $failed run(s) failed; see $out" >&2
  exit 1
fi
