/* test_pass_orders.c — passes are safe to experiment with: every order of the pass list, with
 * repeats, computes what the unoptimised graph computes (interpreter, and compiled code), a
 * repeated pass changes nothing, an order a pass cannot handle is refused before anything runs,
 * a pass that breaks its contract or the verifier's invariants is an internal error naming it,
 * and the cases found by hand (fuse-act before fold-bn, concat-elim before inplace, epilogue
 * overflow, per-channel depthwise splitting) stay fixed. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "passes/passes.h"
#include "testutil.h"

/* Run a pass list (with the verifier); returns whether it succeeded, the report in *out. */
static bool try_passes(Graph *g, const char *list, const PassInfo *table, char **out) {
    Diags d;
    diags_init(&d);
    size_t len;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, &len);
    PassOptions o = {.list = list, .split_tol = 1e-6, .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT, .pass_limit = -1,
                     .stats = true, .verify = true, .table = table};
    bool ok = passes_validate(&o, &d) && passes_run(g, &o, &d, f);
    diags_print(&d, f);
    fclose(f);
    diags_free(&d);
    if (out) *out = buf;
    else free(buf);
    return ok;
}

static void run_ok(Graph *g, const char *list) {
    char *rep;
    bool ok = try_passes(g, list, NULL, &rep);
    cr_assert(ok, "--passes=%s failed:\n%s", list, rep);
    free(rep);
}

/* W[o, i] = Σ_h,w u[o,h] v[i,w]: every 3×3 kernel of the conv is rank 1 (split3x3 fires). */
static void plant_rank1(Graph *g, const char *name) {
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (strcmp(n->name, name)) continue;
        Tensor *w = ir_weight(g, n, "weight");
        int64_t O = w->shape[0], I = w->shape[1];
        for (int64_t o = 0; o < O; o++)
            for (int64_t ii = 0; ii < I; ii++)
                for (int h = 0; h < 3; h++)
                    for (int x = 0; x < 3; x++)
                        w->data[((o * I + ii) * 3 + h) * 3 + x] =
                            (float)(sin(1.0 + (double)o + 0.7 * h) * cos(0.3 * (double)ii + 1.3 * x));
        return;
    }
    cr_assert_fail("no node %s", name);
}

static void expect_same(Graph *ref, Graph *g, const char *what, bool compiled) {
    double e = tu_interp_vs_interp(ref, g, 3);
    cr_expect(e >= 0 && e < 1e-5, "%s: interpreter rel.err %g", what, e);
    if (compiled) {
        e = tu_compiled_vs_interp_ref(g, ref, 2, 0, 3);
        cr_expect(e >= 0 && e < 1e-5, "%s: compiled rel.err %g", what, e);
    }
}

/* ---- the cases found by hand --------------------------------------------------------------- */

Test(pass_orders, fuse_act_then_fold_bn_keeps_the_relu) {
    const char *src = "input x: [1, 4, 8, 8]\nc = conv2d(x, 8, kernel=3, pad=1)\nb = batchnorm(c)\nr = relu(b)\noutput r\n";
    Graph *ref = tu_load_text(src, 1), *g = tu_load_text(src, 1);
    run_ok(g, "fuse-act,fold-bn");
    int live = 0, steps = 0;
    for (int i = 0; i < g->nodes.len; i++)
        if (!ir_node(g, i)->dead) live++, steps += ir_node(g, i)->nepi;
    cr_expect_eq(live, 1, "conv+bn+relu should be one conv with the relu in its epilogue");
    cr_expect_eq(steps, 1);
    expect_same(ref, g, "fuse-act,fold-bn", true);
    ir_graph_free(ref);
    ir_graph_free(g);
}

Test(pass_orders, concat_elim_then_inplace_is_no_internal_error) {
    const char *src = "input x: [1, 4, 8, 8]\nc = conv2d(x, 8, kernel=3, pad=1)\nr = relu(c, inplace=true)\n"
                      "d = conv2d(x, 8, kernel=1)\nk = concat(r, d)\noutput k\n";
    Graph *ref = tu_load_text(src, 1), *g = tu_load_text(src, 1);
    char *rep;
    cr_assert(try_passes(g, "concat-elim,inplace", NULL, &rep), "%s", rep);
    for (int i = 0; i < g->nodes.len; i++) cr_expect(!ir_node(g, i)->inplace, "%s went in place", ir_node(g, i)->name);
    cr_expect(strstr(rep, "relu: inplace=true ignored: 'r' is stored in the output of concat 'k'") != NULL, "%s", rep);
    expect_same(ref, g, "concat-elim,inplace", true);
    free(rep);
    ir_graph_free(ref);
    ir_graph_free(g);
}

/* The conv gets the relu (moved from the batchnorm by fold-bn), then the residual add whose
 * epilogue already holds five activations: 1 + 1 + 5 > IR_MAX_EPI steps, so the add must stay a
 * node of its own rather than lose its last activation. */
Test(pass_orders, residual_fusion_never_truncates_an_epilogue) {
    const char *src = "input x: [1, 6, 7, 7]\nr0 = conv2d(x, 6, kernel=1)\nc = conv2d(x, 6, kernel=3, pad=1)\n"
                      "b = batchnorm(c)\na = relu(b)\ns = add(a, r0)\ns1 = sigmoid(s)\ns2 = tanh(s1)\n"
                      "s3 = relu6(s2)\ns4 = hardswish(s3)\ns5 = elu(s4)\noutput s5\n";
    Graph *ref = tu_load_text(src, 2), *g = tu_load_text(src, 2);
    run_ok(g, "fuse-act,fold-bn,fuse-act");
    /* every activation of the source is still applied: as a node or as an epilogue step */
    int acts = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        acts += (op_info(n->op)->flags & OPF_ACTIVATION) != 0;
        for (int k = 0; k < n->nepi; k++) acts += n->epi[k].act != NULL;
    }
    cr_expect_eq(acts, 6);
    expect_same(ref, g, "fuse-act,fold-bn,fuse-act", true);
    ir_graph_free(ref);
    ir_graph_free(g);
}

Test(pass_orders, depthwise_split_checks_every_channel_on_its_own) {
    /* channel 0 is a strong rank-1 kernel, channel 1 a weak full-rank one: summed over channels
       the rank-1 error is below 1e-6, but channel 1 alone would lose almost everything */
    const char *src = "input x: [1, 2, 12, 12]\nd = conv2d(x, 2, kernel=3, pad=1, groups=2)\noutput d\n";
    Graph *g = tu_load_text(src, 1);
    Tensor *w = ir_weight(g, ir_node(g, 0), "weight");
    for (int h = 0; h < 3; h++)
        for (int x = 0; x < 3; x++) {
            w->data[h * 3 + x] = (float)(1000.0 * (1 + h) * (2 - x + 0.5));
            w->data[9 + h * 3 + x] = (float)(1e-4 * ((h * 3 + x) % 4 - 1.5) * (1 + (h == x)));
        }
    char *rep;
    cr_assert(try_passes(g, "split3x3", NULL, &rep), "%s", rep);
    cr_expect(strstr(rep, "d declined: depthwise kernels are not all rank 1 (channel 1:") != NULL, "%s", rep);
    cr_expect_eq(g->nodes.len, 1);
    free(rep);
    ir_graph_free(g);
}

/* ---- every order ---------------------------------------------------------------------------- */

/* A graph in which every pass has something to do, and every pass meets what the others leave:
 * conv -> bn -> relu (fold-bn, fuse-act), a residual add, a rank-1 3×3 conv and a depthwise one
 * (split3x3), a full-rank 16-channel 3×3 conv -> bn -> relu (winograd, with a folded batchnorm
 * and a fused relu, writing a concat slice), a concat of activations (concat-elim) read by an
 * in-place activation (inplace). */
static const char *every_pass_src =
    "input x: [1, 6, 24, 24]\n"
    "a = conv2d(x, 8, kernel=3, pad=1)\nab = batchnorm(a)\nar = relu(ab)\n"
    "b = conv2d(ar, 8, kernel=1)\nbb = batchnorm(b)\ns = add(bb, ar)\nsr = relu6(s)\n"
    "dw = conv2d(sr, 8, kernel=3, pad=1, groups=8)\ndb = batchnorm(dw)\ndr = hardswish(db)\n"
    "c = conv2d(x, 4, kernel=1)\ncr = sigmoid(c)\n"
    "w0 = conv2d(x, 16, kernel=1)\nw = conv2d(w0, 16, kernel=3, pad=1)\nwb = batchnorm(w)\nwr = relu(wb)\n"
    "k = concat(dr, cr, wr)\nkr = relu(k, inplace=true)\nm = maxpool2d(kr, kernel=2)\nmr = relu(m)\nmt = tanh(mr)\n"
    "output mt\n";

static Graph *every_pass_graph(void) {
    Graph *g = tu_load_text(every_pass_src, 5);
    cr_assert(g);
    plant_rank1(g, "a");
    /* rank-1 depthwise kernels */
    for (int i = 0; i < g->nodes.len; i++)
        if (!strcmp(ir_node(g, i)->name, "dw")) {
            Tensor *w = ir_weight(g, ir_node(g, i), "weight");
            for (int ch = 0; ch < 8; ch++)
                for (int h = 0; h < 3; h++)
                    for (int x = 0; x < 3; x++) w->data[ch * 9 + h * 3 + x] = (float)((ch + 1) * (h - 0.7) * (x + 0.4) / 9);
        }
    return g;
}

/* The table's passes, every one of them: a new pass joins the permutations by its table row. */
enum { MAXP = 8 };
static int table_names(const char **names) {
    int n = 0;
    while (pass_table[n].name) {
        cr_assert(n < MAXP, "more passes than this test permutes");
        names[n] = pass_table[n].name, n++;
    }
    return n;
}

static void all_list(char *buf, size_t cap) {
    const char *names[MAXP];
    int np = table_names(names);
    buf[0] = 0;
    for (int k = 0; k < np; k++) snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", k ? "," : "", names[k]);
}

Test(pass_orders, all_permutations_and_repeats_compute_the_same, .timeout = 900) {
    const char *names[MAXP];
    int np = table_names(names), fact = 1;
    for (int k = 2; k <= np; k++) fact *= k;
    Graph *ref = every_pass_graph();
    int perm[MAXP], count = 0;
    for (int k = 0; k < np; k++) perm[k] = k;
    /* compiled code for one order in `stride` (codegen is the slow part): about 15 of them */
    int stride = fact / 15 < 1 ? 1 : fact / 15;
    /* Heap's algorithm, iteratively */
    int cnt[MAXP] = {0};
    for (int i = 0;;) {
        char list[256] = "";
        for (int k = 0; k < np; k++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? "," : "", names[perm[k]]);
        /* the order with every pass run twice in a row: the second run must change nothing */
        char twice[512] = "";
        for (int k = 0; k < np; k++)
            snprintf(twice + strlen(twice), sizeof twice - strlen(twice), "%s%s,%s", k ? "," : "", names[perm[k]],
                     names[perm[k]]);
        Graph *g = every_pass_graph(), *g2 = every_pass_graph();
        run_ok(g, list);
        run_ok(g2, twice);
        char *a = NULL, *b = NULL;
        size_t la, lb;
        FILE *fa = open_memstream(&a, &la), *fb = open_memstream(&b, &lb);
        ir_print(g, fa), ir_print(g2, fb);
        fclose(fa), fclose(fb);
        cr_expect_str_eq(a, b, "--passes=%s repeated changed the graph", list);
        free(a), free(b);
        expect_same(ref, g, list, count % stride == 0);
        ir_graph_free(g), ir_graph_free(g2);
        count++;
        while (i < np && cnt[i] >= i) cnt[i++] = 0;
        if (i >= np) break;
        int j = i % 2 ? cnt[i] : 0, t = perm[j];
        perm[j] = perm[i], perm[i] = t;
        cnt[i]++, i = 1;
    }
    cr_expect_eq(count, fact);
    ir_graph_free(ref);
}

Test(pass_orders, every_pass_has_work_in_the_graph_of_every_order) {
    Graph *g = every_pass_graph();
    char *rep;
    char all[256];
    all_list(all, sizeof all);
    cr_assert(try_passes(g, all, NULL, &rep));
    cr_expect(strstr(rep, "fold-bn: folded 4 batchnorms\n"), "%s", rep);
    cr_expect(strstr(rep, "split3x3: split 2 of 3 3x3 convolutions"), "%s", rep);
    cr_expect(strstr(rep, "winograd: w winograd F(4,3)"), "%s", rep);
    cr_expect(strstr(rep, "and 1 residual add into"), "%s", rep);
    cr_expect(strstr(rep, "inplace: 0 elementwise") == NULL, "%s", rep);
    cr_expect(strstr(rep, "concat-elim: 3 concat inputs written in place"), "%s", rep);
    free(rep);
    ir_graph_free(g);
}

Test(pass_orders, each_pass_run_again_is_a_no_op) {
    for (int k = 0; pass_table[k].name; k++) {
        Graph *g = every_pass_graph();
        char all[256];
        all_list(all, sizeof all);
        run_ok(g, all);
        PassCtx c = {.split_tol = 1e-6, .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT, .budget = -1, .pass = pass_table[k].name,
                     .repeat = true};
        Diags d;
        diags_init(&d);
        c.d = &d;
        cr_expect(!pass_table[k].fn(g, &c), "%s changed the graph when run again", pass_table[k].name);
        cr_expect_eq(c.rewrites, 0, "%s rewrote %lld things when run again", pass_table[k].name, (long long)c.rewrites);
        diags_free(&d);
        ir_graph_free(g);
    }
}

/* ---- contracts ----------------------------------------------------------------------------- */

static bool noop_pass(Graph *g, PassCtx *c) {
    (void)g, (void)c;
    return false;
}

/* A copy of the real table plus passes of a test's own. */
static PassInfo table_buf[16];
static const PassInfo *table_with(PassInfo extra1, PassInfo extra2) {
    int n = 0;
    while (pass_table[n].name) table_buf[n] = pass_table[n], n++;
    table_buf[n++] = extra1;
    table_buf[n++] = extra2;
    table_buf[n] = (PassInfo){0};
    return table_buf;
}

static char *order_error(const PassInfo *table, const char *list) {
    Diags d;
    diags_init(&d);
    bool ok = passes_check_order(table, list, &d);
    char *s = diags_to_string(&d);
    cr_expect(ok == (d.nerrors == 0));
    diags_free(&d);
    return s;
}

Test(pass_contracts, an_order_a_pass_cannot_handle_is_refused_before_anything_runs) {
    const PassInfo *t = table_with((PassInfo){"mine", noop_pass, 0, GF_EPILOGUES, 0, "handles epilogues only"},
                                   (PassInfo){"needs-slices", noop_pass, GF_SLICES, GF_SLICES, 0, "needs slices"});
    char *s = order_error(t, "fuse-act,mine");
    cr_expect_str_eq(s, "");
    free(s);
    s = order_error(t, "fuse-act,concat-elim,mine,mine");
    cr_expect_str_eq(s, "netc: error: --passes: mine after concat-elim is not supported: mine cannot handle concat "
                        "slices (made by concat-elim)\n");
    free(s);
    s = order_error(t, "inplace,mine");
    cr_expect(strstr(s, "mine after inplace is not supported: mine cannot handle in-place nodes (made by inplace)"), "%s", s);
    free(s);
    s = order_error(t, "needs-slices");
    cr_expect(strstr(s, "--passes: needs-slices is not supported here: it needs concat slices, which no pass before it makes"),
              "%s", s);
    free(s);
    s = order_error(t, "concat-elim,needs-slices");
    cr_expect_str_eq(s, "");
    free(s);
    /* the real passes accept every order */
    s = order_error(NULL, "concat-elim,inplace,winograd,fuse-act,split3x3,fold-bn,winograd,concat-elim,fold-bn");
    cr_expect_str_eq(s, "");
    free(s);
    /* passes_validate refuses the same, as a usage error, with --disable-pass taken out first */
    Diags d;
    diags_init(&d);
    PassOptions o = {.list = "concat-elim,mine", .table = t};
    cr_expect(!passes_validate(&o, &d));
    diags_free(&d);
    diags_init(&d);
    o.disabled[0] = "concat-elim", o.ndisabled = 1;
    cr_expect(passes_validate(&o, &d));
    diags_free(&d);
}

/* Rogue passes: each breaks the graph in one way the verifier or the contract check must name. */
static bool rogue_inplace(Graph *g, PassCtx *c) {
    (void)c;
    for (int i = 0; i < g->nodes.len; i++)
        if (ir_node(g, i)->op == OP_RELU) return ir_node(g, i)->inplace = true;
    return false;
}
static bool rogue_epilogue(Graph *g, PassCtx *c) {
    (void)c;
    ir_node(g, 0)->nepi = IR_MAX_EPI + 1;
    return true;
}
static bool rogue_slice_offset(Graph *g, PassCtx *c) {
    (void)c;
    for (int i = 0; i < g->tensors.len; i++)
        if (ir_tensor(g, i)->alias >= 0) ir_tensor(g, i)->alias_offset += 1;
    return true;
}
static bool rogue_slice_inplace(Graph *g, PassCtx *c) {
    (void)c;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->op == OP_RELU && ir_tensor(g, n->out)->alias >= 0) return n->inplace = true;
    }
    return false;
}

static void expect_internal_error(const char *list, PassInfo rogue, const char *want) {
    const char *src = "input x: [1, 4, 6, 6]\nc = conv2d(x, 4, kernel=1)\nr = relu(c)\nd = conv2d(x, 4, kernel=1)\n"
                      "k = concat(r, d)\ny = sigmoid(k)\noutput y\n";
    Graph *g = tu_load_text(src, 1);
    const PassInfo *t = table_with(rogue, (PassInfo){0});
    char *rep;
    cr_expect(!try_passes(g, list, t, &rep), "%s: the broken graph was accepted", rogue.name);
    cr_expect(strstr(rep, want) != NULL, "%s: wanted '%s' in:\n%s", rogue.name, want, rep);
    free(rep);
    ir_graph_free(g);
}

Test(pass_contracts, a_pass_that_breaks_its_contract_or_an_invariant_is_named) {
    expect_internal_error("rogue", (PassInfo){"rogue", rogue_inplace, 0, GF_ANY, 0, ""},
                          "internal error (a bug in netc): pass 'rogue' made in-place nodes, which its contract does not establish");
    expect_internal_error("rogue", (PassInfo){"rogue", rogue_epilogue, 0, GF_ANY, GF_EPILOGUES, ""},
                          "has 7 epilogue steps (at most 6)");
    expect_internal_error("rogue", (PassInfo){"rogue", rogue_epilogue, 0, GF_ANY, GF_EPILOGUES, ""},
                          "the graph is broken after pass 'rogue'");
    expect_internal_error("concat-elim,rogue", (PassInfo){"rogue", rogue_slice_offset, 0, GF_ANY, 0, ""},
                          "verifier: concat 'k': slice 'r' at offset 1 along axis 1 does not cover exactly its range");
    expect_internal_error("concat-elim,rogue", (PassInfo){"rogue", rogue_slice_inplace, 0, GF_ANY, GF_INPLACE, ""},
                          "verifier: relu 'r' is in place and reads or writes a concat slice");
}
