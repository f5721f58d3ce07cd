/* test_cg_conv.c — generated conv2d, conv_transpose2d and linear kernels against the reference
 * interpreter at -O0 and -O2, with and without a thread pool: odd sizes, 1×1 spatial, batch 2,
 * channel counts that are not multiples of the vector width, every kernel shape the tiles
 * special-case (1×1 GEMM, borders, non-square, dilated, strided), grouped and depthwise convs,
 * ResNet-sized layers, reductions in chunks (weights beyond L2), chains where one conv's output
 * view is the next one's input, and fused
 * epilogues (bias, batchnorm folded, activations, residual adds) in every kernel's store step. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "codegen/codegen.h"
#include "passes/passes.h"
#include "testutil.h"

/* Compile `src` at -O0 and -O2, run each without a pool and with 2 threads, and require the
 * interpreter's result within 1e-5 relative error. `fast` skips -O0 (for layers whose -O0 run
 * would be slow). */
static void check_opts(const char *src, const char *what, bool fast) {
    for (int opt = tu_min_opt(fast ? 2 : 0); opt <= 2; opt += 2) {
        Graph *g = tu_load_text(src, 5);
        cr_assert_not_null(g, "%s: does not load", what);
        double e = tu_compiled_vs_interp(g, opt, TU_SERIAL_AND_POOL, 13);
        cr_expect(e >= 0 && e <= 1e-5, "%s at -O%d, serial and 2 threads: rel.err %g", what, opt, e);
        ir_graph_free(g);
    }
}

static void check(const char *src, const char *what) { check_opts(src, what, false); }
static void check_fused(const char *src, const char *what, int min_epi);

/* One conv2d on an input of `shape`. */
static void conv(const char *shape, const char *args) {
    char src[512];
    snprintf(src, sizeof src, "input x: %s\ny = conv2d(x, %s)\noutput y\n", shape, args);
    char what[256];
    snprintf(what, sizeof what, "conv2d(%s) on %s", args, shape);
    check(src, what);
}

Test(cg_conv, dense_kernel_shapes) {
    conv("[1, 3, 9, 11]", "8, kernel=3, pad=1");
    conv("[2, 17, 7, 5]", "33, kernel=3, pad=1");
    conv("[1, 16, 8, 8]", "16, kernel=1");
    conv("[2, 33, 5, 9]", "17, kernel=1, bias=false");
    conv("[1, 5, 13, 12]", "20, kernel=5, pad=2");
    conv("[1, 4, 15, 17]", "19, kernel=7, pad=3");
    conv("[1, 6, 10, 11]", "7, kernel=[1, 3], pad=[0, 1]");
    conv("[1, 6, 10, 11]", "7, kernel=[3, 1], pad=[1, 0]");
    conv("[1, 7, 1, 1]", "9, kernel=1");
    conv("[1, 7, 1, 1]", "9, kernel=3, pad=1");
    conv("[2, 5, 1, 1]", "64, kernel=3, pad=2, bias=false");
}

Test(cg_conv, reduction_in_chunks) {
    /* a block's weights over 1.5 MiB (700 channels × 9 taps × 64): the reduction in chunks, the
       partial sums in the output between them, the last chunk's store with bias and epilogue;
       dilated (taps one by one), strided, a tail block, two images */
    conv("[1, 700, 9, 11]", "70, kernel=3, pad=1");
    conv("[2, 700, 12, 12]", "20, kernel=3, pad=2, dilation=2, bias=false");
    conv("[1, 701, 11, 9]", "17, kernel=3, stride=2, pad=1");
    check_fused("input x: [1, 700, 8, 9]\ninput r: [1, 64, 8, 9]\n"
                "a = conv2d(x, 64, kernel=3, pad=1, bias=false)\nb = batchnorm(a)\nc = add(b, r)\nd = relu(c)\n"
                "output d\n",
                "700 channels in chunks, batchnorm, residual add and relu fused", 2);
}

Test(cg_conv, stride_pad_dilation) {
    conv("[1, 8, 15, 13]", "24, kernel=3, stride=2, pad=1");
    conv("[2, 3, 16, 16]", "16, kernel=3, stride=2");
    conv("[1, 9, 11, 14]", "12, kernel=3, pad=[1, 2]");
    conv("[1, 9, 11, 14]", "12, kernel=[3, 5], stride=[2, 1], pad=[2, 0]");
    conv("[1, 10, 17, 19]", "18, kernel=3, pad=2, dilation=2");
    conv("[1, 4, 33, 33]", "20, kernel=3, pad=6, dilation=6");
    conv("[1, 4, 13, 21]", "5, kernel=[3, 3], pad=[6, 2], dilation=[6, 2], stride=[1, 2]");
    conv("[1, 8, 9, 9]", "40, kernel=1, stride=2");
    conv("[1, 8, 10, 10]", "40, kernel=3, pad=0, stride=3");
    conv("[1, 3, 4, 4]", "5, kernel=3, pad=2");
    conv("[1, 2, 3, 50]", "70, kernel=[1, 5], pad=[0, 2]");
    /* few rows, many tiles per row: rows are split into parts across work items */
    conv("[1, 8, 2, 300]", "24, kernel=3, pad=1");
    conv("[1, 16, 1, 500]", "16, kernel=[1, 3], pad=[0, 1], groups=16");
    conv("[1, 3, 67, 67]", "20, kernel=11, stride=4, pad=2");
    conv("[1, 4, 3, 5]", "6, kernel=[5, 9], pad=[2, 4]");
    conv("[1, 4, 6, 6]", "6, kernel=5, pad=4, dilation=3, stride=2");
}

/* A dilation so large that every tile is a border tile: the tiles between the borders read only
 * the middle taps and run as one loop; the ASPP head's rate 24 on 33², and wider. */
Test(cg_conv, every_tile_a_border_tile) {
    conv("[1, 5, 33, 33]", "7, kernel=3, pad=24, dilation=24, bias=false");
    conv("[1, 3, 61, 97]", "20, kernel=3, pad=36, dilation=36");
    conv("[2, 4, 40, 70]", "9, kernel=3, pad=[12, 30], dilation=[12, 30], stride=[1, 2]");
    conv("[1, 17, 30, 90]", "17, kernel=3, pad=36, dilation=36, groups=17");
    conv("[1, 16, 9, 200]", "32, kernel=[1, 3], pad=[0, 60], dilation=[1, 60]");
}

Test(cg_conv, grouped_and_depthwise) {
    conv("[1, 8, 9, 7]", "12, kernel=3, pad=1, groups=2");
    conv("[2, 16, 6, 6]", "16, kernel=3, pad=1, groups=4, bias=false");
    conv("[1, 36, 7, 9]", "40, kernel=1, groups=4");
    conv("[1, 64, 10, 10]", "128, kernel=3, pad=1, groups=2");
    conv("[1, 17, 9, 11]", "17, kernel=3, pad=1, groups=17");
    conv("[2, 32, 8, 8]", "32, kernel=3, stride=2, pad=1, groups=32, bias=false");
    conv("[1, 19, 7, 10]", "38, kernel=3, pad=1, groups=19");
    conv("[1, 24, 12, 12]", "48, kernel=5, pad=2, groups=24, bias=false");
    conv("[1, 5, 6, 6]", "15, kernel=3, pad=1, groups=5");
    conv("[1, 6, 6, 6]", "60, kernel=3, pad=1, groups=6");
    conv("[1, 40, 15, 15]", "40, kernel=3, pad=6, dilation=6, groups=40");
    conv("[1, 12, 5, 5]", "18, kernel=[1, 3], pad=[0, 1], groups=6");
}

/* Conv outputs feeding convs: intermediate NHWC views on both sides of a kernel, and a rank-4
 * input used by two convs. */
Test(cg_conv, chains) {
    check("input x: [1, 3, 20, 18]\n"
          "a = conv2d(x, 16, kernel=3, pad=1)\n"
          "b = conv2d(a, 21, kernel=3, stride=2, pad=1, bias=false)\n"
          "c = conv2d(b, 21, kernel=3, pad=1, groups=21)\n"
          "d = conv2d(c, 35, kernel=1)\n"
          "e = conv2d(x, 35, kernel=5, stride=2, pad=2)\n"
          "output d, e\n",
          "conv chain");
}

Test(cg_conv, resnet_layers) {
    check_opts("input x: [1, 64, 56, 56]\ny = conv2d(x, 64, kernel=3, pad=1, bias=false)\noutput y\n",
               "64->64 3x3 at 56", true);
    check_opts("input x: [1, 512, 7, 7]\ny = conv2d(x, 512, kernel=3, pad=1, bias=false)\noutput y\n",
               "512->512 3x3 at 7", true);
    check_opts("input x: [1, 3, 224, 224]\ny = conv2d(x, 64, kernel=7, stride=2, pad=3, bias=false)\noutput y\n",
               "3->64 7x7/2 at 224", true);
    check_opts("input x: [1, 128, 28, 28]\ny = conv2d(x, 256, kernel=1, stride=2, bias=false)\noutput y\n",
               "128->256 1x1/2 at 28", true);
    check_opts("input x: [2, 64, 14, 14]\ny = conv2d(x, 256, kernel=1)\noutput y\n", "64->256 1x1 batch 2", true);
}

/* A resnet18-sized stack of convs (11 MiB of weights) compiles quickly at -O2: weights are byte
 * constants and the tiles' loops stay rolled, so compile time does not grow with them. */
Test(cg_conv, resnet18_layers_compile_quickly) {
    const char *src = "input x: [1, 3, 224, 224]\n"
                      "c1 = conv2d(x, 64, kernel=7, stride=2, pad=3, bias=false)\n"
                      "a = conv2d(c1, 64, kernel=3, stride=2, pad=1, bias=false)\n"
                      "b = conv2d(a, 64, kernel=3, pad=1, bias=false)\n"
                      "c = conv2d(b, 128, kernel=3, stride=2, pad=1, bias=false)\n"
                      "c2 = conv2d(c, 128, kernel=3, pad=1, bias=false)\n"
                      "d = conv2d(c2, 256, kernel=3, stride=2, pad=1, bias=false)\n"
                      "d2 = conv2d(d, 256, kernel=3, pad=1, bias=false)\n"
                      "e = conv2d(d2, 512, kernel=3, stride=2, pad=1, bias=false)\n"
                      "e2 = conv2d(e, 512, kernel=3, pad=1, bias=false)\n"
                      "f = conv2d(d2, 512, kernel=1, stride=2, bias=false)\n"
                      "output e2, f\n";
    Graph *g = tu_load_text(src, 3);
    cr_assert_not_null(g);
    char dir[64], so[96];
    cr_assert_not_null(tu_mkdtemp(dir, sizeof dir, "netc_cgconv"));
    snprintf(so, sizeof so, "%s/r18.so", dir);
    Diags d;
    diags_init(&d);
    CodegenOptions co = {.emit = EMIT_SO, .out = so, .cpu = tu_cpu(), .opt_level = 2};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool ok = codegen_emit(g, &co, &d);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    diags_free(&d);
    unlink(so);
    rmdir(dir);
    cr_assert(ok, "codegen failed");
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    /* about 1 s on an idle machine; the bound leaves room for a loaded CI box */
    cr_expect(s < 10, "compiling took %.1f s", s);
    double e = tu_compiled_vs_interp(g, 2, 2, 1);
    cr_expect(e >= 0 && e <= 1e-5, "rel.err %g", e);
    ir_graph_free(g);
}

static void convt(const char *shape, const char *args) {
    char src[512], what[256];
    snprintf(src, sizeof src, "input x: %s\ny = conv_transpose2d(x, %s)\noutput y\n", shape, args);
    snprintf(what, sizeof what, "conv_transpose2d(%s) on %s", args, shape);
    check(src, what);
}

Test(cg_conv, conv_transpose) {
    convt("[1, 8, 5, 6]", "16, kernel=3");
    convt("[2, 17, 4, 5]", "9, kernel=3, stride=2, pad=1");
    convt("[1, 8, 5, 5]", "12, kernel=3, stride=2, pad=1, output_pad=1");
    convt("[1, 8, 6, 7]", "20, kernel=4, stride=2, pad=1, groups=2");
    convt("[1, 6, 5, 5]", "6, kernel=3, dilation=2, pad=1, bias=false");
    convt("[1, 4, 3, 4]", "70, kernel=[2, 3], stride=[2, 3], pad=[0, 1], output_pad=[1, 2]");
    convt("[1, 16, 4, 4]", "16, kernel=3, stride=2, pad=1, output_pad=1, groups=16");
}

static void lin(const char *shape, const char *args) {
    char src[512], what[256];
    snprintf(src, sizeof src, "input x: %s\ny = linear(x, %s)\noutput y\n", shape, args);
    snprintf(what, sizeof what, "linear(%s) on %s", args, shape);
    check(src, what);
}

Test(cg_conv, linear) {
    lin("[1, 512]", "1000");
    lin("[1, 7]", "3");
    lin("[3, 7]", "3, bias=false");
    lin("[3, 40]", "33");
    lin("[6, 20]", "130");
    lin("[9, 5]", "16");
    check("input x: [2, 30]\na = linear(x, 45)\nb = linear(a, 19, bias=false)\noutput b\n", "linear chain");
}

/* Run fold-bn, fuse-act and concat-elim on the graph, check that `min_epi` steps were fused, and
 * compare the compiled result with the interpreter on the graph before the passes. */
static void check_fused(const char *src, const char *what, int min_epi) {
    for (int opt = tu_min_opt(0); opt <= 2; opt += 2) {
        Graph *ref = tu_load_text(src, 9), *g = tu_load_text(src, 9);
        cr_assert(ref && g, "%s: does not load", what);
        Diags d;
        diags_init(&d);
        PassOptions o = {.list = "fold-bn,fuse-act,concat-elim", .pass_limit = -1, .verify = true};
        cr_assert(passes_run(g, &o, &d, stderr), "%s: passes failed", what);
        diags_free(&d);
        int epi = 0;
        for (int i = 0; i < g->nodes.len; i++)
            if (!ir_node(g, i)->dead) epi += ir_node(g, i)->nepi;
        cr_expect(epi >= min_epi, "%s: %d epilogue steps fused, expected %d", what, epi, min_epi);
        double e = tu_compiled_vs_interp_ref(g, ref, opt, TU_SERIAL_AND_POOL, 21);
        cr_expect(e >= 0 && e <= 1e-5, "%s at -O%d, serial and 2 threads: rel.err %g", what, opt, e);
        ir_graph_free(g);
        ir_graph_free(ref);
    }
}

Test(cg_conv, fused_epilogues) {
    check_fused("input x: [1, 19, 9, 10]\n"
                "a = conv2d(x, 35, kernel=3, pad=1, bias=false)\nb = batchnorm(a)\nc = relu(b)\n"
                "d = conv2d(c, 35, kernel=3, pad=1)\ne = add(d, c)\nf = relu6(e)\n"
                "g = conv2d(f, 35, kernel=3, stride=2, pad=1, groups=35)\nh = leaky_relu(g, slope=0.1)\n"
                "i = conv2d(h, 18, kernel=1)\nj = prelu(i, num_parameters=18)\noutput j\n",
                "conv + bn + relu, residual add + relu6, depthwise + leaky_relu, 1x1 + prelu", 5);
    check_fused("input x: [2, 8, 5, 5]\n"
                "a = conv2d(x, 8, kernel=3, pad=1, groups=2)\nb = add(a, x)\nc = sigmoid(b)\n"
                "t = conv_transpose2d(c, 20, kernel=3, stride=2, pad=1, output_pad=1)\nu = tanh(t)\noutput u\n",
                "grouped conv + residual + sigmoid, conv_transpose + tanh", 3);
    check_fused("input x: [3, 40]\na = linear(x, 33)\nb = hardswish(a)\nc = linear(b, 17)\nd = gelu(c)\noutput d\n",
                "linear + hardswish, linear + gelu", 2);
    check_fused("input x: [1, 6, 7, 7]\n"
                "a = conv2d(x, 10, kernel=3, pad=1)\nb = conv2d(x, 7, kernel=1)\nc = concat(a, b, axis=1)\n"
                "d = conv2d(c, 9, kernel=3, pad=1)\noutput d\n",
                "convs writing into a concat's slices", 0);
}

/* fuse-dw (forced: every pair, whatever its size): a depthwise conv computed row by row inside
 * the 1×1 conv reading it, against the interpreter on the graph before the passes. `want`: the
 * pairs expected. */
static void check_dw_rows(const char *src, const char *what, int want) {
    for (int opt = tu_min_opt(0); opt <= 2; opt += 2) {
        Graph *ref = tu_load_text(src, 8), *g = tu_load_text(src, 8);
        cr_assert(ref && g, "%s: does not load", what);
        Diags d;
        diags_init(&d);
        PassOptions o = {.list = "fold-bn,fuse-act,concat-elim,fuse-dw", .fuse_dw_min_bytes = -1, .pass_limit = -1,
                         .verify = true};
        cr_assert(passes_run(g, &o, &d, stderr), "%s: passes failed", what);
        diags_free(&d);
        int pairs = 0;
        for (int i = 0; i < g->nodes.len; i++) pairs += !ir_node(g, i)->dead && ir_node(g, i)->algo == CONV_ALGO_DW_ROWS;
        cr_expect_eq(pairs, want, "%s: %d pairs fused, expected %d", what, pairs, want);
        double e = tu_compiled_vs_interp_ref(g, ref, opt, TU_SERIAL_AND_POOL, 23);
        cr_expect(e >= 0 && e <= 1e-5, "%s at -O%d, serial and 2 threads: rel.err %g", what, opt, e);
        ir_graph_free(g);
        ir_graph_free(ref);
    }
}

static void dw_rows(const char *shape, const char *dw, const char *pw) {
    char src[512], what[256];
    snprintf(src, sizeof src, "input x: %s\na = conv2d(x, %s)\nb = conv2d(a, %s)\noutput b\n", shape, dw, pw);
    snprintf(what, sizeof what, "%s: conv2d(%s) -> conv2d(%s)", shape, dw, pw);
    check_dw_rows(src, what, 1);
}

Test(cg_conv, depthwise_rows_in_a_1x1_conv) {
    dw_rows("[1, 1, 5, 7]", "1, kernel=3, pad=1, groups=1", "3, kernel=1");
    dw_rows("[1, 3, 2, 2]", "3, kernel=3, pad=1, groups=3", "17, kernel=1");
    dw_rows("[1, 17, 1, 1]", "17, kernel=3, pad=1, groups=17", "100, kernel=1, bias=false");
    dw_rows("[2, 100, 5, 7]", "100, kernel=3, stride=2, pad=1, groups=100", "3, kernel=1");
    dw_rows("[1, 17, 57, 57]", "17, kernel=3, pad=1, groups=17", "24, kernel=1");
    dw_rows("[1, 32, 57, 57]", "32, kernel=3, stride=2, pad=1, groups=32, bias=false", "16, kernel=1");
    dw_rows("[1, 40, 13, 11]", "40, kernel=5, pad=2, groups=40", "80, kernel=1");
    dw_rows("[1, 24, 15, 15]", "24, kernel=3, pad=6, dilation=6, groups=24", "1, kernel=1");
    dw_rows("[1, 144, 9, 30]", "144, kernel=3, pad=[0, 1], groups=144", "24, kernel=1");
}

/* MobileNetV2's block: 1x1 expand, depthwise, 1x1 project with the residual add; epilogues on
 * both convs of the pair; the 1x1 conv writing into a concat slice. */
Test(cg_conv, depthwise_rows_with_epilogues_and_slices) {
    check_dw_rows("input x: [1, 24, 19, 21]\n"
                  "e = conv2d(x, 144, kernel=1, bias=false)\neb = batchnorm(e)\ner = relu6(eb)\n"
                  "d = conv2d(er, 144, kernel=3, pad=1, groups=144, bias=false)\ndb = batchnorm(d)\ndr = relu6(db)\n"
                  "p = conv2d(dr, 24, kernel=1, bias=false)\npb = batchnorm(p)\ny = add(pb, x)\noutput y\n",
                  "inverted residual", 1);
    check_dw_rows("input x: [2, 20, 11, 9]\n"
                  "d = conv2d(x, 20, kernel=3, stride=2, pad=1, groups=20)\nh = hardswish(d)\n"
                  "p = conv2d(h, 12, kernel=1)\nq = prelu(p, num_parameters=12)\n"
                  "d2 = conv2d(x, 20, kernel=3, stride=2, pad=1, groups=20)\np2 = conv2d(d2, 7, kernel=1)\n"
                  "c = concat(q, p2, axis=1)\noutput c\n",
                  "epilogues, concat slices", 2);
}
