#!/usr/bin/env bash
# cross.sh NETC SRC_DIR — cross-compilation: compile models for aarch64-linux-gnu, build netrun
# for aarch64 with aarch64-linux-gnu-gcc, run them under qemu-aarch64 and compare with the
# reference interpreter. One --seed gives the same weights (netc) and inputs (netrun, netc run).
set -euo pipefail
netc=$1; src=$2
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v $tool >/dev/null || { echo "cross.sh: $tool is missing (scripts/deps.sh installs it)"; exit 1; }
done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"

aarch64-linux-gnu-gcc -std=gnu11 -O2 -I"$src/runtime" "$src"/runtime/*.c \
  -ldl -lpthread -lm -o netrun-aarch64

seed=4
for model in lenet activations two_io; do
  "$netc" "$src/examples/$model.net" --seed $seed --target=aarch64-linux-gnu -o $model.so 2>/dev/null
  file $model.so | grep -q "ARM aarch64"
  outs=$(sed -n 's/^output[[:space:]]*//p' "$src/examples/$model.net" | sed 's/#.*//; s/,/ /g')
  args_arm=(); args_ref=()
  for o in $outs; do args_arm+=(--output "$o=$o.arm.npy"); args_ref+=(--output "$o=$o.ref.npy"); done
  qemu-aarch64 -L /usr/aarch64-linux-gnu ./netrun-aarch64 $model.so --seed $seed --threads 2 "${args_arm[@]}" >/dev/null
  "$netc" run "$src/examples/$model.net" --seed $seed "${args_ref[@]}" >/dev/null 2>&1
  /usr/bin/python3 - $model $outs <<'PY'
import numpy as np, sys
worst = 0.0
for o in sys.argv[2:]:
    a, b = np.load(f"{o}.arm.npy"), np.load(f"{o}.ref.npy")
    worst = max(worst, float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-4)))
print(f"cross: {sys.argv[1]} on aarch64 (qemu) vs interpreter: rel.err {worst:.2e}")
sys.exit(0 if worst <= 1e-5 else 1)
PY
done

# --profile off x86: the table without the peak (not measured) and its % column
qemu-aarch64 -L /usr/aarch64-linux-gnu ./netrun-aarch64 lenet.so --seed $seed --profile --bench 2 --warmup 0 >prof.txt 2>/dev/null
grep -qx "peak: not measured (aarch64): no % of peak column" prof.txt || { echo "cross: --profile on aarch64:"; cat prof.txt; exit 1; }
grep -q "^conv1  *conv2d  *direct" prof.txt || { echo "cross: --profile on aarch64 lacks conv1:"; cat prof.txt; exit 1; }
if grep -q "% peak" prof.txt; then echo "cross: a % peak column without a peak"; exit 1; fi
echo "cross: netrun --profile on aarch64 (qemu): peak not measured, $(grep -c ' conv2d ' prof.txt) convs listed"
