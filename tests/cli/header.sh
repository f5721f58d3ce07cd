#!/usr/bin/env bash
# header.sh NETC SRC_DIR — the generated header is valid C whatever the tensors are called (C
# keywords, names that clash once sanitised), and the object links and runs through its typed
# entry point with the sizes the header declares.
set -euo pipefail
netc=$1; src=$2; build=$(dirname "$netc")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
cat > kw.net <<'NET'
net kw
input int: [1, 3, 4, 4]
input float: [1, 3, 1, 1]
for = mul(int, float)
while = relu(for)
workspace = sigmoid(for)
output while, workspace
NET
"$netc" kw.net --emit=obj -o kw 2>/dev/null
cat > main.c <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "kw.h"
int main(void) {
    static float a[KW_INT__SIZE], b[KW_FLOAT__SIZE], y[KW_WHILE__SIZE], z[KW_WORKSPACE__SIZE];
    for (int i = 0; i < KW_INT__SIZE; i++) a[i] = (float)i - 20;
    for (int i = 0; i < KW_FLOAT__SIZE; i++) b[i] = 0.5f;
    void *ws = aligned_alloc(KW_WORKSPACE_ALIGN, (KW_WORKSPACE_BYTES + 63) / 64 * 64);
    if (kw_run(a, b, y, z, ws, NULL) != 0) return 1;
    /* relu(a * 0.5) and sigmoid(a * 0.5) at element 47: a = 27 */
    printf("%g %g\n", y[47], z[0]);
    return !(y[47] == 13.5f && y[0] == 0.0f && z[0] > 0.0f && z[0] < 1e-4f);
}
C
cc -std=c11 -Wall -Wextra -Werror -pedantic -I. main.c kw.o -lmvec -lm -o kwtest
./kwtest
grep -q "int kw_run(const float \*int_, const float \*float_, float \*while_, float \*workspace_, void \*workspace, netrt_pool \*pool);" kw.h
echo "header: keywords renamed, compiled with -pedantic -Werror, ran"
