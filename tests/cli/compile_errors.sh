#!/usr/bin/env bash
# compile_errors.sh NETC SRC_DIR — netc's command line on bad input: the exit status, the
# message, and that no artifact (partial or not) is left behind.
set -uo pipefail
netc=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
fail=0

expect() { # expect STATUS "MESSAGE" ARGS...
  local want=$1 msg=$2; shift 2
  "$netc" "$@" >out.txt 2>err.txt
  local st=$?
  if [ $st -ne "$want" ] || ! grep -qF -- "$msg" err.txt; then
    echo "FAIL: netc $* -> exit $st (want $want), stderr:"; sed 's/^/    /' err.txt; fail=1
  else
    echo "ok   exit $st: $msg"
  fi
}

printf 'input x: [1, 3, 8, 8]\ny = conv2d(x, 4, kernel=3, dilaton=2)\noutput y\n' > bad.net
expect 1 "bad.net:2:28: error: conv2d: unknown attribute 'dilaton' (did you mean 'dilation'?)" bad.net -o bad.so
expect 1 "cannot read the model" missing.net
expect 1 "/nonexistent/dir/m.so: error: cannot write" "$src/examples/lenet.net" -o /nonexistent/dir/m.so
expect 1 "--cpu=notacpu: not a CPU LLVM knows" "$src/examples/lenet.net" --cpu=notacpu -o m.so
expect 1 "--target=bogus-none-x" "$src/examples/lenet.net" --target=bogus-none-x -o m.so
expect 2 "--emit: unknown kind 'exe'" "$src/examples/lenet.net" --emit=exe
expect 2 "unknown option '--frobnicate'" "$src/examples/lenet.net" --frobnicate
expect 2 "--passes: unknown pass 'fold-bm' (did you mean 'fold-bn'?)" "$src/examples/lenet.net" --passes=fold-bm
expect 2 "--split-tol needs a number in [0, 1)" "$src/examples/lenet.net" --split-tol=2
expect 2 "--winograd-tol needs a number in [0, 1), got 'x'" "$src/examples/lenet.net" --winograd-tol=x
expect 2 "--jobs needs a number from 1 to 64, got '0'" "$src/examples/lenet.net" --jobs=0
expect 1 "--llvm-passes=no-such-pass: unknown pass name 'no-such-pass'" "$src/examples/lenet.net" --llvm-passes=no-such-pass -o m.so
[ "$(grep -c "unknown pass name" err.txt)" = 1 ] || { echo "FAIL: the --llvm-passes error is not said once"; fail=1; }
printf 'not a safetensors file' > w.safetensors
expect 1 "w.safetensors" "$src/examples/lenet.net" --weights w.safetensors -o m.so
expect 1 "input 'x': expected shape [1, 1, 32, 32]" run "$src/examples/lenet.net" --input "$src/tests/fixtures/npy/v1_2x3x4.npy"

left=$(ls | grep -vE '^(bad.net|out.txt|err.txt|w.safetensors)$' || true)
if [ -n "$left" ]; then echo "FAIL: files left behind: $left"; fail=1; else echo "ok   no artifact left behind"; fi
exit $fail
