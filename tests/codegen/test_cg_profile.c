/* test_cg_profile.c — the profile hooks of compiled code and the profile table of its
 * descriptor: a small model with every kernel kind (direct, Winograd-eligible, depthwise, 1x1
 * GEMM with a fused residual, an eliminated concat, pools, linear) compiled at -O2 and run with
 * a pool whose hook records every call; then netrt_profile_* on the same artifact. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "netrt.h"
#include "passes/passes.h"
#include "testutil.h"

static const char model_src[] =
    "net prof\n"
    "input x: [1, 3, 32, 32]\n"
    "c1 = conv2d(x, 16, kernel=3, pad=1)\n"
    "r1 = relu(c1)\n"
    "c2 = conv2d(r1, 16, kernel=3, pad=1)\n"
    "r2 = relu(c2)\n"
    "dw = conv2d(r2, 16, kernel=3, pad=1, groups=16)\n"
    "pw = conv2d(dw, 16, kernel=1)\n"
    "s = add(pw, r1)\n"
    "r3 = relu(s)\n"
    "a = conv2d(r3, 8, kernel=1)\n"
    "b = conv2d(r3, 8, kernel=3, pad=2, dilation=2)\n"
    "cat = concat(a, b, axis=1)\n"
    "p = maxpool2d(cat, kernel=2)\n"
    "gp = global_avgpool(p)\n"
    "f = flatten(gp)\n"
    "fc = linear(f, 10)\n"
    "output fc\n";

typedef struct Compiled {
    Graph *g; /* after the -O2 passes: what was compiled */
    netrt_model *m;
    char dir[64], so[128];
} Compiled;

static Compiled compile_model(void) {
    Compiled c = {0};
    c.g = tu_load_text(model_src, 3);
    cr_assert_not_null(c.g);
    Diags d;
    diags_init(&d);
    PassOptions po = {.opt_level = 2, .split_tol = 1e-6, .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT, .pass_limit = -1,
                      .verify = true};
    cr_assert(passes_run(c.g, &po, &d, stderr));
    cr_assert_not_null(tu_mkdtemp(c.dir, sizeof c.dir, "netc_prof"));
    snprintf(c.so, sizeof c.so, "%s/prof.so", c.dir);
    CodegenOptions co = {.emit = EMIT_SO, .out = c.so, .cpu = tu_cpu(), .opt_level = 2};
    bool ok = codegen_emit(c.g, &co, &d);
    if (!ok) {
        char *s = diags_to_string(&d);
        cr_log_error("%s", s);
        free(s);
    }
    cr_assert(ok);
    diags_free(&d);
    char err[512];
    c.m = netrt_open(c.so, err, sizeof err);
    cr_assert_not_null(c.m, "%s", err);
    return c;
}

static void release(Compiled *c) {
    netrt_close(c->m);
    ir_graph_free(c->g);
    unlink(c->so);
    rmdir(c->dir);
}

static const Node *node_named(const Graph *g, const char *name, int *index) {
    for (int i = 0; i < g->nodes.len; i++)
        if (!strcmp(ir_node(g, i)->name, name)) {
            if (index) *index = i;
            return ir_node(g, i);
        }
    cr_assert_fail("no node '%s' after the passes", name);
    return NULL;
}

/* A pool that runs loops through a real pool (or serially) and records every hook call. */
enum { MAX_EVENTS = 4096 };
typedef struct RecPool {
    netrt_pool base;
    netrt_pool *real;
    pthread_t caller;
    int n, off_thread;
    int32_t id[MAX_EVENTS], phase[MAX_EVENTS];
} RecPool;

static void rec_parallel_for(netrt_pool *pool, int64_t n, netrt_task_fn fn, void *ctx) {
    RecPool *p = (RecPool *)pool;
    if (p->real) p->real->parallel_for(p->real, n, fn, ctx);
    else fn(ctx, 0, n);
}

static void rec_profile(netrt_pool *pool, int32_t id, int32_t phase) {
    RecPool *p = (RecPool *)pool;
    if (!pthread_equal(pthread_self(), p->caller)) p->off_thread++;
    if (p->n < MAX_EVENTS) p->id[p->n] = id, p->phase[p->n] = phase;
    p->n++;
}

typedef struct Io {
    float *in, *out;
    void *ws;
} Io;

static Io make_io(const netrt_model *m) {
    Io io;
    size_t nin = netrt_tensor_count(netrt_input(m, 0)), nout = netrt_tensor_count(netrt_output(m, 0));
    io.in = aligned_alloc(64, (nin * 4 + 63) / 64 * 64);
    io.out = aligned_alloc(64, (nout * 4 + 63) / 64 * 64);
    tu_fill_random(io.in, nin, 11);
    io.ws = netrt_alloc_workspace(m);
    return io;
}

static void free_io(Io *io) {
    free(io->in), free(io->out);
    netrt_free_workspace(io->ws);
}

static netrt_status run(const netrt_model *m, Io *io, netrt_pool *pool) {
    return netrt_run(m, (const float *const *)&io->in, &io->out, io->ws, pool);
}

/* The ids one run must report, in order: the input copies, the nodes that dispatch a kernel
 * (all but the eliminated concat), the output copies. */
static int expected_sequence(const Compiled *c, int32_t *seq) {
    const netrt_node_info *info;
    int n = netrt_profile_nodes(c->m, &info), len = 0;
    for (int i = c->g->nodes.len; i < n; i++)
        if (!strcmp(info[i].op, "input")) seq[len++] = i;
    for (int i = 0; i < c->g->nodes.len; i++) {
        const Node *nd = ir_node(c->g, i);
        if (!(nd->op == OP_CONCAT && nd->concat_elim)) seq[len++] = i;
    }
    for (int i = c->g->nodes.len; i < n; i++)
        if (!strcmp(info[i].op, "output")) seq[len++] = i;
    return len;
}

Test(cg_profile, hooks_pair_up_in_schedule_order_once_per_run, .timeout = 120) {
    Compiled c = compile_model();
    int cat;
    cr_assert(node_named(c.g, "cat", &cat)->concat_elim, "the test wants an eliminated concat");
    int32_t want[256];
    int nwant = expected_sequence(&c, want);
    for (int threads = 0; threads <= 2; threads += 2) {
        RecPool *p = calloc(1, sizeof *p);
        p->base.parallel_for = rec_parallel_for;
        p->base.profile = rec_profile;
        p->real = threads ? netrt_pool_create(threads) : NULL;
        p->caller = pthread_self();
        Io io = make_io(c.m);
        enum { RUNS = 3 };
        for (int r = 0; r < RUNS; r++) cr_assert_eq(run(c.m, &io, &p->base), NETRT_OK);
        cr_assert_eq(p->off_thread, 0, "%d hook calls came from another thread than the caller's", p->off_thread);
        cr_assert_eq(p->n, RUNS * 2 * nwant, "%d hook calls in %d runs, expected %d per run", p->n, RUNS, 2 * nwant);
        for (int r = 0; r < RUNS; r++)
            for (int k = 0; k < nwant; k++) {
                int e = (r * nwant + k) * 2;
                cr_expect(p->phase[e] == 0 && p->phase[e + 1] == 1 && p->id[e] == want[k] && p->id[e + 1] == want[k],
                          "run %d, call %d: (%d, %d) (%d, %d), expected (%d, 0) (%d, 1)", r, e, p->id[e], p->phase[e],
                          p->id[e + 1], p->phase[e + 1], want[k], want[k]);
            }
        for (int e = 0; e < p->n; e++) cr_expect_neq(p->id[e], cat, "the eliminated concat got a hook");

        /* the hooks change nothing: the same bits with profile NULL, and with no pool */
        size_t nout = netrt_tensor_count(netrt_output(c.m, 0));
        float *prof_out = malloc(nout * sizeof *prof_out);
        memcpy(prof_out, io.out, nout * sizeof *prof_out);
        p->base.profile = NULL;
        p->n = 0;
        cr_assert_eq(run(c.m, &io, &p->base), NETRT_OK);
        cr_expect_eq(p->n, 0);
        cr_expect(!memcmp(prof_out, io.out, nout * sizeof *prof_out), "profile NULL: another result");
        cr_assert_eq(run(c.m, &io, NULL), NETRT_OK);
        cr_expect(!memcmp(prof_out, io.out, nout * sizeof *prof_out), "no pool: another result");
        free(prof_out);
        free_io(&io);
        netrt_pool_destroy(p->real);
        free(p);
    }
    release(&c);
}

/* Multiply-adds of a conv2d from its tensors' shapes: N·O·OH·OW·(C/groups)·KH·KW. */
static uint64_t conv_macs(const Graph *g, const Node *n) {
    const Tensor *y = ir_tensor(g, n->out), *w = ir_weight(g, n, "weight"); /* w: [O, C/groups, KH, KW] */
    return (uint64_t)(y->shape[0] * y->shape[1] * y->shape[2] * y->shape[3]) *
           (uint64_t)(w->shape[1] * w->shape[2] * w->shape[3]);
}

Test(cg_profile, the_table_names_kinds_epilogues_and_flops, .timeout = 120) {
    Compiled c = compile_model();
    const Graph *g = c.g;
    const netrt_node_info *info;
    int n = netrt_profile_nodes(c.m, &info);
    /* the nodes, then one copy: x is NCHW outside, NHWC inside; fc's [1, 10] needs none */
    cr_assert_eq(n, g->nodes.len + 1, "%d entries for %d nodes", n, g->nodes.len);
    cr_expect_str_eq(info[g->nodes.len].op, "input");
    cr_expect_str_eq(info[g->nodes.len].name, "x");
    cr_expect_str_eq(info[g->nodes.len].kind, "layout");
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *nd = ir_node(g, i);
        cr_expect_str_eq(info[i].name, nd->name);
        cr_expect_str_eq(info[i].op, op_info(nd->op)->name);
        const Tensor *y = ir_tensor(g, nd->out);
        cr_expect_eq(info[i].rank, y->rank);
        for (int k = 0; k < y->rank; k++) cr_expect_eq(info[i].shape[k], y->shape[k]);
        if (nd->op == OP_CONV2D)
            cr_expect_eq(info[i].flops, 2 * conv_macs(g, nd), "%s: flops %llu, expected %llu", nd->name,
                         (unsigned long long)info[i].flops, (unsigned long long)(2 * conv_macs(g, nd)));
        else if (nd->op == OP_LINEAR)
            cr_expect_eq(info[i].flops, 2ull * 16 * 10, "fc: flops %llu", (unsigned long long)info[i].flops);
        else
            cr_expect_eq(info[i].flops, 0, "%s: flops %llu", nd->name, (unsigned long long)info[i].flops);
    }
    struct {
        const char *name, *kind, *fused;
    } want[] = {
        {"c1", "direct", "relu"},         {"dw", "depthwise", ""}, {"pw", "gemm", "add+relu"},
        {"a", "gemm", ""},                {"b", "direct", ""},     {"cat", "copy", ""},
        {"p", "pool", ""},                {"gp", "pool", ""},      {"f", "copy", ""},
        {"fc", "gemm", ""},
    };
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        int i;
        node_named(g, want[k].name, &i);
        cr_expect_str_eq(info[i].kind, want[k].kind, "%s: kind %s", want[k].name, info[i].kind);
        cr_expect_str_eq(info[i].fused, want[k].fused, "%s: fused '%s'", want[k].name, info[i].fused);
    }
    /* c2 (16 -> 16, 3x3, 32x32) runs as the winograd pass decided */
    int i2;
    const Node *c2 = node_named(g, "c2", &i2);
    cr_expect_str_eq(info[i2].kind, ir_winograd_m(c2) ? "winograd" : "direct"); /* F(4,3) or F(2,3) */
    cr_expect_eq(info[i2].flops, 2ull * 16 * 32 * 32 * 16 * 9, "c2: the nominal flops are direct convolution's");
    cr_expect_str_eq(info[i2].fused, "relu");
    release(&c);
}

Test(cg_profile, netrt_profile_times_every_entry, .timeout = 120) {
    Compiled c = compile_model();
    int cat;
    node_named(c.g, "cat", &cat);
    netrt_pool *pool = netrt_pool_create(2);
    enum { RUNS = 5 };
    netrt_profile *p = netrt_profile_create(pool, c.m, RUNS);
    cr_assert_not_null(p);
    Io io = make_io(c.m);
    cr_assert_eq(run(c.m, &io, NULL), NETRT_OK);
    size_t nout = netrt_tensor_count(netrt_output(c.m, 0));
    float *ref = malloc(nout * sizeof *ref);
    memcpy(ref, io.out, nout * sizeof *ref);
    for (int r = 0; r < RUNS; r++) {
        cr_assert_eq(netrt_profile_run(p, (const float *const *)&io.in, &io.out, io.ws), NETRT_OK);
        cr_expect(!memcmp(ref, io.out, nout * sizeof *ref), "run %d under the profile: another result", r);
    }
    cr_expect_eq(netrt_profile_run(p, (const float *const *)&io.in, &io.out, io.ws), NETRT_ERR_ARG, "past max_runs");
    cr_assert_eq(netrt_profile_runs(p), RUNS);
    int n = netrt_profile_nodes(c.m, NULL);
    for (int r = 0; r < RUNS; r++) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double ms = netrt_profile_ms(p, r, i);
            cr_expect(ms >= 0, "run %d, entry %d: %g ms", r, i, ms);
            sum += ms;
        }
        cr_expect(netrt_profile_ms(p, r, -1) >= sum, "run %d: the run took %g ms, its entries %g", r,
                  netrt_profile_ms(p, r, -1), sum);
    }
    for (int i = 0; i < n; i++) {
        cr_expect_eq(netrt_profile_calls(p, i), i == cat ? 0 : RUNS, "entry %d: %lld calls", i,
                     (long long)netrt_profile_calls(p, i));
        cr_expect(netrt_profile_median_ms(p, i) >= 0);
    }
    cr_expect_eq(netrt_profile_ms(p, 0, cat), 0);
    cr_expect(netrt_profile_median_ms(p, -2) >= 0);
    cr_expect_eq(netrt_profile_ms(p, RUNS, 0), -1);
    cr_expect_eq(netrt_profile_ms(p, 0, n), -1);
    cr_expect_eq(netrt_profile_median_ms(p, -3), -1);
    cr_expect_null(netrt_profile_create(pool, c.m, 0));
    netrt_profile_destroy(p);
    free(ref);
    free_io(&io);
    netrt_pool_destroy(pool);
    release(&c);
}
