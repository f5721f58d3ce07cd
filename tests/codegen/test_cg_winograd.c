/* test_cg_winograd.c — the Winograd F(4,3) and F(2,3) conv2d kernels (one code path, two tile
 * sizes: every case runs both) against the reference interpreter at -O0 and -O2, serial and on 2
 * threads: output sizes that are not multiples of 4 (partial tiles at the
 * right and bottom), images smaller than a tile, batch 2, channel counts that are not multiples of
 * the vector width (input and output tails), padding 0, 1, 2 and asymmetric, with and without
 * bias, dilations 2 to 6 (the phases' sub-grids), fused relu and residual adds in the store step,
 * outputs written into a concat's slice, layers whose tiles fill several register tiles and
 * several output blocks, and the GEMM shapes (1, 3, 17 and 100 channels on 1×1, 2×2, 5×7 and
 * 57×57 images). Every case checks the
 * layer really ran as Winograd; the pass's own cost model and its declines are tested in
 * tests/passes/test_winograd.c. Runs again per x86-64 level (tests/isa.sh). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "passes/passes.h"
#include "testutil.h"

/* F(4,3) in float is a few 1e-6 off (max|Δ| / max|ref|), F(2,3) a few 1e-7, against ~1e-7 for
 * direct convolution */
#define WINO_TOL 3e-5
#define WINO23_TOL 3e-6

static const int algos[2] = {CONV_ALGO_WINOGRAD43, CONV_ALGO_WINOGRAD23};

static void run_list(Graph *g, const char *list) {
    Diags d;
    diags_init(&d);
    PassOptions o = {.list = list, .split_tol = 1e-6, .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT, .pass_limit = -1,
                     .verify = true};
    cr_assert(passes_validate(&o, &d) && passes_run(g, &o, &d, stderr), "--passes=%s failed", list);
    diags_free(&d);
}

/* Mark every eligible conv (3×3, stride 1, ungrouped, any dilation) with `algo`, whatever the
 * pass's cost model says: the kernel must be right on shapes the pass would decline too. */
static void force_winograd(Graph *g, int algo) {
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (!n->dead && ir_winograd_eligible(g, n)) n->algo = algo;
    }
}

static int count_winograd(const Graph *g, int algo) {
    int k = 0;
    for (int i = 0; i < g->nodes.len; i++) k += !ir_node(g, i)->dead && ir_node(g, i)->algo == algo;
    return k;
}

/* Compile src after `list` (NULL: none) with the eligible convs forced to F(4,3), then to F(2,3),
 * at -O0 and -O2, each run without a pool and with 2 threads, against the interpreter on the
 * graph before any pass. `want`: the Winograd layers expected. */
static void check_opts(const char *src, const char *list, int want, const char *what, bool fast) {
    for (int a = 0; a < 2; a++)
        for (int opt = tu_min_opt(fast ? 2 : 0); opt <= 2; opt += 2) {
            Graph *ref = tu_load_text(src, 5), *g = tu_load_text(src, 5);
            cr_assert(ref && g, "%s: does not load", what);
            if (list) run_list(g, list);
            force_winograd(g, algos[a]);
            int m = a ? 2 : 4, k = count_winograd(g, algos[a]);
            cr_assert_eq(k, want, "%s: %d F(%d,3) layers, wanted %d", what, k, m, want);
            double e = tu_compiled_vs_interp_ref(g, ref, opt, TU_SERIAL_AND_POOL, 13);
            cr_expect(e >= 0 && e <= (a ? WINO23_TOL : WINO_TOL), "%s by F(%d,3) at -O%d, serial and 2 threads: rel.err %g",
                      what, m, opt, e);
            ir_graph_free(ref);
            ir_graph_free(g);
        }
}

static void conv(const char *shape, const char *args) {
    char src[512], what[256];
    snprintf(src, sizeof src, "input x: %s\ny = conv2d(x, %s)\noutput y\n", shape, args);
    snprintf(what, sizeof what, "winograd conv2d(%s) on %s", args, shape);
    check_opts(src, NULL, 1, what, false);
}

Test(cg_winograd, partial_tiles_and_small_images) {
    conv("[1, 16, 8, 8]", "16, kernel=3, pad=1");     /* 2×2 whole tiles */
    conv("[1, 16, 9, 11]", "16, kernel=3, pad=1");    /* partial tiles right and bottom */
    conv("[1, 16, 13, 6]", "24, kernel=3, pad=1");
    conv("[1, 8, 1, 1]", "8, kernel=3, pad=1");       /* a 1×1 image: one tile, one output pixel */
    conv("[1, 5, 2, 3]", "7, kernel=3, pad=1");
    conv("[1, 6, 3, 3]", "9, kernel=3");              /* no padding: one output pixel */
    conv("[1, 4, 5, 5]", "4, kernel=3, pad=2");       /* padding 2: 7×7 outputs */
    conv("[1, 12, 10, 7]", "20, kernel=3, pad=[1, 2]");
    conv("[1, 12, 10, 7]", "20, kernel=3, pad=[0, 1], bias=false");
    conv("[2, 17, 9, 10]", "33, kernel=3, pad=1");    /* batch 2: blocks of tiles span images */
    conv("[1, 16, 4, 30]", "16, kernel=3, pad=1");
}

Test(cg_winograd, dilated_phase_grids) {
    /* dilation d: d·d phases' sub-grids tiled apart (outputs p, p + d, ... reading inputs
       p - pad + d·k); sub-grids of different sizes, partial tiles on them, taps beyond the image */
    conv("[1, 16, 17, 19]", "16, kernel=3, pad=2, dilation=2");
    conv("[1, 8, 33, 33]", "12, kernel=3, pad=4, dilation=4");  /* ASPP's rate 4 on 33² */
    conv("[1, 5, 9, 7]", "7, kernel=3, pad=3, dilation=3");
    conv("[1, 6, 5, 5]", "6, kernel=3, pad=6, dilation=6");     /* more phases than pixels */
    conv("[1, 8, 14, 14]", "8, kernel=3, dilation=2");          /* no padding: 10×10 */
    conv("[2, 17, 11, 13]", "20, kernel=3, pad=[2, 3], dilation=[2, 3], bias=false");
    check_opts("input x: [1, 16, 20, 18]\nc = conv2d(x, 16, kernel=3, pad=2, dilation=2)\ns = add(c, x)\nr = relu(s)\n"
               "output r\n",
               "fuse-act", 1, "dilated, residual add and relu fused", false);
}

Test(cg_winograd, channel_tails_and_blocks) {
    conv("[1, 3, 12, 12]", "5, kernel=3, pad=1");     /* fewer channels than a vector */
    conv("[1, 17, 12, 12]", "31, kernel=3, pad=1");   /* tails on both sides */
    conv("[1, 40, 9, 9]", "40, kernel=3, pad=1");     /* a full output block and a tail block */
    conv("[1, 33, 14, 14]", "72, kernel=3, pad=1, bias=false");
    conv("[1, 130, 6, 6]", "20, kernel=3, pad=1");    /* input channels in several sum chunks */
    conv("[1, 64, 20, 20]", "64, kernel=3, pad=1");   /* several register tiles and items */
}

/* the GEMM tests' shapes: channel counts 1, 3, 17, 100 on images of 1×1, 2×2, 5×7 and 57×57 */
Test(cg_winograd, gemm_shapes) {
    static const char *const chans[] = {"1", "3", "17", "100"};
    static const char *const hw[] = {"1, 1", "2, 2", "5, 7", "57, 57"};
    for (int i = 0; i < 4; i++) {
        char shape[64], args[64];
        snprintf(shape, sizeof shape, "[1, %s, %s]", chans[i], hw[i]);
        snprintf(args, sizeof args, "%s, kernel=3, pad=1", chans[(i + 1) % 4]);
        conv(shape, args);
        snprintf(shape, sizeof shape, "[1, %s, %s]", chans[(i + 2) % 4], hw[i]);
        snprintf(args, sizeof args, "%s, kernel=3, pad=1, bias=false", chans[(i + 3) % 4]);
        conv(shape, args);
    }
}

Test(cg_winograd, resnet_sized_layers) {
    check_opts("input x: [1, 64, 56, 56]\ny = conv2d(x, 64, kernel=3, pad=1, bias=false)\noutput y\n", NULL, 1,
               "64->64 at 56", true);
    check_opts("input x: [1, 128, 28, 28]\ny = conv2d(x, 128, kernel=3, pad=1)\noutput y\n", NULL, 1, "128->128 at 28",
               true);
    check_opts("input x: [1, 256, 14, 14]\ny = conv2d(x, 256, kernel=3, pad=1, bias=false)\noutput y\n", NULL, 1,
               "256->256 at 14", true);
}

Test(cg_winograd, fused_epilogues) {
    /* bias, folded batchnorm, relu, and a residual add of the block's input (ResNet's basic block) */
    const char *block = "input x: [1, 24, 11, 13]\n"
                        "a = conv2d(x, 24, kernel=3, pad=1, bias=false)\nab = batchnorm(a)\nar = relu(ab)\n"
                        "b = conv2d(ar, 24, kernel=3, pad=1)\nbb = batchnorm(b)\ns = add(bb, x)\nr = relu(s)\n"
                        "output r\n";
    check_opts(block, "fold-bn,fuse-act", 2, "basic block, relu and residual fused", false);
    /* activations with their own parameters, one per channel */
    const char *acts = "input x: [2, 20, 9, 6]\n"
                       "a = conv2d(x, 19, kernel=3, pad=1)\np = prelu(a, num_parameters=19)\nc = clamp(p, min=-0.5, max=0.7)\n"
                       "output c\n";
    check_opts(acts, "fuse-act", 1, "prelu and clamp fused", false);
}

Test(cg_winograd, writes_into_a_concat_slice) {
    /* the Winograd outputs are slices at channel offsets 0, 20 and 36 of k: the output view's pixel
       stride is k's 52 channels, and a tail vector must not spill into the next slice */
    const char *src = "input x: [1, 16, 10, 9]\n"
                      "a = conv2d(x, 20, kernel=3, pad=1)\nar = relu(a)\n"
                      "b = conv2d(x, 16, kernel=3, pad=1)\n"
                      "c = conv2d(x, 16, kernel=3, pad=1, bias=false)\n"
                      "k = concat(ar, b, c)\nm = maxpool2d(k, kernel=2)\noutput m, k\n";
    Graph *g = tu_load_text(src, 2);
    run_list(g, "fuse-act,concat-elim");
    int slices = 0;
    for (int i = 0; i < g->tensors.len; i++) slices += ir_tensor(g, i)->alias >= 0;
    cr_expect_eq(slices, 3, "concat-elim made %d slices", slices);
    ir_graph_free(g);
    check_opts(src, "fuse-act,concat-elim", 3, "Winograd convs writing concat slices", false);
}
