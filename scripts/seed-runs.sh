#!/usr/bin/env bash
# Linear separability of full PAD after one epoch with two seeds on MNIST
# and Fashion-MNIST, and after five epochs on Fashion-MNIST, against the
# public reference code (pad-reference.md: MNIST 94.3 % / 97.8 %,
# Fashion-MNIST 81.5 % / 84.3 % after 1 / 5 epochs).
#
# Usage: scripts/seed-runs.sh [RUNS_DIR]        (make seeds)
#
# Environment: DATA (default ../shared/data; holds mnist/ and fashion-mnist/
# as IDX gzip files), DEVICE (default cpu), THREADS (default 0: all cores),
# SEEDS (default "1 2"), LONG_EPOCHS (default 5).
#
# Every run probes the encoder before training and after every epoch
# (eval.every = 1, the paper's 20-epoch linear probe), so the Fashion-MNIST
# run of the first seed, trained for LONG_EPOCHS epochs, also gives that
# seed's one-epoch number. Runs already finished in RUNS_DIR are not
# repeated. At the end the script prints one line per run and probe.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${1:-runs/seeds}
DATA=${DATA:-../shared/data}
DEVICE=${DEVICE:-cpu}
THREADS=${THREADS:-0}
SEEDS=${SEEDS:-1 2}
LONG_EPOCHS=${LONG_EPOCHS:-5}
BIN=${BIN:-$(mktemp -d)/pad}

go build -trimpath -o "$BIN" ./cmd/pad
mkdir -p "$RUNS"
echo "machine: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# run DATASET DATADIR SEED EPOCHS
run() {
	local ds=$1 dir=$2 seed=$3 epochs=$4
	local name="$ds-pad-s$seed-e$epochs"
	if [ -f "$RUNS/$name/done" ]; then
		echo "== $name: finished earlier"
		return
	fi
	rm -rf "${RUNS:?}/$name"
	local cmd=("$BIN" train --config "$ds" --runs "$RUNS" --device "$DEVICE" --progress lines
		--set name="$name" --set seed="$seed" --set data.root="$dir"
		--set train.epochs="$epochs" --set eval.every=1 --set device.threads="$THREADS"
		--set train.log_every=100)
	echo "== $name: ${cmd[*]}"
	local t0=$SECONDS
	"${cmd[@]}"
	echo "== $name: $((SECONDS - t0)) s"
	touch "$RUNS/$name/done"
}

for seed in $SEEDS; do
	run mnist "$DATA/mnist" "$seed" 1
done
# The first seed's one-epoch number comes from its long run.
read -r first rest <<<"$SEEDS"
for seed in $rest; do
	run fashion "$DATA/fashion-mnist" "$seed" 1
done
run fashion "$DATA/fashion-mnist" "$first" "$LONG_EPOCHS"

echo
echo "run                          epoch  test_acc  test_acc_all  train_acc"
for f in "$RUNS"/*/metrics.jsonl; do
	name=$(basename "$(dirname "$f")")
	grep '"kind":"probe"' "$f" | sed -E 's/.*"epoch":([0-9]+).*/\1 &/' | while read -r ep line; do
		ta=$(echo "$line" | sed -E 's/.*"test_acc":([0-9.]+).*/\1/')
		taa=$(echo "$line" | sed -E 's/.*"test_acc_all":([0-9.]+).*/\1/')
		tr=$(echo "$line" | sed -E 's/.*"train_acc":([0-9.]+).*/\1/')
		printf '%-28s %5s  %8.2f  %12.2f  %9.2f\n' "$name" "$ep" "$ta" "$taa" "$tr"
	done
done
