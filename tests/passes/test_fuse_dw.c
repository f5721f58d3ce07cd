/* test_fuse_dw.c — the fuse-dw pass: which depthwise -> 1×1 pairs it takes (the depthwise conv's
 * output read by the 1×1 conv right after it alone, no graph output, no residual add on the
 * depthwise conv, an ungrouped 1×1 stride-1 unpadded reader) and which it leaves, its size
 * threshold, the stats line, the IR dump, the verifier refusing a broken mark, the planner giving
 * the depthwise output no storage, the passes after it keeping the pair, and the compiled graph against
 * the interpreter before the passes. Every shape of the kernel is tests/codegen/test_cg_conv.c. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "plan/plan.h"
#include "testutil.h"

static bool run(Graph *g, const char *list, int64_t min_bytes, char **report) {
    Diags d;
    diags_init(&d);
    size_t len;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, &len);
    PassOptions o = {.list = list, .fuse_dw_min_bytes = min_bytes, .pass_limit = -1, .stats = true, .verify = true};
    bool ok = passes_validate(&o, &d) && passes_run(g, &o, &d, f);
    diags_print(&d, f);
    fclose(f);
    diags_free(&d);
    *report = buf;
    return ok;
}

static const char *pairs_src = "input x: [1, 8, 20, 18]\n"
                               "a = conv2d(x, 8, kernel=3, pad=1, groups=8)\n"            /* -> b: taken */
                               "b = conv2d(a, 12, kernel=1)\n"
                               "c = conv2d(b, 12, kernel=3, stride=2, pad=1, groups=12)\n" /* two readers */
                               "d = conv2d(c, 6, kernel=1)\n"
                               "e = conv2d(c, 6, kernel=1, bias=false)\n"
                               "f = conv2d(b, 12, kernel=3, pad=1, groups=12)\n"           /* -> 3x3 reader */
                               "h = conv2d(f, 4, kernel=3, pad=1)\n"
                               "i = conv2d(b, 12, kernel=3, pad=1, groups=12)\n"           /* -> grouped 1x1 */
                               "j = conv2d(i, 6, kernel=1, groups=2)\n"
                               "k = conv2d(b, 12, kernel=3, pad=1, groups=12)\n"           /* not adjacent */
                               "l = maxpool2d(b, kernel=2)\n"
                               "m = conv2d(k, 5, kernel=1)\n"
                               "n = conv2d(b, 12, kernel=5, pad=2, groups=12)\n"           /* an output too */
                               "o = conv2d(n, 3, kernel=1, stride=1)\n"
                               "p = conv2d(b, 12, kernel=3, pad=1, groups=12)\n"           /* -> strided 1x1 */
                               "q = conv2d(p, 3, kernel=1, stride=2)\n"
                               "output d, e, h, j, l, m, n, o, q\n";

Test(fuse_dw, takes_the_pairs_it_can_and_leaves_the_others) {
    Graph *g = tu_load_text(pairs_src, 3), *ref = tu_load_text(pairs_src, 3);
    cr_assert(g && ref);
    char *report;
    cr_assert(run(g, "fuse-dw", -1, &report), "%s", report);
    cr_expect(strstr(report, "fuse-dw: 1 depthwise conv computed row by row"), "%s", report);
    free(report);
    cr_expect_eq(tu_node(g, "a")->algo, CONV_ALGO_DW_IN_CONSUMER);
    cr_expect_eq(tu_node(g, "b")->algo, CONV_ALGO_DW_ROWS);
    const char *left[] = {"c", "d", "e", "f", "h", "i", "j", "k", "m", "n", "o", "p", "q"};
    for (size_t i = 0; i < sizeof left / sizeof *left; i++)
        cr_expect_eq(tu_node(g, left[i])->algo, CONV_ALGO_DIRECT, "%s was fused", left[i]);
    /* the planner stores no output for the depthwise conv, and keeps its input until b runs */
    Plan p;
    plan_graph(g, &p);
    cr_expect_lt(p.slots[tu_node(g, "a")->out].first, 0, "the depthwise output was given storage");
    cr_expect_geq(p.in_copies[0].last, tu_node(g, "b")->id + 1, "x's NHWC copy dies before b reads it");
    plan_free(&p);
    double e = tu_compiled_vs_interp_ref(g, ref, 2, TU_SERIAL_AND_POOL, 5);
    cr_expect(e >= 0 && e <= 1e-5, "compiled after fuse-dw vs interpreter before: rel.err %g", e);
    ir_graph_free(g);
    ir_graph_free(ref);
}

/* A residual add on the depthwise conv (fuse-act) keeps it apart; one on the 1×1 conv does not. */
Test(fuse_dw, epilogues) {
    const char *src = "input x: [1, 16, 12, 12]\n"
                      "a = conv2d(x, 16, kernel=3, pad=1, groups=16)\nb = add(a, x)\nc = conv2d(b, 16, kernel=1)\n"
                      "d = conv2d(c, 16, kernel=3, pad=1, groups=16)\ne = relu6(d)\nf = conv2d(e, 16, kernel=1)\n"
                      "h = add(f, c)\ni = relu(h)\noutput i\n";
    Graph *g = tu_load_text(src, 4), *ref = tu_load_text(src, 4);
    char *report;
    cr_assert(run(g, "fuse-act,fuse-dw", -1, &report), "%s", report);
    free(report);
    cr_expect_eq(tu_node(g, "a")->algo, CONV_ALGO_DIRECT, "a depthwise conv with a residual add was fused");
    cr_expect_eq(tu_node(g, "d")->algo, CONV_ALGO_DW_IN_CONSUMER);
    cr_expect_eq(tu_node(g, "f")->algo, CONV_ALGO_DW_ROWS);
    cr_expect_eq(tu_node(g, "d")->nepi, 1);
    cr_expect_eq(tu_node(g, "f")->nepi, 2);
    for (int opt = tu_min_opt(0); opt <= 2; opt += 2) {
        double e = tu_compiled_vs_interp_ref(g, ref, opt, TU_SERIAL_AND_POOL, 6);
        cr_expect(e >= 0 && e <= 1e-5, "-O%d: rel.err %g", opt, e);
    }
    ir_graph_free(g);
    ir_graph_free(ref);
}

/* By default only outputs of 512 KiB and more: MobileNetV2's first blocks, not a small graph. */
Test(fuse_dw, threshold) {
    const char *small = "input x: [1, 32, 28, 28]\na = conv2d(x, 32, kernel=3, pad=1, groups=32)\n"
                        "b = conv2d(a, 16, kernel=1)\noutput b\n"; /* 98 KiB */
    const char *big = "input x: [1, 32, 112, 112]\na = conv2d(x, 32, kernel=3, pad=1, groups=32)\n"
                      "b = conv2d(a, 16, kernel=1)\noutput b\n"; /* 1.53 MiB */
    Graph *gs = tu_load_text(small, 1), *gb = tu_load_text(big, 1);
    char *report;
    cr_assert(run(gs, "fuse-dw", 0, &report), "%s", report);
    cr_expect(strstr(report, "0 depthwise convs") && strstr(report, "1 left alone"), "%s", report);
    free(report);
    cr_assert(run(gb, "fuse-dw", 0, &report), "%s", report);
    cr_expect(strstr(report, "1 depthwise conv computed") && strstr(report, "1.53 MiB not stored"), "%s", report);
    free(report);
    cr_expect_eq(tu_node(gb, "b")->algo, CONV_ALGO_DW_ROWS);
    ir_graph_free(gs);
    ir_graph_free(gb);
}

Test(fuse_dw, at_O2_the_ir_dump_and_running_twice) {
    const char *src = "input x: [1, 24, 96, 96]\na = conv2d(x, 24, kernel=3, pad=1, groups=24, bias=false)\n"
                      "b = batchnorm(a)\nc = relu6(b)\nd = conv2d(c, 8, kernel=1)\noutput d\n";
    Graph *g = tu_load_text(src, 2);
    Diags d;
    diags_init(&d);
    PassOptions o = {.opt_level = 2, .pass_limit = -1, .verify = true, .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT};
    cr_assert(passes_run(g, &o, &d, stderr));
    diags_free(&d);
    cr_expect_eq(tu_node(g, "a")->algo, CONV_ALGO_DW_IN_CONSUMER, "-O2 did not fuse an 864 KiB depthwise output");
    char *txt = NULL;
    size_t len;
    FILE *f = open_memstream(&txt, &len);
    ir_print(g, f);
    fclose(f);
    cr_expect(strstr(txt, "[rows computed by its consumer]") && strstr(txt, "[computes its input row by row]"), "%s",
              txt);
    free(txt);
    char *report;
    cr_assert(run(g, "fuse-dw", 0, &report), "%s", report); /* again: nothing new */
    cr_expect(strstr(report, "fuse-dw: 0 depthwise convs"), "%s", report);
    free(report);
    ir_graph_free(g);
}

Test(fuse_dw, the_verifier_refuses_a_broken_mark) {
    const char *src = "input x: [1, 8, 9, 9]\na = conv2d(x, 8, kernel=3, pad=1, groups=8)\n"
                      "b = conv2d(a, 8, kernel=3, pad=1)\nc = conv2d(b, 8, kernel=3, pad=1, groups=8)\n"
                      "e = conv2d(c, 4, kernel=1)\noutput e\n";
    Graph *g = tu_load_text(src, 1);
    Diags d;
    diags_init(&d);
    ir_node(g, tu_node(g, "a")->id)->algo = CONV_ALGO_DW_IN_CONSUMER; /* its reader is a 3x3 conv */
    cr_expect_not(ir_verify(g, &d, true));
    char *s = diags_to_string(&d);
    cr_expect(strstr(s, "'a' is to be computed inside its consumer"), "%s", s);
    free(s);
    diags_free(&d);
    diags_init(&d);
    ir_node(g, tu_node(g, "a")->id)->algo = CONV_ALGO_DIRECT;
    ir_node(g, tu_node(g, "e")->id)->algo = CONV_ALGO_DW_ROWS; /* its producer is not marked */
    cr_expect_not(ir_verify(g, &d, true));
    s = diags_to_string(&d);
    cr_expect(strstr(s, "'e' computes its input's producer row by row"), "%s", s);
    free(s);
    diags_free(&d);
    ir_graph_free(g);
}

/* Every pass may run after it: none fuses into the pair or between its convs, and split3x3 and
 * winograd leave the depthwise conv (split3x3, with a tolerance that splits it otherwise). */
Test(fuse_dw, passes_after_it_keep_the_pair) {
    const char *src = "input x: [1, 16, 20, 20]\na = conv2d(x, 16, kernel=3, pad=1, groups=16)\n"
                      "b = conv2d(a, 16, kernel=1, bias=false)\nc = batchnorm(b)\nd = relu(c)\n"
                      "e = maxpool2d(d, kernel=3, stride=1, pad=1)\nf = concat(d, e, axis=1)\noutput f\n";
    Diags d;
    diags_init(&d);
    cr_expect(passes_check_order(NULL, "fuse-dw,fold-bn,split3x3,winograd,fuse-act,inplace,concat-elim,fuse-dw", &d));
    diags_free(&d);
    Graph *g = tu_load_text(src, 9), *ref = tu_load_text(src, 9), *ctl = tu_load_text(src, 9);
    PassOptions o = {.list = "split3x3", .split_tol = 1.0, .pass_limit = -1, .verify = true};
    diags_init(&d);
    cr_assert(passes_run(ctl, &o, &d, stderr));
    diags_free(&d);
    int live = 0;
    for (int i = 0; i < ctl->nodes.len; i++) live += !ir_node(ctl, i)->dead;
    cr_assert_gt(live, 6, "split3x3 at tolerance 1 split no depthwise conv: the control is void");
    diags_init(&d);
    o.list = "fuse-dw,fold-bn,split3x3,winograd,fuse-act,inplace,concat-elim";
    o.fuse_dw_min_bytes = -1;
    cr_assert(passes_run(g, &o, &d, stderr));
    diags_free(&d);
    cr_expect_eq(tu_node(g, "a")->algo, CONV_ALGO_DW_IN_CONSUMER);
    cr_expect_eq(tu_node(g, "b")->algo, CONV_ALGO_DW_ROWS);
    cr_expect_eq(tu_node(g, "b")->nepi, 1, "relu not fused into the 1x1 conv");
    for (int opt = tu_min_opt(0); opt <= 2; opt += 2) {
        double e = tu_compiled_vs_interp_ref(g, ref, opt, TU_SERIAL_AND_POOL, 9);
        cr_expect(e >= 0 && e <= 1e-5, "-O%d: rel.err %g", opt, e);
    }
    ir_graph_free(g);
    ir_graph_free(ref);
    ir_graph_free(ctl);
}
