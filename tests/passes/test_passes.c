/* test_passes.c — every pass against the reference interpreter (graph before vs after, and the
 * compiled graph after vs the interpreter before), and the shape of what each pass leaves:
 * no batchnorm after fold-bn in resnet18, no standalone activation after a conv after fuse-act,
 * in-place never overwriting a tensor read later, planted ranks found by split3x3 and full-rank
 * layers declined, peak workspace strictly smaller with inplace and concat-elim. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "passes/passes.h"
#include "plan/plan.h"
#include "testutil.h"

/* Run a pass list; the stats text (and diagnostics) go to *report (malloc'ed). */
static void run_passes(Graph *g, const char *list, double tol, int64_t limit, char **report) {
    Diags d;
    diags_init(&d);
    size_t len;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, &len);
    PassOptions o = {.list = list, .split_tol = tol, .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT, .pass_limit = limit,
                     .stats = true, .verify = true};
    cr_assert(passes_validate(&o, &d));
    bool ok = passes_run(g, &o, &d, f);
    diags_print(&d, f);
    fclose(f);
    cr_assert(ok, "passes failed:\n%s", buf);
    diags_free(&d);
    if (report) *report = buf;
    else free(buf);
}

static int count_op(const Graph *g, OpKind op) {
    int n = 0;
    for (int i = 0; i < g->nodes.len; i++) n += !ir_node(g, i)->dead && ir_node(g, i)->op == op;
    return n;
}

/* ---- fold-bn ---------------------------------------------------------------------------------- */

Test(fold_bn, resnet18_has_no_batchnorm_left_and_computes_the_same, .timeout = 300) {
    Graph *ref = tu_load_file("examples/resnet18.net", 3), *g = tu_load_file("examples/resnet18.net", 3);
    cr_assert(ref && g);
    cr_assert_eq(count_op(g, OP_BATCHNORM), 20);
    char *rep;
    run_passes(g, "fold-bn", 1e-6, -1, &rep);
    cr_expect_eq(count_op(g, OP_BATCHNORM), 0);
    cr_expect(strstr(rep, "fold-bn: folded 20 batchnorms") != NULL, "%s", rep);
    double e = tu_interp_vs_interp(ref, g, 5);
    cr_expect(e >= 0 && e < 1e-5, "rel.err %g", e);
    free(rep);
    ir_graph_free(ref);
    ir_graph_free(g);
}

Test(fold_bn, grouped_depthwise_linear_with_and_without_bias) {
    const char *src = "input x: [2, 12, 9, 7]\n"
                      "a = conv2d(x, 12, kernel=3, pad=1, groups=3)\nab = batchnorm(a)\n"
                      "b = conv2d(ab, 12, kernel=3, pad=1, groups=12, bias=false)\nbb = batchnorm(b, eps=0.01)\n"
                      "c = conv2d(bb, 5, kernel=1, stride=2, bias=false)\ncb = batchnorm(c)\n"
                      "f = flatten(global_avgpool(cb))\nl = linear(f, 6, bias=false)\nlb = batchnorm(l)\n"
                      "output lb\n";
    Graph *ref = tu_load_text(src, 9), *g = tu_load_text(src, 9);
    cr_assert(ref && g);
    char *rep;
    run_passes(g, "fold-bn", 1e-6, -1, &rep);
    cr_expect_eq(count_op(g, OP_BATCHNORM), 0, "%s", rep);
    double e = tu_interp_vs_interp(ref, g, 1);
    cr_expect(e >= 0 && e < 1e-5, "rel.err %g", e);
    e = tu_compiled_vs_interp_ref(g, ref, 2, 2, 1);
    cr_expect(e >= 0 && e < 1e-5, "compiled rel.err %g", e);
    free(rep);
    ir_graph_free(ref);
    ir_graph_free(g);
}

/* ConvNeXt's block ending: 1×1 conv -> layer scale -> residual add; and a scale with bias after
 * a bias-free conv, one after a batchnorm (folded once the batchnorm is), one after a linear */
Test(fold_bn, scales_fold_like_batchnorms) {
    const char *src = "input x: [2, 12, 6, 5]\n"
                      "a = conv2d(x, 12, kernel=1)\nas = scale(a)\ny = add(as, x)\n"
                      "b = conv2d(y, 8, kernel=3, pad=1, bias=false)\nbs = scale(b, bias=true)\n"
                      "c = conv2d(bs, 8, kernel=3, pad=1, groups=8)\ncb = batchnorm(c)\ncs = scale(cb)\n"
                      "f = flatten(global_avgpool(cs))\nl = linear(f, 6)\nls = scale(l, bias=true)\n"
                      "output ls\n";
    Graph *ref = tu_load_text(src, 9), *g = tu_load_text(src, 9);
    cr_assert(ref && g);
    char *rep;
    run_passes(g, "fold-bn", 1e-6, -1, &rep);
    cr_expect_eq(count_op(g, OP_SCALE), 0, "%s", rep);
    cr_expect_eq(count_op(g, OP_BATCHNORM), 0, "%s", rep);
    cr_expect(strstr(rep, "fold-bn: folded 1 batchnorm, 4 scales\n") != NULL, "%s", rep);
    double e = tu_interp_vs_interp(ref, g, 1);
    cr_expect(e >= 0 && e < 1e-5, "rel.err %g", e);
    e = tu_compiled_vs_interp_ref(g, ref, 2, 2, 1);
    cr_expect(e >= 0 && e < 1e-5, "compiled rel.err %g", e);
    free(rep);
    ir_graph_free(ref);
    ir_graph_free(g);
}

Test(fold_bn, a_batchnorm_whose_input_has_other_readers_stays) {
    const char *src = "input x: [1, 4, 5, 5]\nc = conv2d(x, 6, kernel=3)\nb = batchnorm(c)\nr = relu(c)\n"
                      "d = conv2d(x, 6, kernel=1)\ne = batchnorm(d)\noutput b, r, d, e\n";
    Graph *ref = tu_load_text(src, 2), *g = tu_load_text(src, 2);
    run_passes(g, "fold-bn", 1e-6, -1, NULL);
    cr_expect_eq(count_op(g, OP_BATCHNORM), 2); /* c is read by relu; d is a graph output */
    cr_expect(tu_interp_vs_interp(ref, g, 1) == 0);
    ir_graph_free(ref);
    ir_graph_free(g);
}

/* ---- fuse-act ---------------------------------------------------------------------------------- */

static bool standalone_activation_after_conv(const Graph *g) {
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead || !(op_info(n->op)->flags & OPF_ACTIVATION)) continue;
        const Tensor *x = ir_tensor(g, n->in[0]);
        if (x->producer >= 0 && ir_node(g, x->producer)->op == OP_CONV2D) return true;
    }
    return false;
}

Test(fuse_act, resnet18_is_conv_kernels_with_epilogues, .timeout = 300) {
    Graph *ref = tu_load_file("examples/resnet18.net", 4), *g = tu_load_file("examples/resnet18.net", 4);
    char *rep;
    run_passes(g, "fold-bn,fuse-act", 1e-6, -1, &rep);
    cr_expect(!standalone_activation_after_conv(g));
    cr_expect_eq(count_op(g, OP_RELU), 0, "%s", rep);
    cr_expect_eq(count_op(g, OP_ADD), 0, "%s", rep); /* every residual add went into a conv */
    cr_expect(strstr(rep, "8 residual adds") != NULL, "%s", rep);
    double e = tu_interp_vs_interp(ref, g, 5);
    cr_expect(e >= 0 && e < 1e-5, "rel.err %g", e);
    free(rep);
    ir_graph_free(ref);
    ir_graph_free(g);
}

Test(fuse_act, chains_and_every_activation) {
    const char *acts[] = {"relu", "relu6", "leaky_relu", "prelu", "clamp", "sigmoid", "tanh",
                          "silu", "hardswish", "hardsigmoid", "gelu", "elu"};
    for (size_t k = 0; k < sizeof acts / sizeof *acts; k++) {
        char src[600];
        const char *extra = !strcmp(acts[k], "clamp") ? ", min=-0.2, max=0.3" : !strcmp(acts[k], "prelu") ? ", num_parameters=13" : "";
        snprintf(src, sizeof src,
                 "input x: [2, 5, 6, 7]\nc = conv2d(x, 13, kernel=3, pad=1)\nb = batchnorm(c)\na = %s(b%s)\n"
                 "t = tanh(a)\nl = linear(flatten(global_avgpool(t)), 9)\nm = %s(l%s)\noutput m, t\n",
                 acts[k], extra, acts[k], !strcmp(acts[k], "prelu") ? ", num_parameters=9" : !strcmp(acts[k], "clamp") ? extra : "");
        Graph *ref = tu_load_text(src, 6), *g = tu_load_text(src, 6);
        cr_assert(ref && g, "%s", acts[k]);
        run_passes(g, "fold-bn,fuse-act", 1e-6, -1, NULL);
        cr_expect(!standalone_activation_after_conv(g), "%s", acts[k]);
        cr_expect_eq(count_op(g, OP_CONV2D) + count_op(g, OP_LINEAR) + count_op(g, OP_GLOBAL_AVGPOOL) +
                         count_op(g, OP_FLATTEN), g->nodes.len, "%s: something stayed standalone", acts[k]);
        double e = tu_interp_vs_interp(ref, g, 2);
        cr_expect(e >= 0 && e < 1e-5, "%s: rel.err %g", acts[k], e);
        e = tu_compiled_vs_interp_ref(g, ref, 2, 0, 3);
        cr_expect(e >= 0 && e < 1e-5, "%s: compiled rel.err %g", acts[k], e);
        ir_graph_free(ref);
        ir_graph_free(g);
    }
}

Test(fuse_act, an_output_and_its_activation_both_stay) {
    /* `output c, r` with r = relu(c): c must keep its pre-activation value */
    const char *src = "input x: [1, 3, 5, 5]\nc = conv2d(x, 4, kernel=3, pad=1)\nr = relu(c)\noutput c, r\n";
    Graph *ref = tu_load_text(src, 1), *g = tu_load_text(src, 1);
    run_passes(g, "fold-bn,split3x3,fuse-act,inplace,concat-elim", 1e-6, -1, NULL);
    cr_expect_eq(count_op(g, OP_RELU), 1);
    cr_expect(!ir_node(g, 1)->inplace);
    cr_expect(tu_interp_vs_interp(ref, g, 1) == 0);
    double e = tu_compiled_vs_interp_ref(g, ref, 2, 0, 1);
    cr_expect(e >= 0 && e < 1e-5, "compiled rel.err %g", e);
    ir_graph_free(ref);
    ir_graph_free(g);
}

/* ---- inplace ------------------------------------------------------------------------------------- */

Test(inplace, a_chain_of_unfused_activations_shrinks_the_workspace) {
    const char *src = "input x: [1, 32, 40, 40]\na = concat(x, x, axis=1)\nb = relu(a)\nc = sigmoid(b)\n"
                      "d = tanh(c)\ne = hardswish(d)\nf = conv2d(e, 8, kernel=1)\noutput f\n";
    Graph *ref = tu_load_text(src, 1), *g = tu_load_text(src, 1);
    int64_t before = plan_peak(g);
    run_passes(g, "inplace", 1e-6, -1, NULL);
    int64_t after = plan_peak(g);
    cr_expect(after < before, "peak %lld -> %lld", (long long)before, (long long)after);
    int n = 0;
    for (int i = 0; i < g->nodes.len; i++) n += ir_node(g, i)->inplace;
    cr_expect_eq(n, 4);
    double e = tu_compiled_vs_interp_ref(g, ref, 2, 2, 1);
    cr_expect(e >= 0 && e < 1e-5, "compiled rel.err %g", e);
    ir_graph_free(ref);
    ir_graph_free(g);
}

Test(inplace, never_overwrites_a_tensor_read_later) {
    /* a is read by sigmoid and later by add: sigmoid must not overwrite a; x is a graph input */
    const char *src = "input x: [1, 8, 6, 6]\nz = relu(x, inplace=true)\na = concat(z, z, axis=1)\n"
                      "s = sigmoid(a, inplace=true)\nt = add(a, s)\nu = tanh(t, inplace=true)\noutput u\n";
    Graph *ref = tu_load_text(src, 1), *g = tu_load_text(src, 1);
    Diags d;
    diags_init(&d);
    size_t len;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, &len);
    PassOptions o = {.list = "inplace", .verify = true, .pass_limit = -1};
    cr_assert(passes_run(g, &o, &d, f));
    diags_print(&d, f);
    fclose(f);
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->op == OP_SIGMOID || n->op == OP_RELU) cr_expect(!n->inplace, "%s went in place", n->name);
        if (n->op == OP_TANH) cr_expect(n->inplace);
    }
    cr_expect(strstr(buf, "sigmoid: inplace=true ignored: 't' reads 'a' later") != NULL, "%s", buf);
    cr_expect(strstr(buf, "relu: inplace=true ignored: 'x' is a graph input") != NULL, "%s", buf);
    double e = tu_compiled_vs_interp_ref(g, ref, 2, 0, 1);
    cr_expect(e >= 0 && e < 1e-5, "compiled rel.err %g", e);
    free(buf);
    diags_free(&d);
    ir_graph_free(ref);
    ir_graph_free(g);
}

/* ---- concat-elim ------------------------------------------------------------------------------------- */

Test(concat_elim, aspp_concat_costs_no_copy, .timeout = 600) {
    Graph *ref = tu_load_file("examples/aspp.net", 2), *g = tu_load_file("examples/aspp.net", 2);
    char *rep;
    int64_t before = plan_peak(g);
    run_passes(g, "fold-bn,split3x3,fuse-act,inplace,concat-elim", 1e-6, -1, &rep);
    int64_t after = plan_peak(g);
    cr_expect(after < before, "peak %lld -> %lld\n%s", (long long)before, (long long)after, rep);
    cr_expect(strstr(rep, "8 concat inputs written in place") != NULL, "%s", rep);
    double e = tu_compiled_vs_interp_ref(g, ref, 2, 2, 1);
    cr_expect(e >= 0 && e < 1e-5, "compiled rel.err %g", e);
    free(rep);
    ir_graph_free(ref);
    ir_graph_free(g);
}

Test(concat_elim, inputs_outputs_and_twice_fed_tensors_still_copy) {
    const char *src = "input x: [2, 5, 7, 6]\na = conv2d(x, 3, kernel=1)\nb = conv2d(x, 4, kernel=3, pad=1)\n"
                      "c = concat(a, x, b, b, a, axis=1)\nd = conv2d(x, 2, kernel=1)\ne = concat(d, c, axis=1)\n"
                      "g2 = conv2d(x, 21, kernel=1)\nf = concat(relu(e), g2, axis=-1)\noutput f, d\n";
    Graph *ref = tu_load_text(src, 1), *g = tu_load_text(src, 1);
    char *rep;
    run_passes(g, "fuse-act,inplace,concat-elim", 1e-6, -1, &rep);
    /* a, b fed twice; x an input; d an output; relu(e) runs in place over e: only c (into e)
       and g2 (into f) become slices */
    cr_expect(strstr(rep, "2 concat inputs written in place") != NULL, "%s", rep);
    double e = tu_compiled_vs_interp_ref(g, ref, 2, 2, 1);
    cr_expect(e >= 0 && e < 1e-5, "compiled rel.err %g", e);
    e = tu_compiled_vs_interp_ref(g, ref, 0, 0, 1);
    cr_expect(e >= 0 && e < 1e-5, "compiled -O0 rel.err %g", e);
    free(rep);
    ir_graph_free(ref);
    ir_graph_free(g);
}

/* ---- split3x3 ------------------------------------------------------------------------------------- */

/* Overwrite the conv's weight with a rank-r matrix in the [(o,h), (i,w)] unfolding. */
static void plant_rank(Graph *g, const char *name, int64_t r, uint64_t seed) {
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (strcmp(n->name, name)) continue;
        Tensor *w = ir_weight(g, n, "weight");
        int64_t O = w->shape[0], I = w->shape[1];
        float *u = malloc(sizeof(float) * (size_t)(3 * O * r)), *v = malloc(sizeof(float) * (size_t)(3 * I * r));
        tu_fill_random(u, (size_t)(3 * O * r), seed);
        tu_fill_random(v, (size_t)(3 * I * r), seed + 1);
        for (int64_t o = 0; o < O; o++)
            for (int64_t ii = 0; ii < I; ii++)
                for (int64_t h = 0; h < 3; h++)
                    for (int64_t x = 0; x < 3; x++) {
                        double acc = 0;
                        for (int64_t k = 0; k < r; k++) acc += (double)u[(o * 3 + h) * r + k] * v[(ii * 3 + x) * r + k];
                        w->data[((o * I + ii) * 3 + h) * 3 + x] = (float)(acc / (double)r);
                    }
        free(u), free(v);
        return;
    }
    cr_assert_fail("no node %s", name);
}

Test(split3x3, finds_planted_ranks_and_declines_full_rank) {
    const char *src = "input x: [1, 24, 17, 15]\n"
                      "a = conv2d(x, 32, kernel=3, pad=1)\n"
                      "b = conv2d(a, 32, kernel=3, stride=2, pad=[2, 1], dilation=2, bias=false)\n"
                      "c = conv2d(b, 40, kernel=3, pad=1)\n"
                      "d = conv2d(c, 16, kernel=3, pad=0, stride=[1, 2])\n"
                      "output d\n";
    Graph *ref = tu_load_text(src, 8), *g = tu_load_text(src, 8);
    plant_rank(ref, "a", 5, 1), plant_rank(g, "a", 5, 1);
    plant_rank(ref, "b", 1, 3), plant_rank(g, "b", 1, 3);
    plant_rank(ref, "d", 12, 5), plant_rank(g, "d", 12, 5);
    char *rep;
    run_passes(g, "split3x3", 1e-6, -1, &rep);
    cr_expect(strstr(rep, "split3x3: a rank 5/72") != NULL, "%s", rep);
    cr_expect(strstr(rep, "split3x3: b rank 1/96") != NULL, "%s", rep);
    cr_expect(strstr(rep, "split3x3: c declined: rank >") != NULL, "%s", rep);
    cr_expect(strstr(rep, "split3x3: d rank 12/48") != NULL, "%s", rep);
    cr_expect(strstr(rep, "split 3 of 4") != NULL, "%s", rep);
    cr_expect_eq(count_op(g, OP_CONV2D), 7);
    double e = tu_interp_vs_interp(ref, g, 4);
    cr_expect(e >= 0 && e < 1e-5, "rel.err %g", e);
    e = tu_compiled_vs_interp_ref(g, ref, 2, 2, 4);
    cr_expect(e >= 0 && e < 1e-5, "compiled rel.err %g", e);
    free(rep);
    ir_graph_free(ref);
    ir_graph_free(g);
}

Test(split3x3, depthwise_rank1_splits_stride2_and_grouped_decline) {
    const char *src = "input x: [1, 6, 12, 12]\n"
                      "a = conv2d(x, 6, kernel=3, pad=1, groups=6)\n"
                      "b = conv2d(a, 6, kernel=3, pad=1, stride=2, groups=6)\n"
                      "c = conv2d(b, 6, kernel=3, pad=1, groups=2)\n"
                      "output c\n";
    Graph *ref = tu_load_text(src, 8), *g = tu_load_text(src, 8);
    /* separable depthwise kernels: outer products per channel */
    for (int gi = 0; gi < 2; gi++) {
        Graph *x = gi ? g : ref;
        for (int i = 0; i < x->nodes.len; i++) {
            Node *n = ir_node(x, i);
            if (strcmp(n->name, "a") && strcmp(n->name, "b")) continue;
            Tensor *w = ir_weight(x, n, "weight");
            for (int c = 0; c < 6; c++)
                for (int h = 0; h < 3; h++)
                    for (int k = 0; k < 3; k++) w->data[c * 9 + h * 3 + k] = (float)((c + 1) * (h - 1.5) * (k * k - 0.7));
        }
    }
    char *rep;
    run_passes(g, "split3x3", 1e-6, -1, &rep);
    cr_expect(strstr(rep, "split3x3: a depthwise rank 1/3 per channel") != NULL, "%s", rep);
    cr_expect(strstr(rep, "split3x3: b declined: depthwise at stride 2") != NULL, "%s", rep);
    cr_expect(strstr(rep, "split3x3: c declined: grouped convolution (groups=2)") != NULL, "%s", rep);
    double e = tu_interp_vs_interp(ref, g, 4);
    cr_expect(e >= 0 && e < 1e-5, "rel.err %g", e);
    e = tu_compiled_vs_interp_ref(g, ref, 2, 0, 4);
    cr_expect(e >= 0 && e < 1e-5, "compiled rel.err %g", e);
    free(rep);
    ir_graph_free(ref);
    ir_graph_free(g);
}

/* full-rank noise about 1e-3 of the weights' scale */
static void perturb(Tensor *w) {
    float *noise = malloc(sizeof(float) * (size_t)ir_numel(w));
    tu_fill_random(noise, (size_t)ir_numel(w), 99);
    for (int64_t k = 0; k < ir_numel(w); k++) w->data[k] += 3e-4f * noise[k];
    free(noise);
}

Test(split3x3, lossy_tolerance_reports_the_error_it_adds) {
    const char *src = "input x: [1, 16, 10, 10]\na = conv2d(x, 16, kernel=3, pad=1)\noutput a\n";
    Graph *g = tu_load_text(src, 8), *ref = tu_load_text(src, 8);
    plant_rank(g, "a", 3, 1), plant_rank(ref, "a", 3, 1);
    /* add a small full-rank perturbation: exact split must decline, tol 1e-2 must split at rank 3 */
    for (int gi = 0; gi < 2; gi++) {
        Graph *x = gi ? g : ref;
        perturb(ir_weight(x, ir_node(x, 0), "weight"));
    }
    Graph *g2 = tu_load_text(src, 8);
    char *rep;
    run_passes(g, "split3x3", 1e-6, -1, &rep);
    cr_expect(strstr(rep, "a declined") != NULL, "%s", rep);
    free(rep);
    ir_graph_free(g);
    plant_rank(g2, "a", 3, 1);
    perturb(ir_weight(g2, ir_node(g2, 0), "weight"));
    run_passes(g2, "split3x3", 1e-2, -1, &rep);
    cr_expect(strstr(rep, "split3x3: a rank 3/48, rel.err") != NULL, "%s", rep);
    double e = tu_interp_vs_interp(ref, g2, 4);
    cr_expect(e > 0 && e < 1e-2, "rel.err %g", e);
    free(rep);
    ir_graph_free(g2);
    ir_graph_free(ref);
}

/* ---- pass-limit --------------------------------------------------------------------------------- */

Test(pass_manager, pass_limit_applies_only_the_first_rewrites) {
    const char *src = "input x: [1, 3, 8, 8]\na = conv2d(x, 4, kernel=1)\nb = batchnorm(a)\nc = conv2d(b, 4, kernel=1)\n"
                      "d = batchnorm(c)\ne = relu(d)\noutput e\n";
    for (int64_t lim = 0; lim <= 3; lim++) {
        Graph *ref = tu_load_text(src, 1), *g = tu_load_text(src, 1);
        run_passes(g, "fold-bn,fuse-act", 1e-6, lim, NULL);
        int bns = count_op(g, OP_BATCHNORM), relus = count_op(g, OP_RELU);
        cr_expect_eq(bns, lim >= 2 ? 0 : 2 - (int)lim, "limit %lld", (long long)lim);
        cr_expect_eq(relus, lim >= 3 ? 0 : 1, "limit %lld", (long long)lim);
        double e = tu_interp_vs_interp(ref, g, 1);
        cr_expect(e >= 0 && e < 1e-5, "limit %lld: rel.err %g", (long long)lim, e);
        ir_graph_free(ref);
        ir_graph_free(g);
    }
}

Test(pass_manager, unknown_names_get_did_you_mean) {
    Diags d;
    diags_init(&d);
    PassOptions o = {.list = "fold-bn,fuse-ac", .disabled = {"inplce"}, .ndisabled = 1};
    cr_expect(!passes_validate(&o, &d));
    char *s = diags_to_string(&d);
    cr_expect(strstr(s, "--passes: unknown pass 'fuse-ac' (did you mean 'fuse-act'?)") != NULL, "%s", s);
    cr_expect(strstr(s, "--disable-pass: unknown pass 'inplce' (did you mean 'inplace'?)") != NULL, "%s", s);
    free(s);
    diags_free(&d);
}

Test(concat_elim, a_slice_read_after_the_concat_is_not_overwritten) {
    /* found by netc-difftest (seed 45): t0 became a slice of t2, clamp then ran in place over
       t2, and the upsample after it read the clamped slice */
    const char *src = "input x0: [1, 2, 9, 4]\nt0 = batchnorm(x0)\n"
                      "t1 = conv2d(t0, 4, kernel=[3, 1], pad=[1, 0], groups=2)\n"
                      "t2 = concat(t1, x0, t0, x0)\nt3 = clamp(t2, min=-0.5, max=0.75)\n"
                      "t8 = upsample(t0, scale=2)\nt9 = conv_transpose2d(t8, 17, kernel=2, bias=false)\n"
                      "output t9, t3\n";
    Graph *ref = tu_load_text(src, 45), *g = tu_load_text(src, 45);
    run_passes(g, "fold-bn,split3x3,fuse-act,inplace,concat-elim", 1e-6, -1, NULL);
    double e = tu_compiled_vs_interp_ref(g, ref, 2, 0, 1);
    cr_expect(e >= 0 && e < 1e-5, "compiled rel.err %g", e);
    ir_graph_free(ref);
    ir_graph_free(g);
}

Test(fuse_act, residual_into_a_1x1_conv_run_as_one_gemm) {
    /* found by netc-difftest (seed 185): a 1×1 conv runs as a GEMM over all N·H·W pixels, and
       its fused residual read batch 0's pixels for every batch */
    const char *shapes[] = {"[2, 34, 1, 1]", "[3, 20, 5, 7]"};
    for (int s = 0; s < 2; s++) {
        char src[256];
        snprintf(src, sizeof src, "input x0: %s\nt1 = conv2d(x0, %d, kernel=1, bias=false)\nt3 = add(t1, x0)\noutput t3\n",
                 shapes[s], s ? 20 : 34);
        Graph *ref = tu_load_text(src, 2), *g = tu_load_text(src, 2);
        char *rep;
        run_passes(g, "fuse-act", 1e-6, -1, &rep);
        cr_expect(strstr(rep, "1 residual add") != NULL, "%s", rep);
        double e = tu_compiled_vs_interp_ref(g, ref, 2, 0, 1);
        cr_expect(e >= 0 && e < 1e-5, "%s: compiled rel.err %g", shapes[s], e);
        free(rep);
        ir_graph_free(ref);
        ir_graph_free(g);
    }
}
