#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh needs on a GPU machine that has no Go,
# into .dev/ (git-ignored): the pad binary and the test binaries of the
# GPU packages (static, stripped, gzipped to keep the bundle small), real
# MNIST and the PyTorch peer.
#
# Usage: scripts/gpu-bundle.sh [MNIST_DIR] [PEER_SCRIPT]
#   defaults: ../shared/data/mnist and ../shared/bench/bench_torch.py
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mnist=${1:-$root/../shared/data/mnist}
peer=${2:-$root/../shared/bench/bench_torch.py}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p .dev/bin .dev/data
rm -f .dev/bin/*.gz
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/pad" ./cmd/pad
for p in internal/cu backend/cuda phases train; do
  CGO_ENABLED=0 go test -c -trimpath -ldflags='-s -w' -o "$tmp/$(basename $p).test" ./$p
done
for f in "$tmp"/*; do gzip -9 -c "$f" > ".dev/bin/$(basename "$f").gz"; done
if [ -d "$mnist" ]; then
  rm -rf .dev/data/mnist && cp -r "$mnist" .dev/data/mnist
else
  echo "warning: no MNIST at $mnist; the MNIST GPU tests will skip" >&2
fi
if [ -f "$peer" ]; then
  cp "$peer" .dev/bench_torch.py
else
  echo "warning: no peer at $peer; the benchmark table will have pad alone" >&2
fi
du -sh .dev
echo "carry .dev and run: bash scripts/gpu-check.sh (PARTS=checks or PARTS=bench to split)"
