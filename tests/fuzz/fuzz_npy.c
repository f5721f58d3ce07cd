/* fuzz_npy.c — libFuzzer target: netrt_npy_parse on arbitrary bytes. */
#include <stdlib.h>
#include <string.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    netrt_npy a;
    char err[512];
    if (netrt_npy_parse(buf, size, &a, err, sizeof err) == 0) {
        size_t count = 1;
        for (int i = 0; i < a.rank; i++) count *= (size_t)a.shape[i];
        if (a.rank < 0 || a.rank > NETRT_NPY_MAX_RANK || count != a.count || !a.data ||
            a.count * sizeof(float) > size)
            abort();
        volatile float sink = 0;
        for (size_t i = 0; i < a.count; i++) sink += a.data[i]; /* every float is readable */
        (void)sink;
        netrt_npy_free(&a);
    } else if (strlen(err) == 0) {
        abort();
    }
    free(buf);
    return 0;
}
