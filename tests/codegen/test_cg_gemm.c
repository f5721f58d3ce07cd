/* test_cg_gemm.c — the blocked-GEMM kernel of 1×1 convolutions (cg_gemm.c) against the reference
 * interpreter at -O0 and -O2, each run serially and on 2 threads: channel counts 1, 3, 17 and 100
 * on both sides (a tail block with a masked last vector, fewer channels than a vector), images of 1×1,
 * 2×2, 5×7 and 57×57 pixels (a row's narrower last tile), batch 2, stride 2 (rows of strided
 * pixels), reductions long enough to run in several chunks with partial sums in the output
 * (work items of several M blocks and groups of output blocks, a tail block in the last group;
 * an input large enough to be packed chunk by chunk),
 * fused epilogues (bias, folded batchnorm, activations, per-channel prelu, residual adds), and
 * outputs written into a concat's slices along channels (a channel offset and a pixel stride of
 * the whole concat) and along width (rows that are not evenly spaced). Every case checks that
 * the layer really ran as the GEMM. Runs again per x86-64 level (tests/isa.sh). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "passes/passes.h"
#include "testutil.h"

/* How many conv2d_gemm kernels g compiles to: the kernel names in its LLVM IR. */
static int gemm_kernels(const Graph *g) {
    char dir[256], path[300];
    cr_assert(tu_mkdtemp(dir, sizeof dir, "netc-gemm"));
    snprintf(path, sizeof path, "%s/m.ll", dir);
    Diags d;
    diags_init(&d);
    CodegenOptions o = {.emit = EMIT_LL, .out = path, .cpu = tu_cpu(), .opt_level = 0, .jobs = 1};
    cr_assert(codegen_emit(g, &o, &d), "codegen failed");
    diags_free(&d);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    int k = 0;
    char line[4096];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "define", 6) && strstr(line, "_conv2d_gemm(")) k++;
    fclose(f);
    remove(path);
    rmdir(dir);
    return k;
}

/* Compile src after `list` (NULL: none) at -O0 and -O2 (`fast`: -O2 only), each run serially
 * and on 2 threads, against the interpreter on the graph before any pass; `want` layers must run
 * as the GEMM. */
static void check_opts(const char *src, const char *list, int want, const char *what, bool fast) {
    for (int opt = tu_min_opt(fast ? 2 : 0); opt <= 2; opt += 2) {
        Graph *ref = tu_load_text(src, 5), *g = tu_load_text(src, 5);
        cr_assert(ref && g, "%s: does not load", what);
        if (list) {
            Diags d;
            diags_init(&d);
            PassOptions o = {.list = list, .split_tol = 1e-6, .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT,
                             .pass_limit = -1, .verify = true};
            cr_assert(passes_validate(&o, &d) && passes_run(g, &o, &d, stderr), "--passes=%s failed", list);
            diags_free(&d);
        }
        if (opt == 2) {
            int k = gemm_kernels(g);
            cr_expect_eq(k, want, "%s: %d GEMM layers, wanted %d", what, k, want);
        }
        double e = tu_compiled_vs_interp_ref(g, ref, opt, TU_SERIAL_AND_POOL, 13);
        cr_expect(e >= 0 && e <= 1e-5, "%s at -O%d, serial and 2 threads: rel.err %g", what, opt, e);
        ir_graph_free(ref);
        ir_graph_free(g);
    }
}

static void conv(const char *shape, const char *args) {
    char src[512], what[256];
    snprintf(src, sizeof src, "input x: %s\ny = conv2d(x, %s)\noutput y\n", shape, args);
    snprintf(what, sizeof what, "1x1 conv2d(%s) on %s", args, shape);
    check_opts(src, NULL, 1, what, false);
}

Test(cg_gemm, channel_counts_and_sizes) {
    static const int chans[] = {1, 3, 17, 100};
    static const char *const sizes[] = {"1, 1", "2, 2", "5, 7"};
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 4; i++)
            for (int o = 0; o < 4; o++) {
                char shape[64], args[64];
                snprintf(shape, sizeof shape, "[1, %d, %s]", chans[i], sizes[s]);
                snprintf(args, sizeof args, "%d, kernel=1%s", chans[o], (i + o) % 2 ? ", bias=false" : "");
                conv(shape, args);
            }
}

Test(cg_gemm, large_images) {
    /* 3249 pixels: many M blocks and tiles, a narrower last tile */
    check_opts("input x: [1, 17, 57, 57]\ny = conv2d(x, 100, kernel=1)\noutput y\n", NULL, 1, "17->100 at 57x57", true);
    check_opts("input x: [1, 100, 57, 57]\ny = conv2d(x, 3, kernel=1, bias=false)\noutput y\n", NULL, 1,
               "100->3 at 57x57", true);
    check_opts("input x: [1, 3, 57, 57]\ny = conv2d(x, 17, kernel=1)\noutput y\n", NULL, 1, "3->17 at 57x57", true);
    check_opts("input x: [1, 1, 57, 57]\ny = conv2d(x, 1, kernel=1)\noutput y\n", NULL, 1, "1->1 at 57x57", true);
}

Test(cg_gemm, batch_and_stride) {
    conv("[2, 17, 5, 7]", "100, kernel=1");
    conv("[2, 100, 5, 7]", "17, kernel=1, stride=2");           /* rows of strided pixels: 3×4 outputs */
    conv("[1, 3, 57, 57]", "17, kernel=1, stride=2, bias=false"); /* 29×29 */
    conv("[1, 17, 5, 7]", "3, kernel=1, stride=[1, 2]");
    conv("[2, 1, 2, 2]", "100, kernel=1, stride=2");
}

Test(cg_gemm, reduction_in_chunks) {
    /* more input channels than one chunk holds on every target (the last chunk shorter): partial
       sums go to the output between chunks, the epilogue runs after the last */
    conv("[1, 1100, 5, 7]", "17, kernel=1");
    conv("[2, 1100, 2, 2]", "100, kernel=1, stride=2, bias=false");
    check_opts("input x: [1, 700, 9, 9]\ninput x2: [1, 40, 9, 9]\na = conv2d(x, 40, kernel=1)\nb = batchnorm(a)\nr = relu(b)\nc = add(r, x2)\n"
               "output c\n",
               "fold-bn,fuse-act", 1, "700 channels in chunks, batchnorm, relu and a residual add fused", false);
    check_opts("input x: [1, 2048, 7, 7]\ny = conv2d(x, 512, kernel=1, bias=false)\noutput y\n", NULL, 1,
               "2048->512 at 7x7", true);
    /* items of several M blocks × groups of several output blocks (the last group with the tail
       block), chunk by chunk over the group's blocks: the partial sums of one block must not
       land in another's, nor the tail's masked lanes in a neighbour */
    check_opts("input x: [1, 1100, 17, 19]\ny = conv2d(x, 600, kernel=1)\noutput y\n", NULL, 1,
               "1100->600 at 17x19", true);
    check_opts("input x: [1, 300, 13, 13]\ny = conv2d(x, 2100, kernel=1)\noutput y\n", NULL, 1,
               "300->2100 at 13x13", true);
    check_opts("input x: [1, 2048, 20, 20]\ny = conv2d(x, 320, kernel=1)\noutput y\n", NULL, 1,
               "2048->320 at 20x20", true);
    /* 17 MB of input: each chunk's inputs are packed (a row per pixel, the last chunk shorter) */
    check_opts("input x: [1, 2050, 45, 47]\ny = conv2d(x, 300, kernel=1)\noutput y\n", NULL, 1,
               "2050->300 at 45x47, packed", true);
}

Test(cg_gemm, fused_epilogues) {
    /* ResNet's bottleneck ending: 1×1 expand, batchnorm, the residual add and relu in the store */
    const char *block = "input x: [1, 100, 5, 7]\n"
                        "a = conv2d(x, 17, kernel=1, bias=false)\nab = batchnorm(a)\nar = relu(ab)\n"
                        "b = conv2d(ar, 100, kernel=1, bias=false)\nbb = batchnorm(b)\ns = add(bb, x)\nr = relu(s)\n"
                        "output r\n";
    check_opts(block, "fold-bn,fuse-act", 2, "bottleneck of 1x1s, relu and residual fused", false);
    const char *big = "input x: [1, 17, 57, 57]\n"
                      "a = conv2d(x, 17, kernel=1)\ns = add(x, a)\nr = relu6(s)\n"
                      "output r\n";
    check_opts(big, "fuse-act", 1, "residual add and relu6 at 57x57", true);
    const char *acts = "input x: [2, 20, 5, 7]\n"
                       "a = conv2d(x, 17, kernel=1)\np = prelu(a, num_parameters=17)\nc = clamp(p, min=-0.5, max=0.7)\n"
                       "d = conv2d(c, 3, kernel=1, stride=2)\ne = sigmoid(d)\noutput e\n";
    check_opts(acts, "fuse-act", 2, "prelu, clamp and sigmoid fused", false);
}

Test(cg_gemm, writes_into_concat_slices) {
    /* channel slices at offsets 0, 17 and 117 of k (pixel stride 120): a tail vector must not
       spill into the next slice, partial sums included (1100 input channels) */
    const char *src = "input x: [1, 1100, 5, 7]\n"
                      "a = conv2d(x, 17, kernel=1)\nar = relu(a)\n"
                      "b = conv2d(x, 100, kernel=1)\n"
                      "c = conv2d(x, 3, kernel=1, bias=false)\n"
                      "k = concat(ar, b, c)\nm = maxpool2d(k, kernel=2)\noutput m, k\n";
    check_opts(src, "fuse-act,concat-elim", 3, "1x1 convs writing channel slices", false);
    /* width slices: the output rows are not evenly spaced, so pixels go row by row */
    const char *wsrc = "input x: [1, 17, 5, 7]\n"
                       "a = conv2d(x, 17, kernel=1)\n"
                       "b = conv2d(x, 17, kernel=1, bias=false)\n"
                       "k = concat(a, b, axis=3)\nm = relu(k)\noutput m\n";
    check_opts(wsrc, "concat-elim", 2, "1x1 convs writing width slices", false);
}
