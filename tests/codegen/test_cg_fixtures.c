/* test_cg_fixtures.c — every op fixture of tests/fixtures/ops/ (made with PyTorch by
 * tools/make_fixtures.py) compiled at -O0 (no thread pool) and -O2 (two threads) equals the
 * reference interpreter on random inputs; and again after the graph passes that keep values
 * exact (fold-bn, fuse-act, inplace, concat-elim), so kernels also run on fused epilogues and on
 * views into concat slices. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend.h"
#include "passes/passes.h"
#include "testutil.h"

#define TOL 1e-5

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names of the case folders (those holding a model.net). */
static char **list_cases(const char *dir, int *count) {
    DIR *dp = opendir(dir);
    cr_assert(dp, "cannot open %s", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/model.net", dir, e->d_name);
        if (!file_exists(p)) continue;
        if (n == cap) names = realloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *count = n;
    return names;
}

/* The fixture's graph with its weights.safetensors when it has one (seeded random weights
 * otherwise: the ops without weights). */
static Graph *load_case(const char *dir, const char *name) {
    char model[4096], wpath[4096];
    snprintf(model, sizeof model, "%s/%s/model.net", dir, name);
    snprintf(wpath, sizeof wpath, "%s/%s/weights.safetensors", dir, name);
    FrontendOptions o = {.weights_path = file_exists(wpath) ? wpath : NULL, .quiet = true, .seed = 3};
    Diags d;
    diags_init(&d);
    Graph *g = frontend_load(model, &o, &d);
    if (!g) {
        char *s = diags_to_string(&d);
        cr_log_error("fixture %s does not load:\n%s", name, s);
        free(s);
    }
    diags_free(&d);
    return g;
}

static bool run_passes(Graph *g, const char *name) {
    Diags d;
    diags_init(&d);
    PassOptions o = {.list = "fold-bn,fuse-act,inplace,concat-elim", .pass_limit = -1, .verify = true};
    bool ok = passes_run(g, &o, &d, stderr);
    if (!ok) {
        char *s = diags_to_string(&d);
        cr_log_error("fixture %s: passes failed:\n%s", name, s);
        free(s);
    }
    diags_free(&d);
    return ok;
}

/* Runs every case; `after_passes` compiles the graph after the passes against the
 * interpreter on the graph before them. Failing cases are logged by name. */
static void run_all(bool after_passes) {
    const char *dir = tu_src("tests/fixtures/ops");
    int n;
    char **names = list_cases(dir, &n);
    cr_assert_gt(n, 0, "no fixture cases in %s", dir);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        static const int configs[2][2] = {{0, 0}, {2, 2}}; /* {opt level, threads} */
        bool ok = true;
        for (int c = 0; c < 2 && ok; c++) {
            if ((after_passes || tu_min_opt(0) > 0) && c == 0) continue;
            Graph *g = load_case(dir, names[i]);
            Graph *ref = after_passes ? load_case(dir, names[i]) : NULL;
            double e = -1;
            if (g && (!after_passes || (ref && run_passes(g, names[i]))))
                e = tu_compiled_vs_interp_ref(g, ref ? ref : g, configs[c][0], configs[c][1], 29 + (uint64_t)i);
            if (!(e >= 0 && e <= TOL)) {
                cr_log_error("fixture %s%s at -O%d, %d threads: rel.err %g", names[i],
                             after_passes ? " (after passes)" : "", configs[c][0], configs[c][1], e);
                ok = false;
            }
            if (g) ir_graph_free(g);
            if (ref) ir_graph_free(ref);
        }
        failed += !ok;
        free(names[i]);
    }
    free(names);
    cr_assert_eq(failed, 0, "%d of %d fixtures differ from the interpreter (see the log above)", failed, n);
}

Test(cg_fixtures, every_fixture_compiled_matches_interp, .timeout = 900) { run_all(false); }

Test(cg_fixtures, every_fixture_after_exact_passes, .timeout = 900) { run_all(true); }
