#!/usr/bin/env bash
# The "Training on real data" table of README's Results: full PAD on MNIST
# at the paper's settings (nf 64, nz 256, batch 64, seed 1): 200 iterations
# (TestMNIST200Iterations), then one epoch on the CPU with the linear probe
# before training and after the epoch, then
# `pad eval occlusion` and `pad eval latent` on the checkpoint. Prints the
# machine, the date, the commit and the table's rows.
#
# Usage: scripts/reproduce-mnist.sh [RUNS_DIR]     (make reproduce-mnist)
#
# Environment: DATA (default ../shared/data; holds mnist/ as IDX gzip
# files), DEVICE (default cpu), THREADS (default 0: all cores), SEED
# (default 1). About 15–25 minutes of training plus two probes of one or
# two minutes each on 2 cores, then a few minutes of evaluation.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${1:-runs/reproduce}
DATA=${DATA:-../shared/data}
DEVICE=${DEVICE:-cpu}
THREADS=${THREADS:-0}
SEED=${SEED:-1}
BIN=${BIN:-$(mktemp -d)/pad}
NAME=mnist-pad-s$SEED-e1

go build -trimpath -o "$BIN" ./cmd/pad
echo "machine: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# The table's first row: 200 full-size iterations (train/mnist_test.go,
# which reads ../shared/data/mnist).
first=$(go test ./train -run '^TestMNIST200Iterations$' -count=1 -v -timeout 30m | tee /dev/stderr |
	grep -o 'wake_rec first .*' || true)

mkdir -p "$RUNS"
rm -rf "${RUNS:?}/$NAME"
cmd=("$BIN" train --config mnist --runs "$RUNS" --device "$DEVICE" --progress lines
	--set name="$NAME" --set seed="$SEED" --set data.root="$DATA/mnist"
	--set train.epochs=1 --set eval.every=1 --set device.threads="$THREADS"
	--set train.log_every=100)
echo "== ${cmd[*]}"
t0=$SECONDS
"${cmd[@]}"
train_s=$((SECONDS - t0))
t0=$SECONDS
"$BIN" eval occlusion "$RUNS/$NAME" --device "$DEVICE" | tee "$RUNS/$NAME/occlusion.txt"
"$BIN" eval latent "$RUNS/$NAME" --device "$DEVICE" | tee "$RUNS/$NAME/latent.txt"
eval_s=$((SECONDS - t0))

m=$RUNS/$NAME/metrics.jsonl
field() { sed -E "s/.*\"$1\":([0-9.eE+-]+).*/\1/"; }
probe() { grep '"kind":"probe"' "$m" | grep "\"epoch\":$1[,}]" | tail -1; }
p0=$(probe 0)
p1=$(probe 1)
wake=$(grep '"kind":"train"' "$m" | grep -o '"wake_rec":[0-9.eE+-]*' | cut -d: -f2 || true)
occ() { awk -F, -v p="$1" '$1==p {printf "%.1f", $3}' "$RUNS/$NAME/eval/occlusion.csv"; }

echo
echo "| check | pad |"
echo "|---|---|"
if [ -n "$first" ]; then
	echo "| 200 iterations (go test ./train -run MNIST200Iterations) | $first |"
fi
if [ -n "$wake" ]; then
	printf '| Wake reconstruction, mean of the first → last logged window of 100 iterations | %.3f → %.3f |\n' "$(echo "$wake" | head -1)" "$(echo "$wake" | tail -1)"
fi
printf '| linear probe, untrained encoder | %.2f %% |\n' "$(echo "$p0" | field test_acc)"
printf '| linear probe after 1 epoch | %.2f %% |\n' "$(echo "$p1" | field test_acc)"
echo "| after 1 epoch: occlusion p = 0, 0.3, 0.5, 0.8 (tile 4) | $(occ 0.0), $(occ 0.3), $(occ 0.5), $(occ 0.8) % |"
lat=$(grep -o 'intra/inter-class distance [0-9.]*, clean–occluded/inter-class [0-9.]*' "$RUNS/$NAME/latent.txt" | grep -o '[0-9][0-9.]*' | paste -sd, - | sed 's/,/, /')
echo "| after 1 epoch: intra/inter-class distance, clean–occluded/inter | $lat |"
echo
echo "times (s since the start of the run, from metrics.jsonl; training = epoch 1 − probe epoch 0,"
echo "the second probe = probe epoch 1 − epoch 1):"
grep -E '"kind":"(probe|epoch)"' "$m" | while read -r line; do
	printf '  %-5s epoch %s: %.0f\n' "$(echo "$line" | sed -E 's/.*"kind":"([a-z]+)".*/\1/')" "$(echo "$line" | field epoch)" "$(echo "$line" | field time)"
done
echo "wall: pad train $train_s s (with both probes), pad eval occlusion + latent $eval_s s"
