/* test_cg_nan.c — special values through the compiled code: NaN, ±inf, ±0, huge finite values
 * (±1e30, ±3e38, ±FLT_MAX), denormals and relu6's cap (6 and its neighbours) through every
 * activation, softmax and every pool, standalone and fused into a conv's epilogue (the -O2 pass
 * list before codegen; -O0 runs none), for the host (AVX-512 here), AVX2 and SSE2 targets. The
 * .so must give the interpreter's values elementwise: NaN in the same places, the same
 * infinities, bitwise-equal values (signed zeros included) where the math is exact — the clamps,
 * leaky_relu/prelu, hardswish/hardsigmoid, the pools — and within 2e-6 of max(|ref|, 1) where
 * it goes through exp/tanh/erf. relu(NaN) = 0 through llvm.maxnum was the bug this pins down. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "passes/passes.h"
#include "testutil.h"

#define TOL_MATH 2e-6

/* How an input is filled: each element is, with probability 1/every, one of the special values
 * of its set, else uniform in [-8, 8). */
typedef enum {
    SV_ALL,   /* every special value */
    SV_HUGE,  /* only the huge finite ones: sums overflow to ±inf, opposite overflows give NaN */
    SV_NOHUGE /* none above 1e30: a dense conv's float sum cannot overflow where the interpreter's
                 double sum does not */
} SvSet;

typedef struct Fill {
    SvSet set;
    int every;
} Fill;

static int specials(SvSet set, float *v) {
    int n = 0;
    if (set != SV_HUGE) {
        float all[] = {NAN,  -NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 6.0f, nextafterf(6, 7), nextafterf(6, 5),
                       0.0f, -0.0f, 3.0f,    -3.0f,     2.5f,  -1.0f,  0.5f, -0.25f,           1e-30f,
                       -1e-30f, FLT_TRUE_MIN, -FLT_TRUE_MIN, 1e-40f, -6.0f};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) v[n++] = all[i];
    }
    if (set != SV_NOHUGE) {
        float huge[] = {3e38f, -3e38f, FLT_MAX, -FLT_MAX, 1.7e38f, -1.7e38f, 1e30f, -1e30f};
        for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) v[n++] = huge[i];
    }
    return n;
}

static void fill(float *x, size_t n, Fill f, uint64_t seed) {
    float sv[64];
    int ns = specials(f.set, sv);
    tu_fill_random(x, n, seed);
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 7;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (s >> 33) % (uint64_t)f.every == 0 ? sv[(s >> 8) % (uint64_t)ns] : 8 * x[i];
    }
}

typedef struct Config {
    int opt;
    const char *cpu;
    int threads;
} Config;

/* -O0 and -O2 for the host; on x86 also AVX2 and SSE2 code (other lowerings of the same IR) */
static const Config configs[] = {
    {0, NULL, 0},
    {2, NULL, 2},
#if defined(__x86_64__)
    {2, "x86-64-v3", 0},
    {2, "x86-64", 0},
#endif
};
#define NCONFIGS (sizeof configs / sizeof *configs)

/* Every weight of every conv set to 1: a depthwise 1×1 conv passes its input through exactly,
 * so the epilogue sees the special values themselves. */
static void identity_weights(Graph *g) {
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->op != OP_CONV2D) continue;
        Tensor *w = ir_weight(g, n, "weight");
        for (int64_t k = 0; k < ir_numel(w); k++) w->data[k] = 1.0f;
    }
}

static int epilogue_steps(const Graph *g) {
    int epi = 0;
    for (int i = 0; i < g->nodes.len; i++)
        if (!ir_node(g, i)->dead) epi += ir_node(g, i)->nepi;
    return epi;
}

/* src: one input x, outputs y0, y1, ..., compiled in every config after its level's passes,
 * against the interpreter on the graph before them; output k compared with tol[k] (as
 * tu_cmp_special's), named label[k] in messages. `identity`: the convs' weights set to 1;
 * `min_fused`: the epilogue steps the -O2 passes must have made. */
static void check(const char *src, const char *what, Fill f, const double *tol, const char *const *label,
                  bool identity, int min_fused) {
    Graph *ref = tu_load_text(src, 3);
    cr_assert_not_null(ref, "%s: does not load", what);
    if (identity) identity_weights(ref);
    cr_assert_eq(ref->ninputs, 1);
    int nout = ref->noutputs;
    size_t nin = (size_t)ir_numel(ir_tensor(ref, ref->inputs[0]));
    float *x = malloc(nin * sizeof *x);
    fill(x, nin, f, 41);
    float **want = calloc((size_t)nout, sizeof *want), **got = calloc((size_t)nout, sizeof *got);
    for (int k = 0; k < nout; k++) {
        size_t n = (size_t)ir_numel(ir_tensor(ref, ref->outputs[k]));
        want[k] = malloc(n * sizeof **want);
        got[k] = malloc(n * sizeof **got);
    }
    cr_assert(tu_run_interp(ref, (const float *const[]){x}, want), "%s: interpreter", what);
    for (size_t c = 0; c < NCONFIGS; c++) {
        const Config *cf = &configs[c];
        Graph *g = tu_load_text(src, 3);
        if (identity) identity_weights(g);
        Diags d;
        diags_init(&d);
        PassOptions po = {.opt_level = cf->opt, .split_tol = 1e-6, .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT, .pass_limit = -1,
                          .verify = true};
        cr_assert(passes_run(g, &po, &d, stderr), "%s: passes failed", what);
        diags_free(&d);
        if (cf->opt == 2)
            cr_expect_geq(epilogue_steps(g), min_fused, "%s: %d epilogue steps at -O2, expected %d", what,
                          epilogue_steps(g), min_fused);
        char cfg[128];
        snprintf(cfg, sizeof cfg, "-O%d, cpu %s, %d threads", cf->opt, cf->cpu ? cf->cpu : "host", cf->threads);
        bool ran = tu_run_compiled(g, cf->opt, cf->cpu, cf->threads, (const float *const[]){x}, got);
        cr_expect(ran, "%s at %s: compile or run failed", what, cfg);
        for (int k = 0; ran && k < nout; k++) {
            size_t n = (size_t)ir_numel(ir_tensor(ref, ref->outputs[k]));
            char w[512];
            snprintf(w, sizeof w, "%s: %s at %s", what, label[k], cfg);
            /* an elementwise op of x: the input at the output's index, for the messages */
            size_t bad = tu_cmp_special(got[k], want[k], n == nin ? x : NULL, n, tol[k], w);
            cr_expect_eq(bad, 0, "%s: differs from the interpreter", w);
        }
        ir_graph_free(g);
    }
    for (int k = 0; k < nout; k++) free(want[k]), free(got[k]);
    free(want), free(got), free(x);
    ir_graph_free(ref);
}

/* .net source built line by line; n outputs y0 .. y(n-1), listed by src_output. */
typedef struct Src {
    char text[8192];
    int len, n;
} Src;

static void src_add(Src *s, const char *line) {
    int r = snprintf(s->text + s->len, sizeof s->text - (size_t)s->len, "%s", line);
    cr_assert(r >= 0 && (size_t)(s->len + r) < sizeof s->text, "source too long");
    s->len += r;
}

static void src_output(Src *s) {
    src_add(s, "output ");
    for (int k = 0; k < s->n; k++) {
        char o[16];
        snprintf(o, sizeof o, "%sy%d", k ? ", " : "", k);
        src_add(s, o);
    }
    src_add(s, "\n");
}

typedef struct Act {
    const char *call; /* of v */
    bool exact;
} Act;

static const Act acts[] = {
    {"relu(v)", true},
    {"relu6(v)", true},
    {"clamp(v, min=-1, max=2.5)", true}, /* nn.Hardtanh(-1, 2.5) */
    {"clamp(v, min=0, max=6)", true},
    {"clamp(v, min=0.5)", true},
    {"clamp(v, max=-0.25)", true},
    {"leaky_relu(v)", true},
    {"leaky_relu(v, slope=0.2)", true},
    {"leaky_relu(v, slope=0)", true}, /* 0 * -inf = NaN */
    {"prelu(v)", true},
    {"hardswish(v)", true},
    {"hardsigmoid(v)", true},
    {"dropout(v, p=0.3)", true},
    {"elu(v)", false},
    {"elu(v, alpha=0.7)", false},
    {"sigmoid(v)", false},
    {"tanh(v)", false},
    {"silu(v)", false},
    {"gelu(v)", false},
    {"gelu(v, approximate=\"tanh\")", false},
};
#define NACTS (int)(sizeof acts / sizeof *acts)

/* Every activation in one graph: y_k = act_k(v_k), v_k defined by `def` (printf'ed with k, k;
 * NULL: every v_k is the input x). */
static void check_acts(const char *input, const char *def, const char *what, Fill f, double tol_exact,
                       double tol_math, bool identity, int min_fused) {
    Src s = {0};
    double tol[NACTS];
    const char *label[NACTS];
    src_add(&s, input);
    for (int k = 0; k < NACTS; k++) {
        char line[256], v[16];
        if (def) {
            snprintf(line, sizeof line, def, k, k);
            src_add(&s, line);
            snprintf(v, sizeof v, "v%d", k);
        } else {
            snprintf(v, sizeof v, "x");
        }
        const char *arg = strchr(acts[k].call, 'v'); /* no op name has a 'v' */
        snprintf(line, sizeof line, "y%d = %.*s%s%s\n", k, (int)(arg - acts[k].call), acts[k].call, v, arg + 1);
        src_add(&s, line);
        tol[k] = acts[k].exact ? tol_exact : tol_math;
        label[k] = acts[k].call;
        s.n++;
    }
    src_output(&s);
    check(s.text, what, f, tol, label, identity, min_fused);
}

/* The activations applied to the special values themselves, on a graph input (their own
 * kernels) of rank 4 and 2. */
Test(cg_nan, activations_standalone) {
    check_acts("input x: [2, 19, 5, 7]\n", NULL, "[2, 19, 5, 7]", (Fill){SV_ALL, 2}, 0, TOL_MATH, false, 0);
    check_acts("input x: [3, 37]\n", NULL, "[3, 37]", (Fill){SV_ALL, 2}, 0, TOL_MATH, false, 0);
    check_acts("input x: [1, 35, 3, 5]\n", NULL, "huge values", (Fill){SV_HUGE, 2}, 0, TOL_MATH, false, 0);
}

/* Through a depthwise 1×1 conv of weight 1, so the values reach the conv's epilogue unchanged:
 * at -O2 each activation is fused into its conv. */
Test(cg_nan, activations_fused_into_conv) {
    const char *def = "v%d = conv2d(x, 19, kernel=1, groups=19, bias=false)\n";
    check_acts("input x: [2, 19, 5, 7]\n", def, "identity depthwise conv", (Fill){SV_ALL, 2}, 0, TOL_MATH, true,
               NACTS);
    check_acts("input x: [2, 19, 5, 7]\n", def, "identity depthwise conv, huge values", (Fill){SV_HUGE, 2}, 0,
               TOL_MATH, true, NACTS);
}

/* A dense 3×3 conv on inputs with NaN, ±inf and ±1e30: NaN wherever a window holds a NaN or
 * both infinities, ±inf by the weights' signs, through each epilogue. The float sum against the
 * interpreter's double sum: a tolerance even for the exact activations. */
Test(cg_nan, activations_fused_into_dense_conv) {
    check_acts("input x: [1, 21, 6, 7]\n", "v%d = conv2d(x, 35, kernel=3, pad=1)\n", "3x3 conv",
               (Fill){SV_NOHUGE, 9}, 1e-5, 1e-5, false, NACTS);
}

/* Every pool call of `calls` on x, in one graph; all exact (float sums in the same order). */
static void check_pools(const char *shape, const char *const *calls, int n, Fill f, const char *what) {
    Src s = {0};
    double tol[32] = {0};
    cr_assert(n <= 32);
    char line[256];
    snprintf(line, sizeof line, "input x: %s\n", shape);
    src_add(&s, line);
    for (int k = 0; k < n; k++, s.n++) {
        snprintf(line, sizeof line, "y%d = %s\n", k, calls[k]);
        src_add(&s, line);
    }
    src_output(&s);
    char w[256];
    snprintf(w, sizeof w, "%s on %s", what, shape);
    check(s.text, w, f, tol, calls, false, 0);
}

static const char *const pools[] = {
    "maxpool2d(x, kernel=2)",
    "maxpool2d(x, kernel=3, stride=2, pad=1)",
    "maxpool2d(x, kernel=3, stride=2, pad=1, ceil_mode=true)",
    "maxpool2d(x, kernel=2, stride=2, pad=1, ceil_mode=true)",
    "maxpool2d(x, kernel=[2, 3], stride=[1, 2], pad=[1, 1], dilation=[2, 1])",
    "avgpool2d(x, kernel=2)",
    "avgpool2d(x, kernel=3, stride=2, pad=1)",
    "avgpool2d(x, kernel=3, stride=2, pad=1, count_include_pad=false)",
    "avgpool2d(x, kernel=2, stride=2, pad=1, ceil_mode=true)",
    "avgpool2d(x, kernel=3, stride=2, pad=1, ceil_mode=true, count_include_pad=false)",
    "global_avgpool(x)",
    "adaptive_avgpool(x, size=[1, 1])",
    "adaptive_avgpool(x, size=[3, 4])",
    "adaptive_avgpool(x, size=[10, 13])",
};
#define NPOOLS (int)(sizeof pools / sizeof *pools)

Test(cg_nan, pools) {
    check_pools("[2, 19, 7, 9]", pools, NPOOLS, (Fill){SV_ALL, 6}, "special values");
    check_pools("[2, 19, 7, 9]", pools, NPOOLS, (Fill){SV_HUGE, 2}, "huge values");
    /* 256 taps (long sums); sparse specials, so some channels hold none and some one */
    const char *big[] = {"global_avgpool(x)", "maxpool2d(x, kernel=16)", "adaptive_avgpool(x, size=[2, 3])"};
    check_pools("[1, 33, 16, 16]", big, 3, (Fill){SV_ALL, 300}, "sparse");
    check_pools("[1, 33, 16, 16]", big, 3, (Fill){SV_HUGE, 100}, "sparse huge values");
}

/* softmax: a NaN or +inf in a line makes it all NaN, -inf gives 0, every -inf NaN; along the
 * channels (contiguous in NHWC), along the width and the height (lanes across lines), and a
 * rank-2 row. */
Test(cg_nan, softmax) {
    const char *cases[][2] = {{"[2, 37, 3, 5]", "softmax(x)"},
                              {"[2, 5, 3, 21]", "softmax(x, axis=-1)"},
                              {"[2, 5, 3, 21]", "softmax(x, axis=2)"},
                              {"[5, 19]", "softmax(x)"}};
    const double tol[] = {TOL_MATH};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char src[256];
        snprintf(src, sizeof src, "input x: %s\ny0 = %s\noutput y0\n", cases[i][0], cases[i][1]);
        check(src, cases[i][0], (Fill){SV_ALL, 40}, tol, &cases[i][1], false, 0);
        check(src, cases[i][0], (Fill){SV_HUGE, 8}, tol, &cases[i][1], false, 0);
    }
}
