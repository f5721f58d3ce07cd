#!/usr/bin/env bash
# run.sh NETC SRC_DIR LIBNETRT — the Python package's pytest suite (tests/python/test_*.py) with
# Debian's python3 and python3-pytest, on the package in SRC_DIR/python, the libnetrt.so and the
# netc given (ctest passes the build tree's). Exit 77 (ctest: skipped) without pytest or numpy.
set -u
netc=$1 src=$2 lib=$3
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "python: skipped: $PY has no numpy (apt-get install python3-numpy)"; exit 77; }
"$PY" -c 'import pytest' 2>/dev/null || { echo "python: skipped: $PY has no pytest (apt-get install python3-pytest)"; exit 77; }
# A sanitizer build's libnetrt.so needs the sanitizer runtimes loaded before anything else in the
# (uninstrumented) interpreter; leaks are not checked: CPython's own at exit would drown ours.
if readelf -d "$lib" 2>/dev/null | grep -q 'libasan'; then
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
    export LD_PRELOAD ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 # the last setting wins
fi
export NETC_BIN=$netc NETC_LIBNETRT=$lib NETC_TEST_SRC=$src NETC_TEST_BUILD=$(dirname "$netc")
export PYTHONPATH=$src/python PYTHONDONTWRITEBYTECODE=1
exec "$PY" -m pytest -q -p no:cacheprovider -rs "$src/tests/python"
