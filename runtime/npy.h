/* npy.h — NumPy .npy I/O (format 1.0-3.0, little-endian float32, C order): netrun, netc run. */
#ifndef NETRT_NPY_H
#define NETRT_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NETRT_NPY_MAX_RANK 8

typedef struct netrt_npy {
    int rank;
    int64_t shape[NETRT_NPY_MAX_RANK];
    size_t count;  /* number of floats */
    float *data;   /* malloc'ed */
} netrt_npy;

/* Parse an in-memory .npy image. 0 on success; otherwise -1 and a message in err
 * (bad magic, unsupported version, dtype other than <f4, Fortran order, truncated data...). */
int netrt_npy_parse(const void *buf, size_t len, netrt_npy *out, char *err, size_t errlen);
int netrt_npy_read(const char *path, netrt_npy *out, char *err, size_t errlen);
/* Writes format 1.0 (2.0 if the header needs it) atomically (temp file + rename). */
int netrt_npy_write(const char *path, const float *data, int rank, const int64_t *shape, char *err,
                    size_t errlen);
void netrt_npy_free(netrt_npy *a);

#endif
