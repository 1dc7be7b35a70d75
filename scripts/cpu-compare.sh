#!/usr/bin/env bash
# The CPU speed table in README: `pad bench --device cpu` of several
# commits' binaries, alternated ROUNDS times at the CIFAR-10 shape (and
# once each at MNIST's), then the PyTorch CPU peer once, in one run, with
# the ratios of every binary to the first.
#
# Usage: scripts/cpu-compare.sh REV... (make cpu-compare REVS="A B")
#   ROUNDS (3), ITERS (30): alternations and timed iterations per run;
#   PEER: the PyTorch peer (default ../shared/bench/bench_torch.py, skipped
#   when missing or when torch does not import); PYTHON (/usr/bin/python3).
set -euo pipefail

cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 REV..." >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
ITERS=${ITERS:-30}
PYTHON=${PYTHON:-/usr/bin/python3}
PEER=${PEER:-../shared/bench/bench_torch.py}
work=$(mktemp -d)
trap 'rm -rf "$work"; git worktree prune >/dev/null 2>&1 || true' EXIT

echo "machine: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
revs=()
for rev in "$@"; do
	short=$(git rev-parse --short "$rev")
	git worktree add -q --detach "$work/src-$short" "$rev"
	(cd "$work/src-$short" && CGO_ENABLED=0 go build -trimpath -o "$work/pad-$short" ./cmd/pad)
	revs+=("$short")
done

# field FILE NAME prints a number field of a pad bench --json result.
field() { sed -nE "s/^  \"$2\": ([0-9.e+-]+),?$/\1/p" "$1"; }

run() { # run SHORT SHAPE ROUND
	local out=$work/$1-$2-$3.json
	local args=(bench --device cpu --iters "$ITERS" --json)
	[ "$2" = mnist ] && args+=(--config mnist)
	"$work/pad-$1" "${args[@]}" >"$out"
}
for r in $(seq "$ROUNDS"); do
	for s in "${revs[@]}"; do run "$s" cifar10 "$r"; done
done
for s in "${revs[@]}"; do run "$s" mnist 1; done

peer=""
if [ -f "$PEER" ] && "$PYTHON" -c 'import torch' 2>/dev/null; then
	peer=$("$PYTHON" "$PEER" --device cpu --threads "$(nproc)" --variants vec --iters 5 2>&1 | tail -n 20)
fi

printf '\n| shape | binary | ms per iteration (median; all) | vs %s | GFLOP/s | share of the FP32 peak | busy cores |\n|---|---|--:|--:|--:|--:|--:|\n' "${revs[0]}"
for shape in cifar10 mnist; do
	base=""
	for s in "${revs[@]}"; do
		ms=() shares=() busy=() gf=()
		for f in "$work/$s-$shape"-*.json; do
			ms+=("$(echo "$(field "$f" SecPerIter) * 1000" | bc -l)")
			shares+=("$(echo "$(field "$f" PeakShare) * 100" | bc -l)")
			busy+=("$(field "$f" BusyCores)")
			gf+=("$(field "$f" GFLOPS)")
		done
		med=$(printf '%s\n' "${ms[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
		[ -z "$base" ] && base=$med
		all=$(printf '%.0f ' "${ms[@]}")
		printf '| %s | %s | %.0f (%s) | %.2f× | %s | %s %% | %s |\n' "$shape" "$s" "$med" "${all% }" \
			"$(echo "$med / $base" | bc -l)" \
			"$(printf '%.0f ' "${gf[@]}" | sed 's/ $//')" \
			"$(printf '%.0f ' "${shares[@]}" | sed 's/ $//')" \
			"$(printf '%.2f ' "${busy[@]}" | sed 's/ $//')"
	done
done
if [ -n "$peer" ]; then
	echo
	echo "PyTorch peer ($PYTHON $PEER --device cpu --threads $(nproc) --variants vec --iters 5):"
	echo "$peer"
else
	echo
	echo "PyTorch peer: not run ($PEER missing or torch not importable by $PYTHON)"
fi
