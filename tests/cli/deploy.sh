#!/usr/bin/env bash
# deploy.sh NETC SRC_DIR — the static deployment example: compile examples/lenet.net to an
# object file + header, link examples/deploy/main.c against it, run it, and compare its output
# with the reference interpreter (`netc run`) on the same input.
set -euo pipefail
netc=$1; src=$2; build=$(dirname "$netc")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"

/usr/bin/python3 -c "import numpy as np; np.save('in.npy', np.random.default_rng(5).standard_normal((1,1,32,32)).astype('<f4'))"
"$netc" run "$src/examples/lenet.net" --seed 3 --input in.npy --output ref.npy >/dev/null 2>&1

for cpu in native fat; do
[ "$cpu" = fat ] && [ "$(uname -m)" != x86_64 ] && continue
rm -f lenet.o lenet.h classify out.npy
"$netc" "$src/examples/lenet.net" --seed 3 --emit=obj --cpu=$cpu -o lenet 2>/dev/null
test -f lenet.o && test -f lenet.h
# a sanitizer build's libnetrt.a needs the sanitizer runtimes at link time
san=""
if nm "$build/libnetrt.a" 2>/dev/null | grep -c __asan >/dev/null; then san="-fsanitize=address,undefined"; fi
cc -std=c11 -Wall -Wextra -Werror -O2 $san -I. -I"$src/runtime" "$src/examples/deploy/main.c" lenet.o \
   "$build/libnetrt.a" -lpthread -ldl -lmvec -lm -o classify
./classify in.npy out.npy

/usr/bin/python3 - "$cpu" <<'PY'
import numpy as np, sys
a, b = np.load("out.npy"), np.load("ref.npy")
err = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-4))
print(f"deploy: static lenet ({sys.argv[1]}) vs interpreter rel.err {err:.2e}")
sys.exit(0 if err <= 1e-5 else 1)
PY
done
