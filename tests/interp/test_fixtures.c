/* test_fixtures.c — the reference interpreter against PyTorch: every case folder of
 * tests/fixtures/ops/ (made by tools/make_fixtures.py) is loaded through the front end, run,
 * and compared with the expected outputs torch.nn.functional computed; so is every case of
 * tests/fixtures/special/ (NaN, ±inf, huge values, relu6's cap through the activations, pools
 * and softmax), element by element as its model.net's "# compare:" line says. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend.h"
#include "interp/interp.h"
#include "npy.h"
#include "testutil.h"

#define FIXTURE_TOL 1e-5

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* printf into a malloc'ed string (paths and messages of any length) */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
    va_list ap, ap2;
    va_start(ap, f);
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = malloc((size_t)len + 1);
    cr_assert(s, "out of memory");
    vsnprintf(s, (size_t)len + 1, f, ap2);
    va_end(ap2);
    return s;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "# compare: exact|TOL" line of a model.net: 0 for exact (bit for bit), TOL, or -1 when
 * there is none (the whole-output relative error of tu_rel_err then). */
static double compare_mode(const char *model) {
    FILE *f = fopen(model, "r");
    if (!f) return -1;
    char line[256];
    double tol = -1;
    while (tol < 0 && fgets(line, sizeof line, f) && line[0] == '#') {
        const char *k = "# compare: ";
        if (strncmp(line, k, strlen(k))) continue;
        const char *v = line + strlen(k);
        tol = !strncmp(v, "exact", 5) ? 0 : strtod(v, NULL);
    }
    fclose(f);
    return tol;
}

/* Runs one case; returns NULL on success, else a malloc'ed message naming what went wrong. */
static char *run_case(const char *dir, const char *name) {
    char err[256];
    char *msg = NULL;
    char *model = fmt("%s/%s/model.net", dir, name);
    double tol = compare_mode(model);
    char *wpath = fmt("%s/%s/weights.safetensors", dir, name);
    FrontendOptions o = {.weights_path = file_exists(wpath) ? wpath : NULL, .quiet = true};
    Diags d;
    diags_init(&d);
    Graph *g = frontend_load(model, &o, &d);
    free(model);
    free(wpath);
    if (!g) {
        char *dm = diags_to_string(&d);
        msg = fmt("front end failed:\n%s", dm);
        free(dm);
        diags_free(&d);
        return msg;
    }
    netrt_npy *ins = calloc((size_t)g->ninputs + 1, sizeof *ins);
    netrt_npy *want = calloc((size_t)g->noutputs + 1, sizeof *want);
    const float **inp = calloc((size_t)g->ninputs + 1, sizeof *inp);
    float **outs = calloc((size_t)g->noutputs + 1, sizeof *outs);
    for (int i = 0; i < g->ninputs && !msg; i++) {
        const Tensor *t = ir_tensor(g, g->inputs[i]);
        char *path = g->ninputs == 1 ? fmt("%s/%s/input.npy", dir, name)
                                     : fmt("%s/%s/input_%s.npy", dir, name, t->name);
        if (netrt_npy_read(path, &ins[i], err, sizeof err) != 0)
            msg = fmt("%s: %s", path, err);
        else if ((int64_t)ins[i].count != ir_numel(t))
            msg = fmt("%s: %zu values, input '%s' has %lld", path, ins[i].count, t->name,
                      (long long)ir_numel(t));
        inp[i] = ins[i].data;
        free(path);
    }
    for (int i = 0; i < g->noutputs && !msg; i++) {
        const Tensor *t = ir_tensor(g, g->outputs[i]);
        char *path = g->noutputs == 1 ? fmt("%s/%s/expected.npy", dir, name)
                                      : fmt("%s/%s/expected_%s.npy", dir, name, g->output_names[i]);
        if (netrt_npy_read(path, &want[i], err, sizeof err) != 0) {
            msg = fmt("%s: %s", path, err);
        } else {
            bool same = want[i].rank == t->rank;
            for (int k = 0; same && k < t->rank; k++) same = want[i].shape[k] == t->shape[k];
            char s1[128], s2[128];
            if (!same)
                msg = fmt("output '%s' has shape %s, PyTorch's %s", g->output_names[i],
                          ir_shape_str(t, s1, sizeof s1),
                          ir_dims_str(want[i].rank, want[i].shape, s2, sizeof s2));
            outs[i] = calloc(want[i].count + 1, sizeof(float));
        }
        free(path);
    }
    if (!msg && !interp_run(g, inp, outs, &d)) {
        char *dm = diags_to_string(&d);
        msg = fmt("interp_run failed:\n%s", dm);
        free(dm);
    }
    for (int i = 0; i < g->noutputs && !msg; i++) {
        if (tol >= 0) {
            const float *x = g->ninputs == 1 && ins[0].count == want[i].count ? ins[0].data : NULL;
            size_t bad = tu_cmp_special(outs[i], want[i].data, x, want[i].count, tol, name);
            if (bad)
                msg = fmt("output '%s': %zu elements differ (compare: %s)", g->output_names[i], bad,
                          tol ? "tolerance" : "exact");
            continue;
        }
        double e = tu_rel_err(outs[i], want[i].data, want[i].count);
        if (!(e <= FIXTURE_TOL))
            msg = fmt("output '%s': relative error %.3g > %g", g->output_names[i], e, FIXTURE_TOL);
    }
    for (int i = 0; i < g->ninputs; i++) netrt_npy_free(&ins[i]);
    for (int i = 0; i < g->noutputs; i++) {
        netrt_npy_free(&want[i]);
        free(outs[i]);
    }
    free(ins);
    free(want);
    free(inp);
    free(outs);
    ir_graph_free(g);
    diags_free(&d);
    return msg;
}

/* Sorted names of the case folders (those holding a model.net). */
static char **list_cases(const char *dir, int *count) {
    DIR *dp = opendir(dir);
    cr_assert(dp, "cannot open %s (run tools/make_fixtures.py)", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char *p = fmt("%s/%s/model.net", dir, e->d_name);
        bool ok = file_exists(p);
        free(p);
        if (!ok) continue;
        if (n == cap) names = realloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *count = n;
    return names;
}

static void run_folder(const char *rel) {
    char *dir = fmt("%s", tu_src(rel));
    int n;
    char **names = list_cases(dir, &n);
    cr_assert_gt(n, 0, "no fixture cases in %s", dir);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        char *msg = run_case(dir, names[i]);
        if (msg) {
            failed++;
            cr_log_error("fixture %s: %s", names[i], msg);
            free(msg);
        }
        free(names[i]);
    }
    free(names);
    free(dir);
    cr_assert_eq(failed, 0, "%d of %d fixture cases of %s differ from PyTorch (see the log above)",
                 failed, n, rel);
}

Test(interp_fixtures, every_case_matches_pytorch) { run_folder("tests/fixtures/ops"); }

/* Every activation on NaN, ±inf, ±1e30, ±3e38, ±FLT_MAX, ±0, denormals and 6 ± 1 ulp, the pools
 * on windows of NaN, infinities and overflowing sums, softmax on lines holding them: the same
 * NaNs and infinities as PyTorch 1.13, bit for bit where the math is exact. */
Test(interp_fixtures, special_values_match_pytorch) { run_folder("tests/fixtures/special"); }

/* The fixtures cover every op of the table: each op name appears as a call in some model.net. */
Test(interp_fixtures, every_op_has_a_fixture) {
    char *dir = fmt("%s", tu_src("tests/fixtures/ops"));
    int n;
    char **names = list_cases(dir, &n);
    bool seen[OP_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        char *p = fmt("%s/%s/model.net", dir, names[i]);
        FILE *f = fopen(p, "r");
        cr_assert(f, "cannot read %s", p);
        char line[1024];
        while (fgets(line, sizeof line, f))
            for (int k = 0; k < OP_COUNT; k++) {
                char call[64];
                snprintf(call, sizeof call, "%s(", op_info((OpKind)k)->name);
                /* a call, not the tail of a longer name (relu( inside leaky_relu() */
                for (const char *s = strstr(line, call); s; s = strstr(s + 1, call))
                    if (s == line || !(s[-1] == '_' || (s[-1] >= 'a' && s[-1] <= 'z') ||
                                       (s[-1] >= '0' && s[-1] <= '9')))
                        seen[k] = true;
            }
        fclose(f);
        free(p);
        free(names[i]);
    }
    free(names);
    free(dir);
    for (int k = 0; k < OP_COUNT; k++)
        cr_expect(seen[k], "no fixture calls %s", op_info((OpKind)k)->name);
}
