/* test_cg_models.c — every example model compiled at -O0 (no graph passes, LLVM -O0) and at
 * -O2 (the -O2 pass list, then LLVM -O2) equals the reference interpreter on the graph as
 * loaded (random weights, random inputs), and a compiled model behaves as the runtime's
 * contract says: shapes reported by the loader, two threads with two workspaces agree. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "frontend.h"
#include "netrt.h"
#include "passes/passes.h"
#include "testutil.h"

static Graph *load_example(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "examples/%s.net", name);
    return tu_load_file(rel, 5);
}

/* The level's passes as netc runs them (its default --split-tol), the verifier after each. */
static bool run_level_passes(Graph *g, int opt, const char *name) {
    Diags d;
    diags_init(&d);
    PassOptions po = {.opt_level = opt, .split_tol = 1e-6, .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT, .pass_limit = -1,
                      .verify = true};
    bool ok = passes_run(g, &po, &d, stderr);
    if (!ok) {
        char *s = diags_to_string(&d);
        cr_log_error("%s: -O%d passes (%s) failed:\n%s", name, opt, pass_level_list(opt), s);
        free(s);
    }
    diags_free(&d);
    return ok;
}

static void check_example(const char *name, int threads) {
    Graph *ref = load_example(name);
    cr_assert_not_null(ref, "%s does not load", name);
    for (int opt = tu_min_opt(0); opt <= 2; opt += 2) {
        Graph *g = opt ? load_example(name) : ref;
        cr_assert_not_null(g, "%s does not load", name);
        double e = -1;
        if (run_level_passes(g, opt, name)) e = tu_compiled_vs_interp_ref(g, ref, opt, threads, 17);
        cr_expect(e >= 0 && e <= 1e-5, "%s at -O%d (passes %s): compiled vs interpreter rel.err %g", name, opt,
                  pass_level_list(opt), e);
        if (g != ref) ir_graph_free(g);
    }
    ir_graph_free(ref);
}

Test(cg_models, lenet) { check_example("lenet", 0); }
Test(cg_models, activations) { check_example("activations", 2); }
Test(cg_models, two_io) { check_example("two_io", 0); }
Test(cg_models, resnet18, .timeout = 600) { check_example("resnet18", 2); }
Test(cg_models, mobilenet_v2, .timeout = 600) { check_example("mobilenet_v2", 2); }
Test(cg_models, aspp, .timeout = 600) { check_example("aspp", 2); }
Test(cg_models, aspp_sep, .timeout = 600) { check_example("aspp_sep", 2); }
Test(cg_models, resnet50, .timeout = 900) { check_example("resnet50", 2); }

/* ---- the runtime's view of a compiled model ------------------------------------------------ */

static char so_path[256];

static netrt_model *compile_two_io(void) {
    Graph *g = load_example("two_io");
    cr_assert_not_null(g);
    char dir[64];
    cr_assert_not_null(tu_mkdtemp(dir, sizeof dir, "netc_rt"));
    snprintf(so_path, sizeof so_path, "%s/two_io.so", dir);
    Diags d;
    diags_init(&d);
    CodegenOptions co = {.emit = EMIT_SO, .out = so_path, .cpu = tu_cpu(), .opt_level = 2};
    cr_assert(codegen_emit(g, &co, &d));
    diags_free(&d);
    ir_graph_free(g);
    char err[256];
    netrt_model *m = netrt_open(so_path, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    return m;
}

Test(cg_runtime, loader_reports_names_and_shapes) {
    netrt_model *m = compile_two_io();
    Graph *g = load_example("two_io");
    cr_assert_eq(netrt_num_inputs(m), g->ninputs);
    cr_assert_eq(netrt_num_outputs(m), g->noutputs);
    for (int i = 0; i < g->ninputs; i++) {
        const Tensor *t = ir_tensor(g, g->inputs[i]);
        const netrt_tensor_info *ti = netrt_input(m, i);
        cr_expect_str_eq(ti->name, t->name);
        cr_expect_eq(ti->rank, t->rank);
        for (int k = 0; k < t->rank; k++) cr_expect_eq(ti->shape[k], t->shape[k]);
    }
    for (int i = 0; i < g->noutputs; i++) {
        cr_expect_str_eq(netrt_output(m, i)->name, g->output_names[i]);
        cr_expect_eq(netrt_tensor_count(netrt_output(m, i)), (size_t)ir_numel(ir_tensor(g, g->outputs[i])));
    }
    cr_expect_str_eq(netrt_desc(m)->name, "two_io");
    cr_expect_eq(netrt_desc(m)->workspace_align, 64);
    ir_graph_free(g);
    netrt_close(m);
    unlink(so_path);
}

typedef struct Run {
    const netrt_model *m;
    float *in[4], *out[4];
    int reps;
    netrt_status st;
} Run;

static void *runner(void *p) {
    Run *r = p;
    void *ws = netrt_alloc_workspace(r->m);
    for (int k = 0; k < r->reps && r->st == NETRT_OK; k++)
        r->st = netrt_run(r->m, (const float *const *)r->in, r->out, ws, NULL);
    netrt_free_workspace(ws);
    return NULL;
}

Test(cg_runtime, two_threads_two_workspaces_agree) {
    netrt_model *m = compile_two_io();
    Run runs[3] = {{.m = m, .reps = 1}, {.m = m, .reps = 200}, {.m = m, .reps = 200}};
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < netrt_num_inputs(m); i++) {
            size_t n = netrt_tensor_count(netrt_input(m, i));
            runs[r].in[i] = malloc(n * sizeof(float));
            tu_fill_random(runs[r].in[i], n, 100 + (uint64_t)i);
        }
        for (int i = 0; i < netrt_num_outputs(m); i++)
            runs[r].out[i] = calloc(netrt_tensor_count(netrt_output(m, i)), sizeof(float));
    }
    runner(&runs[0]);
    pthread_t t1, t2;
    pthread_create(&t1, NULL, runner, &runs[1]);
    pthread_create(&t2, NULL, runner, &runs[2]);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    for (int r = 0; r < 3; r++) cr_expect_eq(runs[r].st, NETRT_OK);
    for (int i = 0; i < netrt_num_outputs(m); i++) {
        size_t n = netrt_tensor_count(netrt_output(m, i));
        cr_expect(memcmp(runs[0].out[i], runs[1].out[i], n * sizeof(float)) == 0, "thread 1 differs on output %d", i);
        cr_expect(memcmp(runs[0].out[i], runs[2].out[i], n * sizeof(float)) == 0, "thread 2 differs on output %d", i);
    }
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < netrt_num_inputs(m); i++) free(runs[r].in[i]);
        for (int i = 0; i < netrt_num_outputs(m); i++) free(runs[r].out[i]);
    }
    netrt_close(m);
    unlink(so_path);
}

Test(cg_runtime, not_a_model_is_refused) {
    char err[256];
    netrt_model *m = netrt_open("/lib/x86_64-linux-gnu/libm.so.6", err, sizeof err);
    cr_assert_null(m);
    cr_expect(strstr(err, "not a netc model") != NULL, "message: %s", err);
}
