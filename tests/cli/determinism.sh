#!/usr/bin/env bash
# determinism.sh NETC SRC_DIR — the same model and flags give byte-identical artifacts: a .so, a
# fat .so, and an object + header, each compiled twice in different directories (different
# temporary file names, different process ids), once on one code generation thread and once on
# four (the modules finish in a different order).
set -euo pipefail
netc=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cpus="native"
[ "$(uname -m)" = x86_64 ] && cpus="native fat:v3,v4"
for model in aspp_sep two_io mobilenet_v2; do
  for cpu in $cpus; do
    for run in a b; do
      mkdir -p "$work/$run"
      jobs=1; [ $run = b ] && jobs=4
      (cd "$work/$run" && "$netc" "$src/examples/$model.net" --seed 2 --cpu=$cpu --jobs=$jobs -o m.so 2>/dev/null &&
       "$netc" "$src/examples/$model.net" --seed 2 --cpu=$cpu --jobs=$jobs --emit=obj -o m 2>/dev/null)
    done
    for f in m.so m.o m.h; do
      cmp -s "$work/a/$f" "$work/b/$f" || { echo "determinism: $model --cpu=$cpu: $f differs between two compiles" >&2; exit 1; }
    done
    rm -rf "$work/a" "$work/b"
  done
done
echo "determinism: every artifact byte-identical across two compiles"
