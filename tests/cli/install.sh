#!/bin/bash
# install.sh — `cmake --install` of the build tree into a temporary prefix, which is then moved
# (every installed path is relative), and used alone: the files are there and libnetrt.so has
# its soname; an application built with pkg-config (netrt: libnetrt.so, netrt-static: libnetrt.a)
# loads fake_model.so and runs it; examples/deploy, its model compiled by the installed netc, is
# built with pkg-config and with find_package(netrt) (shared and static) and matches the installed
# `netc run`; the installed Python package, imported with PYTHONPATH, compiles and runs a model
# with the installed netc and libnetrt; the installed netrun works.
# Usage: bash install.sh NETC SRC_DIR (the build tree is netc's dir).
set -u
NETC=$1
SRC=$2
BIN=$(cd "$(dirname "$NETC")" && pwd)
FAKE=$BIN/fake_model.so
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
. "$SRC/tests/cli/expect.bash"

[ -e "$FAKE" ] || { echo "install.sh: $FAKE is missing" >&2; exit 1; }
command -v pkg-config >/dev/null || { echo "install.sh: no pkg-config" >&2; exit 1; }
"$PY" -c 'import numpy' 2>/dev/null || { echo "install.sh: $PY has no numpy" >&2; exit 1; }
cmake --install "$BIN" --prefix "$T/stage" >"$T/install.log" 2>&1 || {
    echo "install.sh: cmake --install failed:" >&2; cat "$T/install.log" >&2; exit 1; }
mv "$T/stage" "$T/prefix"
P=$T/prefix
PC=$(find "$P" -name netrt.pc)
[ -n "$PC" ] || { echo "install.sh: netrt.pc not installed" >&2; exit 1; }
LIB=$(dirname "$(dirname "$PC")") # the prefix's libdir
ABI=$(sed -n 's/^#define NETRT_ABI_VERSION \([0-9]*\).*/\1/p' "$SRC/runtime/netrt.h")
PYDIR=$P/lib/python3/dist-packages
for f in include/netrt/netrt.h include/netrt/npy.h bin/netrun bin/netc "${LIB#"$P/"}/libnetrt.a" \
         "${LIB#"$P/"}/libnetrt.so" "${LIB#"$P/"}/libnetrt.so.$ABI" "${LIB#"$P/"}/pkgconfig/netrt-static.pc" \
         "${LIB#"$P/"}/cmake/netrt/netrtConfig.cmake" "${LIB#"$P/"}/cmake/netrt/netrtConfigVersion.cmake" \
         "${PYDIR#"$P/"}/netc/__init__.py" "${PYDIR#"$P/"}/netc/_lib.py" "${PYDIR#"$P/"}/netc/_install.py"; do
    [ -e "$P/$f" ] || fail "$f not installed"
done
[ -e "$PYDIR/netc/_install.py.in" ] && fail "the template _install.py.in was installed"
soname=$(readelf -d "$LIB/libnetrt.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libnetrt.so.$ABI" ] || fail "libnetrt.so has soname '$soname', want libnetrt.so.$ABI"
[ "$fails" = 0 ] || exit 1

# a sanitizer build's libraries need the sanitizer runtimes at link time (and, to load libnetrt.so
# into an uninstrumented python, first in the process)
san=""
if nm "$BIN/libnetrt.a" 2>/dev/null | grep -c __asan >/dev/null; then san="-fsanitize=address,undefined"; fi
export PKG_CONFIG_PATH=$LIB/pkgconfig
# rpath PC: what a program linked with PC needs to find libnetrt.so in the prefix (nothing for static)
rpath() { [ "$1" = netrt ] && echo "-Wl,-rpath,$(pkg-config --variable=libdir netrt)"; }
unset NETC_BIN NETC_LIBNETRT PYTHONPATH LD_LIBRARY_PATH

# ---- an application that dlopens a model, with either .pc
cat >"$T/app.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "netrt.h"
#include "npy.h"
int main(int argc, char **argv) {
    char err[256];
    netrt_model *m = netrt_open(argv[1], err, sizeof err);
    if (argc != 2 || !m) { fprintf(stderr, "%s\n", err); return 1; }
    float x[60], w[3] = {1, 2, 3}, y[60], p[3];
    for (int i = 0; i < 60; i++) x[i] = (float)i;
    const float *in[] = {x, w};
    float *out[] = {y, p};
    void *ws = netrt_alloc_workspace(m);
    netrt_pool *pool = netrt_pool_create(2);
    netrt_status st = netrt_run(m, in, out, ws, pool);
    /* y = x * w[c] + x; p[c] = mean of channel c */
    printf("%s %s y[59]=%g p[2]=%g\n", netrt_desc(m)->name, netrt_status_str(st), y[59], p[2]);
    netrt_pool_destroy(pool), netrt_free_workspace(ws), netrt_close(m);
    return st != NETRT_OK;
}
C
for pc in netrt netrt-static; do
    # shellcheck disable=SC2046
    cc -std=gnu11 -Wall -Wextra -Werror $san "$T/app.c" $(pkg-config --cflags --libs $pc) $(rpath $pc) -o "$T/app-$pc" || {
        fail "cannot build an application with pkg-config $pc"; continue; }
    needs=$(readelf -d "$T/app-$pc" | grep -c "libnetrt.so.$ABI")
    want_needs=1; [ $pc = netrt-static ] && want_needs=0
    [ "$needs" = $want_needs ] || fail "app built with $pc: $needs NEEDED libnetrt.so.$ABI entries, want $want_needs"
    got=$("$T/app-$pc" "$FAKE")
    want="fake ok y[59]=236 p[2]=49.5"
    [ "$got" = "$want" ] || fail "the application built with $pc printed '$got', want '$want'"
done

# ---- examples/deploy: with pkg-config, and with find_package(netrt) through its CMakeLists.txt
"$PY" -c "import numpy as np; np.save('$T/in.npy', np.random.default_rng(5).standard_normal((1,1,32,32)).astype('<f4'))"
expect 0 "$P/bin/netc" run "$SRC/examples/lenet.net" --seed 3 --input "$T/in.npy" --output "$T/ref.npy"
mkdir "$T/obj"
(cd "$T/obj" && "$P/bin/netc" "$SRC/examples/lenet.net" --seed 3 --emit=obj -o lenet) || fail "installed netc --emit=obj"
mvec=""; [ "$(uname -m)" = x86_64 ] && mvec=-lmvec
for pc in netrt netrt-static; do
    # shellcheck disable=SC2046
    cc -std=c11 -Wall -Wextra -Werror -O2 $san -I"$T/obj" "$SRC/examples/deploy/main.c" "$T/obj/lenet.o" \
       $(pkg-config --cflags --libs $pc) $(rpath $pc) $mvec -lm -o "$T/classify-$pc" || { fail "deploy with $pc"; continue; }
    expect 0 "$T/classify-$pc" "$T/in.npy" "$T/out-$pc.npy"
done
for static in OFF ON; do
    d=$T/deploy-$static
    if ! cmake -S "$SRC/examples/deploy" -B "$d" -DCMAKE_PREFIX_PATH="$P" -DNETRT_STATIC=$static \
            -DCMAKE_C_FLAGS="-Wall -Wextra -Werror $san" -DCMAKE_EXE_LINKER_FLAGS="$san" >"$T/cmake.log" 2>&1 ||
       ! cmake --build "$d" >>"$T/cmake.log" 2>&1; then
        fail "examples/deploy with find_package(netrt), NETRT_STATIC=$static:"; sed 's/^/    /' "$T/cmake.log" >&2; continue
    fi
    found=$(sed -n 's/^netrt_DIR:PATH=//p' "$d/CMakeCache.txt")
    [ "$found" = "$LIB/cmake/netrt" ] || fail "find_package(netrt) found '$found', want $LIB/cmake/netrt"
    needs=$(readelf -d "$d/classify" | grep -c "libnetrt.so.$ABI")
    [ "$needs" = "$([ $static = ON ] && echo 0 || echo 1)" ] ||
        fail "deploy with find_package, NETRT_STATIC=$static: $needs NEEDED libnetrt.so.$ABI entries"
    expect 0 "$d/classify" "$T/in.npy" "$T/out-cmake-$static.npy"
done
"$PY" - "$T" <<'PY' || fail "deploy outputs differ"
import glob, sys, numpy as np
t = sys.argv[1]
ref = np.load(t + "/ref.npy")
outs = sorted(glob.glob(t + "/out-*.npy"))
assert len(outs) == 4, outs
first = np.load(outs[0])
for f in outs:
    y = np.load(f)
    assert np.array_equal(y, first), f  # the same object code, however it is linked
    err = float(np.abs(y - ref).max() / max(float(np.abs(ref).max()), 1e-4))
    assert err <= 1e-5, (f, err)
print("install.sh: deploy (pkg-config netrt, netrt-static; find_package shared, static) vs netc run: rel.err %.2e" % err)
PY

# ---- the Python package from the prefix alone (from another directory, no build-tree variables)
pyenv=()
if [ -n "$san" ]; then
    pyenv=(env "LD_PRELOAD=$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
           "ASAN_OPTIONS=detect_leaks=0")
fi
(cd "$T" && "${pyenv[@]}" env PYTHONPATH="$PYDIR" PYTHONDONTWRITEBYTECODE=1 "$PY" - "$P" "$SRC" "$FAKE" <<'PY') ||
import os, sys
import numpy as np
import netc
prefix, src, fake = sys.argv[1:]
def under_prefix(p):
    return os.path.realpath(p).startswith(os.path.realpath(prefix) + "/")
assert under_prefix(netc.__file__), netc.__file__
assert under_prefix(netc._lib.path), netc._lib.path
assert under_prefix(netc._lib.netc_binary()), netc._lib.netc_binary()
x = np.load("in.npy")
with netc.compile(os.path.join(src, "examples", "lenet.net"), seed=3) as m:
    y = m(x)
assert np.array_equal(y, np.load("out-netrt.npy")), "python's lenet differs from the deploy example's"
with netc.load(fake) as m:
    a, b = m(np.arange(60, dtype=np.float32).reshape(1, 3, 4, 5), np.array([1, 2, 3], np.float32).reshape(1, 3, 1, 1))
    assert a.ravel()[59] == 236 and b.ravel()[2] == 49.5
print("install.sh: the installed Python package ran lenet and fake_model")
PY
    fail "the installed Python package"

out=$("$P/bin/netrun" "$FAKE" --bench 3 --threads 1 2>/dev/null)
[[ $out =~ ^latency_ms\ median=.*threads=1$ ]] || fail "installed netrun printed '$out'"
[ "$fails" = 0 ] || { echo "install.sh: $fails failure(s)" >&2; exit 1; }
echo "install.sh: all checks passed"
