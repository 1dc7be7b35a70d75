#!/bin/sh
# nvrtc_selftest.sh [DIR]: builds cudasim's libnvrtc.so.13 into DIR (default
# a temporary folder) with its include/ folder, as the Go build package does,
# then builds and runs nvrtc_selftest.cpp against it with a fresh cache.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
dir=${1:-$(mktemp -d /tmp/padsim-nvrtc-XXXXXX)}
mkdir -p "$dir/include"
cxx=${CXX:-g++}
$cxx -std=c++20 -O2 -g -fPIC -shared -pthread -fvisibility=hidden -Wall -Wl,-soname,libnvrtc.so.13 -Wl,--no-undefined \
    "$here/nvrtc.cpp" -o "$dir/libnvrtc.so.13" -ldl
cp "$here/emu.h" "$here/padsim.h" "$here/module_main.h" "$dir/include/"
$cxx -std=c++20 -O2 -Wall -pthread -I "$here" "$here/nvrtc_selftest.cpp" -o "$dir/nvrtc_selftest" -ldl
cache=$(mktemp -d /tmp/padsim-nvrtc-cache-XXXXXX)
trap 'rm -rf "$cache"' EXIT
PAD_CUDASIM_CACHE=$cache "$dir/nvrtc_selftest" "$dir" "$repo"
