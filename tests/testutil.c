/* testutil.c — helpers shared by the Criterion suites. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>

const char *tu_src(const char *rel) {
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", NETC_SOURCE_DIR, rel);
    return b;
}

double tu_rel_err(const float *a, const float *b, size_t n) {
    double maxd = 0, maxr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxd || isnan(d)) maxd = isnan(d) ? INFINITY : d;
        if (fabs((double)b[i]) > maxr) maxr = fabs((double)b[i]);
    }
    /* a floor on the scale: an output that is all ~1e-14 (gelu far left) is compared absolutely */
    return maxd / (maxr > 1e-4 ? maxr : 1e-4);
}

char *tu_mkdtemp(char *buf, size_t len, const char *prefix) {
    int n = snprintf(buf, len, "/tmp/%s_", prefix);
    if (n < 0 || (size_t)n + 7 > len) return NULL;
    memset(buf + n, 'X', 6); /* the template mkdtemp fills in */
    buf[n + 6] = 0;
    return mkdtemp(buf);
}

void tu_fill_random(float *x, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "frontend.h"
#include "interp/interp.h"
#include "netrt.h"

Graph *tu_load_text(const char *src, uint64_t seed) {
    Diags d;
    diags_init(&d);
    FrontendOptions o = {.quiet = true, .seed = seed};
    Graph *g = frontend_load_text("test.net", src, strlen(src), &o, &d);
    if (!g) {
        char *s = diags_to_string(&d);
        cr_log_error("%s", s);
        free(s);
    }
    diags_free(&d);
    return g;
}

Graph *tu_load_file(const char *rel, uint64_t seed) {
    Diags d;
    diags_init(&d);
    FrontendOptions o = {.quiet = true, .seed = seed};
    Graph *g = frontend_load(tu_src(rel), &o, &d);
    if (!g) {
        char *s = diags_to_string(&d);
        cr_log_error("%s", s);
        free(s);
    }
    diags_free(&d);
    return g;
}

double tu_compiled_vs_interp(const Graph *g, int opt_level, int threads, uint64_t seed) {
    return tu_compiled_vs_interp_ref(g, g, opt_level, threads, seed);
}

double tu_interp_vs_interp(const Graph *a, const Graph *b, uint64_t seed) {
    Diags d;
    diags_init(&d);
    float **in = calloc((size_t)a->ninputs, sizeof *in);
    float **oa = calloc((size_t)a->noutputs, sizeof *oa), **ob = calloc((size_t)a->noutputs, sizeof *ob);
    for (int i = 0; i < a->ninputs; i++) {
        size_t n = (size_t)ir_numel(ir_tensor(a, a->inputs[i]));
        in[i] = malloc(n * sizeof(float));
        tu_fill_random(in[i], n, seed + (uint64_t)i);
    }
    for (int i = 0; i < a->noutputs; i++) {
        size_t n = (size_t)ir_numel(ir_tensor(a, a->outputs[i]));
        oa[i] = malloc(n * sizeof(float));
        ob[i] = malloc(n * sizeof(float));
    }
    double worst = -1;
    if (a->noutputs == b->noutputs && interp_run(a, (const float *const *)in, oa, &d) &&
        interp_run(b, (const float *const *)in, ob, &d)) {
        worst = 0;
        for (int i = 0; i < a->noutputs; i++) {
            double e = tu_rel_err(ob[i], oa[i], (size_t)ir_numel(ir_tensor(a, a->outputs[i])));
            if (e > worst) worst = e;
        }
    } else {
        char *s = diags_to_string(&d);
        cr_log_error("interpreter failed:\n%s", s);
        free(s);
    }
    for (int i = 0; i < a->ninputs; i++) free(in[i]);
    for (int i = 0; i < a->noutputs; i++) free(oa[i]), free(ob[i]);
    free(in), free(oa), free(ob);
    diags_free(&d);
    return worst;
}

double tu_compiled_vs_interp_ref(const Graph *g, const Graph *refg, int opt_level, int threads, uint64_t seed) {
    static int counter;
    char dir[64];
    if (!tu_mkdtemp(dir, sizeof dir, "netc_test")) return -1;
    char so[128];
    snprintf(so, sizeof so, "%s/m%d.so", dir, counter++);
    Diags d;
    diags_init(&d);
    CodegenOptions co = {.emit = EMIT_SO, .out = so, .cpu = tu_cpu(), .opt_level = opt_level};
    bool ok = codegen_emit(g, &co, &d);
    if (!ok) {
        char *s = diags_to_string(&d);
        cr_log_error("codegen failed:\n%s", s);
        free(s);
        diags_free(&d);
        rmdir(dir);
        return -1;
    }
    char err[512];
    netrt_model *m = netrt_open(so, err, sizeof err);
    unlink(so);
    rmdir(dir);
    if (!m) {
        cr_log_error("load failed: %s", err);
        diags_free(&d);
        return -1;
    }
    float **in = calloc((size_t)g->ninputs, sizeof *in);
    float **out = calloc((size_t)g->noutputs, sizeof *out), **ref = calloc((size_t)g->noutputs, sizeof *ref);
    for (int i = 0; i < g->ninputs; i++) {
        size_t n = (size_t)ir_numel(ir_tensor(g, g->inputs[i]));
        in[i] = malloc(n * sizeof(float));
        tu_fill_random(in[i], n, seed + (uint64_t)i);
    }
    for (int i = 0; i < g->noutputs; i++) {
        size_t n = (size_t)ir_numel(ir_tensor(g, g->outputs[i]));
        out[i] = malloc(n * sizeof(float));
        ref[i] = malloc(n * sizeof(float));
    }
    double worst = -1;
    if (interp_run(refg, (const float *const *)in, ref, &d)) {
        const int runs[2] = {threads < 0 ? 0 : threads, 2};
        void *ws = netrt_alloc_workspace(m);
        for (int r = 0; r < (threads < 0 ? 2 : 1); r++) {
            netrt_pool *pool = runs[r] > 0 ? netrt_pool_create(runs[r]) : NULL;
            for (int i = 0; i < g->noutputs; i++) /* every element must be written, in every run */
                for (size_t k = 0, n = (size_t)ir_numel(ir_tensor(g, g->outputs[i])); k < n; k++) out[i][k] = NAN;
            /* poison the workspace: kernels must not rely on zeroed memory */
            memset(ws, 0xff, netrt_desc(m)->workspace_size);
            netrt_status st = netrt_run(m, (const float *const *)in, out, ws, pool);
            if (pool) netrt_pool_destroy(pool);
            if (st != NETRT_OK) {
                cr_log_error("run with %d threads failed: %s", runs[r], netrt_status_str(st));
                worst = -1;
                break;
            }
            double run_worst = 0;
            for (int i = 0; i < g->noutputs; i++) {
                double e = tu_rel_err(out[i], ref[i], (size_t)ir_numel(ir_tensor(g, g->outputs[i])));
                if (e > run_worst) run_worst = e;
            }
            if (threads < 0 && run_worst > 0) cr_log_info("with %d threads: rel.err %g", runs[r], run_worst);
            if (run_worst > worst) worst = run_worst;
        }
        netrt_free_workspace(ws);
    } else {
        char *s = diags_to_string(&d);
        cr_log_error("interpreter failed:\n%s", s);
        free(s);
    }
    for (int i = 0; i < g->ninputs; i++) free(in[i]);
    for (int i = 0; i < g->noutputs; i++) free(out[i]), free(ref[i]);
    free(in), free(out), free(ref);
    netrt_close(m);
    diags_free(&d);
    return worst;
}

bool tu_run_interp(const Graph *g, const float *const *in, float *const *out) {
    Diags d;
    diags_init(&d);
    bool ok = interp_run(g, in, out, &d);
    if (!ok) {
        char *s = diags_to_string(&d);
        cr_log_error("interpreter failed:\n%s", s);
        free(s);
    }
    diags_free(&d);
    return ok;
}

bool tu_run_compiled(const Graph *g, int opt_level, const char *cpu, int threads, const float *const *in,
                     float *const *out) {
    static int counter;
    char dir[64], so[128];
    if (!tu_mkdtemp(dir, sizeof dir, "netc_test")) return false;
    snprintf(so, sizeof so, "%s/r%d.so", dir, counter++);
    Diags d;
    diags_init(&d);
    CodegenOptions co = {.emit = EMIT_SO, .out = so, .cpu = cpu ? cpu : tu_cpu(), .opt_level = opt_level};
    bool ok = codegen_emit(g, &co, &d);
    if (!ok) {
        char *s = diags_to_string(&d);
        cr_log_error("codegen failed:\n%s", s);
        free(s);
    }
    diags_free(&d);
    char err[512];
    netrt_model *m = ok ? netrt_open(so, err, sizeof err) : NULL;
    unlink(so);
    rmdir(dir);
    if (!ok) return false;
    if (!m) {
        cr_log_error("load failed: %s", err);
        return false;
    }
    for (int i = 0; i < g->noutputs; i++) {
        int64_t n = ir_numel(ir_tensor(g, g->outputs[i]));
        for (int64_t k = 0; k < n; k++) out[i][k] = 424242.0f;
    }
    netrt_pool *pool = threads > 0 ? netrt_pool_create(threads) : NULL;
    void *ws = netrt_alloc_workspace(m);
    memset(ws, 0xff, netrt_desc(m)->workspace_size); /* NaN: kernels must not read unwritten memory */
    netrt_status st = netrt_run(m, in, out, ws, pool);
    if (st != NETRT_OK) cr_log_error("run failed: %s", netrt_status_str(st));
    netrt_free_workspace(ws);
    if (pool) netrt_pool_destroy(pool);
    netrt_close(m);
    return st == NETRT_OK;
}

size_t tu_cmp_special(const float *got, const float *want, const float *in, size_t n, double tol, const char *what) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float a = got[i], b = want[i];
        bool ok;
        if (isnan(b) || isnan(a) || isinf(b) || isinf(a) || tol == 0)
            ok = isnan(b) ? isnan(a) : memcmp(&a, &b, sizeof a) == 0 || (tol > 0 && a == b);
        else
            ok = fabs((double)a - (double)b) <= tol * fmax(fabs((double)b), 1.0);
        if (ok) continue;
        if (bad++ < 8) {
            if (in)
                cr_log_error("%s: [%zu] got %.9g, want %.9g (input %.9g)", what, i, a, b, in[i]);
            else
                cr_log_error("%s: [%zu] got %.9g, want %.9g", what, i, a, b);
        }
    }
    if (bad > 8) cr_log_error("%s: %zu mismatches in all", what, bad);
    return bad;
}

const char *tu_cpu(void) {
    const char *c = getenv("NETC_TEST_CPU");
    return c && *c ? c : NULL;
}

const Node *tu_node(const Graph *g, const char *name) {
    for (int i = 0; i < g->nodes.len; i++)
        if (!ir_node(g, i)->dead && !strcmp(ir_node(g, i)->name, name)) return ir_node(g, i);
    cr_assert_fail("no node %s", name);
    return NULL;
}

int tu_min_opt(int lo) { return tu_cpu() && lo < 2 ? 2 : lo; }
