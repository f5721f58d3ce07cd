#!/bin/bash
# profile.sh — netrun --profile end to end: the table and --json on compiled models (every node
# of `netc check` there once, flops adding up to its MAC total x 2, shares summing to 100 %,
# sorted), --peak, usage errors, an ABI 2 model (runs, cannot be profiled), and tools/peak.c
# built for AVX2 and for the host. No timing is asserted: only that times are sane.
# Usage: bash profile.sh NETC SRC_DIR (netrun and fake_model*.so are built next to netc).
set -u
NETC=$1
SRC=$2
BIN=$(dirname "$NETC")
NETRUN=$BIN/netrun
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
. "$SRC/tests/cli/expect.bash"

cat >"$T/check.py" <<'EOF'
import json, re, sys

def check_json(path, runs, threads, check_out, peak=None):
    o = json.load(open(path))
    assert o["runs"] == runs and o["threads"] == threads, (o["runs"], o["threads"])
    p = o["profile"]
    nodes = p["nodes"]
    assert nodes, "no nodes"
    shares = sum(n["share_pct"] for n in nodes) + p["outside_share_pct"]
    assert abs(shares - 100) <= 0.5, shares
    assert p["outside_ms"] >= 0, p["outside_ms"]
    assert all(n["median_ms"] >= 0 for n in nodes), nodes
    assert all(a["median_ms"] >= b["median_ms"] for a, b in zip(nodes, nodes[1:])), "not sorted"
    assert abs(sum(n["median_ms"] for n in nodes) + p["outside_ms"] - p["total_ms"]) <= 1e-6 * max(1, p["total_ms"])
    assert all(n["calls"] == runs for n in nodes), [(n["name"], n["calls"]) for n in nodes]
    assert len({n["id"] for n in nodes}) == len(nodes), "an id twice"
    for n in nodes:
        assert (n["gflops"] is None) == (n["flops"] == 0), n
        if peak is not None and n["gflops"] is not None:
            assert abs(n["peak_pct"] - 100 * n["gflops"] / peak) <= 1e-6 * n["peak_pct"] + 1e-9, n
    if peak is not None:
        assert o["peak"] == {"gflops": peak, "isa": None, "source": "given"}, o["peak"]
    # against `netc check` (on the model compiled at -O0, so its nodes are check's nodes)
    if check_out:
        text = open(check_out).read()
        names = re.findall(r"^  (\S+)\s+\S+\s+\[[^]]*\]\s+\S+\s+\S+$", text, re.M)
        inputs = re.findall(r"^  input  (\S+)\s+\[([^]]*)\]", text, re.M)
        macs = int(re.search(r"MACs \((\d+)\)", text).group(1))
        listed = [n["name"] for n in nodes if n["op"] not in ("input", "output")] + p["no_kernel"]
        assert sorted(listed) == sorted(names), (sorted(listed), sorted(names))
        assert sum(n["flops"] for n in nodes) == 2 * macs, (sum(n["flops"] for n in nodes), macs)
        # a rank-4 input is copied to NHWC: an entry of its own
        copies = sorted(n["name"] for n in nodes if n["op"] == "input")
        assert copies == sorted(name for name, shape in inputs if shape.count(",") == 3), (copies, inputs)
    return o

def check_text(path, runs, threads):
    lines = open(path).read().splitlines()
    assert lines[0].startswith("profile: ") and f", {runs} runs after " in lines[0], lines[0]
    assert re.match(r"peak: ([0-9.]+ GFLOP/s on %d threads? \(measured, (avx512f|avx2\+fma|sse2)\)|not measured)" % threads,
                    lines[1]), lines[1]
    assert lines[2].split()[:3] == ["node", "op", "kind"], lines[2]
    assert lines[-1].startswith("latency_ms median="), lines[-1]
    total = [l for l in lines if l.startswith("total (sum of the medians)")]
    assert len(total) == 1 and "100.0%" in total[0], total
    assert sum(l.startswith("outside kernels") for l in lines) == 1
    rows = lines[3:lines.index(next(l for l in lines if l.startswith("outside kernels")))]
    return len(rows)

mode = sys.argv[1]
if mode == "json":
    peak = float(sys.argv[6]) if len(sys.argv) > 6 else None
    check_json(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] if sys.argv[5] != "-" else None, peak)
elif mode == "text":   # text TEXT JSON RUNS THREADS: as many rows as JSON nodes
    rows = check_text(sys.argv[2], int(sys.argv[4]), int(sys.argv[5]))
    n = len(json.load(open(sys.argv[3]))["profile"]["nodes"])
    assert rows == n, (rows, n)
elif mode == "fused":  # an -O2 lenet: conv1's relu is in its epilogue
    o = json.load(open(sys.argv[2]))
    k = {n["name"]: (n["kind"], n["fused"]) for n in o["profile"]["nodes"]}
    assert k["conv1"] == ("direct", "relu"), k
    assert k["fc3"] == ("gemm", ""), k
elif mode == "fake":
    o = json.load(open(sys.argv[2]))
    assert sorted(n["name"] for n in o["profile"]["nodes"]) == ["p", "xw", "y"], o["profile"]
    assert o["profile"]["no_kernel"] == []
else:
    sys.exit("unknown mode " + mode)
EOF

# 1. compiled models: lenet and two_io at -O0 (check's nodes), lenet at -O2 (fused epilogues)
for model in lenet two_io; do
    if ! "$NETC" "$SRC/examples/$model.net" --seed 1 -O0 -o "$T/$model.so" 2>"$T/err"; then
        fail "cannot compile $model"; sed 's/^/    /' "$T/err" >&2; continue
    fi
    "$NETC" check "$SRC/examples/$model.net" >"$T/check_$model.txt" 2>/dev/null || fail "netc check $model"
    if expect 0 "$NETRUN" "$T/$model.so" --profile --json --bench 7 --threads 2; then
        cp "$T/out" "$T/$model.json"
        "$PY" "$T/check.py" json "$T/$model.json" 7 2 "$T/check_$model.txt" || fail "$model --profile --json: $(head -c 600 "$T/out")"
    fi
    if expect 0 "$NETRUN" "$T/$model.so" --profile --bench 7 --threads 2; then
        "$PY" "$T/check.py" text "$T/out" "$T/$model.json" 7 2 || { fail "$model --profile:"; cat "$T/out" >&2; }
    fi
done
if "$NETC" "$SRC/examples/lenet.net" --seed 1 -O2 -o "$T/lenet2.so" 2>/dev/null &&
    expect 0 "$NETRUN" "$T/lenet2.so" --profile --json --threads 1 --peak=50; then
    "$PY" "$T/check.py" json "$T/out" 10 1 - 50 || fail "lenet -O2 --peak=50: $(head -c 600 "$T/out")"
    "$PY" "$T/check.py" fused "$T/out" || fail "lenet -O2: kinds and epilogues"
fi
# a fat model: every variant reports the same table, each entry once per run
if [ "$(uname -m)" = x86_64 ] && "$NETC" "$SRC/examples/lenet.net" --seed 1 --cpu=fat -o "$T/fat.so" 2>/dev/null; then
    for lvl in x86-64-v2 x86-64-v3 x86-64-v4; do
        [ $lvl = x86-64-v4 ] && ! grep -q avx512f /proc/cpuinfo && continue
        NETRT_CPU_FEATURES=$lvl expect 0 "$NETRUN" "$T/fat.so" --profile --json --bench 3 --peak=10 &&
            "$PY" - "$T/out" "$T/fat_$lvl.txt" "$lvl" <<'PY' || fail "fat lenet under $lvl: $(head -c 400 "$T/out")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["variant"]["cpu"] == sys.argv[3], o["variant"]
p = o["profile"]
assert all(n["calls"] == 3 for n in p["nodes"]), p["nodes"]
rows = sorted((n["id"], n["name"], n["op"], n["kind"], n["fused"], n["flops"], tuple(n["shape"])) for n in p["nodes"])
open(sys.argv[2], "w").write(repr((rows, p["no_kernel"])))
PY
    done
    cmp -s "$T/fat_x86-64-v2.txt" "$T/fat_x86-64-v3.txt" || fail "fat lenet: v2 and v3 report different tables"
    [ -e "$T/fat_x86-64-v4.txt" ] && { cmp -s "$T/fat_x86-64-v3.txt" "$T/fat_x86-64-v4.txt" || fail "fat lenet: v3 and v4 differ"; }
elif [ "$(uname -m)" = x86_64 ]; then
    fail "cannot compile lenet --cpu=fat"
fi
# the default run count, and the hand-written model's table
expect 0 "$NETRUN" "$BIN/fake_model.so" --profile --json && { "$PY" "$T/check.py" fake "$T/out" || fail "fake_model --profile"; }

# 2. usage errors: exit 2
for args in "--profile --peak=abc" "--profile --peak=0" "--profile --peak=-3" "--profile --peak" "--peak=100"; do
    # shellcheck disable=SC2086
    expect 2 "$NETRUN" "$BIN/fake_model.so" $args && err_has "usage: netrun MODEL.so"
done

# 3. an ABI 2 model: it runs; --profile says why it cannot
if expect 0 "$NETRUN" "$BIN/fake_model_abi2.so" --seed 3; then
    [ "$(wc -l <"$T/out")" = 2 ] || fail "the ABI 2 model's outputs: $(cat "$T/out")"
    expect 0 "$NETRUN" "$BIN/fake_model.so" --seed 3 && cp "$T/out" "$T/v3.out"
    expect 0 "$NETRUN" "$BIN/fake_model_abi2.so" --seed 3 && { cmp -s "$T/out" "$T/v3.out" || fail "ABI 2 and 3 fakes differ"; }
fi
expect 1 "$NETRUN" "$BIN/fake_model_abi2.so" --profile && err_has "has no profile table (compiled before netrt ABI 3"

# 4. tools/peak.c for AVX2 and for this host: a positive figure, and the vectors it was built for
if [ "$(uname -m)" = x86_64 ]; then
    for march in x86-64-v3 native; do
        if ! cc -O3 -march=$march -ffp-contract=fast "$SRC/tools/peak.c" -o "$T/peak" -lpthread 2>"$T/err"; then
            fail "tools/peak.c does not build with -march=$march"; sed 's/^/    /' "$T/err" >&2; continue
        fi
        grep -q avx2 /proc/cpuinfo || continue
        "$T/peak" 1 >"$T/out" 2>"$T/err" || { fail "peak -march=$march failed"; continue; }
        "$PY" -c "import sys, math; g = float(open(sys.argv[1]).read()); assert g > 0 and math.isfinite(g), g" "$T/out" ||
            fail "peak -march=$march printed '$(cat "$T/out")'"
        want="avx2+fma, 8-float vectors, 12 chains"
        [ $march = native ] && grep -q avx512f /proc/cpuinfo && want="avx512f, 16-float vectors, 24 chains"
        err_has "peak: $want, 1 thread"
        echo "tools/peak.c -march=$march: $(cat "$T/out") GFLOP/s ($(cat "$T/err"))"
    done
fi

if [ $fails -ne 0 ]; then
    echo "profile.sh: $fails failure(s)" >&2
    exit 1
fi
echo "profile.sh: all checks passed"
