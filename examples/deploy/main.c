/* main.c — deploying a netc model without dlopen: the model is compiled to an object file
 * (`netc lenet.net --emit=obj -o lenet` gives lenet.o and lenet.h) and linked into this program.
 *
 *   netc ../lenet.net --weights lenet.safetensors --emit=obj -o lenet
 *   cc -O2 -I. -I../../runtime main.c lenet.o libnetrt.a -lpthread -ldl -lmvec -lm -o classify
 *   ./classify input.npy [output.npy]
 *
 * With an installed netc (`cmake --install build --prefix PREFIX`), `pkg-config --cflags --libs
 * netrt-static` (or netrt, for libnetrt.so) gives the runtime's flags, or CMakeLists.txt here
 * builds it all with find_package(netrt): cmake -S . -B b -DCMAKE_PREFIX_PATH=PREFIX.
 *
 * The runtime library is only needed here for the thread pool and .npy I/O: the generated code
 * itself depends on nothing but libm (and libmvec on x86). */
#include <stdio.h>
#include <stdlib.h>

#include "lenet.h"
#include "netrt.h"
#include "npy.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s INPUT.npy [OUTPUT.npy]\n", argv[0]);
        return 2;
    }
    char err[512];
    netrt_npy in;
    if (netrt_npy_read(argv[1], &in, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (in.count != LENET_X_SIZE) {
        fprintf(stderr, "%s: expected %d floats, got %zu\n", argv[1], LENET_X_SIZE, in.count);
        return 1;
    }
    float *out = malloc(sizeof(float) * LENET_FC3_SIZE);
    /* one workspace per concurrent call, 64-byte aligned; sized at compile time */
    void *ws = aligned_alloc(LENET_WORKSPACE_ALIGN, (LENET_WORKSPACE_BYTES + 63) / 64 * 64);
    netrt_pool *pool = netrt_pool_create(0);
    if (!out || !ws || !pool) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    /* non-zero (NETRT_ERR_CPU) when this CPU lacks what the code was compiled for */
    int rc = lenet_run(in.data, out, ws, pool);
    if (rc) {
        fprintf(stderr, "lenet_run: %s\n", netrt_status_str((netrt_status)rc));
        return 1;
    }

    int best = 0;
    for (int i = 1; i < LENET_FC3_SIZE; i++)
        if (out[i] > out[best]) best = i;
    printf("class %d (score %.4f)\n", best, out[best]);
    int64_t shape[] = LENET_FC3_SHAPE;
    if (argc > 2 && netrt_npy_write(argv[2], out, 2, shape, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    netrt_pool_destroy(pool);
    free(ws);
    free(out);
    netrt_npy_free(&in);
    return 0;
}
