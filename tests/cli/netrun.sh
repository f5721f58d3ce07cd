#!/bin/bash
# netrun.sh — netrun end to end on fake_model.so (the hand-written model of tests/runtime): seeded
# random inputs reproduced in numpy, --input/--output by position and by name, the wrong-shape
# message, --bench's line, --json, exit codes, and agreement with `netc run` on fake_model.net.
# Usage: bash netrun.sh NETC SRC_DIR (netrun and fake_model*.so are built next to netc).
set -u
NETC=$1
SRC=$2
BIN=$(dirname "$NETC")
NETRUN=$BIN/netrun
FAKE=$BIN/fake_model.so
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0

for f in "$NETRUN" "$FAKE" "$BIN/fake_model_badabi.so"; do
    [ -e "$f" ] || { echo "netrun.sh: $f is missing (build netrun, fake_model, fake_model_badabi)" >&2; exit 1; }
done
"$PY" -c 'import numpy' 2>/dev/null || { echo "netrun.sh: $PY has no numpy" >&2; exit 1; }

. "$SRC/tests/cli/expect.bash"

# check.py: numpy checks; one mode per call
cat >"$T/check.py" <<'EOF'
import json, re, sys
import numpy as np

def splitmix(n, seed):
    """fill_random of netc run / netrun, in exact integer arithmetic."""
    M = (1 << 64) - 1
    s, out = seed, np.empty(n, np.float32)
    for i in range(n):
        s = (s + 0x9E3779B97F4A7C15) & M
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        z ^= z >> 31
        out[i] = np.float32((z >> 40) / float(1 << 24) * 2.0 - 1.0)
    return out

def fake(x, w):
    y = (x * w + x).astype(np.float32)          # float32 products and sums, as the C code does
    p = x.astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(np.float32)
    return y, p

def check_outputs(x, w, ydir):
    y, p = fake(x, w)
    gy, gp = np.load(ydir + "/y.npy"), np.load(ydir + "/p.npy")
    assert gy.dtype == np.float32 and gy.shape == (1, 3, 4, 5), (gy.dtype, gy.shape)
    assert gp.shape == (1, 3, 1, 1), gp.shape
    assert np.array_equal(gy, y), np.abs(gy - y).max()
    assert np.allclose(gp, p, rtol=1e-6, atol=1e-7), (gp.ravel(), p.ravel())

mode, d = sys.argv[1], sys.argv[2]
if mode == "make":
    rng = np.random.default_rng(5)
    np.save(d + "/x.npy", rng.standard_normal((1, 3, 4, 5)).astype("<f4"))
    np.save(d + "/w.npy", rng.standard_normal((1, 3, 1, 1)).astype("<f4"))
    np.save(d + "/small.npy", np.zeros((1, 3, 2, 2), "<f4"))
    np.save(d + "/f64.npy", np.zeros((1, 3, 4, 5), "<f8"))
elif mode == "random":          # random inputs of --seed S
    seed = int(sys.argv[3])
    x = splitmix(60, seed * 1000003 + 1).reshape(1, 3, 4, 5)
    w = splitmix(3, seed * 1000003 + 2).reshape(1, 3, 1, 1)
    check_outputs(x, w, d)
elif mode == "files":
    check_outputs(np.load(d + "/x.npy"), np.load(d + "/w.npy"), d)
elif mode == "bench":           # stdout: one latency line
    lines = open(d + "/out").read().splitlines()
    assert len(lines) == 1, lines
    num = r"([0-9]+(?:\.[0-9]*)?(?:e[-+][0-9]+)?)"
    m = re.fullmatch(r"latency_ms median=%s p10=%s p90=%s min=%s threads=%s" % (num, num, num, num, sys.argv[3]),
                     lines[0])
    assert m, lines[0]
    med, p10, p90, mn = map(float, m.groups()[:4])
    assert 0 < mn <= p10 <= med <= p90, lines[0]
elif mode == "json":            # stdout: one JSON object
    o = json.loads(open(d + "/out").read())
    assert o["model"] == "fake", o
    assert o["threads"] == int(sys.argv[3]), o
    outs = o["outputs"]
    assert [t["name"] for t in outs] == ["y", "p"] and outs[0]["shape"] == [1, 3, 4, 5], outs
    y, p = fake(np.load(d + "/x.npy"), np.load(d + "/w.npy"))
    for t, ref in zip(outs, (y, p)):
        for k, f in (("min", np.min), ("max", np.max), ("mean", np.mean)):
            assert abs(t[k] - float(f(ref.astype(np.float64)))) <= 1e-6 * max(1, abs(t[k])), (t, k)
    if len(sys.argv) > 4:
        assert o["runs"] == int(sys.argv[4]) and o["warmup"] == 2, o
        l = o["latency_ms"]
        assert 0 < l["min"] <= l["p10"] <= l["median"] <= l["p90"], l
    else:
        assert "latency_ms" not in o, o
else:
    sys.exit("unknown mode " + mode)
EOF
"$PY" "$T/check.py" make "$T" || { echo "netrun.sh: cannot make the test inputs" >&2; exit 1; }

# 1. random inputs, reproduced bit for bit by numpy's reimplementation of the generator
for seed in 0 7; do
    if expect 0 "$NETRUN" "$FAKE" --seed $seed --output "$T/y.npy" --output "p=$T/p.npy"; then
        "$PY" "$T/check.py" random "$T" $seed || fail "seed $seed: outputs differ from numpy"
        err_has "input 'w': no --input given, using seeded random values (seed $seed)"
    fi
    rm -f "$T/y.npy" "$T/p.npy"
done

# 2. inputs from files, by position and by name in either order, any thread count
for args in "--input $T/x.npy --input $T/w.npy" "--input w=$T/w.npy --input x=$T/x.npy" \
            "--input x=$T/x.npy --input=w=$T/w.npy --threads 1" "--input $T/x.npy --input w=$T/w.npy --threads=3"; do
    # shellcheck disable=SC2086
    if expect 0 "$NETRUN" "$FAKE" $args --output "$T/y.npy" --output "$T/p.npy"; then
        "$PY" "$T/check.py" files "$T" || fail "$args: wrong outputs"
        grep -qE '^y \[1, 3, 4, 5\] min=[-0-9.e]+ max=[-0-9.e]+ mean=[-0-9.e]+$' "$T/out" || fail "$args: no y stats line"
        grep -qE '^p \[1, 3, 1, 1\] min=' "$T/out" || fail "$args: no p stats line"
        [ "$(wc -l <"$T/out")" = 2 ] || fail "$args: expected 2 stdout lines"
    fi
    rm -f "$T/y.npy" "$T/p.npy"
done

# 3. bad inputs: exit 1 and say why; nothing written
expect 1 "$NETRUN" "$FAKE" --input "$T/small.npy" --output "$T/y.npy" &&
    err_has "netrun: error: input 'x': expected shape [1, 3, 4, 5], the file has [1, 3, 2, 2]"
[ -e "$T/y.npy" ] && fail "an output was written despite a bad input"
expect 1 "$NETRUN" "$FAKE" --input "w=$T/x.npy" && err_has "input 'w': expected shape [1, 3, 1, 1], the file has [1, 3, 4, 5]"
expect 1 "$NETRUN" "$FAKE" --input "$T/f64.npy" && err_has "f8"
expect 1 "$NETRUN" "$FAKE" --input "z=$T/x.npy" && err_has "the model has no input 'z'"
expect 1 "$NETRUN" "$FAKE" --output "q=$T/q.npy" && err_has "the model has no output 'q'"
expect 1 "$NETRUN" "$FAKE" --input "x=$T/x.npy" --input "x=$T/x.npy" && err_has "input 'x' given twice"
expect 1 "$NETRUN" "$FAKE" --input "$T/x.npy" --input "$T/w.npy" --input "$T/w.npy" &&
    err_has "3 --input files given, the model has 2 inputs"
expect 1 "$NETRUN" "$FAKE" --input "$T/nonexistent.npy" && err_has "nonexistent.npy"
expect 1 "$NETRUN" "$FAKE" --output "$T/no/such/dir/y.npy" && err_has "$T/no/such/dir/y.npy"
expect 1 "$NETRUN" "$T/x.npy" && err_has "netrun: error: "
expect 1 "$NETRUN" "$T/none.so" && err_has "No such file"
expect 1 "$NETRUN" "$BIN/fake_model_badabi.so" && err_has "was built for netrt ABI version 99, this runtime has version 3"
for libc in /lib/x86_64-linux-gnu/libc.so.6 /lib/aarch64-linux-gnu/libc.so.6; do
    [ -e "$libc" ] || continue
    expect 1 "$NETRUN" "$libc" && err_has "'$libc' is not a netc model (no netrt_model_descriptor symbol)"
done

# 3b. a model compiled for more than the CPU has is refused with a message, never SIGILL; the
# CPU is made smaller with NETRT_CPU_FEATURES, which hides features from the loader
if [ "$(uname -m)" = x86_64 ] && "$NETC" "$SRC/tests/runtime/fake_model.net" --cpu=x86-64-v3 -o "$T/v3.so" 2>"$T/err"; then
    NETRT_CPU_FEATURES=x86-64-v2 expect 1 "$NETRUN" "$T/v3.so" &&
        err_has "'$T/v3.so' needs avx, avx2, fma, f16c, bmi, bmi2, lzcnt, movbe (compiled for --cpu=x86-64-v3); this CPU has sse4.2: rebuild with --cpu=x86-64-v2"
    NETRT_CPU_FEATURES=x86-64-v3 expect 0 "$NETRUN" "$T/v3.so" --json &&
        { grep -qF '"variant": {"cpu": "x86-64-v3", "features": "sse2,sse3,ssse3,sse4.1,sse4.2,popcnt,avx,avx2,fma,f16c,bmi,bmi2,lzcnt,movbe", "of": 1}' "$T/out" ||
          fail "--json lacks the variant: $(cat "$T/out")"; }
    NETRT_CPU_FEATURES=x86-64-v3 expect 1 "$NETC" "$SRC/tests/runtime/fake_model.net" --cpu=x86-64-v3 --mattr=+nosuchfeature -o "$T/bad.so" &&
        err_has "--mattr=+nosuchfeature: a feature LLVM does not know"
    [ -e "$T/bad.so" ] && fail "a refused compile left $T/bad.so"
    # a fat model: the loader runs the best variant the CPU has, each computing the same
    if "$NETC" "$SRC/tests/runtime/fake_model.net" --cpu=fat -o "$T/fat.so" 2>"$T/err"; then
        "$NETC" run "$SRC/tests/runtime/fake_model.net" --output "y=$T/ref_y.npy" --output "p=$T/ref_p.npy" >/dev/null 2>&1
        for lvl in x86-64-v2 x86-64-v3 x86-64-v4; do
            [ $lvl = x86-64-v4 ] && ! grep -q avx512f /proc/cpuinfo && continue
            NETRT_CPU_FEATURES=$lvl expect 0 "$NETRUN" "$T/fat.so" --json --output "y=$T/y_$lvl.npy" --output "p=$T/p_$lvl.npy" &&
                { grep -qF "\"variant\": {\"cpu\": \"$lvl\"" "$T/out" && grep -qF '"of": 3}' "$T/out" ||
                  fail "fat.so under $lvl ran: $(grep -o '"variant": {[^}]*}' "$T/out")"; }
            "$PY" -c "
import numpy as np, sys
for o in 'yp':
    a, b = np.load('$T/'+o+'_$lvl.npy'), np.load('$T/ref_'+o+'.npy')
    if np.abs(a - b).max() > 1e-5 * max(1, np.abs(b).max()): sys.exit(1)" || fail "fat.so under $lvl differs from the interpreter"
        done
        NETRT_CPU_FEATURES=sse2 expect 1 "$NETRUN" "$T/fat.so" &&
            err_has "needs sse3, ssse3, sse4.1, sse4.2, popcnt (compiled for --cpu=x86-64-v2); this CPU has none of avx, avx2, avx512f: rebuild with --cpu=x86-64"
        expect 0 "$NETC" check "$SRC/tests/runtime/fake_model.net" --cpu=fat:v2,v3 &&
            { [ "$(grep -c '^target ' "$T/out")" = 2 ] || fail "netc check --cpu=fat:v2,v3: $(grep '^target' "$T/out")"; }
        expect 1 "$NETC" "$SRC/tests/runtime/fake_model.net" --cpu=fat:v3,haswell -o "$T/dup.so" &&
            err_has "'haswell' and 'x86-64-v3' need the same features"
        expect 1 "$NETC" "$SRC/tests/runtime/fake_model.net" --cpu=fat --target=aarch64-linux-gnu -o "$T/arm.so" &&
            err_has "fat artifacts hold x86-64 variants"
    else
        fail "cannot compile fake_model.net --cpu=fat:"; sed 's/^/    /' "$T/err" >&2
    fi
    # netc check says what a build for a CPU would need
    expect 0 "$NETC" check "$SRC/tests/runtime/fake_model.net" --cpu=x86-64-v2 &&
        { grep -qF -- "--cpu=x86-64-v2: 4-float vectors, 16 vector registers, no FMA (multiply, then add); needs sse2,sse3,ssse3,sse4.1,sse4.2,popcnt" "$T/out" ||
          fail "netc check lacks the target line: $(tail -1 "$T/out")"; }
    expect 0 "$NETC" check "$SRC/tests/runtime/fake_model.net" --cpu=core-avx2 &&
        { grep -qF -- "--cpu=core-avx2: 8-float vectors, 16 vector registers, FMA; needs" "$T/out" ||
          fail "netc check --cpu=core-avx2: $(tail -1 "$T/out")"; }
elif [ "$(uname -m)" = x86_64 ]; then
    fail "cannot compile fake_model.net for x86-64-v3:"; sed 's/^/    /' "$T/err" >&2
fi

# 4. --bench: exactly one line, its numbers ordered; --json: one object
if expect 0 "$NETRUN" "$FAKE" --bench 50 --warmup 2 --threads 2; then
    "$PY" "$T/check.py" bench "$T" 2 || fail "--bench line: $(cat "$T/out")"
fi
if NETRT_NUM_THREADS=3 expect 0 "$NETRUN" "$FAKE" --bench 5; then
    "$PY" "$T/check.py" bench "$T" 3 || fail "NETRT_NUM_THREADS=3: $(cat "$T/out")"
fi
if NETRT_NUM_THREADS=lots expect 0 "$NETRUN" "$FAKE" --bench 3; then
    err_has "NETRT_NUM_THREADS='lots' is not a positive integer"
fi
if expect 0 "$NETRUN" "$FAKE" --json --bench 20 --warmup=2 --threads 1 --input "$T/x.npy" --input "$T/w.npy"; then
    "$PY" "$T/check.py" json "$T" 1 20 || fail "--json --bench: $(cat "$T/out")"
fi
if expect 0 "$NETRUN" "$FAKE" --json --threads 2 --input "$T/x.npy" --input "$T/w.npy"; then
    "$PY" "$T/check.py" json "$T" 2 || fail "--json: $(cat "$T/out")"
fi

# 5. usage errors: exit 2 with the usage text
for args in "" "--bench" "$FAKE --bench 0" "$FAKE --bench x" "$FAKE --threads 0" "$FAKE --threads" \
            "$FAKE --warmup -1" "$FAKE --seed -3" "$FAKE --frobnicate" "$FAKE $FAKE" "$FAKE --input"; do
    # shellcheck disable=SC2086
    expect 2 "$NETRUN" $args && err_has "usage: netrun MODEL.so"
done
expect 0 "$NETRUN" --help && grep -q "usage: netrun" "$T/out" || fail "--help"

# 6. netrun and `netc run` see the same random inputs for the same --seed, so they agree
if "$NETC" run "$SRC/tests/runtime/fake_model.net" --seed 11 >"$T/netc.out" 2>"$T/netc.err"; then
    if expect 0 "$NETRUN" "$FAKE" --seed 11; then
        diff "$T/netc.out" "$T/out" >&2 || fail "netc run and netrun print different outputs for --seed 11"
    fi
else
    fail "netc run fake_model.net failed:"
    sed 's/^/    /' "$T/netc.err" >&2
fi

if [ $fails -ne 0 ]; then
    echo "netrun.sh: $fails failure(s)" >&2
    exit 1
fi
echo "netrun.sh: all checks passed"
