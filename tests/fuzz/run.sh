#!/usr/bin/env bash
# run.sh — runs every libFuzzer target of a -DNETC_FUZZ=ON build for SECONDS each over a copy of
# its seed corpus (the committed corpus never grows); fails on any crash, leak, timeout or UB.
# usage: tests/fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# target -> its corpus folder (fuzz_parse's is written by the grammar's corpus helper)
targets=(fuzz_safetensors fuzz_npy fuzz_parse)
declare -A corpus=([fuzz_safetensors]=corpus_safetensors [fuzz_npy]=corpus_npy [fuzz_parse]=corpus_parse)

passed=0
failed=0
for t in "${targets[@]}"; do
    bin=$build/$t
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin is missing (configure with CC=clang-19 -DNETC_FUZZ=ON and build it)" >&2
        failed=$((failed + 1))
        continue
    fi
    dir=$work/$t
    mkdir -p "$dir/corpus" "$dir/artifacts"
    if [ -d "$here/${corpus[$t]}" ]; then
        cp -r "$here/${corpus[$t]}/." "$dir/corpus/"
    fi
    dict=()
    if [ -f "$here/$t.dict" ]; then dict=(-dict="$here/$t.dict"); fi
    echo "== $t: ${secs}s over $(find "$dir/corpus" -type f | wc -l) seed inputs"
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a runaway allocation is a bug
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
        -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1; then
        echo "   ok: $(grep -E '^stat::number_of_executed_units' "$dir/log" | awk '{print $2}') runs"
        passed=$((passed + 1))
    else
        echo "   FAILED: $t" >&2
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$dir/log" | head -20 >&2 || true
        for a in "$dir"/artifacts/*; do
            [ -e "$a" ] || continue
            keep=$(mktemp --suffix=".$t.crash")
            cp "$a" "$keep"
            echo "   reproducer kept in $keep (run: $bin $keep)" >&2
        done
        tail -40 "$dir/log" >&2
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
