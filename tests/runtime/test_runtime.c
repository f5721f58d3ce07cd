/* test_runtime.c — the runtime: loading fake_model.so (query, workspace, run, every refusal),
 * descriptor sanity checks, netrt_run's argument checks, and the thread pool (sums, coverage,
 * nesting, concurrent pools, sleep/wake hand-offs, NETRT_NUM_THREADS). */
#include <criterion/criterion.h>
#include <stddef.h>
#include <criterion/logging.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netrt.h"
#include "testutil.h"

/* ---- the fake model ---------------------------------------------------------------------- */

static netrt_model *open_fake(void) {
    char err[512] = "";
    netrt_model *m = netrt_open(FAKE_MODEL_SO, err, sizeof err);
    cr_assert_not_null(m, "netrt_open(%s): %s", FAKE_MODEL_SO, err);
    return m;
}

Test(loader, query_names_and_shapes) {
    netrt_model *m = open_fake();
    const netrt_model_desc *d = netrt_desc(m);
    cr_assert_str_eq(d->name, "fake");
    cr_assert_eq(netrt_num_inputs(m), 2);
    cr_assert_eq(netrt_num_outputs(m), 2);
    const netrt_tensor_info *x = netrt_input(m, 0), *w = netrt_input(m, 1);
    cr_assert_str_eq(x->name, "x");
    cr_assert_eq(x->rank, 4);
    int64_t xs[] = {1, 3, 4, 5};
    for (int r = 0; r < 4; r++) cr_assert_eq(x->shape[r], xs[r]);
    cr_assert_str_eq(w->name, "w");
    cr_assert_eq(netrt_tensor_count(x), 60);
    cr_assert_eq(netrt_tensor_count(w), 3);
    cr_assert_str_eq(netrt_output(m, 0)->name, "y");
    cr_assert_str_eq(netrt_output(m, 1)->name, "p");
    cr_assert_eq(netrt_tensor_count(netrt_output(m, 1)), 3);
    /* out of range and NULL */
    cr_assert_null(netrt_input(m, 2));
    cr_assert_null(netrt_input(m, -1));
    cr_assert_null(netrt_output(m, 2));
    cr_assert_null(netrt_input(NULL, 0));
    cr_assert_eq(netrt_num_inputs(NULL), 0);
    cr_assert_eq(netrt_tensor_count(NULL), 0);
    netrt_close(m);
    netrt_close(NULL);
}

Test(loader, workspace_is_aligned) {
    netrt_model *m = open_fake();
    for (int k = 0; k < 8; k++) {
        void *ws = netrt_alloc_workspace(m);
        cr_assert_not_null(ws);
        cr_assert_eq((uintptr_t)ws % 64, 0, "workspace %p not 64-byte aligned", ws);
        memset(ws, 0xAB, 240); /* the whole declared size is usable (ASan checks it) */
        netrt_free_workspace(ws);
    }
    netrt_close(m);
}

static void check_fake_outputs(const float *x, const float *w, const float *y, const float *p) {
    for (int c = 0; c < 3; c++) {
        double s = 0;
        for (int i = 0; i < 20; i++) {
            float xv = x[c * 20 + i];
            float want = xv * w[c] + xv;
            cr_assert_eq(y[c * 20 + i], want, "y[%d] = %g, want %g", c * 20 + i, y[c * 20 + i], want);
            s += xv;
        }
        cr_assert_float_eq(p[c], s / 20, 1e-6, "p[%d] = %g, want %g", c, p[c], s / 20);
    }
}

static void run_fake(netrt_pool *pool) {
    netrt_model *m = open_fake();
    float x[60], w[3], y[60], p[3];
    tu_fill_random(x, 60, 11);
    w[0] = 2, w[1] = -0.5f, w[2] = 0;
    void *ws = netrt_alloc_workspace(m);
    const float *in[] = {x, w};
    float *out[] = {y, p};
    memset(y, 0, sizeof y);
    cr_assert_eq(netrt_run(m, in, out, ws, pool), NETRT_OK);
    check_fake_outputs(x, w, y, p);
    netrt_free_workspace(ws);
    netrt_close(m);
}

Test(loader, run_serial) { run_fake(NULL); }

Test(loader, run_with_pool) {
    for (int t = 1; t <= 4; t++) {
        netrt_pool *pool = netrt_pool_create(t);
        cr_assert_eq(netrt_pool_threads(pool), t);
        run_fake(pool);
        netrt_pool_destroy(pool);
    }
}

/* A bare name means the working directory, not the library search path. */
Test(loader, bare_name_is_the_working_directory) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", FAKE_MODEL_SO);
    char *slash = strrchr(dir, '/');
    cr_assert_not_null(slash);
    *slash = 0;
    cr_assert_eq(chdir(dir), 0);
    char err[512] = "";
    netrt_model *m = netrt_open("fake_model.so", err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    cr_assert_str_eq(netrt_desc(m)->name, "fake");
    netrt_close(m);
}

/* Two handles of the same file are independent: closing one leaves the other usable. */
Test(loader, open_twice) {
    netrt_model *a = open_fake(), *b = open_fake();
    netrt_close(a);
    run_fake(NULL);
    cr_assert_str_eq(netrt_desc(b)->name, "fake");
    netrt_close(b);
}

Test(loader, not_a_model) {
    char err[512] = "";
    cr_assert_null(netrt_open("libc.so.6", err, sizeof err));
    /* "libc.so.6" has no '/', so it is looked up in the working directory and not found; the
     * real file, by its path, is a shared object without the symbol. */
    const char *libc = NULL;
    const char *cands[] = {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
                           "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6"};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++)
        if (access(cands[i], R_OK) == 0) libc = cands[i];
    cr_assert_not_null(libc, "no libc.so.6 found");
    netrt_model *m = netrt_open(libc, err, sizeof err);
    cr_assert_null(m);
    char want[600];
    snprintf(want, sizeof want, "'%s' is not a netc model (no netrt_model_descriptor symbol)", libc);
    cr_assert_str_eq(err, want);
}

Test(loader, nonexistent_file) {
    char err[512] = "";
    cr_assert_null(netrt_open("/nonexistent/dir/model.so", err, sizeof err));
    cr_assert(strstr(err, "/nonexistent/dir/model.so") && strstr(err, "No such file"), "%s", err);
    cr_assert_null(netrt_open("", err, sizeof err));
    cr_assert_str_eq(err, "no model path given");
    cr_assert_null(netrt_open(NULL, NULL, 0)); /* no error buffer: still just NULL */
}

Test(loader, text_file) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/netrt-test-%ld.net", (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "%s", path);
    const char text[] = "net fake\ninput x: [1, 3, 4, 5]\n# this is a .net file, not a shared object\n"
                        "output x\n...................................................................\n"
                        "......................................................................\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    char err[512] = "";
    netrt_model *m = netrt_open(path, err, sizeof err);
    unlink(path);
    cr_assert_null(m);
    /* glibc's dlerror text: names the file and says why */
    cr_assert(strstr(err, path) && (strstr(err, "invalid ELF header") || strstr(err, "file too short")), "%s", err);
}

Test(loader, abi_mismatch) {
    char err[512] = "";
    cr_assert_null(netrt_open(FAKE_BADABI_SO, err, sizeof err));
    char want[1024];
    snprintf(want, sizeof want,
             "'%s' was built for netrt ABI version 99, this runtime has version %d (recompile the model with a "
             "matching netc)",
             FAKE_BADABI_SO, NETRT_ABI_VERSION);
    cr_assert_str_eq(err, want);
}

/* An ABI 2 model (a descriptor that ends before the profile table, code that never reads the
 * pool's profile member) still loads and runs; it has no table, so it cannot be profiled. */
Test(loader, abi2_model_still_runs) {
    char err[512] = "";
    netrt_model *m = netrt_open(FAKE_ABI2_SO, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    cr_assert_eq(netrt_desc(m)->abi_version, 2);
    cr_assert_eq(netrt_desc(m)->desc_size, offsetof(netrt_model_desc, nprofile));
    const netrt_node_info *nodes = (const netrt_node_info *)1;
    cr_assert_eq(netrt_profile_nodes(m, &nodes), 0);
    cr_assert_null(nodes);
    netrt_pool *pool = netrt_pool_create(2);
    cr_assert_null(netrt_profile_create(pool, m, 3));
    float x[60], w[3] = {1, 2, 3}, y[60], p[3];
    for (int i = 0; i < 60; i++) x[i] = (float)i;
    const float *in[] = {x, w};
    float *out[] = {y, p};
    void *ws = netrt_alloc_workspace(m);
    cr_assert_eq(netrt_run(m, in, out, ws, pool), NETRT_OK);
    for (int i = 0; i < 60; i++) cr_expect_eq(y[i], x[i] * w[i / 20] + x[i]);
    netrt_free_workspace(ws);
    netrt_pool_destroy(pool);
    netrt_close(m);
}

/* The fake model's table and hooks through netrt_profile, serially and on a pool. */
Test(loader, fake_model_profile) {
    netrt_model *m = netrt_open(FAKE_MODEL_SO, NULL, 0);
    cr_assert_not_null(m);
    const netrt_node_info *nodes;
    cr_assert_eq(netrt_profile_nodes(m, &nodes), 3);
    cr_expect_str_eq(nodes[0].name, "xw");
    cr_expect_str_eq(nodes[2].kind, "pool");
    cr_expect_eq(nodes[2].shape[1], 3);
    for (int t = 0; t <= 2; t += 2) {
        netrt_pool *pool = t ? netrt_pool_create(t) : NULL;
        netrt_profile *p = netrt_profile_create(pool, m, 4);
        cr_assert_not_null(p);
        float x[60], w[3] = {1, 2, 3}, y[60], q[3];
        for (int i = 0; i < 60; i++) x[i] = (float)i;
        const float *in[] = {x, w};
        float *out[] = {y, q};
        void *ws = netrt_alloc_workspace(m);
        for (int r = 0; r < 4; r++) cr_assert_eq(netrt_profile_run(p, in, out, ws), NETRT_OK);
        cr_expect_eq(y[59], 59 * 3 + 59);
        cr_expect_eq(netrt_profile_runs(p), 4);
        for (int i = 0; i < 3; i++) cr_expect_eq(netrt_profile_calls(p, i), 4);
        /* the median of 4: the mean of the middle two */
        double v[4];
        for (int r = 0; r < 4; r++) v[r] = netrt_profile_ms(p, r, 1);
        for (int a = 0; a < 4; a++)
            for (int b = a + 1; b < 4; b++)
                if (v[b] < v[a]) {
                    double tmp = v[a];
                    v[a] = v[b], v[b] = tmp;
                }
        cr_expect_eq(netrt_profile_median_ms(p, 1), (v[1] + v[2]) / 2);
        netrt_free_workspace(ws);
        netrt_profile_destroy(p);
        netrt_pool_destroy(pool);
    }
    netrt_close(m);
}

Test(loader, error_buffer_is_truncated_safely) {
    char err[8];
    memset(err, 'Z', sizeof err);
    cr_assert_null(netrt_open(FAKE_BADABI_SO, err, sizeof err));
    cr_assert_eq(err[7], 0);
    cr_assert_eq(strlen(err), 7);
}

/* ---- descriptors in memory: the sanity checks ------------------------------------------- */

static int ok_calls;
static int ok_run(const float *const *in, float *const *out, void *ws, netrt_pool *pool) {
    (void)ws, (void)pool;
    out[0][0] = in[0][0] + 1;
    ok_calls++;
    return 0;
}
static int failing_run(const float *const *in, float *const *out, void *ws, netrt_pool *pool) {
    (void)in, (void)out, (void)ws, (void)pool;
    return 7;
}

static netrt_tensor_info tin[2] = {{.name = "a", .rank = 1, .shape = {1}}, {.name = "b", .rank = 1, .shape = {1}}};
static netrt_tensor_info tout[1] = {{.name = "o", .rank = 1, .shape = {1}}};

static netrt_variant ok_variant[1] = {{.cpu = "generic", .features = "", .required = 0, .run = ok_run}};
static netrt_variant failing_variant[1] = {{.cpu = "generic", .features = "", .required = 0, .run = failing_run}};

static netrt_model_desc good_desc(void) {
    return (netrt_model_desc){.abi_version = NETRT_ABI_VERSION,
                              .desc_size = sizeof(netrt_model_desc),
                              .name = "mem",
                              .ninputs = 1,
                              .noutputs = 1,
                              .inputs = tin,
                              .outputs = tout,
                              .workspace_size = 0,
                              .workspace_align = 64,
                              .arch = netrt_arch(),
                              .nvariants = 1,
                              .variants = ok_variant};
}

static void expect_refused(const netrt_model_desc *d, const char *want) {
    char err[512] = "";
    netrt_model *m = netrt_open_desc(d, err, sizeof err);
    if (m) netrt_close(m);
    cr_assert_null(m, "accepted, expected: %s", want);
    cr_assert_str_eq(err, want);
}

Test(desc, good_descriptor_runs) {
    netrt_model_desc d = good_desc();
    char err[256] = "";
    netrt_model *m = netrt_open_desc(&d, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    void *ws = netrt_alloc_workspace(m); /* 0 bytes: still a real block */
    cr_assert_not_null(ws);
    cr_assert_eq((uintptr_t)ws % 64, 0);
    float a = 41, o = 0;
    const float *in[] = {&a};
    float *out[] = {&o};
    ok_calls = 0;
    cr_assert_eq(netrt_run(m, in, out, ws, NULL), NETRT_OK);
    cr_assert_eq(o, 42);
    cr_assert_eq(ok_calls, 1);
    netrt_free_workspace(ws);
    netrt_close(m);
}

Test(desc, larger_alignment_is_honoured) {
    netrt_model_desc d = good_desc();
    d.workspace_align = 4096, d.workspace_size = 100;
    netrt_model *m = netrt_open_desc(&d, NULL, 0);
    cr_assert_not_null(m);
    void *ws = netrt_alloc_workspace(m);
    cr_assert_eq((uintptr_t)ws % 4096, 0);
    memset(ws, 1, 100);
    netrt_free_workspace(ws);
    /* an alignment below 64 is raised to 64 */
    d.workspace_align = 8;
    netrt_close(m);
    m = netrt_open_desc(&d, NULL, 0);
    cr_assert_not_null(m);
    ws = netrt_alloc_workspace(m);
    cr_assert_eq((uintptr_t)ws % 64, 0);
    netrt_free_workspace(ws);
    netrt_close(m);
}

Test(desc, refusals) {
    netrt_model_desc d;
    expect_refused(NULL, "no model descriptor given");
    d = good_desc(), d.abi_version = 1;
    expect_refused(&d, "the model descriptor was built for netrt ABI version 1, this runtime has version 3 "
                       "(recompile the model with a matching netc)");
    d = good_desc(), d.abi_version = 4;
    expect_refused(&d, "the model descriptor was built for netrt ABI version 4, this runtime has version 3 "
                       "(recompile the model with a matching netc)");
    /* an ABI 3 descriptor must have the profile table's fields; an ABI 2 one need not */
    d = good_desc(), d.desc_size = (uint32_t)offsetof(netrt_model_desc, nprofile);
    char want_v3[200];
    snprintf(want_v3, sizeof want_v3, "model 'mem': malformed model descriptor: desc_size %zu, expected at least %zu",
             offsetof(netrt_model_desc, nprofile), sizeof(netrt_model_desc));
    expect_refused(&d, want_v3);
    d.abi_version = 2, d.nprofile = -5; /* past its desc_size: never read */
    netrt_model *v2 = netrt_open_desc(&d, NULL, 0);
    cr_assert_not_null(v2);
    cr_expect_eq(netrt_profile_nodes(v2, NULL), 0);
    netrt_close(v2);
    d = good_desc(), d.nprofile = -1;
    expect_refused(&d, "model 'mem': malformed model descriptor: -1 profile entries");
    d = good_desc(), d.nprofile = 2;
    expect_refused(&d, "model 'mem': malformed model descriptor: 2 profile entries");
    netrt_node_info entries[1] = {{.name = "n", .op = "conv2d", .kind = NULL, .fused = ""}};
    d = good_desc(), d.nprofile = 1, d.profile = entries;
    expect_refused(&d, "model 'mem': malformed model descriptor: profile entry 0");
    entries[0].kind = "direct";
    netrt_model *v3 = netrt_open_desc(&d, NULL, 0);
    cr_assert_not_null(v3);
    cr_expect_eq(netrt_profile_nodes(v3, NULL), 1);
    netrt_close(v3);
    d = good_desc(), d.desc_size = 16;
    char want[200];
    snprintf(want, sizeof want, "model 'mem': malformed model descriptor: desc_size 16, expected at least %zu",
             sizeof(netrt_model_desc));
    expect_refused(&d, want);
    netrt_variant nullrun[1] = {{.cpu = "generic", .features = "", .run = NULL}};
    d = good_desc(), d.variants = nullrun;
    expect_refused(&d, "model 'mem': malformed model descriptor: variant 0 has no entry point or names");
    d = good_desc(), d.nvariants = 0;
    expect_refused(&d, "model 'mem': malformed model descriptor: 0 variants");
    d = good_desc(), d.arch = "sparc64";
    char arch_want[200];
    snprintf(arch_want, sizeof arch_want,
             "model 'mem' was compiled for sparc64; this machine is %s (rebuild with netc --target=...)", netrt_arch());
    expect_refused(&d, arch_want);
    d = good_desc(), d.name = NULL;
    expect_refused(&d, "the model descriptor: malformed model descriptor: no model name");
    d = good_desc(), d.noutputs = 0;
    expect_refused(&d, "model 'mem': malformed model descriptor: 0 outputs (a model has at least one)");
    d = good_desc(), d.ninputs = -1;
    expect_refused(&d, "model 'mem': malformed model descriptor: -1 inputs");
    d = good_desc(), d.inputs = NULL;
    expect_refused(&d, "model 'mem': malformed model descriptor: 1 inputs but no input table");
    d = good_desc(), d.workspace_align = 96;
    expect_refused(&d, "model 'mem': malformed model descriptor: workspace alignment 96 is not a power of two");

    netrt_tensor_info bad[2] = {{.name = "a", .rank = 9, .shape = {1}}};
    d = good_desc(), d.inputs = bad;
    expect_refused(&d, "model 'mem': malformed model descriptor: input 'a' has rank 9 (the runtime allows 0 to 8)");
    bad[0] = (netrt_tensor_info){.name = "a", .rank = 2, .shape = {3, 0}};
    expect_refused(&d, "model 'mem': malformed model descriptor: input 'a' has dimension 1 = 0");
    bad[0] = (netrt_tensor_info){.name = NULL, .rank = 1, .shape = {3}};
    expect_refused(&d, "model 'mem': malformed model descriptor: input 0 has no name");
    bad[0] = (netrt_tensor_info){.name = "a", .rank = 1, .shape = {3}};
    bad[1] = (netrt_tensor_info){.name = "a", .rank = 1, .shape = {3}};
    d.ninputs = 2;
    expect_refused(&d, "model 'mem': malformed model descriptor: two inputs named 'a'");
    netrt_tensor_info huge = {.name = "o", .rank = 2, .shape = {INT64_C(1) << 40, INT64_C(1) << 40}};
    d = good_desc(), d.outputs = &huge;
    expect_refused(&d, "model 'mem': malformed model descriptor: output 'o' has dimension 1 = 1099511627776");
}

Test(desc, run_checks_arguments) {
    netrt_model_desc d = good_desc();
    d.workspace_size = 256;
    netrt_model *m = netrt_open_desc(&d, NULL, 0);
    cr_assert_not_null(m);
    char *ws = netrt_alloc_workspace(m);
    float a = 1, o = 0;
    const float *in[] = {&a};
    const float *in_null[] = {NULL};
    float *out[] = {&o};
    float *out_null[] = {NULL};
    ok_calls = 0;
    cr_assert_eq(netrt_run(NULL, in, out, ws, NULL), NETRT_ERR_ARG);
    cr_assert_eq(netrt_run(m, NULL, out, ws, NULL), NETRT_ERR_ARG);
    cr_assert_eq(netrt_run(m, in_null, out, ws, NULL), NETRT_ERR_ARG);
    cr_assert_eq(netrt_run(m, in, NULL, ws, NULL), NETRT_ERR_ARG);
    cr_assert_eq(netrt_run(m, in, out_null, ws, NULL), NETRT_ERR_ARG);
    cr_assert_eq(netrt_run(m, in, out, NULL, NULL), NETRT_ERR_ARG);
    cr_assert_eq(netrt_run(m, in, out, ws + 4, NULL), NETRT_ERR_ARG); /* misaligned */
    float *inside = (float *)(ws + 128);
    float *out_ws[] = {inside};
    cr_assert_eq(netrt_run(m, in, out_ws, ws, NULL), NETRT_ERR_ARG); /* output inside the workspace */
    const float *in_ws[] = {inside};
    cr_assert_eq(netrt_run(m, in_ws, out, ws, NULL), NETRT_ERR_ARG); /* input inside the workspace */
    float *out_alias[] = {&a};
    cr_assert_eq(netrt_run(m, in, out_alias, ws, NULL), NETRT_ERR_ARG); /* output == input */
    cr_assert_eq(ok_calls, 0, "run called despite bad arguments");
    cr_assert_eq(netrt_run(m, in, out, ws, NULL), NETRT_OK);
    cr_assert_eq(ok_calls, 1);
    cr_assert_eq(o, 2);
    netrt_free_workspace(ws);
    netrt_close(m);

    d = good_desc(), d.variants = failing_variant;
    m = netrt_open_desc(&d, NULL, 0);
    ws = netrt_alloc_workspace(m);
    cr_assert_eq(netrt_run(m, in, out, ws, NULL), NETRT_ERR_RUN);
    netrt_free_workspace(ws);
    netrt_close(m);
}

Test(desc, status_strings_are_distinct) {
    netrt_status all[] = {NETRT_OK, NETRT_ERR_OPEN, NETRT_ERR_NOT_MODEL, NETRT_ERR_ABI,
                          NETRT_ERR_ARG, NETRT_ERR_NOMEM, NETRT_ERR_RUN, NETRT_ERR_CPU};
    size_t n = sizeof all / sizeof *all;
    for (size_t i = 0; i < n; i++) {
        const char *s = netrt_status_str(all[i]);
        cr_assert(s && *s);
        cr_assert_str_neq(s, "unknown status");
        for (size_t j = 0; j < i; j++) cr_assert_str_neq(s, netrt_status_str(all[j]));
    }
    cr_assert_str_eq(netrt_status_str((netrt_status)99), "unknown status");
    cr_assert_str_eq(netrt_status_str(NETRT_OK), "ok");
}

/* ---- the pool ---------------------------------------------------------------------------- */

typedef struct SumCtx {
    const int64_t *v;
    _Atomic int64_t sum;
    atomic_int calls;
} SumCtx;

static void sum_task(void *arg, int64_t b, int64_t e) {
    SumCtx *c = arg;
    int64_t s = 0;
    for (int64_t i = b; i < e; i++) s += c->v[i];
    atomic_fetch_add(&c->sum, s);
    atomic_fetch_add(&c->calls, 1);
}

static int64_t *make_values(int64_t n) {
    int64_t *v = malloc((size_t)n * sizeof *v);
    uint64_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (int64_t)(s >> 33) - (INT64_C(1) << 30);
    }
    return v;
}

static int64_t pool_sum(netrt_pool *pool, const int64_t *v, int64_t n, int *calls) {
    SumCtx c = {.v = v};
    atomic_init(&c.sum, 0);
    atomic_init(&c.calls, 0);
    pool->parallel_for(pool, n, sum_task, &c);
    if (calls) *calls = atomic_load(&c.calls);
    return atomic_load(&c.sum);
}

Test(pool, sum_matches_serial) {
    setenv("NETRT_SCHEDULE", "static", 1); /* one call per thread, counted below */
    const int64_t n = 1000000;
    int64_t *v = make_values(n), serial = 0;
    for (int64_t i = 0; i < n; i++) serial += v[i];
    int sizes[] = {1, 2, 7};
    for (int k = 0; k < 3; k++) {
        netrt_pool *pool = netrt_pool_create(sizes[k]);
        cr_assert_not_null(pool);
        cr_assert_eq(netrt_pool_threads(pool), sizes[k]);
        for (int rep = 0; rep < 5; rep++) {
            int calls;
            int64_t s = pool_sum(pool, v, n, &calls);
            cr_assert_eq(s, serial, "%d threads: sum %lld, serial %lld", sizes[k], (long long)s, (long long)serial);
            cr_assert_eq(calls, sizes[k], "%d threads: %d chunks", sizes[k], calls);
        }
        netrt_pool_destroy(pool);
    }
    free(v);
}

typedef struct CoverCtx {
    atomic_int *hits;
    int64_t n;
    atomic_int calls;
    _Atomic int64_t minlen, maxlen;
} CoverCtx;

static void cover_task(void *arg, int64_t b, int64_t e) {
    CoverCtx *c = arg;
    cr_assert(0 <= b && b < e && e <= c->n, "bad chunk [%lld, %lld) of %lld", (long long)b, (long long)e,
              (long long)c->n);
    for (int64_t i = b; i < e; i++) atomic_fetch_add(&c->hits[i], 1);
    atomic_fetch_add(&c->calls, 1);
    int64_t len = e - b, cur = atomic_load(&c->minlen);
    while (len < cur && !atomic_compare_exchange_weak(&c->minlen, &cur, len)) {}
    cur = atomic_load(&c->maxlen);
    while (len > cur && !atomic_compare_exchange_weak(&c->maxlen, &cur, len)) {}
}

static bool static_schedule(void) {
    const char *s = getenv("NETRT_SCHEDULE");
    return s && !strcmp(s, "static");
}

/* Each iteration exactly once. Static schedule: one call per non-empty chunk, chunk lengths
 * differing by at most 1. Dynamic: at most four chunks per thread's share. */
static void check_cover(netrt_pool *pool, int64_t n) {
    CoverCtx c = {.hits = calloc((size_t)n + 1, sizeof(atomic_int)), .n = n};
    atomic_init(&c.calls, 0);
    atomic_init(&c.minlen, INT64_MAX);
    atomic_init(&c.maxlen, 0);
    pool->parallel_for(pool, n, cover_task, &c);
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&c.hits[i]), 1, "n=%lld: iteration %lld ran %d times", (long long)n, (long long)i,
                     atomic_load(&c.hits[i]));
    int T = netrt_pool_threads(pool);
    int64_t want_calls = n == 0 ? 0 : (n == 1 ? 1 : (n < T ? n : T));
    if (static_schedule() || T == 1 || n <= 1) {
        cr_assert_eq(atomic_load(&c.calls), want_calls, "n=%lld, %d threads: %d calls", (long long)n, T,
                     atomic_load(&c.calls));
        if (n > 1 && T > 1) cr_assert_leq(atomic_load(&c.maxlen) - atomic_load(&c.minlen), 1);
    } else {
        cr_assert(atomic_load(&c.calls) >= want_calls && atomic_load(&c.calls) <= 4 * T, "n=%lld, %d threads: %d calls",
                  (long long)n, T, atomic_load(&c.calls));
    }
    free(c.hits);
}

static void check_cover_sizes(void) {
    int sizes[] = {1, 2, 3, 7};
    int64_t ns[] = {0, 1, 2, 3, 6, 7, 8, 13, 100, 1001, 65537};
    for (int k = 0; k < 4; k++) {
        netrt_pool *pool = netrt_pool_create(sizes[k]);
        for (size_t j = 0; j < sizeof ns / sizeof *ns; j++) check_cover(pool, ns[j]);
        netrt_pool_destroy(pool);
    }
}

Test(pool, chunks_cover_each_iteration_once) { check_cover_sizes(); }

Test(pool, static_chunks_cover_each_iteration_once) {
    setenv("NETRT_SCHEDULE", "static", 1);
    check_cover_sizes();
}

/* n <= 0 calls nothing; a 1-thread pool calls fn(ctx, 0, n) once, on the calling thread. */
static pthread_t seen_thread;
static int64_t seen_b, seen_e;
static void record_task(void *arg, int64_t b, int64_t e) {
    (void)arg;
    seen_thread = pthread_self(), seen_b = b, seen_e = e;
}

/* The dynamic schedule takes chunks left in a slow thread's share: the worker's items are
 * slow, and the caller, done with its own, runs some of them. */
typedef struct StealCtx {
    pthread_t caller;
    int64_t n;
    atomic_int by_caller_in_second_half, hits[16];
} StealCtx;

static void steal_task(void *arg, int64_t b, int64_t e) {
    StealCtx *c = arg;
    bool caller = pthread_equal(pthread_self(), c->caller);
    for (int64_t i = b; i < e; i++) {
        if (i >= c->n / 2) {
            usleep(3000);
            if (caller) atomic_fetch_add(&c->by_caller_in_second_half, 1);
        }
        atomic_fetch_add(&c->hits[i], 1);
    }
}

Test(pool, dynamic_takes_from_a_slow_share, .timeout = 60) {
    unsetenv("NETRT_SCHEDULE");
    netrt_pool *pool = netrt_pool_create(2);
    cr_assert_not_null(pool);
    StealCtx c = {.caller = pthread_self(), .n = 16};
    pool->parallel_for(pool, c.n, steal_task, &c);
    for (int i = 0; i < 16; i++) cr_assert_eq(atomic_load(&c.hits[i]), 1, "item %d ran %d times", i, atomic_load(&c.hits[i]));
    cr_assert_geq(atomic_load(&c.by_caller_in_second_half), 1, "the caller took nothing from the slow share");
    netrt_pool_destroy(pool);
}

Test(pool, one_thread_is_a_plain_call) {
    netrt_pool *pool = netrt_pool_create(1);
    seen_b = seen_e = -1;
    pool->parallel_for(pool, -5, record_task, NULL);
    pool->parallel_for(pool, 0, record_task, NULL);
    cr_assert_eq(seen_b, -1, "called for n <= 0");
    pool->parallel_for(pool, 12345, record_task, NULL);
    cr_assert(pthread_equal(seen_thread, pthread_self()));
    cr_assert_eq(seen_b, 0);
    cr_assert_eq(seen_e, 12345);
    netrt_pool_destroy(pool);
    cr_assert_eq(netrt_pool_threads(NULL), 1);
    netrt_pool_destroy(NULL);
}

typedef struct NestCtx {
    netrt_pool *pool;
    const int64_t *v;
    int64_t inner_n;
    _Atomic int64_t sum;
} NestCtx;

static void nest_task(void *arg, int64_t b, int64_t e) {
    NestCtx *c = arg;
    for (int64_t i = b; i < e; i++) {
        /* the same pool, from inside a task: must run (serially), not deadlock */
        int64_t s = pool_sum(c->pool, c->v + i * c->inner_n, c->inner_n, NULL);
        atomic_fetch_add(&c->sum, s);
    }
}

Test(pool, nested_call_runs_serially, .timeout = 60) {
    setenv("NETRT_SCHEDULE", "static", 1); /* one call per thread, counted below */
    const int64_t outer = 16, inner = 1000;
    int64_t *v = make_values(outer * inner), serial = 0;
    for (int64_t i = 0; i < outer * inner; i++) serial += v[i];
    netrt_pool *pool = netrt_pool_create(3);
    for (int rep = 0; rep < 50; rep++) {
        NestCtx c = {.pool = pool, .v = v, .inner_n = inner};
        atomic_init(&c.sum, 0);
        pool->parallel_for(pool, outer, nest_task, &c);
        cr_assert_eq(atomic_load(&c.sum), serial);
    }
    /* the pool still works in parallel afterwards */
    int calls;
    cr_assert_eq(pool_sum(pool, v, outer * inner, &calls), serial);
    cr_assert_eq(calls, 3);
    netrt_pool_destroy(pool);
    free(v);
}

typedef struct ThreadJob {
    netrt_pool *pool;
    const int64_t *v;
    int64_t n, want;
    int reps, bad;
} ThreadJob;

static void *hammer(void *arg) {
    ThreadJob *j = arg;
    for (int r = 0; r < j->reps; r++) {
        /* vary the length so chunk boundaries move */
        int64_t n = j->n - (r % 7);
        int64_t want = j->want;
        for (int64_t i = n; i < j->n; i++) want -= j->v[i];
        if (pool_sum(j->pool, j->v, n, NULL) != want) j->bad++;
    }
    return NULL;
}

Test(pool, two_pools_in_two_threads, .timeout = 120) {
    const int64_t n = 20000;
    int64_t *v = make_values(n), serial = 0;
    for (int64_t i = 0; i < n; i++) serial += v[i];
    ThreadJob jobs[2] = {{.pool = netrt_pool_create(2), .v = v, .n = n, .want = serial, .reps = 2000},
                         {.pool = netrt_pool_create(3), .v = v, .n = n, .want = serial, .reps = 2000}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++) cr_assert_eq(pthread_create(&th[k], NULL, hammer, &jobs[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(jobs[k].bad, 0, "pool %d: %d wrong sums", k, jobs[k].bad);
        netrt_pool_destroy(jobs[k].pool);
    }
    free(v);
}

/* One pool shared by two threads at once: each call is correct (one of them runs serially). */
Test(pool, one_pool_two_threads, .timeout = 120) {
    const int64_t n = 20000;
    int64_t *v = make_values(n), serial = 0;
    for (int64_t i = 0; i < n; i++) serial += v[i];
    netrt_pool *pool = netrt_pool_create(3);
    ThreadJob jobs[2] = {{.pool = pool, .v = v, .n = n, .want = serial, .reps = 2000},
                         {.pool = pool, .v = v, .n = n, .want = serial, .reps = 2000}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++) cr_assert_eq(pthread_create(&th[k], NULL, hammer, &jobs[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    cr_assert_eq(jobs[0].bad + jobs[1].bad, 0);
    netrt_pool_destroy(pool);
    free(v);
}

/* Pauses longer than the spin window put workers (and the caller) to sleep between calls:
 * a lost wake-up would hang here (hence the timeout). */
Test(pool, wakes_sleeping_workers, .timeout = 120) {
    setenv("NETRT_SCHEDULE", "static", 1); /* one call per thread, counted below */
    const int64_t n = 5000;
    int64_t *v = make_values(n), serial = 0;
    for (int64_t i = 0; i < n; i++) serial += v[i];
    netrt_pool *pool = netrt_pool_create(3);
    for (int r = 0; r < 300; r++) {
        if (r % 3 == 0) usleep(r % 2 ? 200 : 1000);
        int calls;
        cr_assert_eq(pool_sum(pool, v, n, &calls), serial, "round %d", r);
        cr_assert_eq(calls, 3);
    }
    netrt_pool_destroy(pool);
    free(v);
}

static void slow_task(void *arg, int64_t b, int64_t e) {
    CoverCtx *c = arg;
    if (b > 0) usleep(2000); /* the caller finishes first and must sleep, then be woken */
    cover_task(c, b, e);
}

Test(pool, caller_waits_for_slow_workers, .timeout = 60) {
    setenv("NETRT_SCHEDULE", "static", 1); /* one call per thread, counted below */
    netrt_pool *pool = netrt_pool_create(4);
    for (int r = 0; r < 20; r++) {
        CoverCtx c = {.hits = calloc(100, sizeof(atomic_int)), .n = 100};
        atomic_init(&c.calls, 0);
        atomic_init(&c.minlen, INT64_MAX);
        atomic_init(&c.maxlen, 0);
        pool->parallel_for(pool, 100, slow_task, &c);
        cr_assert_eq(atomic_load(&c.calls), 4);
        for (int i = 0; i < 100; i++) cr_assert_eq(atomic_load(&c.hits[i]), 1);
        free(c.hits);
    }
    netrt_pool_destroy(pool);
}

Test(pool, create_and_destroy_many) {
    for (int r = 0; r < 200; r++) {
        netrt_pool *pool = netrt_pool_create(1 + r % 5);
        cr_assert_eq(netrt_pool_threads(pool), 1 + r % 5);
        if (r % 2) check_cover(pool, 50);
        netrt_pool_destroy(pool);
    }
}

Test(pool, thread_count_from_environment) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct {
        const char *env;
        int want;
    } cases[] = {{"3", 3}, {"1", 1}, {"0", (int)cores}, {"-2", (int)cores}, {"abc", (int)cores},
                 {"4x", (int)cores}, {"", (int)cores}, {"99999999999", (int)cores}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        setenv("NETRT_NUM_THREADS", cases[k].env, 1);
        netrt_pool *pool = netrt_pool_create(0);
        cr_assert_eq(netrt_pool_threads(pool), cases[k].want, "NETRT_NUM_THREADS='%s'", cases[k].env);
        netrt_pool_destroy(pool);
    }
    /* an explicit count wins over the environment */
    setenv("NETRT_NUM_THREADS", "3", 1);
    netrt_pool *pool = netrt_pool_create(2);
    cr_assert_eq(netrt_pool_threads(pool), 2);
    netrt_pool_destroy(pool);
    unsetenv("NETRT_NUM_THREADS");
    pool = netrt_pool_create(-1);
    cr_assert_eq(netrt_pool_threads(pool), (int)cores);
    netrt_pool_destroy(pool);
}

static void empty_task(void *arg, int64_t b, int64_t e) { (void)arg, (void)b, (void)e; }

/* The per-call cost matters: generated code makes one call per kernel, thousands per inference.
 * The bound is loose (a shared, noisy machine); the figure is logged. */
Test(pool, per_call_overhead) {
    netrt_pool *pool = netrt_pool_create(2);
    const int calls = 20000;
    for (int i = 0; i < 1000; i++) pool->parallel_for(pool, 2, empty_task, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < calls; i++) pool->parallel_for(pool, 2, empty_task, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / calls / 1e3;
    cr_log_info("parallel_for overhead, 2 threads: %.2f us per call", us);
    cr_assert_lt(us, 1000.0, "%.1f us per parallel_for call", us);
    netrt_pool_destroy(pool);
}

/* ---- CPU features ------------------------------------------------------------------------------ */

Test(cpu, levels_nest_and_names_round_trip) {
    for (int l = 1; l < 4; l++)
        cr_expect_eq(netrt_cpu_level_features(l) & ~netrt_cpu_level_features(l + 1), 0, "v%d not inside v%d", l, l + 1);
    cr_expect_eq(netrt_cpu_level(netrt_cpu_level_features(3)), 3);
    cr_expect_eq(netrt_cpu_level(netrt_cpu_level_features(3) & ~(1ull << netrt_cpu_feature_bit("fma"))), 2);
    char buf[512];
    netrt_cpu_features_str(netrt_cpu_level_features(4) & ~netrt_cpu_level_features(3), buf, sizeof buf);
    cr_expect_str_eq(buf, "avx512f,avx512bw,avx512cd,avx512dq,avx512vl");
    const char *bad = NULL;
    uint64_t m = netrt_cpu_parse_features("x86-64-v2,avx2,fma,nosuch", &bad);
    cr_expect_eq(m, netrt_cpu_level_features(2) | 1ull << netrt_cpu_feature_bit("avx2") | 1ull << netrt_cpu_feature_bit("fma"));
    cr_expect_str_eq(bad, "nosuch");
    for (int i = 0; netrt_cpu_feature_name(i); i++) cr_expect_eq(netrt_cpu_feature_bit(netrt_cpu_feature_name(i)), i);
#if defined(__x86_64__)
    /* every x86-64 CPU has SSE2; this test machine has at least x86-64-v2 */
    cr_expect_geq(netrt_cpu_level(netrt_cpu_features()), 2);
    cr_expect_eq(!!(netrt_cpu_features() >> netrt_cpu_feature_bit("avx2") & 1), !!__builtin_cpu_supports("avx2"));
    cr_expect_eq(!!(netrt_cpu_features() >> netrt_cpu_feature_bit("avx512f") & 1), !!__builtin_cpu_supports("avx512f"));
    cr_expect_eq(!!(netrt_cpu_features() >> netrt_cpu_feature_bit("fma") & 1), !!__builtin_cpu_supports("fma"));
#endif
}

/* A model needing a feature no x86 CPU has is refused at open, naming it, and never runs. */
Test(cpu, a_model_needing_missing_features_is_refused) {
    netrt_model_desc d = good_desc();
    uint64_t have = netrt_cpu_features();
    /* the first feature this CPU lacks, or a bit past the table, which no CPU has */
    int missing = 63;
    for (int i = 0; netrt_cpu_feature_name(i); i++)
        if (!(have >> i & 1)) {
            missing = i;
            break;
        }
    char missing_name[32];
    snprintf(missing_name, sizeof missing_name, "%s", netrt_cpu_feature_name(missing) ? netrt_cpu_feature_name(missing) : "feature #63");
    netrt_variant v[2] = {{.cpu = "future", .features = "x", .required = have | 1ull << missing, .run = ok_run},
                          {.cpu = "later", .features = "y", .required = 1ull << missing, .run = ok_run}};
    d.variants = v, d.nvariants = 2;
    char err[512] = "";
    ok_calls = 0;
    netrt_model *m = netrt_open_desc(&d, err, sizeof err);
    cr_assert_null(m);
    char want[128];
    snprintf(want, sizeof want, "model 'mem' needs %s (compiled for --cpu=future); this CPU has ", missing_name);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "%s", err);
    cr_expect(strstr(err, ": rebuild with --cpu=x86-64-v") != NULL, "%s", err);
    cr_expect_eq(ok_calls, 0);
    /* the best variant the CPU supports is the one that runs */
    v[1].required = 0, v[1].cpu = "fallback";
    m = netrt_open_desc(&d, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    cr_expect_str_eq(netrt_variant_selected(m)->cpu, "fallback");
    netrt_close(m);
}

/* NETRT_CPU_FEATURES hides features, never adds them. */
Test(cpu, the_feature_mask_of_the_environment_only_hides) {
    setenv("NETRT_CPU_FEATURES", "x86-64-v2,avx512fp16", 1);
    uint64_t have = netrt_cpu_features();
    cr_expect_eq(have & ~(netrt_cpu_level_features(2) | 1ull << netrt_cpu_feature_bit("avx512fp16")), 0);
#if defined(__x86_64__)
    cr_expect_eq(netrt_cpu_level(have), 2);
    cr_expect_eq(!!(have >> netrt_cpu_feature_bit("avx512fp16") & 1), !!__builtin_cpu_supports("avx512fp16"));
#endif
}
