/* fake_model.c — a hand-written stand-in for a netc-compiled model (the twin of fake_model.net):
 * y = x * w + x (w broadcast per channel), p = global_avgpool(x), through the workspace and the
 * pool's parallel_for, so the loader, netrun and the pool can be tested without code generation.
 * Built twice: as fake_model.so, and with FAKE_ABI_VERSION=99 as fake_model_badabi.so. */
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

static int fake_run(const float *const *in, float *const *out, void *workspace, netrt_pool *pool) {
    Ctx c = {.x = in[0], .w = in[1], .xw = workspace, .y = out[0]};
    par(pool, N, mul_task, &c);
    par(pool, N, add_task, &c);
    for (int ch = 0; ch < C; ch++) {
        double s = 0;
        for (int i = 0; i < HW; i++) s += c.x[ch * HW + i];
        out[1][ch] = (float)(s / HW);
    }
    return 0;
}

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
    .desc_size = sizeof(netrt_model_desc),
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
