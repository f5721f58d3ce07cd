/* weights.h — binding weight tensors: the safetensors reader, and seeded random initialisation. */
#ifndef NETC_WEIGHTS_H
#define NETC_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "../ir/ir.h"

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_OTHER } StDtype;

typedef struct StTensor {
    char *name;
    StDtype dtype;
    const char *dtype_name;
    int rank;
    int64_t shape[IR_MAX_RANK];
    size_t begin, end; /* byte offsets into the data section, validated */
} StTensor;

typedef struct StFile {
    const uint8_t *data; /* the data section (points into the caller's buffer) */
    size_t data_len;
    int ntensors;
    StTensor *tensors;
} StFile;

/* Parse a safetensors image held in memory. Validates the header length, the JSON, every
 * dtype, shape and offset range (in bounds, size == numel * dtype size, no overlap) before any
 * tensor byte is read. On failure returns false with a message in err. */
bool st_parse(const uint8_t *buf, size_t len, StFile *out, char *err, size_t errlen);
void st_free(StFile *f);
const StTensor *st_find(const StFile *f, const char *name);
/* Convert one tensor to float32 (F16/BF16/F64 widened or narrowed). */
void st_to_f32(const StFile *f, const StTensor *t, float *dst);

/* Bind every weight tensor of g from the file: a missing tensor, an extra tensor (other than
 * *.num_batches_tracked) or a wrong shape is an error naming the tensor and both shapes. */
bool weights_load(Graph *g, const char *path, Diags *d);
/* Seeded random init of every unbound weight: He-normal for conv/linear weights, small biases,
 * BN statistics near identity with positive variance, PReLU 0.25. Deterministic in seed. */
void weights_random_init(Graph *g, uint64_t seed);

#endif
