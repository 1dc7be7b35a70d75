#!/usr/bin/env bash
# The quickstart's figures in README: the time `pad train` takes with no
# arguments (the built-in Fashion-MNIST sample and the quickstart config,
# CPU, a linear probe before training and after every epoch) and the probe
# accuracies it reaches.
#
# Usage: scripts/quickstart-figures.sh [RUNS_DIR]     (make quickstart-figures)
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${1:-$(mktemp -d)}
BIN=${BIN:-$(mktemp -d)/pad}

echo "machine: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), load average $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N)
go build -trimpath -o "$BIN" ./cmd/pad
t1=$(date +%s.%N)
"$BIN" train --runs "$RUNS" --progress lines
t2=$(date +%s.%N)

m=$RUNS/quickstart/metrics.jsonl
echo
printf 'go build: %.0f s; pad train: %.0f s (training and every probe)\n' "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)"
grep '"kind":"probe"' "$m" | while read -r line; do
	ep=$(echo "$line" | sed -E 's/.*"epoch":([0-9]+).*/\1/')
	acc=$(echo "$line" | sed -E 's/.*"test_acc":([0-9.]+).*/\1/')
	at=$(echo "$line" | sed -E 's/.*"time":([0-9.]+).*/\1/')
	printf 'probe after epoch %s: test accuracy %.2f %% (at %.0f s)\n' "$ep" "$acc" "$at"
done
