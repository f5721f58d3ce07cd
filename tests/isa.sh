#!/usr/bin/env bash
# isa.sh LEVEL CMD... — run a test with NETC_TEST_CPU=LEVEL (x86-64-v2, -v3, -v4): the codegen
# suites compile for that x86-64 level instead of the host. Exit 77 (ctest: skipped) when this
# CPU cannot run code of that level, so an AVX2 machine skips v4 and says so.
set -u
level=$1; shift
case $level in
  x86-64-v2) need="sse4_2 ssse3 popcnt cx16" ;;
  x86-64-v3) need="sse4_2 ssse3 popcnt avx avx2 fma bmi1 bmi2 f16c movbe" ;;
  x86-64-v4) need="sse4_2 avx2 fma avx512f avx512bw avx512cd avx512dq avx512vl" ;;
  *) echo "isa.sh: unknown level $level" >&2; exit 2 ;;
esac
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
for f in $need; do
  case "$flags" in *" $f "*) ;; *) echo "isa.sh: this CPU has no $f: $level not run"; exit 77 ;; esac
done
NETC_TEST_CPU=$level exec "$@"
