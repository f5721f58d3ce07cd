/* fake_model.c — a hand-written stand-in for a netc-compiled model (the twin of fake_model.net):
 * y = x * w + x (w broadcast per channel), p = global_avgpool(x), through the workspace and the
 * pool's parallel_for, so the loader, netrun and the pool can be tested without code generation.
 * Its profile table has the three nodes, and it calls the pool's profile hook around each as
 * generated code does. Built three times: as fake_model.so; with FAKE_ABI_VERSION=99 as
 * fake_model_badabi.so; with FAKE_ABI_VERSION=2 as fake_model_abi2.so, which has what an ABI 2
 * model has: a descriptor that ends before the profile table, and no hook calls. */
#include <stddef.h>

#include "netrt.h"

#if defined(__x86_64__)
#define FAKE_ARCH "x86_64"
#elif defined(__aarch64__)
#define FAKE_ARCH "aarch64"
#else
#define FAKE_ARCH "unknown"
#endif
#ifndef FAKE_ABI_VERSION
#define FAKE_ABI_VERSION NETRT_ABI_VERSION
#endif

enum { C = 3, H = 4, W = 5, HW = H * W, N = C * HW };

typedef struct Ctx {
    const float *x, *w;
    float *xw, *y;
} Ctx;

/* xw = x * w[c], the product kept in the workspace as generated code keeps intermediates */
static void mul_task(void *arg, int64_t b, int64_t e) {
    Ctx *c = arg;
    for (int64_t i = b; i < e; i++) c->xw[i] = c->x[i] * c->w[i / HW];
}

static void add_task(void *arg, int64_t b, int64_t e) {
    Ctx *c = arg;
    for (int64_t i = b; i < e; i++) c->y[i] = c->xw[i] + c->x[i];
}

static void par(netrt_pool *pool, int64_t n, netrt_task_fn fn, void *ctx) {
    if (pool) pool->parallel_for(pool, n, fn, ctx);
    else fn(ctx, 0, n);
}

#if FAKE_ABI_VERSION >= 3
static void prof(netrt_pool *pool, int32_t id, int32_t phase) {
    if (pool && pool->profile) pool->profile(pool, id, phase);
}
#else
static void prof(netrt_pool *pool, int32_t id, int32_t phase) { (void)pool, (void)id, (void)phase; }
#endif

static int fake_run(const float *const *in, float *const *out, void *workspace, netrt_pool *pool) {
    Ctx c = {.x = in[0], .w = in[1], .xw = workspace, .y = out[0]};
    prof(pool, 0, 0);
    par(pool, N, mul_task, &c);
    prof(pool, 0, 1);
    prof(pool, 1, 0);
    par(pool, N, add_task, &c);
    prof(pool, 1, 1);
    prof(pool, 2, 0);
    for (int ch = 0; ch < C; ch++) {
        double s = 0;
        for (int i = 0; i < HW; i++) s += c.x[ch * HW + i];
        out[1][ch] = (float)(s / HW);
    }
    prof(pool, 2, 1);
    return 0;
}

#if FAKE_ABI_VERSION >= 3
static const netrt_node_info fake_profile[] = {
    {.name = "xw", .op = "mul", .kind = "elementwise", .fused = "", .flops = 0, .rank = 4, .shape = {1, C, H, W}},
    {.name = "y", .op = "add", .kind = "elementwise", .fused = "", .flops = 0, .rank = 4, .shape = {1, C, H, W}},
    {.name = "p", .op = "global_avgpool", .kind = "pool", .fused = "", .flops = 0, .rank = 4, .shape = {1, C, 1, 1}},
};
#endif

static const netrt_tensor_info fake_inputs[] = {
    {.name = "x", .rank = 4, .shape = {1, C, H, W}},
    {.name = "w", .rank = 4, .shape = {1, C, 1, 1}},
};
static const netrt_tensor_info fake_outputs[] = {
    {.name = "y", .rank = 4, .shape = {1, C, H, W}},
    {.name = "p", .rank = 4, .shape = {1, C, 1, 1}},
};

static const netrt_variant fake_variants[] = {{.cpu = "generic", .features = "", .required = 0, .run = fake_run}};

__attribute__((visibility("default"))) const netrt_model_desc netrt_model_descriptor = {
    .abi_version = FAKE_ABI_VERSION,
#if FAKE_ABI_VERSION == 2
    .desc_size = offsetof(netrt_model_desc, nprofile),
#else
    .desc_size = sizeof(netrt_model_desc),
    .nprofile = 3,
    .profile = fake_profile,
#endif
    .name = "fake",
    .ninputs = 2,
    .noutputs = 2,
    .inputs = fake_inputs,
    .outputs = fake_outputs,
    .workspace_size = N * sizeof(float),
    .workspace_align = 64,
    .arch = FAKE_ARCH,
    .nvariants = 1,
    .variants = fake_variants,
};
