/* test_winograd.c — the winograd pass: which 3×3 convolutions it takes (eligible: stride 1,
 * ungrouped, any dilation; paying: 16..128 input and 16+ output channels, 8×8+ outputs or dilated
 * sub-grids, 32+ tiles) and why it declines the
 * others, its error check (measured per layer, a tiny --winograd-tol declines everything, broken
 * weights never pass), --pass-limit, running twice, the IR dump, the verifier refusing Winograd
 * on a conv that cannot run it, and the compiled graph against the interpreter before the pass.
 * The kernel itself on every shape is tests/codegen/test_cg_winograd.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "testutil.h"

static bool run_tol(Graph *g, const char *list, double tol, int64_t limit, char **report) {
    Diags d;
    diags_init(&d);
    size_t len;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, &len);
    PassOptions o = {.list = list, .split_tol = 1e-6, .winograd_tol = tol, .pass_limit = limit, .stats = true,
                     .verify = true};
    bool ok = passes_validate(&o, &d) && passes_run(g, &o, &d, f);
    diags_print(&d, f);
    fclose(f);
    diags_free(&d);
    *report = buf;
    return ok;
}

static const char *layers_src = "input x: [1, 16, 28, 24]\n"
                                "a = conv2d(x, 16, kernel=3, pad=1)\n"             /* 7x6 tiles: taken */
                                "b = conv2d(a, 24, kernel=3, pad=1, bias=false)\n" /* taken */
                                "c = conv2d(b, 8, kernel=3, pad=1)\n"              /* 8 out channels */
                                "d = conv2d(b, 16, kernel=3, pad=1, stride=2)\n"   /* strided */
                                "e = conv2d(b, 16, kernel=3, pad=2, dilation=2)\n" /* 14x12 sub-grids: taken */
                                "f = conv2d(b, 24, kernel=3, pad=1, groups=2)\n"   /* grouped */
                                "g = conv2d(b, 16, kernel=3)\n"                    /* 26x22: taken */
                                "h = conv2d(g, 16, kernel=3)\n"                    /* 24x20: 30 tiles */
                                "s = maxpool2d(b, kernel=4)\n"
                                "k = conv2d(s, 16, kernel=3, pad=1)\n"             /* 7x6 outputs */
                                "i = conv2d(b, 16, kernel=1)\n"                    /* not 3x3 */
                                "l = conv2d(b, 16, kernel=3, pad=4, dilation=4)\n" /* 7x6 sub-grids */
                                "m = conv2d(x, 130, kernel=1)\n"
                                "q = conv2d(m, 16, kernel=3, pad=1)\n"             /* 130 in channels */
                                "u = conv2d(x, 260, kernel=1)\n"
                                "v = conv2d(u, 16, kernel=3, pad=1)\n"             /* 260 in channels */
                                "output c, d, e, f, h, k, i, l, q, v\n";

Test(winograd, takes_the_layers_that_pay_and_says_why_not_for_the_others) {
    Graph *ref = tu_load_text(layers_src, 3), *g = tu_load_text(layers_src, 3);
    char *rep;
    cr_assert(run_tol(g, "winograd", PASS_WINOGRAD_TOL_DEFAULT, -1, &rep), "%s", rep);
    const char *want[] = {"winograd: a winograd F(4,3), rel.err ",
                          "winograd: b winograd F(4,3), rel.err ",
                          "winograd: c declined: 24 -> 8 channels (fewer than 16",
                          "winograd: d declined: stride 2x2\n",
                          "winograd: e winograd F(4,3), rel.err ",
                          "winograd: f declined: grouped (groups=2)\n",
                          "winograd: g winograd F(4,3), rel.err ",
                          "winograd: h declined: output 24x20 is 30 tiles of 4x4 (fewer than 32",
                          "winograd: k declined: output 7x6 (smaller than 8x8",
                          "winograd: l declined: dilation 4x4: sub-grids of 7x6 outputs (smaller than 8x8",
                          "winograd: q declined: 130 input channels and 42 tiles of 4x4 (more than 128 channels need 128 tiles",
                          "winograd: v declined: 260 input channels (more than 256: ",
                          "winograd: 4 of 12 3x3 convolutions by Winograd F(4,3) (tolerance 1.0e-05)\n"};
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) cr_expect(strstr(rep, want[k]), "no '%s' in:\n%s", want[k], rep);
    for (const char *p = rep; (p = strstr(p, "rel.err ")); p += 8) {
        double e = strtod(p + 8, NULL);
        cr_expect(e > 0 && e < 1e-5, "measured rel.err %g", e);
    }
    const char *taken = "abeg", *all = "abcdefghkilqv";
    for (const char *p = all; *p; p++) {
        char name[2] = {*p, 0};
        bool t = strchr(taken, *p) != NULL;
        cr_expect_eq(tu_node(g, name)->algo, t ? CONV_ALGO_WINOGRAD43 : CONV_ALGO_DIRECT, "%s", name);
    }
    /* the interpreter stays direct: the same numbers; the compiled graph within F(4,3)'s error */
    cr_expect_eq(tu_interp_vs_interp(ref, g, 4), 0.0);
    double e = tu_compiled_vs_interp_ref(g, ref, 2, 2, 4);
    cr_expect(e >= 0 && e < 3e-5, "compiled rel.err %g", e);
    free(rep);
    ir_graph_free(ref);
    ir_graph_free(g);
}

Test(winograd, a_tiny_tolerance_declines_every_layer) {
    Graph *g = tu_load_text(layers_src, 3);
    char *rep;
    cr_assert(run_tol(g, "winograd", 1e-9, -1, &rep), "%s", rep);
    cr_expect(strstr(rep, "winograd: a declined: rel.err "), "%s", rep);
    cr_expect(strstr(rep, "> tolerance 1.0e-09\n"), "%s", rep);
    cr_expect(strstr(rep, "winograd: 0 of 12 3x3 convolutions"), "%s", rep);
    for (int i = 0; i < g->nodes.len; i++) cr_expect_eq(ir_node(g, i)->algo, CONV_ALGO_DIRECT);
    free(rep);
    ir_graph_free(g);
}

Test(winograd, weights_that_are_not_finite_never_pass) {
    const char *src = "input x: [1, 16, 24, 24]\na = conv2d(x, 16, kernel=3, pad=1)\noutput a\n";
    Graph *g = tu_load_text(src, 3);
    ir_weight(g, ir_node(g, 0), "weight")->data[40] = NAN;
    char *rep;
    cr_assert(run_tol(g, "winograd", 0.5, -1, &rep), "%s", rep);
    cr_expect(strstr(rep, "winograd: a declined: rel.err nan > tolerance"), "%s", rep);
    cr_expect_eq(ir_node(g, 0)->algo, CONV_ALGO_DIRECT);
    free(rep);
    ir_graph_free(g);
}

Test(winograd, pass_limit_repeats_and_the_ir_dump) {
    Graph *g = tu_load_text(layers_src, 3);
    char *rep;
    cr_assert(run_tol(g, "winograd", PASS_WINOGRAD_TOL_DEFAULT, 1, &rep), "%s", rep);
    cr_expect_eq(tu_node(g, "a")->algo, CONV_ALGO_WINOGRAD43);
    cr_expect_eq(tu_node(g, "b")->algo, CONV_ALGO_DIRECT, "the budget was one rewrite");
    free(rep);
    /* twice in a row: the second run keeps what the first chose and rewrites nothing */
    ir_graph_free(g);
    g = tu_load_text(layers_src, 3);
    cr_assert(run_tol(g, "winograd,winograd", PASS_WINOGRAD_TOL_DEFAULT, -1, &rep), "%s", rep);
    const char *first = strstr(rep, "winograd: 4 of 12 3x3 convolutions");
    cr_expect(first && strstr(first + 1, "winograd: 4 of 12 3x3 convolutions"), "%s", rep);
    free(rep);
    PassCtx c = {.winograd_tol = PASS_WINOGRAD_TOL_DEFAULT, .budget = -1, .pass = "winograd", .repeat = true};
    Diags d;
    diags_init(&d);
    c.d = &d;
    cr_expect(!pass_winograd(g, &c));
    cr_expect_eq(c.rewrites, 0);
    diags_free(&d);
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    ir_print(g, f);
    fclose(f);
    cr_expect(strstr(buf, "%a: [1, 16, 28, 24] = conv2d(%x, out=16, kernel=[3, 3], pad=[1, 1])  {weight [16, 16, 3, 3], "
                          "bias [16]}  [winograd F(4,3)]\n"),
              "%s", buf);
    cr_expect(strstr(buf, "%c: [1, 8, 28, 24] = conv2d(%b, out=8, kernel=[3, 3], pad=[1, 1])  {weight [8, 24, 3, 3], "
                          "bias [8]}\n"),
              "%s", buf);
    free(buf);
    ir_graph_free(g);
}

Test(winograd, the_verifier_refuses_winograd_on_a_conv_that_cannot_run_it) {
    Graph *g = tu_load_text(layers_src, 3);
    ((Node *)tu_node(g, "d"))->algo = CONV_ALGO_WINOGRAD43; /* strided */
    Diags d;
    diags_init(&d);
    cr_expect(!ir_verify(g, &d, true));
    char *s = diags_to_string(&d);
    cr_expect(strstr(s, "verifier: conv2d 'd' is marked for Winograd F(4,3) (algo 1) but is no 3x3, stride-1, "
                        "ungrouped conv2d"),
              "%s", s);
    free(s);
    diags_free(&d);
    ir_graph_free(g);
}

/* After the other passes (fold-bn's scaled weights, fused epilogues, concat slices) and before
 * them (fold-bn rescales a Winograd layer's output channels afterwards): the same function. */
Test(winograd, in_pipelines_with_the_other_passes) {
    const char *src = "input x: [1, 16, 24, 24]\n"
                      "a = conv2d(x, 32, kernel=3, pad=1, bias=false)\nab = batchnorm(a)\nar = relu(ab)\n"
                      "b = conv2d(ar, 16, kernel=3, pad=1)\nbb = batchnorm(b)\ns = add(bb, x)\n"
                      "c = conv2d(x, 8, kernel=1)\nk = concat(s, c)\nkr = relu(k)\noutput kr\n";
    const char *lists[] = {"fold-bn,split3x3,winograd,fuse-act,inplace,concat-elim",
                           "winograd,fold-bn,fuse-act,concat-elim", "fuse-act,concat-elim,winograd,fold-bn"};
    for (size_t k = 0; k < sizeof lists / sizeof *lists; k++) {
        Graph *ref = tu_load_text(src, 6), *g = tu_load_text(src, 6);
        char *rep;
        cr_assert(run_tol(g, lists[k], PASS_WINOGRAD_TOL_DEFAULT, -1, &rep), "%s: %s", lists[k], rep);
        cr_expect(strstr(rep, "winograd: 2 of 2 3x3 convolutions"), "%s: %s", lists[k], rep);
        double e = tu_compiled_vs_interp_ref(g, ref, 2, 0, 7);
        cr_expect(e >= 0 && e < 3e-5, "%s: compiled rel.err %g", lists[k], e);
        free(rep);
        ir_graph_free(ref);
        ir_graph_free(g);
    }
}
