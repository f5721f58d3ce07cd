/* test_interp_ops.c — the reference interpreter on small graphs built with the builder API,
 * whose expected numbers are worked out by hand in the comments. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/interp.h"
#include "ir/ir.h"
#include "testutil.h"

static const SrcLoc L0 = {0};

typedef struct Fx {
    Graph *g;
    Diags d;
} Fx;

static Fx fx_new(void) {
    Fx f = {.g = ir_graph_new("t")};
    diags_init(&f.d);
    return f;
}

static void fx_free(Fx *f) {
    ir_graph_free(f->g);
    diags_free(&f->d);
}

static int input4(Fx *f, const char *name, int64_t n, int64_t c, int64_t h, int64_t w) {
    int64_t s[4] = {n, c, h, w};
    return ir_add_input(f->g, name, 4, s, L0);
}

static int input2(Fx *f, const char *name, int64_t n, int64_t c) {
    int64_t s[2] = {n, c};
    return ir_add_input(f->g, name, 2, s, L0);
}

static Node *node(Fx *f, OpKind op, const char *name, int in0) {
    return ir_add_node(f->g, op, name, &in0, 1, L0);
}

static void infer(Fx *f, Node *n) {
    bool ok = ir_infer_node(f->g, n, &f->d);
    char *msg = diags_to_string(&f->d);
    cr_assert(ok, "shape inference of %s failed: %s", n->name, msg);
    free(msg);
}

/* Weight data is heap memory that the graph frees (ir_graph_free). */
static void set_weight(Fx *f, Node *n, const char *param, const float *v, size_t count) {
    Tensor *t = ir_weight(f->g, n, param);
    cr_assert(t, "%s has no weight %s", n->name, param);
    cr_assert_eq((size_t)ir_numel(t), count, "%s.%s: %lld values expected", n->name, param,
                 (long long)ir_numel(t));
    t->data = malloc(count * sizeof(float));
    memcpy(t->data, v, count * sizeof(float));
}

static void expect_shape(Fx *f, const Node *n, int rank, const int64_t *shape) {
    const Tensor *t = ir_tensor(f->g, n->out);
    cr_assert_eq(t->rank, rank);
    for (int i = 0; i < rank; i++) cr_assert_eq(t->shape[i], shape[i], "dim %d", i);
}

/* Runs the graph with its single output `n`, compares with want (absolute 1e-5 per element). */
static void run_expect(Fx *f, const Node *n, const float *const *inputs, const float *want,
                       size_t count) {
    ir_add_output(f->g, n->out, n->name, L0);
    cr_assert_eq((size_t)ir_numel(ir_tensor(f->g, n->out)), count);
    float *got = malloc(count * sizeof(float));
    float *outs[1] = {got};
    bool ok = interp_run(f->g, inputs, outs, &f->d);
    char *msg = diags_to_string(&f->d);
    cr_assert(ok, "interp_run failed: %s", msg);
    free(msg);
    for (size_t i = 0; i < count; i++)
        cr_expect(fabsf(got[i] - want[i]) <= 1e-5f * fmaxf(1.0f, fabsf(want[i])),
                  "%s[%zu] = %.9g, expected %.9g", n->name, i, got[i], want[i]);
    free(got);
}

static const float ONE_TO_NINE[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

/* x = [[1,2,3],[4,5,6],[7,8,9]], 2x2 kernel of ones, bias 0.5:
 * stride 1, no pad: the 2x2 window sums 1+2+4+5 = 12, 16, 24, 28, plus 0.5. */
Test(interp_ops, conv2d_valid) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 3, 3);
    Node *n = node(&f, OP_CONV2D, "c", x);
    ir_set_int(f.g, n, "out", 1);
    ir_set_pair(f.g, n, "kernel", 2, 2);
    infer(&f, n);
    set_weight(&f, n, "weight", (float[]){1, 1, 1, 1}, 4);
    set_weight(&f, n, "bias", (float[]){0.5f}, 1);
    const float *in[] = {ONE_TO_NINE};
    run_expect(&f, n, in, (float[]){12.5f, 16.5f, 24.5f, 28.5f}, 4);
    fx_free(&f);
}

/* Same kernel, pad 1, stride 2: out (3 + 2 - 2)/2 + 1 = 2. Windows start at -1 and 1:
 * (-1,-1) sees only x[0][0] = 1; (-1,1) sees row 0, cols 1-2: 2+3 = 5;
 * (1,-1) sees col 0, rows 1-2: 4+7 = 11; (1,1) sees 5+6+8+9 = 28. No bias. */
Test(interp_ops, conv2d_pad_stride) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 3, 3);
    Node *n = node(&f, OP_CONV2D, "c", x);
    ir_set_int(f.g, n, "out", 1);
    ir_set_pair(f.g, n, "kernel", 2, 2);
    ir_set_pair(f.g, n, "stride", 2, 2);
    ir_set_pair(f.g, n, "pad", 1, 1);
    ir_set_bool(f.g, n, "bias", false);
    infer(&f, n);
    cr_assert_null(ir_weight(f.g, n, "bias"));
    set_weight(&f, n, "weight", (float[]){1, 1, 1, 1}, 4);
    const float *in[] = {ONE_TO_NINE};
    run_expect(&f, n, in, (float[]){1, 5, 11, 28}, 4);
    fx_free(&f);
}

/* Groups 2, dilation 2 on x = 1..9 per channel (channel 1 = 10 * channel 0), 2x2 kernel of ones
 * dilated to taps at (0,0),(0,2),(2,0),(2,2): channel 0 gives 1+3+7+9 = 20, channel 1 200; the
 * weights scale them by 1 and by 0.5 -> 20 and 100. */
Test(interp_ops, conv2d_groups_dilation) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 2, 3, 3);
    Node *n = node(&f, OP_CONV2D, "c", x);
    ir_set_int(f.g, n, "out", 2);
    ir_set_pair(f.g, n, "kernel", 2, 2);
    ir_set_pair(f.g, n, "dilation", 2, 2);
    ir_set_int(f.g, n, "groups", 2);
    ir_set_bool(f.g, n, "bias", false);
    infer(&f, n);
    set_weight(&f, n, "weight", (float[]){1, 1, 1, 1, 0.5f, 0.5f, 0.5f, 0.5f}, 8);
    float xin[18];
    for (int i = 0; i < 9; i++) xin[i] = ONE_TO_NINE[i], xin[9 + i] = 10 * ONE_TO_NINE[i];
    const float *in[] = {xin};
    run_expect(&f, n, in, (float[]){20, 100}, 2);
    fx_free(&f);
}

/* x = [[1,2],[3,4]], kernel [[1,10],[100,1000]], stride 1: each input pixel paints the kernel
 * scaled by its value at its offset; overlaps add up:
 *   out[0] = 1, 1*10 + 2*1 = 12, 20;  out[1] = 1*100 + 3 = 103, 1000+200+30+4 = 1234, 2000+40 =
 * 2040; out[2] = 300, 3000 + 400 = 3400, 4000. */
Test(interp_ops, conv_transpose2d_overlap) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 2, 2);
    Node *n = node(&f, OP_CONV_TRANSPOSE2D, "t", x);
    ir_set_int(f.g, n, "out", 1);
    ir_set_pair(f.g, n, "kernel", 2, 2);
    ir_set_bool(f.g, n, "bias", false);
    infer(&f, n);
    expect_shape(&f, n, 4, (int64_t[]){1, 1, 3, 3});
    set_weight(&f, n, "weight", (float[]){1, 10, 100, 1000}, 4);
    const float *in[] = {(float[]){1, 2, 3, 4}};
    run_expect(&f, n, in, (float[]){1, 12, 20, 103, 1234, 2040, 300, 3400, 4000}, 9);
    fx_free(&f);
}

/* Stride 2 paints disjoint 2x2 blocks into a 4x4 map; pad 1 crops one row/column on each side,
 * leaving the centre 2x2: [[1000, 200], [30, 4]] (shape (2-1)*2 - 2 + 1*(2-1) + 1 = 2), plus
 * the bias 0.25. */
Test(interp_ops, conv_transpose2d_stride_pad) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 2, 2);
    Node *n = node(&f, OP_CONV_TRANSPOSE2D, "t", x);
    ir_set_int(f.g, n, "out", 1);
    ir_set_pair(f.g, n, "kernel", 2, 2);
    ir_set_pair(f.g, n, "stride", 2, 2);
    ir_set_pair(f.g, n, "pad", 1, 1);
    infer(&f, n);
    expect_shape(&f, n, 4, (int64_t[]){1, 1, 2, 2});
    set_weight(&f, n, "weight", (float[]){1, 10, 100, 1000}, 4);
    set_weight(&f, n, "bias", (float[]){0.25f}, 1);
    const float *in[] = {(float[]){1, 2, 3, 4}};
    run_expect(&f, n, in, (float[]){1000.25f, 200.25f, 30.25f, 4.25f}, 4);
    fx_free(&f);
}

/* x = [1, 2, 3] (one row), W = [[1, 0, -1], [0.5, 0.5, 0.5]], b = [1, -1]:
 * y = [1 - 3 + 1, 3 - 1] = [-1, 2]. */
Test(interp_ops, linear) {
    Fx f = fx_new();
    int x = input2(&f, "x", 1, 3);
    Node *n = node(&f, OP_LINEAR, "fc", x);
    ir_set_int(f.g, n, "out", 2);
    infer(&f, n);
    set_weight(&f, n, "weight", (float[]){1, 0, -1, 0.5f, 0.5f, 0.5f}, 6);
    set_weight(&f, n, "bias", (float[]){1, -1}, 2);
    const float *in[] = {(float[]){1, 2, 3}};
    run_expect(&f, n, in, (float[]){-1, 2}, 2);
    fx_free(&f);
}

/* x = [3, 5], mean [1, 1], var + eps = [4, 1], weight [2, 1], bias [0.5, -1]:
 * (3-1)/2*2 + 0.5 = 2.5, (5-1)/1*1 - 1 = 3. */
Test(interp_ops, batchnorm_rank2) {
    Fx f = fx_new();
    int x = input2(&f, "x", 1, 2);
    Node *n = node(&f, OP_BATCHNORM, "bn", x);
    ir_set_float(f.g, n, "eps", 0.5);
    infer(&f, n);
    set_weight(&f, n, "weight", (float[]){2, 1}, 2);
    set_weight(&f, n, "bias", (float[]){0.5f, -1}, 2);
    set_weight(&f, n, "running_mean", (float[]){1, 1}, 2);
    set_weight(&f, n, "running_var", (float[]){3.5f, 0.5f}, 2);
    const float *in[] = {(float[]){3, 5}};
    run_expect(&f, n, in, (float[]){2.5f, 3}, 2);
    fx_free(&f);
}

/* All inputs negative, kernel 2, stride 2, pad 1: the padding is -inf, so each window's
 * maximum is a real element: (-1,-1) -> x00 = -1; (-1,1) -> max(-2,-3) = -2;
 * (1,-1) -> max(-4,-7) = -4; (1,1) -> max(-5,-6,-8,-9) = -5 (zero padding would give 0). */
Test(interp_ops, maxpool_pad_is_minus_infinity) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 3, 3);
    Node *n = node(&f, OP_MAXPOOL2D, "p", x);
    ir_set_pair(f.g, n, "kernel", 2, 2);
    ir_set_pair(f.g, n, "pad", 1, 1);
    infer(&f, n);
    expect_shape(&f, n, 4, (int64_t[]){1, 1, 2, 2});
    const float *in[] = {(float[]){-1, -2, -3, -4, -5, -6, -7, -8, -9}};
    run_expect(&f, n, in, (float[]){-1, -2, -4, -5}, 4);
    fx_free(&f);
}

/* x = [[1,2],[3,4]], kernel 2, stride 1, pad 1 -> 3x3 windows starting at -1, 0, 1.
 * count_include_pad: each window clipped to the padded input [-1, 3) keeps 2x2 = 4:
 *   corners 1/4, 2/4, 3/4, 4/4; edges (1+2)/4, (1+3)/4, (2+4)/4, (3+4)/4; centre 10/4. */
Test(interp_ops, avgpool_count_include_pad) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 2, 2);
    Node *n = node(&f, OP_AVGPOOL2D, "p", x);
    ir_set_pair(f.g, n, "kernel", 2, 2);
    ir_set_pair(f.g, n, "stride", 1, 1);
    ir_set_pair(f.g, n, "pad", 1, 1);
    infer(&f, n);
    const float *in[] = {(float[]){1, 2, 3, 4}};
    run_expect(&f, n, in, (float[]){0.25f, 0.75f, 0.5f, 1.0f, 2.5f, 1.5f, 0.75f, 1.75f, 1.0f}, 9);
    fx_free(&f);
}

/* Same, count_include_pad=false: divide by the real elements: corners 1/1, 2/1, 3/1, 4/1;
 * edges 3/2, 4/2, 6/2, 7/2; centre 10/4. */
Test(interp_ops, avgpool_count_exclude_pad) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 2, 2);
    Node *n = node(&f, OP_AVGPOOL2D, "p", x);
    ir_set_pair(f.g, n, "kernel", 2, 2);
    ir_set_pair(f.g, n, "stride", 1, 1);
    ir_set_pair(f.g, n, "pad", 1, 1);
    ir_set_bool(f.g, n, "count_include_pad", false);
    infer(&f, n);
    const float *in[] = {(float[]){1, 2, 3, 4}};
    run_expect(&f, n, in, (float[]){1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4}, 9);
    fx_free(&f);
}

/* x = 1..9 (3x3), kernel 2, stride 2 (its default), ceil_mode: out = ceil((3-2)/2)+1 = 2 and the
 * last window starts at 2 < 3, so it is kept. Its overhang does not count even with
 * count_include_pad: (1+2+4+5)/4 = 3, (3+6)/2 = 4.5, (7+8)/2 = 7.5, 9/1 = 9. */
Test(interp_ops, avgpool_ceil_mode_overhang) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 3, 3);
    Node *n = node(&f, OP_AVGPOOL2D, "p", x);
    ir_set_pair(f.g, n, "kernel", 2, 2);
    ir_set_bool(f.g, n, "ceil_mode", true);
    infer(&f, n);
    expect_shape(&f, n, 4, (int64_t[]){1, 1, 2, 2});
    const float *in[] = {ONE_TO_NINE};
    run_expect(&f, n, in, (float[]){3, 4.5f, 7.5f, 9}, 4);
    fx_free(&f);
}

/* W 5 -> 3: windows [floor(i*5/3), ceil((i+1)*5/3)) = [0,2), [1,4), [3,5) over [1,2,3,4,5]:
 * 1.5, 3, 4.5. */
Test(interp_ops, adaptive_avgpool_windows) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 1, 5);
    Node *n = node(&f, OP_ADAPTIVE_AVGPOOL, "p", x);
    ir_set_pair(f.g, n, "size", 1, 3);
    infer(&f, n);
    const float *in[] = {(float[]){1, 2, 3, 4, 5}};
    run_expect(&f, n, in, (float[]){1.5f, 3, 4.5f}, 3);
    fx_free(&f);
}

/* Nearest, W 5 -> 7: scale = 5/7 in float, source floor(d * scale) for d = 0..6:
 * 0, 0.71, 1.43, 2.14, 2.86, 3.57, 4.29 -> 0, 0, 1, 2, 2, 3, 4. */
Test(interp_ops, upsample_nearest_size) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 1, 5);
    Node *n = node(&f, OP_UPSAMPLE, "u", x);
    ir_set_pair(f.g, n, "size", 1, 7);
    infer(&f, n);
    const float *in[] = {(float[]){10, 11, 12, 13, 14}};
    run_expect(&f, n, in, (float[]){10, 10, 11, 12, 12, 13, 14}, 7);
    fx_free(&f);
}

/* Bilinear, W 2 -> 4 over [0, 4], half-pixel: src = (d + 0.5) * 0.5 - 0.5 = -0.25 (clamped to
 * 0), 0.25, 0.75, 1.25 (index 1 is the last: both taps are 1) -> 0, 1, 3, 4. */
Test(interp_ops, upsample_bilinear_half_pixel) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 1, 2);
    Node *n = node(&f, OP_UPSAMPLE, "u", x);
    ir_set_pair(f.g, n, "size", 1, 4);
    ir_set_str(f.g, n, "mode", "bilinear");
    infer(&f, n);
    const float *in[] = {(float[]){0, 4}};
    run_expect(&f, n, in, (float[]){0, 1, 3, 4}, 4);
    fx_free(&f);
}

/* align_corners: src = d * (2-1)/(4-1) = 0, 1/3, 2/3, 1 over [0, 4] -> 0, 4/3, 8/3, 4. */
Test(interp_ops, upsample_bilinear_align_corners) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 1, 2);
    Node *n = node(&f, OP_UPSAMPLE, "u", x);
    ir_set_pair(f.g, n, "size", 1, 4);
    ir_set_str(f.g, n, "mode", "bilinear");
    ir_set_bool(f.g, n, "align_corners", true);
    infer(&f, n);
    const float *in[] = {(float[]){0, 4}};
    run_expect(&f, n, in, (float[]){0, 4.0f / 3, 8.0f / 3, 4}, 4);
    fx_free(&f);
}

/* softmax([1, 2, 3]) = e^k / (e + e^2 + e^3) = 0.0900306, 0.2447285, 0.6652410; adding 1000
 * must give the same (the max is subtracted first). */
Test(interp_ops, softmax_stable) {
    Fx f = fx_new();
    int x = input2(&f, "x", 2, 3);
    Node *n = node(&f, OP_SOFTMAX, "s", x);
    ir_set_int(f.g, n, "axis", -1);
    infer(&f, n);
    const float *in[] = {(float[]){1, 2, 3, 1001, 1002, 1003}};
    run_expect(
        &f, n, in,
        (float[]){0.09003057f, 0.24472847f, 0.66524096f, 0.09003057f, 0.24472847f, 0.66524096f}, 6);
    fx_free(&f);
}

/* a = [[[1,2],[3,4]], [[5,6],[7,8]]] (N=1, C=2, 2x2), b = [10, 20] as [1, 2, 1, 1]:
 * sub(b, a) broadcasts the left operand: 10-1 .. 10-4 = 9 8 7 6, 20-5 .. 20-8 = 15 14 13 12. */
Test(interp_ops, sub_broadcast_left) {
    Fx f = fx_new();
    int a = input4(&f, "a", 1, 2, 2, 2);
    int b = input4(&f, "b", 1, 2, 1, 1);
    int ins[2] = {b, a};
    Node *n = ir_add_node(f.g, OP_SUB, "s", ins, 2, L0);
    infer(&f, n);
    const float *in[] = {(float[]){1, 2, 3, 4, 5, 6, 7, 8}, (float[]){10, 20}};
    run_expect(&f, n, in, (float[]){9, 8, 7, 6, 15, 14, 13, 12}, 8);
    fx_free(&f);
}

/* x = [-1, 2 | -3, 4] as [1, 2, 1, 2], slopes [0.1, 0.5] per channel: -0.1, 2, -1.5, 4. */
Test(interp_ops, prelu_per_channel) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 2, 1, 2);
    Node *n = node(&f, OP_PRELU, "p", x);
    ir_set_int(f.g, n, "num_parameters", 2);
    infer(&f, n);
    set_weight(&f, n, "weight", (float[]){0.1f, 0.5f}, 2);
    const float *in[] = {(float[]){-1, 2, -3, 4}};
    run_expect(&f, n, in, (float[]){-0.1f, 2, -1.5f, 4}, 4);
    fx_free(&f);
}

/* Row [1, 2, 3], reflect pad left 2, right 1: [3, 2 | 1, 2, 3 | 2]. */
Test(interp_ops, pad_reflect) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 1, 1, 3);
    Node *n = node(&f, OP_PAD, "p", x);
    ir_set_ints(f.g, n, "pad", (int64_t[]){2, 1, 0, 0}, 4);
    ir_set_str(f.g, n, "mode", "reflect");
    infer(&f, n);
    const float *in[] = {(float[]){1, 2, 3}};
    run_expect(&f, n, in, (float[]){3, 2, 1, 2, 3, 2}, 6);
    fx_free(&f);
}

/* Channels [0, 1, 2, 3], groups 2: view [2 groups][2], transpose -> [0, 2, 1, 3]. */
Test(interp_ops, channel_shuffle) {
    Fx f = fx_new();
    int x = input4(&f, "x", 1, 4, 1, 1);
    Node *n = node(&f, OP_CHANNEL_SHUFFLE, "s", x);
    ir_set_int(f.g, n, "groups", 2);
    infer(&f, n);
    const float *in[] = {(float[]){0, 1, 2, 3}};
    run_expect(&f, n, in, (float[]){0, 2, 1, 3}, 4);
    fx_free(&f);
}

/* One activation at a time on x = [-4, -1, 0, 1, 4]:
 *   gelu erf: x Φ(x): Φ(1) = 0.8413447, Φ(-1) = 0.1586553, Φ(4) = 0.9999683
 *   hardswish: x relu6(x+3)/6: 0, -1*2/6, 0, 1*4/6, 4
 *   elu alpha 0.5: 0.5 (e^-4 - 1) = -0.4908422, 0.5 (e^-1 - 1) = -0.3160603, 0, 1, 4
 *   clamp min=0.5 only: 0.5 0.5 0.5 1 4 */
static void act_case(OpKind op, const char *attr, double v, const float want[5]) {
    Fx f = fx_new();
    int x = input2(&f, "x", 1, 5);
    Node *n = node(&f, op, "a", x);
    if (attr) ir_set_float(f.g, n, attr, v);
    infer(&f, n);
    const float *in[] = {(float[]){-4, -1, 0, 1, 4}};
    run_expect(&f, n, in, want, 5);
    fx_free(&f);
}

Test(interp_ops, activations) {
    act_case(OP_GELU, NULL, 0,
             (float[]){-4 * 3.1671242e-05f, -0.15865525f, 0, 0.84134475f, 4 * 0.99996833f});
    act_case(OP_HARDSWISH, NULL, 0, (float[]){0, -1.0f / 3, 0, 2.0f / 3, 4});
    act_case(OP_HARDSIGMOID, NULL, 0, (float[]){0, 1.0f / 3, 0.5f, 2.0f / 3, 1});
    act_case(OP_ELU, "alpha", 0.5, (float[]){-0.49084218f, -0.31606028f, 0, 1, 4});
    act_case(OP_CLAMP, "min", 0.5, (float[]){0.5f, 0.5f, 0.5f, 1, 4});
    act_case(OP_CLAMP, "max", -2, (float[]){-4, -2, -2, -2, -2});
    act_case(OP_LEAKY_RELU, "slope", 0.25, (float[]){-1, -0.25f, 0, 1, 4});
    act_case(OP_RELU6, NULL, 0, (float[]){0, 0, 0, 1, 4});
    act_case(OP_SILU, NULL, 0,
             (float[]){-4 * 0.01798621f, -0.26894142f, 0, 0.73105858f, 4 * 0.98201379f});
}

/* gelu's tanh form at 1: 0.5 (1 + tanh(√(2/π) · 1.044715)) = 0.8411920. */
Test(interp_ops, gelu_tanh_form) {
    Fx f = fx_new();
    int x = input2(&f, "x", 1, 1);
    Node *n = node(&f, OP_GELU, "a", x);
    ir_set_str(f.g, n, "approximate", "tanh");
    infer(&f, n);
    const float *in[] = {(float[]){1}};
    run_expect(&f, n, in, (float[]){0.84119199f}, 1);
    fx_free(&f);
}

/* A chain with a dead node and a multi-reader tensor: y = relu(x) read by both add operands,
 * z = add(y, y); the dead node's output is never read. x = [-1, 2] -> y = [0, 2] -> z = [0, 4]. */
Test(interp_ops, run_chain_skips_dead_nodes) {
    Fx f = fx_new();
    int x = input2(&f, "x", 1, 2);
    Node *dead = node(&f, OP_SIGMOID, "unused", x);
    infer(&f, dead);
    dead->dead = true;
    Node *y = node(&f, OP_RELU, "y", x);
    infer(&f, y);
    int ins[2] = {y->out, y->out};
    Node *z = ir_add_node(f.g, OP_ADD, "z", ins, 2, L0);
    infer(&f, z);
    const float *in[] = {(float[]){-1, 2}};
    run_expect(&f, z, in, (float[]){0, 4}, 2);
    fx_free(&f);
}

/* Two outputs in declaration order; one of them is also read by a later node. */
Test(interp_ops, run_two_outputs) {
    Fx f = fx_new();
    int x = input2(&f, "x", 1, 3);
    Node *a = node(&f, OP_TANH, "a", x);
    infer(&f, a);
    Node *b = node(&f, OP_RELU, "b", a->out);
    infer(&f, b);
    ir_add_output(f.g, b->out, "b", L0);
    ir_add_output(f.g, a->out, "a", L0);
    float ob[3], oa[3];
    float *outs[2] = {ob, oa};
    const float *in[] = {(float[]){-1, 0, 2}};
    cr_assert(interp_run(f.g, in, outs, &f.d));
    float ta[3] = {tanhf(-1), 0, tanhf(2)}, tb[3] = {0, 0, tanhf(2)};
    cr_expect_leq(tu_rel_err(oa, ta, 3), 1e-6);
    cr_expect_leq(tu_rel_err(ob, tb, 3), 1e-6);
    fx_free(&f);
}

/* A weight left unbound is reported (with its name), not dereferenced. */
Test(interp_ops, run_reports_unbound_weight) {
    Fx f = fx_new();
    int x = input2(&f, "x", 1, 3);
    Node *n = node(&f, OP_LINEAR, "fc", x);
    ir_set_int(f.g, n, "out", 2);
    infer(&f, n);
    set_weight(&f, n, "weight", (float[]){1, 2, 3, 4, 5, 6}, 6);
    ir_add_output(f.g, n->out, "fc", L0);
    float out[2] = {0};
    float *outs[1] = {out};
    const float *in[] = {(float[]){1, 2, 3}};
    cr_assert_not(interp_run(f.g, in, outs, &f.d));
    cr_assert_geq(f.d.nerrors, 1);
    char *msg = diags_to_string(&f.d);
    cr_expect(strstr(msg, "fc.bias") != NULL, "message: %s", msg);
    free(msg);
    fx_free(&f);
}
