/* netrt.h — the netc runtime: load a compiled model, query it, run it, with a thread pool.
 *
 * A model compiled by netc (`netc model.net -o model.so`) exports one descriptor,
 * `netrt_model_descriptor`, whose layout is below. The loader API wraps it:
 *
 *     char err[256];
 *     netrt_model *m = netrt_open("model.so", err, sizeof err);     // dlopen + ABI check
 *     const netrt_tensor_info *in = netrt_input(m, 0);               // name, rank, shape
 *     void *ws = netrt_alloc_workspace(m);                           // one block per thread
 *     netrt_pool *pool = netrt_pool_create(0);                       // 0: NETRT_NUM_THREADS or cores
 *     netrt_run(m, inputs, outputs, ws, pool);                       // NCHW float32 buffers
 *     netrt_free_workspace(ws); netrt_pool_destroy(pool); netrt_close(m);
 *
 * Generated code needs nothing from this library: it calls the pool through the function
 * pointer that starts `struct netrt_pool`, and runs serially when the pool is NULL. A model
 * linked statically (`--emit=obj`) has a typed entry point declared in its generated header.
 *
 * `cmake --install` puts this header and npy.h in include/netrt/, libnetrt.a in lib/, netrun in
 * bin/, and netrt.pc in lib/pkgconfig/: build with `cc app.c $(pkg-config --cflags --libs netrt)`
 * and `#include "netrt.h"`. */
#ifndef NETRT_H
#define NETRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NETRT_ABI_VERSION 2
#define NETRT_MAX_RANK 8
#define NETRT_DESCRIPTOR_SYMBOL "netrt_model_descriptor"

/* ---- the thread pool --------------------------------------------------------------------- */

/* A parallel loop body: iterations [begin, end) of a loop of n, with the kernel's context. */
typedef void (*netrt_task_fn)(void *ctx, int64_t begin, int64_t end);

typedef struct netrt_pool netrt_pool;
/* Generated code relies on this first member only. */
struct netrt_pool {
    void (*parallel_for)(netrt_pool *pool, int64_t n, netrt_task_fn fn, void *ctx);
};

/* nthreads <= 0: NETRT_NUM_THREADS if it is a positive integer, else the number of online cores
 * (at most 1024). NULL on OOM. parallel_for runs fn over contiguous chunks covering [0, n), each
 * index exactly once, and returns when all are done: each thread (the caller is the first) owns
 * an equal share and runs it in at most four chunks, then takes chunks left in the others'
 * shares (NETRT_SCHEDULE=static: one chunk per thread, no taking). A nested call from inside a
 * task, or a call while another thread is using the same pool, runs serially on the calling
 * thread. Different pools are independent. */
netrt_pool *netrt_pool_create(int nthreads);
int netrt_pool_threads(const netrt_pool *pool); /* 1 for NULL */
void netrt_pool_destroy(netrt_pool *pool);

/* ---- the CPU ---------------------------------------------------------------------------- */

/* x86 features as bits of a mask: bit i is netrt_cpu_feature_name(i), LLVM's name for it
 * ("avx2", "fma", "avx512f", ...). A model records the features its code needs; the loader
 * refuses it on a CPU without them, with a message, instead of letting it die of SIGILL. */
const char *netrt_cpu_feature_name(int bit); /* NULL past the last feature */
int netrt_cpu_feature_bit(const char *name); /* -1 when unknown */
/* The features of the running CPU that the OS also enables (xgetbv), detected once.
 * NETRT_CPU_FEATURES="x86-64-v3" (or a list: "avx2,fma,...") hides the others, to see how a
 * smaller CPU would treat a model; it never adds one. 0 on other architectures. */
uint64_t netrt_cpu_features(void);
/* The features of x86-64 level 1..4 (x86-64, x86-64-v2, -v3, -v4); the highest level a mask
 * covers (0: not even x86-64). */
uint64_t netrt_cpu_level_features(int level);
int netrt_cpu_level(uint64_t have);
/* "avx2,fma" into buf (truncated to len); returns the length it needed. */
size_t netrt_cpu_features_str(uint64_t mask, char *buf, size_t len);
/* A list of names and levels into a mask; *bad (if not NULL) points at the first unknown name. */
uint64_t netrt_cpu_parse_features(const char *list, const char **bad);
/* Where cpuid reports feature `bit`: leaf, sub-leaf, register (0..3: eax, ebx, ecx, edx) and
 * bit, and the XCR0 bits the OS must enable for it (0x6 for AVX state, 0xE6 for AVX-512); 0
 * past the table. The compiler builds the CPU check of a statically linked entry point from it. */
int netrt_cpu_feature_cpuid(int bit, unsigned *leaf, unsigned *sub, int *reg, int *regbit, unsigned *xcr0);
/* "x86_64", "aarch64": the architecture this runtime was built for. */
const char *netrt_arch(void);

/* ---- the descriptor a compiled model exports ------------------------------------------- */

/* inputs[i]/outputs[i]: caller buffers in NCHW order, not overlapping the workspace. Returns 0. */
typedef int (*netrt_run_fn)(const float *const *inputs, float *const *outputs, void *workspace, netrt_pool *pool);

/* One compilation of the model's kernels for one CPU. */
typedef struct netrt_variant {
    const char *cpu;      /* what it was compiled for: "x86-64-v3", "znver3", "generic" */
    const char *features; /* the CPU features it needs, "avx2,fma,...": for messages */
    uint64_t required;    /* the same, as netrt_cpu_feature_name bits */
    netrt_run_fn run;
} netrt_variant;

typedef struct netrt_tensor_info {
    const char *name;
    int32_t rank;
    int64_t shape[NETRT_MAX_RANK];
} netrt_tensor_info;

typedef struct netrt_model_desc {
    uint32_t abi_version;   /* NETRT_ABI_VERSION: checked first */
    uint32_t desc_size;     /* sizeof(netrt_model_desc) when compiled */
    const char *name;       /* the model's name */
    int32_t ninputs, noutputs;
    const netrt_tensor_info *inputs, *outputs;
    uint64_t workspace_size;  /* bytes */
    uint64_t workspace_align; /* 64 */
    const char *arch;         /* "x86_64", "aarch64": what the code runs on */
    int32_t nvariants;        /* >= 1, best first: the loader runs the first the CPU supports */
    const netrt_variant *variants;
} netrt_model_desc;

/* ---- the loader ------------------------------------------------------------------------- */

typedef enum netrt_status {
    NETRT_OK = 0,
    NETRT_ERR_OPEN = 1,     /* dlopen failed */
    NETRT_ERR_NOT_MODEL = 2,/* no descriptor symbol */
    NETRT_ERR_ABI = 3,      /* ABI version mismatch */
    NETRT_ERR_ARG = 4,      /* bad argument (index, NULL buffer) */
    NETRT_ERR_NOMEM = 5,
    NETRT_ERR_RUN = 6,      /* the model's run returned non-zero */
    NETRT_ERR_CPU = 7       /* the CPU lacks features the model's code needs */
} netrt_status;

typedef struct netrt_model netrt_model;

/* NULL on failure, with a message in err (which may be NULL): dlopen's own text for a file that
 * is not a loadable shared object, "'x.so' is not a netc model (...)", an ABI mismatch naming both
 * versions, what is malformed in the descriptor, or the CPU features the model needs and this CPU
 * lacks ("'r.so' needs avx512f, avx512bw; this CPU has avx2, fma: rebuild with ..."). The variant
 * to run is chosen here, once: the first (best) one whose features the CPU has. A path without '/' means the working
 * directory (as "./path"), not the library search path. The descriptor is checked once here:
 * counts, names (unique), ranks <= NETRT_MAX_RANK, dimensions >= 1, alignment, entry point. */
netrt_model *netrt_open(const char *path, char *err, size_t errlen);
/* The same checks for a descriptor already in memory (a statically linked model). */
netrt_model *netrt_open_desc(const netrt_model_desc *desc, char *err, size_t errlen);
void netrt_close(netrt_model *m);
const netrt_model_desc *netrt_desc(const netrt_model *m);
/* The variant netrt_run calls (chosen at open). */
const netrt_variant *netrt_variant_selected(const netrt_model *m);
int netrt_num_inputs(const netrt_model *m);
int netrt_num_outputs(const netrt_model *m);
const netrt_tensor_info *netrt_input(const netrt_model *m, int i);
const netrt_tensor_info *netrt_output(const netrt_model *m, int i);
size_t netrt_tensor_count(const netrt_tensor_info *t); /* number of floats */
/* aligned to max(workspace_align, 64), never NULL for a 0-byte workspace; NULL on OOM */
void *netrt_alloc_workspace(const netrt_model *m);
void netrt_free_workspace(void *ws);
/* Checks the arguments (NULL or misaligned buffers, outputs overlapping the workspace, an input or
 * another output: NETRT_ERR_ARG), then calls desc->run. pool may be NULL (serial). */
netrt_status netrt_run(const netrt_model *m, const float *const *inputs, float *const *outputs,
                       void *workspace, netrt_pool *pool);
const char *netrt_status_str(netrt_status s);

/* The seeded random values netrun and `netc run` give input number `index` when no --input is
 * given: uniform in [-1, 1), identical in both tools for the same seed. */
void netrt_random_input(float *x, size_t n, uint64_t seed, int index);

#ifdef __cplusplus
}
#endif
#endif
