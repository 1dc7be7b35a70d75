#!/usr/bin/env bash
# pad bench and the PyTorch peer (bench_torch.py) in one invocation on a
# GPU machine, printed side by side: seconds per 50,000-image epoch and
# peak device memory, CIFAR-10 shape (C=3) and MNIST shape (C=1), batch 64,
# plus pad's batch-size scaling (64, 256, 1024).
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
json_field() { python3 -c "import json,sys; d=json.load(open('$1')); print(d$2)" 2>/dev/null || echo "-"; }
for c in 3 1; do
  for prec in tf32 fp32; do
    f="$out/pad-c$c-$prec.json"
    "$pad" bench --device cuda --set device.precision=$prec --channels $c --iters "$iters" --warmup 20 --json > "$f" 2> "$out/pad-c$c-$prec.log"
    rows+=("$(printf 'pad (%s)|%d|64|%s|%s' $prec $c "$(json_field $f "['SecPerEpoch']")" "$(json_field $f "['PeakMemoryMiB']")")")
  done
  if [ -n "$peer" ]; then
    python3 "$peer" --iters "$iters" --channels $c > "$out/peer-c$c.log" 2>&1
    while read -r line; do
      v=$(echo "$line" | sed -n 's/.*variant=\([a-z]*\).*s_per_epoch_50k=\([0-9.]*\).*peak_mem_MiB=\([0-9]*\).*/\1|\2|\3/p')
      [ -n "$v" ] && rows+=("torch $(echo $v | cut -d'|' -f1)|$c|64|$(echo $v | cut -d'|' -f2)|$(echo $v | cut -d'|' -f3)")
    done < "$out/peer-c$c.log"
  fi
done
for b in 256 1024; do
  f="$out/pad-c3-b$b.json"
  "$pad" bench --device cuda --channels 3 --batch $b --iters "$iters" --warmup 20 --json > "$f" 2> "$out/pad-c3-b$b.log"
  rows+=("$(printf 'pad (tf32)|3|%d|%s|%s' $b "$(json_field $f "['SecPerEpoch']")" "$(json_field $f "['PeakMemoryMiB']")")")
done
echo
echo "$(date -u +%Y-%m-%d) $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
printf '%-16s %2s %6s %12s %10s\n' "implementation" "C" "batch" "s/epoch(50k)" "peak MiB"
for r in "${rows[@]}"; do
  IFS='|' read -r name c b s m <<< "$r"
  printf '%-16s %2s %6s %12s %10s\n' "$name" "$c" "$b" "$s" "$m"
done
