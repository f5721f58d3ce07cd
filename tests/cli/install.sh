#!/bin/bash
# install.sh — `cmake --install` of the build tree into a temporary prefix, then an application
# built against it with `pkg-config --cflags --libs netrt` loads fake_model.so and runs it, and
# the installed netrun works. Usage: bash install.sh NETC SRC_DIR (the build tree is netc's dir).
set -u
NETC=$1
BIN=$(cd "$(dirname "$NETC")" && pwd)
FAKE=$BIN/fake_model.so
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

[ -e "$FAKE" ] || { echo "install.sh: $FAKE is missing" >&2; exit 1; }
command -v pkg-config >/dev/null || { echo "install.sh: no pkg-config" >&2; exit 1; }
cmake --install "$BIN" --prefix "$T/prefix" >"$T/install.log" 2>&1 || {
    echo "install.sh: cmake --install failed:" >&2; cat "$T/install.log" >&2; exit 1; }
for f in include/netrt/netrt.h include/netrt/npy.h bin/netrun; do
    [ -e "$T/prefix/$f" ] || { echo "install.sh: $f not installed" >&2; exit 1; }
done
PC=$(find "$T/prefix" -name netrt.pc)
[ -n "$PC" ] || { echo "install.sh: netrt.pc not installed" >&2; exit 1; }

cat >"$T/app.c" <<'EOF'
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
EOF
export PKG_CONFIG_PATH=$(dirname "$PC")
# shellcheck disable=SC2046
# a sanitizer build's libnetrt.a needs the sanitizer runtimes at link time
san=""
if nm "$(dirname "$1")/libnetrt.a" 2>/dev/null | grep -c __asan >/dev/null; then san="-fsanitize=address,undefined"; fi
cc -std=gnu11 -Wall -Wextra -Werror $san "$T/app.c" $(pkg-config --cflags --libs netrt) -o "$T/app" || {
    echo "install.sh: cannot build an application with pkg-config netrt" >&2; exit 1; }
got=$("$T/app" "$FAKE")
want="fake ok y[59]=236 p[2]=49.5"
[ "$got" = "$want" ] || { echo "install.sh: the application printed '$got', want '$want'" >&2; exit 1; }

out=$("$T/prefix/bin/netrun" "$FAKE" --bench 3 --threads 1 2>/dev/null)
[[ $out =~ ^latency_ms\ median=.*threads=1$ ]] || { echo "install.sh: installed netrun printed '$out'" >&2; exit 1; }
echo "install.sh: all checks passed"
