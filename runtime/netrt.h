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
 * pointers of `struct netrt_pool`, and runs serially when the pool is NULL. A model linked
 * statically (`--emit=obj`) has a typed entry point declared in its generated header.
 *
 * Where the time goes, node by node (what `netrun --profile` prints):
 *
 *     netrt_profile *p = netrt_profile_create(pool, m, 20);         // up to 20 runs
 *     for (int r = 0; r < 20; r++) netrt_profile_run(p, inputs, outputs, ws);
 *     const netrt_node_info *nodes;
 *     for (int i = 0, n = netrt_profile_nodes(m, &nodes); i < n; i++)
 *         printf("%s %s %.3f ms\n", nodes[i].name, nodes[i].kind, netrt_profile_median_ms(p, i));
 *     netrt_profile_destroy(p);
 *
 * `cmake --install` puts this header and npy.h in include/netrt/, libnetrt.so (soname
 * libnetrt.so.<NETRT_ABI_VERSION>) and libnetrt.a in lib/, netc and netrun in bin/, netrt.pc and
 * netrt-static.pc in lib/pkgconfig/, and a CMake package in lib/cmake/netrt/: build with
 * `cc app.c $(pkg-config --cflags --libs netrt)` (or netrt-static), or find_package(netrt) and
 * netrt::netrt (or netrt::netrt_static), and `#include "netrt.h"`. */
#ifndef NETRT_H
#define NETRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NETRT_ABI_VERSION 3
/* The oldest ABI this runtime still loads: version 2 models have no profile table (their
 * descriptor is a prefix of this one) and never read netrt_pool's profile member. */
#define NETRT_ABI_VERSION_MIN 2
#define NETRT_MAX_RANK 8
#define NETRT_DESCRIPTOR_SYMBOL "netrt_model_descriptor"

/* ---- the thread pool --------------------------------------------------------------------- */

/* A parallel loop body: iterations [begin, end) of a loop of n, with the kernel's context. */
typedef void (*netrt_task_fn)(void *ctx, int64_t begin, int64_t end);

typedef struct netrt_pool netrt_pool;
/* Generated code relies on these two members only: a pool of your own must set both (profile
 * to NULL unless it wants the calls). */
struct netrt_pool {
    void (*parallel_for)(netrt_pool *pool, int64_t n, netrt_task_fn fn, void *ctx);
    /* When not NULL, a model's run calls profile(pool, id, 0) on the calling thread before the
     * kernel(s) of profile entry `id` (netrt_profile_nodes) and profile(pool, id, 1) after them,
     * once each per run, entries in schedule order; when NULL the cost is a test and a branch
     * per node. It is read at the start of a run (and at a few points in it): change it only
     * between runs. netrt_pool_create leaves it NULL; netrt_profile_create sets its own. */
    void (*profile)(netrt_pool *pool, int32_t id, int32_t phase);
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

/* One entry of a model's profile table: a node of the compiled graph (entry i is node i of the
 * schedule), then the layout copies at its boundary (NCHW inputs to NHWC, and back). The table
 * is the same for every variant of a fat model. */
typedef struct netrt_node_info {
    const char *name;  /* the node's name in the graph ("layer1.0.conv1"), or the tensor's */
    const char *op;    /* "conv2d", "add", ...; "input", "output" for the boundary copies */
    /* the kernel family: "direct", "winograd", "gemm" (1x1 stride-1 convs, linear),
     * "depthwise", "transposed", "pool", "elementwise", "copy", "softmax", "layout" */
    const char *kind;
    const char *fused;   /* what its epilogue applies, in order: "add+relu"; "" for nothing */
    uint64_t flops;      /* nominal: 2 x the direct convolution's multiply-adds (also for
                            Winograd, so flops / time is an "effective" rate); 0 for no MACs */
    int32_t rank;        /* the output's shape */
    int64_t shape[NETRT_MAX_RANK];
} netrt_node_info;

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
    /* ABI 3 (desc_size tells whether they are there): the profile table */
    int32_t nprofile;
    const netrt_node_info *profile;
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
 * another output: NETRT_ERR_ARG), then calls desc->run. pool may be NULL (serial). The kernels
 * keep buffers of up to 1 MiB on the stack of the threads that run them (Winograd's tiles): call
 * it from a thread with at least 2 MiB of stack (a process's main thread and glibc's default
 * threads have 8; the pool's workers get at least 4); with less, a kernel faults at the guard
 * page, never writes past it. */
netrt_status netrt_run(const netrt_model *m, const float *const *inputs, float *const *outputs,
                       void *workspace, netrt_pool *pool);
const char *netrt_status_str(netrt_status s);

/* ---- profiling ---------------------------------------------------------------------------- */

/* The model's profile table (see netrt_node_info): its length, *nodes (if not NULL) pointing at
 * it. 0 for a model compiled before ABI 3. */
int netrt_profile_nodes(const netrt_model *m, const netrt_node_info **nodes);

typedef struct netrt_profile netrt_profile;
/* Profile up to max_runs runs of m on pool (any pool, or NULL: serial). NULL when m has no
 * profile table, max_runs < 1, or on OOM. The profile wraps the pool (it is not changed); runs
 * go through netrt_profile_run, one thread at a time. Times are CLOCK_MONOTONIC on the calling
 * thread, from which every kernel is dispatched. */
netrt_profile *netrt_profile_create(netrt_pool *pool, const netrt_model *m, int max_runs);
void netrt_profile_destroy(netrt_profile *p);
/* netrt_run(m, inputs, outputs, workspace, pool) timed whole and entry by entry, recorded as
 * the next run; NETRT_ERR_ARG once max_runs are recorded (or an argument is bad). */
netrt_status netrt_profile_run(netrt_profile *p, const float *const *inputs, float *const *outputs, void *workspace);
int netrt_profile_runs(const netrt_profile *p);
/* Milliseconds entry `id` took in run `run` (from its begin to its end), or, for id -1, the
 * whole run; -1 when out of range. */
double netrt_profile_ms(const netrt_profile *p, int run, int id);
/* The median over the recorded runs of netrt_profile_ms (the mean of the middle two for an
 * even count); for id -2, the median of each run's time outside the entries (the run minus
 * the sum of its entries: dispatch, hooks, the entry point). -1 when nothing is recorded. */
double netrt_profile_median_ms(const netrt_profile *p, int id);
/* How many times entry `id` began, over all runs (0: it has no kernel, e.g. an eliminated
 * concat, or it never ran). */
int64_t netrt_profile_calls(const netrt_profile *p, int id);

/* The FP32 peak of this CPU in GFLOP/s on `threads` threads: independent FMA chains on the
 * widest vectors netrt_cpu_features() has (AVX-512F, AVX2 with FMA, else SSE2 multiply and
 * add), the best of four rounds after a warm-up, in about `seconds` of wall time (<= 0: 0.25).
 * *isa (if not NULL) names what it measured ("avx512f", "avx2+fma", "sse2"). 0, *isa NULL, on
 * other architectures: not measured. tools/peak.c measures the same with the same code. */
double netrt_peak_gflops(int threads, double seconds, const char **isa);

/* The seeded random values netrun and `netc run` give input number `index` when no --input is
 * given: uniform in [-1, 1), identical in both tools for the same seed. */
void netrt_random_input(float *x, size_t n, uint64_t seed, int index);

#ifdef __cplusplus
}
#endif
#endif
