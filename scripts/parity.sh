#!/usr/bin/env bash
# Long-horizon parity of pad with an independent PyTorch implementation:
# scripts/pad_torch.py records float64 trajectories (every loss of every
# iteration, every parameter every EVERY iterations) with pad's random
# numbers, then tools/cmd/parity trains pad's float64 CPU twin through
# its real trainer on the same data and reports the relative errors, as a
# table, OUT/<model>/parity.json and two PNG curves per model size.
#
# Usage: scripts/parity.sh [OUT]                (make parity; OUT: runs/parity)
#
# Environment (defaults in brackets):
#   PYTHON      [/usr/bin/python3] with Debian's python3-torch, python3-numpy, python3-pil
#   MODELS      ["16x64 64x256"] nf x nz of each model size: a small one whose
#               training stays near round-off for all 300 iterations, and
#               the paper's, whose dynamics amplify round-off from about
#               iteration 60 (see the floor)
#   CONDITIONS  ["pad no-memory-mix nrem-mix"]   CHANNELS ["1 3"]
#   BATCH [8]   IMAGES [245: 30 batches per epoch, 5 images dropped at each
#               epoch's end]   ITERS [300: nine epoch boundaries]   EVERY [50]
#   SEED [1]    THREADS [1: threads of each side]
#   FLOOR       ["all"] conditions whose float64 floor is measured (pad rerun
#               from initial parameters moved by one ulp)
#   FORCE       [0] 1: redo trajectories already in OUT/<model>/torch
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-runs/parity}
PYTHON=${PYTHON:-/usr/bin/python3}
MODELS=${MODELS:-16x64 64x256}
CONDITIONS=${CONDITIONS:-pad no-memory-mix nrem-mix}
CHANNELS=${CHANNELS:-1 3}
BATCH=${BATCH:-8} IMAGES=${IMAGES:-245} ITERS=${ITERS:-300} EVERY=${EVERY:-50}
SEED=${SEED:-1} THREADS=${THREADS:-1} FLOOR=${FLOOR:-all} FORCE=${FORCE:-0}

echo "machine: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%dT%H:%M:%SZ)"
status=0
for m in $MODELS; do
	nf=${m%x*} nz=${m#*x}
	dir="$OUT/nf$nf-nz$nz"
	mkdir -p "$dir/torch"
	files=()
	for c in $CHANNELS; do
		for cond in $CONDITIONS; do
			f="$dir/torch/$cond-c$c.safetensors"
			files+=("$f")
			if [ "$FORCE" != 1 ] && [ -f "$f" ]; then
				echo "torch nf $nf nz $nz $cond c$c: $f (kept)"
				continue
			fi
			t0=$SECONDS
			"$PYTHON" scripts/pad_torch.py trajectory --out "$f" --condition "$cond" --channels "$c" \
				--nf "$nf" --nz "$nz" --batch "$BATCH" --images "$IMAGES" --iters "$ITERS" --every "$EVERY" \
				--seed "$SEED" --threads "$THREADS" --progress 100
			echo "torch nf $nf nz $nz $cond c$c: $((SECONDS - t0)) s"
		done
	done
	echo "== pad against PyTorch: nf $nf, nz $nz, batch $BATCH, $IMAGES images, $ITERS iterations"
	t0=$SECONDS
	go run ./tools/cmd/parity -out "$dir" -threads "$THREADS" -floor "$FLOOR" "${files[@]}" || status=1
	echo "pad side: $((SECONDS - t0)) s"
done
exit $status
