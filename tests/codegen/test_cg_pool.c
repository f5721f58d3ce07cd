/* test_cg_pool.c — generated pooling kernels (maxpool2d, avgpool2d, global_avgpool,
 * adaptive_avgpool) against the reference interpreter, at -O0 and -O2, with no pool and two
 * threads: odd channel counts (3, 17, 33, and enough for several vector groups), 1×1 spatial,
 * batch 2, odd H/W, padding, strides, dilation, kernel pairs, ceil_mode windows dropped and
 * kept, count_include_pad both ways, adaptive bins that do not divide and that upsample. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testutil.h"

static void check(const char *src, const char *what) {
    for (int opt = tu_min_opt(0); opt <= 2; opt += 2) {
        Graph *g = tu_load_text(src, 5);
        cr_assert_not_null(g, "%s: does not load", what);
        double e = tu_compiled_vs_interp(g, opt, TU_SERIAL_AND_POOL, 23);
        cr_expect(e >= 0 && e <= 1e-5, "%s at -O%d, serial and 2 threads: rel.err %g", what, opt, e);
        ir_graph_free(g);
    }
}

/* Every pool call of `calls` on input shape `shape`, each its own output. */
static void check_calls(const char *shape, const char *const *calls, int ncalls, const char *what) {
    char src[4096];
    int o = snprintf(src, sizeof src, "input x: %s\n", shape);
    for (int i = 0; i < ncalls; i++) o += snprintf(src + o, sizeof src - (size_t)o, "y%d = %s\n", i, calls[i]);
    o += snprintf(src + o, sizeof src - (size_t)o, "output ");
    for (int i = 0; i < ncalls; i++) o += snprintf(src + o, sizeof src - (size_t)o, "%sy%d", i ? ", " : "", i);
    snprintf(src + o, sizeof src - (size_t)o, "\n");
    char w[256];
    snprintf(w, sizeof w, "%s on %s", what, shape);
    check(src, w);
}

#define CHECK(shape, what, ...)                                                  \
    do {                                                                         \
        const char *calls_[] = {__VA_ARGS__};                                    \
        check_calls(shape, calls_, (int)(sizeof calls_ / sizeof *calls_), what); \
    } while (0)

Test(cg_pool, maxpool_windows) {
    const char *shapes[] = {"[2, 17, 7, 9]", "[1, 33, 11, 13]", "[2, 3, 9, 8]", "[1, 70, 6, 5]"};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        CHECK(shapes[s], "maxpool", "maxpool2d(x, kernel=2)", "maxpool2d(x, kernel=3, stride=2, pad=1)",
              "maxpool2d(x, kernel=3, stride=1, pad=1, dilation=2)",
              "maxpool2d(x, kernel=[2, 3], stride=[1, 2], pad=[1, 1])",
              "maxpool2d(x, kernel=3, stride=2, ceil_mode=true)",
              "maxpool2d(x, kernel=[3, 2], stride=[3, 1], dilation=[2, 1])",
              "maxpool2d(x, kernel=3, stride=3, pad=1, ceil_mode=true)");
}

/* [5, 5] with kernel 2, stride 2, pad 1: ceil gives 4 windows but the 4th starts in the right
 * padding, so it is dropped (3); [8, 8] with kernel 3, stride 2: the ceil window is kept. */
Test(cg_pool, ceil_mode_dropped_and_kept) {
    CHECK("[2, 17, 5, 5]", "ceil dropped", "maxpool2d(x, kernel=2, stride=2, pad=1, ceil_mode=true)",
          "avgpool2d(x, kernel=2, stride=2, pad=1, ceil_mode=true)",
          "avgpool2d(x, kernel=2, stride=2, pad=1, ceil_mode=true, count_include_pad=false)");
    CHECK("[1, 33, 8, 8]", "ceil kept", "maxpool2d(x, kernel=3, stride=2, ceil_mode=true)",
          "avgpool2d(x, kernel=3, stride=2, ceil_mode=true)", "avgpool2d(x, kernel=3, stride=2, pad=1, ceil_mode=true)",
          "avgpool2d(x, kernel=3, stride=2, pad=1, ceil_mode=true, count_include_pad=false)");
}

Test(cg_pool, avgpool_divisors) {
    const char *shapes[] = {"[2, 17, 7, 9]", "[1, 3, 6, 6]", "[1, 33, 5, 11]"};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        CHECK(shapes[s], "avgpool", "avgpool2d(x, kernel=2)", "avgpool2d(x, kernel=3, stride=2, pad=1)",
              "avgpool2d(x, kernel=3, stride=2, pad=1, count_include_pad=false)",
              "avgpool2d(x, kernel=[3, 2], stride=[2, 1], pad=[1, 1])",
              "avgpool2d(x, kernel=[3, 2], stride=[2, 1], pad=[1, 1], count_include_pad=false)",
              "avgpool2d(x, kernel=3, stride=1, pad=1, ceil_mode=true, count_include_pad=false)",
              "avgpool2d(x, kernel=5, stride=2, pad=2)");
}

Test(cg_pool, one_by_one_spatial) {
    CHECK("[2, 33, 1, 1]", "1x1", "maxpool2d(x, kernel=1)", "maxpool2d(x, kernel=3, stride=1, pad=1)",
          "avgpool2d(x, kernel=3, stride=1, pad=1)", "avgpool2d(x, kernel=3, stride=1, pad=1, count_include_pad=false)",
          "global_avgpool(x)", "adaptive_avgpool(x, size=[1, 1])", "adaptive_avgpool(x, size=[3, 2])");
}

Test(cg_pool, global_avgpool) {
    CHECK("[2, 33, 7, 5]", "global", "global_avgpool(x)");
    CHECK("[1, 3, 1, 1]", "global", "global_avgpool(x)");
    /* 256 taps: a long float sum; 200 channels: several chunks of vector groups */
    CHECK("[1, 17, 16, 16]", "global", "global_avgpool(x)");
    CHECK("[1, 200, 3, 3]", "global", "global_avgpool(x)", "maxpool2d(x, kernel=3)");
}

Test(cg_pool, adaptive_avgpool) {
    CHECK("[2, 17, 7, 9]", "adaptive", "adaptive_avgpool(x, size=[3, 4])", "adaptive_avgpool(x, size=[7, 9])",
          "adaptive_avgpool(x, size=[10, 13])", "adaptive_avgpool(x, size=[1, 1])", "adaptive_avgpool(x, size=[2, 5])");
    CHECK("[1, 33, 8, 8]", "adaptive", "adaptive_avgpool(x, size=[2, 2])", "adaptive_avgpool(x, size=[4, 1])",
          "adaptive_avgpool(x, size=[5, 3])");
    CHECK("[1, 3, 40, 40]", "adaptive", "adaptive_avgpool(x, size=[3, 3])", "adaptive_avgpool(x, size=[1, 2])");
}

/* Pools reading what another kernel wrote (an NHWC intermediate, not the converted input) and
 * chained: a pool of a pool. */
Test(cg_pool, chained) {
    check("input x: [2, 19, 13, 11]\n"
          "a = relu(x)\nb = maxpool2d(a, kernel=3, stride=2, pad=1)\nc = avgpool2d(b, kernel=2, ceil_mode=true)\n"
          "d = adaptive_avgpool(c, size=[2, 3])\ne = global_avgpool(d)\noutput b, c, d, e\n",
          "chained pools");
}
