#!/bin/bash
# models.sh — whole models against PyTorch: `netc run` on examples/*.net (and torch2net-converted
# torchvision models) must reproduce PyTorch's eval-mode outputs to max|d|/max|ref| <= 1e-4.
# Usage: bash models.sh NETC SRC_DIR. Fixtures come from tools/make_model_fixtures.py, into a
# temporary directory, or into $NETC_FIXTURE_DIR (kept; only missing models are regenerated).
# $NETC_MODELS (comma-separated) narrows the list; $NETC_RUN_FLAGS adds flags to every `netc run`
# (e.g. "-O2" to check the graph passes against PyTorch too).
set -u
NETC=$1
SRC=$2
NETRUN=$(dirname "$NETC")/netrun
PY=/usr/bin/python3
TOL=1e-4

if ! "$PY" -c 'import torch, torchvision, numpy' 2>/dev/null; then
    echo "models.sh: $PY has no torch/torchvision/numpy: cannot make the fixtures" >&2
    exit 1
fi
MODELS=${NETC_MODELS:-$("$PY" "$SRC/tools/make_model_fixtures.py" --list)}

if [ -n "${NETC_FIXTURE_DIR:-}" ]; then
    FIX=$NETC_FIXTURE_DIR
    mkdir -p "$FIX"
else
    FIX=$(mktemp -d)
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"; [ -n "${NETC_FIXTURE_DIR:-}" ] || rm -rf "$FIX"' EXIT

# (re)generate the fixtures of the models that have none
missing=""
for m in ${MODELS//,/ }; do
    if ! ls "$FIX/$m".expected*.npy >/dev/null 2>&1 || [ ! -f "$FIX/$m.safetensors" ]; then
        missing="$missing${missing:+,}$m"
    fi
done
if [ -n "$missing" ]; then
    echo "models.sh: making fixtures for $missing in $FIX"
    "$PY" "$SRC/tools/make_model_fixtures.py" "$FIX" --models "$missing" || {
        echo "models.sh: make_model_fixtures.py failed" >&2; exit 1; }
fi

# Compare one output; prints the figure, exit status 0 when within tolerance.
compare() {
    "$PY" - "$1" "$2" "$TOL" <<'PYEOF'
import sys
import numpy as np
got, ref, tol = np.load(sys.argv[1]), np.load(sys.argv[2]), float(sys.argv[3])
if got.shape != ref.shape:
    print(f"shape {got.shape} != expected {ref.shape}")
    sys.exit(1)
if not np.all(np.isfinite(got)):
    print("non-finite values in the output")
    sys.exit(1)
err = float(np.max(np.abs(got.astype(np.float64) - ref))) / max(float(np.max(np.abs(ref))), 1e-30)
print(f"max|d|/max|ref| = {err:.3e}")
sys.exit(0 if err <= tol else 1)
PYEOF
}

fail=0
for m in ${MODELS//,/ }; do
    net="$SRC/examples/$m.net"
    [ -f "$FIX/$m.net" ] && net="$FIX/$m.net"       # torch2net output
    args=(run "$net" --weights "$FIX/$m.safetensors" ${NETC_RUN_FLAGS:-})
    base=${#args[@]}   # what follows are the --input/--output flags, shared with netrun
    if [ -f "$FIX/$m.input.npy" ]; then
        args+=(--input "$FIX/$m.input.npy")
    else
        for f in "$FIX/$m".input_*.npy; do
            n=${f##*/$m.input_}; args+=(--input "${n%.npy}=$f")
        done
    fi
    outs=()
    if [ -f "$FIX/$m.expected.npy" ]; then
        args+=(--output "$OUT/$m.out.npy")
        outs+=("$OUT/$m.out.npy:$FIX/$m.expected.npy:$m")
    else
        for f in "$FIX/$m".expected_*.npy; do
            n=${f##*/$m.expected_}; n=${n%.npy}
            args+=(--output "$n=$OUT/$m.out_$n.npy")
            outs+=("$OUT/$m.out_$n.npy:$f:$m.$n")
        done
    fi
    t0=$(date +%s%N)
    "$NETC" "${args[@]}" >"$OUT/$m.err" 2>&1
    st=$?
    if [ $st -ne 0 ]; then
        echo "FAIL $m: netc ${args[*]} exited with status $st"
        sed 's/^/    /' "$OUT/$m.err" | head -20
        fail=1
        continue
    fi
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    for o in "${outs[@]}"; do
        IFS=: read -r got ref label <<<"$o"
        if fig=$(compare "$got" "$ref"); then
            printf 'ok   %-24s %s  (netc run %d.%03d s)\n' "$label" "$fig" \
                $((ms / 1000)) $((ms % 1000))
        else
            printf 'FAIL %-24s %s\n' "$label" "$fig"
            fail=1
        fi
    done
    # the same model compiled (the passes of the level, then LLVM) and run by netrun, on the
    # same inputs: -O2 and -O3 against PyTorch too
    io=("${args[@]:$base}")
    for lvl in ${NETC_COMPILE_LEVELS:--O2 -O3}; do
        if ! "$NETC" "$net" --weights "$FIX/$m.safetensors" $lvl -o "$OUT/$m.so" >"$OUT/$m.err" 2>&1 ||
           ! "$NETRUN" "$OUT/$m.so" --threads 2 "${io[@]}" >>"$OUT/$m.err" 2>&1; then
            echo "FAIL $m: compiling or running at $lvl"
            sed 's/^/    /' "$OUT/$m.err" | head -20
            fail=1
            continue
        fi
        for o in "${outs[@]}"; do
            IFS=: read -r got ref label <<<"$o"
            if fig=$(compare "$got" "$ref"); then
                printf 'ok   %-24s %s  (compiled %s, netrun)\n' "$label" "$fig" "$lvl"
            else
                printf 'FAIL %-24s %s  (compiled %s)\n' "$label" "$fig" "$lvl"
                fail=1
            fi
        done
    done
done
exit $fail
