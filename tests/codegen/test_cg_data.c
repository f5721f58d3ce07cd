/* test_cg_data.c — generated data-movement kernels (concat, slice, channel_shuffle, pad,
 * upsample, flatten, softmax) against the reference interpreter, at -O0 and -O2, with no pool
 * and two threads, on odd shapes: channels 3, 17, 33 (and more than a vector group), 1×1
 * spatial, batch 2, odd H/W, every axis, ranks 1 to 5. Rank-4 outputs also exercise the
 * NHWC -> NCHW conversion at the graph boundary. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "passes/passes.h"
#include "testutil.h"

static void check(const char *src, const char *what) {
    for (int opt = tu_min_opt(0); opt <= 2; opt += 2) {
        Graph *g = tu_load_text(src, 3);
        cr_assert_not_null(g, "%s: does not load", what);
        double e = tu_compiled_vs_interp(g, opt, TU_SERIAL_AND_POOL, 41);
        cr_expect(e >= 0 && e <= 1e-5, "%s at -O%d, serial and 2 threads: rel.err %g", what, opt, e);
        ir_graph_free(g);
    }
}

/* `inputs` declares the inputs; each of `calls` becomes an output y<i>. */
static void check_calls(const char *inputs, const char *const *calls, int ncalls, const char *what) {
    char src[8192];
    int o = snprintf(src, sizeof src, "%s\n", inputs);
    for (int i = 0; i < ncalls; i++) o += snprintf(src + o, sizeof src - (size_t)o, "y%d = %s\n", i, calls[i]);
    o += snprintf(src + o, sizeof src - (size_t)o, "output ");
    for (int i = 0; i < ncalls; i++) o += snprintf(src + o, sizeof src - (size_t)o, "%sy%d", i ? ", " : "", i);
    snprintf(src + o, sizeof src - (size_t)o, "\n");
    check(src, what);
}

#define CHECK(inputs, what, ...)                                                  \
    do {                                                                          \
        const char *calls_[] = {__VA_ARGS__};                                     \
        check_calls(inputs, calls_, (int)(sizeof calls_ / sizeof *calls_), what); \
    } while (0)

/* ---- concat ---------------------------------------------------------------------------------- */

Test(cg_data, concat_rank4_every_axis) {
    CHECK("input a: [2, 17, 5, 7]\ninput b: [1, 17, 5, 7]\ninput c: [2, 3, 5, 7]\ninput d: [2, 33, 5, 7]\n"
          "input e: [2, 17, 3, 7]\ninput f: [2, 17, 5, 1]",
          "concat rank 4", "concat(a, b, axis=0)", "concat(a, c, d)", "concat(c, a, d, c, axis=1)",
          "concat(a, e, axis=2)", "concat(a, f, axis=3)", "concat(a, f, f, axis=-1)", "concat(e, a, axis=-2)",
          "concat(b, b, b, axis=0)");
}

Test(cg_data, concat_same_tensor_and_intermediates) {
    check("input x: [2, 17, 5, 7]\ny = concat(x, x)\nr = relu(x)\nz = concat(r, x, r, axis=2)\n"
          "w = concat(concat(r, r, axis=3), relu(concat(x, r, axis=3)))\noutput y, z, w\n",
          "concat twice / of intermediates");
}

Test(cg_data, concat_other_ranks) {
    CHECK("input a: [3, 17]\ninput b: [3, 33]\ninput c: [5, 17]", "concat rank 2", "concat(a, b)",
          "concat(a, b, axis=-1)", "concat(a, c, axis=0)", "concat(a, a, a)");
    CHECK("input a: [2, 3, 5]\ninput b: [2, 4, 5]\ninput c: [2, 3, 1]", "concat rank 3", "concat(a, b)",
          "concat(a, c, axis=-1)", "concat(a, a, axis=0)");
    CHECK("input a: [5]\ninput b: [19]", "concat rank 1", "concat(a, b, axis=0)", "concat(b, a, b, axis=-1)");
    CHECK("input a: [2, 3, 2, 3, 4]\ninput b: [2, 3, 2, 3, 1]", "concat rank 5", "concat(a, b, axis=4)",
          "concat(a, a, axis=2)");
}

/* Long contiguous copies: the innermost run split into chunks across the threads. */
Test(cg_data, concat_large) {
    CHECK("input a: [1, 64, 32, 32]\ninput b: [1, 33, 32, 32]", "concat large", "concat(a, a, axis=0)", "concat(a, b)",
          "concat(a, a, axis=2)");
}

/* ---- slice ----------------------------------------------------------------------------------- */

Test(cg_data, slice_every_axis) {
    CHECK("input x: [2, 17, 5, 7]", "slice rank 4", "slice(x, axis=0, start=1)", "slice(x, start=3, end=12)",
          "slice(x, axis=1, start=-5)", "slice(x, axis=2, start=-3)", "slice(x, axis=2, start=1, end=2)",
          "slice(x, axis=3, start=2, end=5)", "slice(x, axis=-1, start=-4, end=-1)", "slice(x, start=16)");
    CHECK("input x: [5, 33]", "slice rank 2", "slice(x, start=-20, end=30)", "slice(x, axis=0, start=1, end=4)",
          "slice(x, axis=-1, start=0, end=1)", "slice(x, axis=-2, start=-1)");
    CHECK("input x: [4, 6, 9]", "slice rank 3", "slice(x, axis=2, start=2, end=-2)", "slice(x, axis=1, start=-2)");
}

/* ---- channel_shuffle ------------------------------------------------------------------------- */

Test(cg_data, channel_shuffle_groups) {
    CHECK("input a: [2, 6, 5, 7]\ninput b: [1, 18, 3, 3]\ninput c: [1, 66, 2, 3]\ninput d: [2, 34, 1, 1]\n"
          "input e: [1, 3, 4, 5]",
          "channel_shuffle", "channel_shuffle(a, groups=2)", "channel_shuffle(a, groups=3)",
          "channel_shuffle(b, groups=3)", "channel_shuffle(b, groups=2)", "channel_shuffle(c, groups=2)",
          "channel_shuffle(c, groups=3)", "channel_shuffle(d, groups=2)", "channel_shuffle(e, groups=3)",
          "channel_shuffle(b, groups=1)");
}

/* ---- pad ------------------------------------------------------------------------------------- */

Test(cg_data, pad_constant_and_reflect) {
    const char *shapes[] = {"[2, 17, 5, 7]", "[1, 3, 4, 4]", "[1, 33, 3, 6]"};
    char in[64];
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        snprintf(in, sizeof in, "input x: %s", shapes[s]);
        CHECK(in, shapes[s], "pad(x, pad=[1, 2, 1, 2], value=1.5)", "pad(x, pad=[0, 0, 0, 0])",
              "pad(x, pad=[-1, 2, 0, -2], value=-3)", "pad(x, pad=[2, -1, -1, 1], value=0.25)",
              "pad(x, pad=[-1, -1, -1, -1])", "pad(x, pad=[1, 2, 2, 1], mode=\"reflect\")",
              "pad(x, pad=[3, 3, 2, 2], mode=\"reflect\")", "pad(x, pad=[0, 1, 0, 0], mode=\"reflect\")");
    }
    CHECK("input x: [2, 33, 1, 1]", "pad 1x1", "pad(x, pad=[1, 1, 1, 1], value=2)", "pad(x, pad=[0, 3, 2, 0])");
}

/* ---- upsample -------------------------------------------------------------------------------- */

Test(cg_data, upsample_nearest) {
    CHECK("input a: [2, 17, 5, 5]\ninput b: [1, 3, 7, 7]\ninput c: [1, 3, 33, 33]\ninput d: [2, 17, 1, 1]\n"
          "input e: [1, 33, 3, 2]",
          "nearest", "upsample(a, size=[7, 7])", "upsample(b, size=[5, 5])", "upsample(c, size=[65, 65])",
          "upsample(a, scale=1.5)", "upsample(b, scale=2)", "upsample(c, scale=0.5)", "upsample(d, size=[3, 4])",
          "upsample(e, size=[5, 82])", "upsample(a, size=[5, 9])", "upsample(b, scale=0.6)");
}

Test(cg_data, upsample_bilinear) {
    const char *calls[] = {
        "upsample(a, size=[7, 7], mode=\"bilinear\")",
        "upsample(a, size=[7, 7], mode=\"bilinear\", align_corners=true)",
        "upsample(b, size=[5, 5], mode=\"bilinear\")",
        "upsample(b, size=[5, 5], mode=\"bilinear\", align_corners=true)",
        "upsample(c, size=[65, 65], mode=\"bilinear\", align_corners=true)",
        "upsample(c, size=[65, 33], mode=\"bilinear\")",
        "upsample(a, scale=1.5, mode=\"bilinear\")",
        "upsample(a, scale=2, mode=\"bilinear\", align_corners=true)",
        "upsample(b, scale=0.5, mode=\"bilinear\")",
        "upsample(b, scale=0.7, mode=\"bilinear\", align_corners=true)",
        "upsample(d, size=[3, 4], mode=\"bilinear\")",
        "upsample(d, size=[3, 4], mode=\"bilinear\", align_corners=true)",
        "upsample(a, size=[1, 1], mode=\"bilinear\", align_corners=true)",
        "upsample(e, scale=2, mode=\"bilinear\")",
    };
    check_calls("input a: [2, 17, 5, 5]\ninput b: [1, 3, 7, 7]\ninput c: [1, 3, 33, 33]\ninput d: [2, 17, 1, 1]\n"
                "input e: [1, 70, 3, 2]",
                calls, (int)(sizeof calls / sizeof *calls), "bilinear");
}

/* ---- flatten --------------------------------------------------------------------------------- */

Test(cg_data, flatten) {
    CHECK("input a: [2, 17, 5, 7]\ninput b: [2, 33, 1, 1]\ninput c: [3, 17]\ninput d: [2, 3, 5]\ninput e: [1, 3, 4, 5]",
          "flatten", "flatten(a)", "flatten(b)", "flatten(c)", "flatten(d)", "flatten(relu(a))",
          "flatten(global_avgpool(a))", "flatten(e)");
}

/* ---- softmax --------------------------------------------------------------------------------- */

/* big = x + 1000 (a constant [N, C, 1, 1] made from pad's value, broadcast by add): without
 * the max subtracted, exp overflows. */
#define BIG_INPUTS                                                              \
    "input x: [2, 17, 5, 7]\ninput z: [2, 17, 1, 1]\n"                          \
    "k = slice(pad(z, pad=[1, 0, 0, 0], value=1000), axis=3, start=0, end=1)\n" \
    "big = add(x, k)\nbig2 = flatten(add(z, k))\nwide = flatten(big)\n"

Test(cg_data, softmax_rank4) {
    CHECK("input x: [2, 17, 5, 7]\ninput y: [1, 33, 3, 1]\ninput w: [2, 1, 3, 5]", "softmax rank 4", "softmax(x)",
          "softmax(x, axis=-1)", "softmax(x, axis=0)", "softmax(x, axis=2)", "softmax(y, axis=1)", "softmax(y, axis=2)",
          "softmax(y, axis=-1)", "softmax(w)");
}

Test(cg_data, softmax_other_ranks) {
    CHECK("input a: [3, 17]\ninput b: [2, 1000]\ninput c: [4, 6, 9]\ninput r: [3, 7, 1]", "softmax ranks 2, 3",
          "softmax(a)", "softmax(a, axis=-1)", "softmax(a, axis=0)", "softmax(b)", "softmax(b, axis=0)",
          "softmax(c, axis=1)", "softmax(c, axis=-1)", "softmax(c, axis=0)", "softmax(r, axis=1)");
    CHECK("input s: [37]\ninput f: [2, 3, 2, 3, 4]", "softmax ranks 1, 5", "softmax(s, axis=0)", "softmax(s, axis=-1)",
          "slice(s, axis=0, start=-7)", "softmax(f, axis=2)", "softmax(f, axis=-1)", "slice(f, axis=3, start=1)");
}

Test(cg_data, softmax_large_values) {
    CHECK(BIG_INPUTS, "softmax of x + 1000", "softmax(big)", "softmax(big, axis=-1)", "softmax(big, axis=0)",
          "softmax(big2)", "softmax(big2, axis=0)", "softmax(wide)", "softmax(wide, axis=-1)");
    /* a wide spread: x * 1024 */
    check("input x: [2, 17, 5, 7]\na = add(x, x)\nb = add(a, a)\nc = add(b, b)\nd = add(c, c)\ne = add(d, d)\n"
          "f = add(e, e)\ng = add(f, f)\nh = add(g, g)\ni = add(h, h)\nj = add(i, i)\n"
          "p = softmax(j)\nq = softmax(j, axis=3)\ns = softmax(flatten(j))\noutput p, q, s\n",
          "softmax of x * 1024");
}

/* ---- views into concat slices (concat-elim) ------------------------------------------------- */

/* After concat-elim the producers write into their slice of the concat's output (channel
 * offset, pixels wider than their channels) and the other readers (scheduled before the
 * concat) read the slices: every kernel family on such views, against the interpreter on the
 * graph before the pass. */
Test(cg_data, kernels_on_concat_slices) {
    const char *src = "input x: [2, 17, 9, 11]\n"
                      "a = maxpool2d(x, kernel=3, stride=1, pad=1)\n"
                      "b = avgpool2d(x, kernel=3, stride=1, pad=1, count_include_pad=false)\n"
                      "c = upsample(adaptive_avgpool(x, size=[3, 4]), size=[9, 11], mode=\"bilinear\")\n"
                      "d = pad(maxpool2d(x, kernel=3, stride=1), pad=[1, 1, 1, 1], value=0.5)\n"
                      "e = channel_shuffle(slice(x, axis=1, start=0, end=16), groups=2)\n"
                      "f = softmax(x, axis=1)\n"
                      "u = upsample(avgpool2d(x, kernel=3, ceil_mode=true), size=[9, 11])\n"
                      "g = maxpool2d(a, kernel=2)\nh = softmax(b, axis=2)\nk = channel_shuffle(d, groups=1)\n"
                      "l = pad(e, pad=[2, 1, 0, 1], mode=\"reflect\")\nm = flatten(global_avgpool(f))\n"
                      "cat = concat(a, b, c, d, e, f, u)\n"
                      "output cat, g, h, k, l, m\n";
    for (int opt = tu_min_opt(0); opt <= 2; opt += 2) {
        Graph *g = tu_load_text(src, 3), *ref = tu_load_text(src, 3);
        cr_assert(g && ref);
        Diags d;
        diags_init(&d);
        PassOptions o = {.list = "concat-elim", .pass_limit = -1, .verify = true};
        cr_assert(passes_run(g, &o, &d, stderr));
        diags_free(&d);
        int slices = 0;
        for (int t = 0; t < g->tensors.len; t++) slices += ir_tensor(g, t)->alias >= 0;
        cr_assert_geq(slices, 7, "concat-elim made only %d slices", slices);
        double e = tu_compiled_vs_interp_ref(g, ref, opt, 2, 13);
        cr_expect(e >= 0 && e <= 1e-5, "kernels on concat slices at -O%d: rel.err %g", opt, e);
        ir_graph_free(g);
        ir_graph_free(ref);
    }
}
