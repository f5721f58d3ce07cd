/* test_winograd.c — the winograd pass: which 3×3 convolutions it takes (eligible: stride 1,
 * ungrouped, any dilation (per sub-grid); F(4,3) paying at 16+ channels each side, 8×8+ outputs, 32+ tiles of 4×4;
 * F(2,3) where F(4,3) does not pay, at 64+ channels, 4×4+ outputs, 32+ tiles of 2×2) and why it
 * declines the others, its error check (measured per layer and tile size, a tiny --winograd-tol
 * or 0 declines everything, F(2,3) where only F(4,3) exceeds the tolerance, broken weights never
 * pass, the reported error is the compiled layer's), --pass-limit, running twice, the IR dump,
 * the verifier refusing Winograd on a conv that cannot run it, and the compiled graph against the
 * interpreter before the pass.
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
                          "winograd: c declined: F(4,3): 24 -> 8 channels (fewer than 16",
                          "winograd: d declined: stride 2x2\n",
                          "winograd: e winograd F(4,3), rel.err ",
                          "winograd: f declined: grouped (groups=2)\n",
                          "winograd: g winograd F(4,3), rel.err ",
                          "winograd: h declined: F(4,3): output 24x20 is 30 tiles of 4x4 (fewer than 32",
                          "tiles of 4x4 (fewer than 32: each transformed weight would serve too few); F(2,3): 16 -> 16 "
                          "channels (fewer than 64",
                          "winograd: k declined: F(4,3): output 7x6 (smaller than 8x8",
                          "winograd: l declined: F(4,3): dilated: sub-grids of 7x6 (smaller than 8x8",
                          "winograd: q declined: F(4,3): 130 input channels (more than 128: F(2,3)'s smaller",
                          "winograd: v declined: F(4,3): 260 input channels (more than 256: ",
                          "winograd: 4 of 12 3x3 convolutions by Winograd: 4 F(4,3), 0 F(2,3) (tolerance 1.0e-05)\n"};
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
    cr_expect(strstr(rep, "winograd: a declined: F(4,3) rel.err "), "%s", rep);
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
    cr_expect(strstr(rep, "winograd: a declined: F(4,3) rel.err nan > tolerance"), "%s", rep);
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
    ((Node *)tu_node(g, "d"))->algo = CONV_ALGO_WINOGRAD23;
    diags_init(&d);
    cr_expect(!ir_verify(g, &d, true));
    s = diags_to_string(&d);
    cr_expect(strstr(s, "verifier: conv2d 'd' is marked for Winograd F(2,3) (algo 4) but is no 3x3"), "%s", s);
    free(s);
    diags_free(&d);
    ir_graph_free(g);
}

/* 64-channel layers of several sizes: F(4,3), F(2,3) or direct by the tiles each would have. */
static const char *shapes_src = "input x: [1, 64, 32, 32]\ninput y: [1, 64, 14, 14]\ninput z: [1, 64, 12, 10]\n"
                                "input w: [2, 64, 8, 8]\ninput v: [1, 48, 14, 14]\n"
                                "a = conv2d(x, 64, kernel=3, pad=1)\n"             /* 64 tiles of 4x4 */
                                "b = conv2d(y, 64, kernel=3, pad=1)\n"             /* 16 of 4x4, 49 of 2x2 */
                                "p = maxpool2d(y, kernel=2)\n"
                                "c = conv2d(p, 64, kernel=3, pad=1)\n"             /* 7x7: 16 of 2x2 */
                                "d = conv2d(z, 64, kernel=3, pad=1, bias=false)\n" /* 9 of 4x4, 30 of 2x2 */
                                "e = conv2d(w, 64, kernel=3, pad=1)\n"             /* batch 2: 32 of 2x2 */
                                "f = conv2d(v, 48, kernel=3, pad=1)\n"             /* 48 channels */
                                "output a, b, c, d, e, f\n";

Test(winograd, chooses_the_tile_size_per_shape) {
    Graph *ref = tu_load_text(shapes_src, 8), *g = tu_load_text(shapes_src, 8);
    char *rep;
    cr_assert(run_tol(g, "winograd", PASS_WINOGRAD_TOL_DEFAULT, -1, &rep), "%s", rep);
    const char *want[] = {"winograd: a winograd F(4,3), rel.err ",
                          "winograd: b winograd F(2,3), rel.err ",
                          "winograd: c declined: F(4,3): output 7x7 (smaller than 8x8: partial tiles); F(2,3): output 7x7 "
                          "is 16 tiles of 2x2 (fewer than 32",
                          "winograd: d declined: F(4,3): output 12x10 is 9 tiles of 4x4 (fewer than 32: each transformed "
                          "weight would serve too few); F(2,3): output 12x10 is 30 tiles of 2x2 (fewer than 32",
                          "winograd: e winograd F(2,3), rel.err ",
                          "winograd: f declined: F(4,3): output 14x14 is 16 tiles of 4x4 (fewer than 32: each transformed "
                          "weight would serve too few); F(2,3): 48 -> 48 channels (fewer than 64",
                          "winograd: 3 of 6 3x3 convolutions by Winograd: 1 F(4,3), 2 F(2,3) (tolerance 1.0e-05)\n"};
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) cr_expect(strstr(rep, want[k]), "no '%s' in:\n%s", want[k], rep);
    const int algo[] = {CONV_ALGO_WINOGRAD43, CONV_ALGO_WINOGRAD23, CONV_ALGO_DIRECT, CONV_ALGO_DIRECT,
                        CONV_ALGO_WINOGRAD23, CONV_ALGO_DIRECT};
    for (int k = 0; k < 6; k++) {
        char name[2] = {(char)('a' + k), 0};
        cr_expect_eq(tu_node(g, name)->algo, algo[k], "%s", name);
    }
    double e = tu_compiled_vs_interp_ref(g, ref, 2, 2, 9);
    cr_expect(e >= 0 && e < 3e-5, "compiled rel.err %g", e);
    free(rep);
    /* the dump and the dot graph say which */
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    ir_print(g, f);
    fclose(f);
    cr_expect(strstr(buf, "%b: [1, 64, 14, 14] = conv2d(%y, out=64, kernel=[3, 3], pad=[1, 1])  {weight [64, 64, 3, 3], "
                          "bias [64]}  [winograd F(2,3)]\n"),
              "%s", buf);
    free(buf);
    f = open_memstream(&buf, &len);
    ir_write_dot(g, NULL, f);
    fclose(f);
    cr_expect(strstr(buf, "\\nwinograd F(2,3)") && strstr(buf, "\\nwinograd F(4,3)"), "%s", buf);
    free(buf);
    ir_graph_free(ref);
    ir_graph_free(g);
}

/* A tolerance between F(2,3)'s error and F(4,3)'s takes F(2,3) where F(4,3) would pay; 0 takes
 * neither (every layer's measured error is above 0). */
Test(winograd, f23_where_only_f43_exceeds_the_tolerance_and_0_keeps_all_direct) {
    Graph *g = tu_load_text(shapes_src, 8);
    char *rep;
    cr_assert(run_tol(g, "winograd", 1e-6, -1, &rep), "%s", rep);
    const char *p = strstr(rep, "winograd: a winograd F(2,3), rel.err ");
    cr_expect(p && strstr(p, " (F(4,3) rel.err "), "%s", rep);
    cr_expect(strstr(rep, "winograd: b winograd F(2,3), rel.err "), "%s", rep);
    cr_expect_eq(tu_node(g, "a")->algo, CONV_ALGO_WINOGRAD23);
    free(rep);
    ir_graph_free(g);
    g = tu_load_text(shapes_src, 8);
    cr_assert(run_tol(g, "winograd", 0, -1, &rep), "%s", rep);
    cr_expect(strstr(rep, "winograd: a declined: F(4,3) rel.err "), "%s", rep);
    p = strstr(rep, "winograd: a declined: F(4,3) rel.err ");
    cr_expect(p && strstr(p, ", F(2,3) rel.err ") && strstr(p, " > tolerance 0.0e+00\n"), "%s", rep);
    cr_expect(strstr(rep, "winograd: b declined: F(2,3) rel.err "), "%s", rep);
    cr_expect(strstr(rep, "winograd: 0 of 6 3x3 convolutions"), "%s", rep);
    for (int i = 0; i < g->nodes.len; i++) cr_expect_eq(ir_node(g, i)->algo, CONV_ALGO_DIRECT);
    free(rep);
    ir_graph_free(g);
}

/* The error --stats reports is what the compiled layer shows on a whole random input, within a
 * factor 3 (the check's patch is a few tiles, the input the whole image; they measured 4.9e-6 and
 * 5.8e-6 by F(4,3), 2.7e-7 both by F(2,3)), and F(2,3)'s is well below F(4,3)'s. */
Test(winograd, the_reported_error_is_the_compiled_one) {
    const char *srcs[] = {"input x: [1, 128, 28, 28]\na = conv2d(x, 128, kernel=3, pad=1)\noutput a\n",
                          "input x: [1, 256, 14, 14]\na = conv2d(x, 256, kernel=3, pad=1)\noutput a\n"};
    const char *algo[] = {"F(4,3)", "F(2,3)"};
    double rep_err[2], meas[2];
    for (int k = 0; k < 2; k++) {
        Graph *ref = tu_load_text(srcs[k], 11), *g = tu_load_text(srcs[k], 11);
        char *rep;
        cr_assert(run_tol(g, "winograd", PASS_WINOGRAD_TOL_DEFAULT, -1, &rep), "%s", rep);
        char want[64];
        snprintf(want, sizeof want, "winograd: a winograd %s, rel.err ", algo[k]);
        const char *p = strstr(rep, want);
        cr_assert(p, "no '%s' in %s", want, rep);
        rep_err[k] = strtod(p + strlen(want), NULL);
        meas[k] = tu_compiled_vs_interp_ref(g, ref, 2, 0, 12);
        cr_expect(meas[k] > rep_err[k] / 3 && meas[k] < rep_err[k] * 3, "%s: reported %g, compiled %g", algo[k],
                  rep_err[k], meas[k]);
        free(rep);
        ir_graph_free(ref);
        ir_graph_free(g);
    }
    cr_expect(rep_err[1] < rep_err[0] / 4 && meas[1] < meas[0] / 4, "F(2,3) %g / %g, F(4,3) %g / %g", rep_err[1], meas[1],
              rep_err[0], meas[0]);
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
