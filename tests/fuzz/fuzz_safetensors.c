/* fuzz_safetensors.c — libFuzzer target: st_parse on arbitrary bytes, then st_to_f32 on every tensor it accepts. */
#include <stdlib.h>
#include <string.h>

#include "weights/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy, exactly size bytes long, so ASan sees any read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    StFile f;
    char err[512];
    if (st_parse(buf, size, &f, err, sizeof err)) {
        for (int i = 0; i < f.ntensors; i++) {
            const StTensor *t = &f.tensors[i];
            if (t->dtype == ST_OTHER) continue;
            if (st_find(&f, t->name) != t) abort(); /* names are unique and findable */
            size_t numel = 1;
            for (int k = 0; k < t->rank; k++) numel *= (size_t)t->shape[k];
            /* validated: numel * dtype size == end - begin <= data_len <= size */
            if (t->end > f.data_len || t->begin > t->end) abort();
            float *out = malloc(numel ? numel * sizeof(float) : 1);
            if (!out) abort();
            st_to_f32(&f, t, out);
            free(out);
        }
        st_free(&f);
    } else if (strlen(err) == 0) {
        abort(); /* every failure says why */
    }
    free(buf);
    return 0;
}
