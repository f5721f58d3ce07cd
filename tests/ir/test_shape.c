/* test_shape.c — shape inference of every op against shapes PyTorch 1.13 computes, the
 * canonicalised attributes, weight creation and checks, every error message, MACs. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "testutil.h"

static Graph *g;
static Diags d;
static const SrcLoc LOC = {"t.net", 3, 5};

static void setup(void) {
    g = ir_graph_new("t");
    diags_init(&d);
}
static void teardown(void) {
    ir_graph_free(g);
    diags_free(&d);
}
TestSuite(shape, .init = setup, .fini = teardown);

/* ---- helpers --------------------------------------------------------------------------- */

static int input(int rank, const int64_t *shape) { return ir_add_input(g, "x", rank, shape, LOC); }
#define IN(...) input((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})

static Node *node1(OpKind op, const char *name, int x) { return ir_add_node(g, op, name, &x, 1, LOC); }
static Node *node2(OpKind op, const char *name, int a, int b) {
    int in[2] = {a, b};
    return ir_add_node(g, op, name, in, 2, LOC);
}

static void infer_ok(Node *n) {
    bool ok = ir_infer_node(g, n, &d);
    if (!ok) {
        char *s = diags_to_string(&d);
        cr_assert_fail("unexpected error: %s", s);
    }
    cr_assert_eq(d.nerrors, 0);
}

static void check_dims(const char *what, int rank, const int64_t *got, int want_rank, const int64_t *want) {
    char a[256], b[256];
    ir_dims_str(rank, got, a, sizeof a);
    ir_dims_str(want_rank, want, b, sizeof b);
    cr_assert_str_eq(a, b, "%s: got %s, expected %s", what, a, b);
}
#define NDIMS(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
/* the node's output shape */
#define OUT_IS(n, ...)                                                                           \
    do {                                                                                         \
        const Tensor *t_ = ir_tensor(g, (n)->out);                                               \
        check_dims("output", t_->rank, t_->shape, NDIMS(__VA_ARGS__), (int64_t[]){__VA_ARGS__}); \
    } while (0)
/* a weight tensor exists with this name and shape */
#define WEIGHT_IS(n, param, wname, ...)                                                          \
    do {                                                                                         \
        const Tensor *w_ = ir_weight(g, (n), (param));                                           \
        cr_assert(w_, "no %s", (param));                                                         \
        cr_assert_str_eq(w_->name, (wname));                                                     \
        cr_assert_eq(w_->kind, TK_WEIGHT);                                                       \
        cr_assert_eq(w_->producer, -1);                                                          \
        check_dims(wname, w_->rank, w_->shape, NDIMS(__VA_ARGS__), (int64_t[]){__VA_ARGS__});   \
    } while (0)

static void pair_is(const Node *n, const char *attr, int64_t a, int64_t b) {
    int64_t v[2];
    ir_attr_pair(n, attr, v);
    cr_assert(v[0] == a && v[1] == b, "%s = [%lld, %lld], expected [%lld, %lld]", attr, (long long)v[0],
              (long long)v[1], (long long)a, (long long)b);
}

/* inference fails with exactly this one error message, at the node */
static void infer_fails(Node *n, const char *msg) {
    cr_assert_not(ir_infer_node(g, n, &d), "expected the error: %s", msg);
    cr_assert_eq(d.nerrors, 1);
    cr_assert_eq(d.len, 1);
    cr_assert_eq(d.items[0].level, DIAG_ERROR);
    cr_assert_str_eq(d.items[0].msg, msg);
    cr_assert_eq(d.items[0].loc.line, LOC.line);
    cr_assert_eq(d.items[0].loc.col, LOC.col);
}

static Node *conv(int x, int64_t out, int64_t k) {
    Node *n = node1(OP_CONV2D, "c", x);
    ir_set_int(g, n, "out", out);
    ir_set_int(g, n, "kernel", k);
    return n;
}

/* ---- conv2d ---------------------------------------------------------------------------- */

Test(shape, conv2d_stride_pad) {
    /* F.conv2d(zeros(1,3,224,224), zeros(64,3,7,7), stride=2, padding=3) -> [1, 64, 112, 112] */
    Node *n = conv(IN(1, 3, 224, 224), 64, 7);
    ir_set_int(g, n, "stride", 2);
    ir_set_int(g, n, "pad", 3);
    infer_ok(n);
    OUT_IS(n, 1, 64, 112, 112);
    WEIGHT_IS(n, "weight", "c.weight", 64, 3, 7, 7);
    WEIGHT_IS(n, "bias", "c.bias", 64);
    /* by hand: N·OC·OH·OW·(IC/groups)·KH·KW = 1·64·112·112·3·7·7 */
    cr_assert_eq(ir_node_macs(g, n), 118013952);
    cr_assert_eq(ir_node_weight_count(g, n), 64 * 3 * 7 * 7 + 64);
}

Test(shape, conv2d_pairs_dilation) {
    /* F.conv2d(zeros(2,8,17,23), zeros(16,8,3,5), stride=(2,1), padding=(1,2), dilation=(2,3))
     * -> [2, 16, 8, 15] */
    Node *n = node1(OP_CONV2D, "c", IN(2, 8, 17, 23));
    ir_set_int(g, n, "out", 16);
    ir_set_pair(g, n, "kernel", 3, 5);
    ir_set_pair(g, n, "stride", 2, 1);
    ir_set_pair(g, n, "pad", 1, 2);
    ir_set_pair(g, n, "dilation", 2, 3);
    infer_ok(n);
    OUT_IS(n, 2, 16, 8, 15);
    WEIGHT_IS(n, "weight", "c.weight", 16, 8, 3, 5);
    cr_assert_eq(ir_node_macs(g, n), 2LL * 16 * 8 * 15 * 8 * 3 * 5);
}

Test(shape, conv2d_groups) {
    /* F.conv2d(zeros(1,32,28,28), zeros(64,8,3,3), padding=1, groups=4) -> [1, 64, 28, 28] */
    Node *n = conv(IN(1, 32, 28, 28), 64, 3);
    ir_set_int(g, n, "pad", 1);
    ir_set_int(g, n, "groups", 4);
    infer_ok(n);
    OUT_IS(n, 1, 64, 28, 28);
    WEIGHT_IS(n, "weight", "c.weight", 64, 8, 3, 3);
    /* 1·64·28·28·(32/4)·3·3 */
    cr_assert_eq(ir_node_macs(g, n), 3612672);
}

Test(shape, conv2d_depthwise_no_bias) {
    /* F.conv2d(zeros(1,32,28,28), zeros(32,1,3,3), stride=2, padding=1, groups=32) -> [1, 32, 14, 14] */
    Node *n = conv(IN(1, 32, 28, 28), 32, 3);
    ir_set_int(g, n, "stride", 2);
    ir_set_int(g, n, "pad", 1);
    ir_set_int(g, n, "groups", 32);
    ir_set_bool(g, n, "bias", false);
    infer_ok(n);
    OUT_IS(n, 1, 32, 14, 14);
    WEIGHT_IS(n, "weight", "c.weight", 32, 1, 3, 3);
    cr_assert_null(ir_weight(g, n, "bias"));
    cr_assert_eq(ir_node_weight_count(g, n), 32 * 9);
}

Test(shape, conv2d_nonsquare_and_whole_input) {
    /* F.conv2d(zeros(1,16,10,10), zeros(8,16,1,3), padding=(0,1)) -> [1, 8, 10, 10] */
    Node *n = node1(OP_CONV2D, "a", IN(1, 16, 10, 10));
    ir_set_int(g, n, "out", 8);
    ir_set_pair(g, n, "kernel", 1, 3);
    ir_set_pair(g, n, "pad", 0, 1);
    infer_ok(n);
    OUT_IS(n, 1, 8, 10, 10);
    WEIGHT_IS(n, "weight", "a.weight", 8, 16, 1, 3);
    /* F.conv2d(zeros(1,3,8,8), zeros(4,3,8,8)) -> [1, 4, 1, 1]: the kernel covers the input */
    Node *m = conv(IN(1, 3, 8, 8), 4, 8);
    infer_ok(m);
    OUT_IS(m, 1, 4, 1, 1);
    /* F.conv2d(zeros(1,3,10,10), zeros(4,3,3,3), stride=3) -> [1, 4, 3, 3] (floor) */
    Node *k = conv(IN(1, 3, 10, 10), 4, 3);
    ir_set_int(g, k, "stride", 3);
    infer_ok(k);
    OUT_IS(k, 1, 4, 3, 3);
}

Test(shape, conv2d_errors_rank) {
    infer_fails(conv(IN(1, 3, 224), 8, 3), "conv2d: input must be [N, C, H, W], got [1, 3, 224]");
}
Test(shape, conv2d_errors_out) {
    infer_fails(conv(IN(1, 3, 8, 8), 0, 3), "conv2d: out must be at least 1, got 0");
}
Test(shape, conv2d_errors_kernel) {
    Node *n = conv(IN(1, 3, 8, 8), 8, 3);
    ir_set_pair(g, n, "kernel", 0, 3);
    infer_fails(n, "conv2d: kernel must be at least 1, got [0, 3]");
}
Test(shape, conv2d_errors_stride) {
    Node *n = conv(IN(1, 3, 8, 8), 8, 3);
    ir_set_pair(g, n, "stride", 1, 0);
    infer_fails(n, "conv2d: stride must be at least 1, got [1, 0]");
}
Test(shape, conv2d_errors_pad) {
    Node *n = conv(IN(1, 3, 8, 8), 8, 3);
    ir_set_int(g, n, "pad", -1);
    infer_fails(n, "conv2d: pad must be at least 0, got [-1, -1]");
}
Test(shape, conv2d_errors_dilation) {
    Node *n = conv(IN(1, 3, 8, 8), 8, 3);
    ir_set_int(g, n, "dilation", 0);
    infer_fails(n, "conv2d: dilation must be at least 1, got [0, 0]");
}
Test(shape, conv2d_errors_groups_zero) {
    Node *n = conv(IN(1, 3, 8, 8), 8, 3);
    ir_set_int(g, n, "groups", 0);
    infer_fails(n, "conv2d: groups must be at least 1, got 0");
}
Test(shape, conv2d_errors_groups_in) {
    Node *n = conv(IN(1, 6, 8, 8), 8, 3);
    ir_set_int(g, n, "groups", 4);
    infer_fails(n, "conv2d: groups=4 does not divide the 6 input channels of [1, 6, 8, 8]");
}
Test(shape, conv2d_errors_groups_out) {
    Node *n = conv(IN(1, 6, 8, 8), 8, 3);
    ir_set_int(g, n, "groups", 3);
    infer_fails(n, "conv2d: groups=3 does not divide out=8");
}
Test(shape, conv2d_errors_empty) {
    /* PyTorch: "Kernel size can't be greater than actual input size" */
    infer_fails(conv(IN(1, 3, 2, 2), 8, 3),
                "conv2d: input [1, 3, 2, 2] gives an empty output with kernel [3, 3], stride [1, 1], "
                "pad [0, 0], dilation [1, 1]");
}
Test(shape, conv2d_errors_dilated_kernel_too_big) {
    /* H: the padded 3 + 2·1 = 5 is less than the dilated kernel's span 3·(3-1)+1 = 7 */
    Node *n = conv(IN(1, 3, 3, 9), 8, 3);
    ir_set_int(g, n, "pad", 1);
    ir_set_int(g, n, "dilation", 3);
    infer_fails(n, "conv2d: input [1, 3, 3, 9] gives an empty output with kernel [3, 3], stride [1, 1], "
                   "pad [1, 1], dilation [3, 3]");
}
Test(shape, conv2d_errors_huge_pad) {
    Node *n = conv(IN(1, 1, 4, 4), 1, 1);
    ir_set_int(g, n, "pad", 4611686018427387904LL); /* 2^62: H + 2p overflows int64 */
    infer_fails(n, "conv2d: input [1, 1, 4, 4] gives an output too large for 64 bits with kernel [1, 1], "
                   "stride [1, 1], pad [4611686018427387904, 4611686018427387904], dilation [1, 1]");
}
Test(shape, conv2d_errors_huge_output) {
    infer_fails(conv(IN(1, 1, 2147483648LL, 2147483648LL), 8, 1),
                "conv2d: the output [1, 8, 2147483648, 2147483648] has more elements than fit in 64 bits");
}
Test(shape, conv2d_errors_missing_out) {
    Node *n = node1(OP_CONV2D, "c", IN(1, 3, 8, 8));
    ir_set_int(g, n, "kernel", 3);
    infer_fails(n, "conv2d: missing attribute 'out'");
}

/* ---- existing weights (re-inference after a pass, the verifier) ----------------------------- */

Test(shape, weight_shape_mismatch) {
    int x = IN(1, 512);
    Node *n = node1(OP_LINEAR, "fc", x);
    ir_set_int(g, n, "out", 10);
    infer_ok(n);
    int nt = g->tensors.len;
    infer_ok(n); /* a second inference reuses the weights */
    cr_assert_eq(g->tensors.len, nt);
    ir_tensor(g, x)->shape[1] = 1000;
    infer_fails(n, "linear: weight 'fc.weight' has shape [10, 512], expected [10, 1000] for input [1, 1000]");
}

Test(shape, bias_present_but_disabled) {
    Node *n = conv(IN(1, 3, 8, 8), 4, 3);
    infer_ok(n);
    ir_set_bool(g, n, "bias", false);
    infer_fails(n, "verifier: conv2d 'c' has a bias tensor 'c.bias' but bias=false");
}

Test(shape, weight_not_a_weight) {
    int x = IN(1, 4);
    Node *n = node1(OP_PRELU, "p", x);
    n->w[0] = x;
    infer_fails(n, "verifier: prelu 'p' uses 'x' as its weight, which is not a weight");
}

/* ---- conv_transpose2d ------------------------------------------------------------------- */

static Node *convt(int x, int64_t out, int64_t k) {
    Node *n = node1(OP_CONV_TRANSPOSE2D, "up", x);
    ir_set_int(g, n, "out", out);
    ir_set_int(g, n, "kernel", k);
    return n;
}

Test(shape, conv_transpose2d_stride) {
    /* F.conv_transpose2d(zeros(1,16,7,7), zeros(16,8,4,4), stride=2, padding=1) -> [1, 8, 14, 14] */
    Node *n = convt(IN(1, 16, 7, 7), 8, 4);
    ir_set_int(g, n, "stride", 2);
    ir_set_int(g, n, "pad", 1);
    infer_ok(n);
    OUT_IS(n, 1, 8, 14, 14);
    WEIGHT_IS(n, "weight", "up.weight", 16, 8, 4, 4);
    WEIGHT_IS(n, "bias", "up.bias", 8);
    /* by hand: N·IC·IH·IW·(OC/groups)·KH·KW = 1·16·7·7·8·4·4 */
    cr_assert_eq(ir_node_macs(g, n), 100352);
}

Test(shape, conv_transpose2d_groups_output_pad) {
    /* F.conv_transpose2d(zeros(2,8,5,6), zeros(8,6,3,2), stride=(3,2), padding=(1,0),
     *                    output_padding=(2,1), groups=2) -> [2, 12, 15, 13] */
    Node *n = node1(OP_CONV_TRANSPOSE2D, "up", IN(2, 8, 5, 6));
    ir_set_int(g, n, "out", 12);
    ir_set_pair(g, n, "kernel", 3, 2);
    ir_set_pair(g, n, "stride", 3, 2);
    ir_set_pair(g, n, "pad", 1, 0);
    ir_set_pair(g, n, "output_pad", 2, 1);
    ir_set_int(g, n, "groups", 2);
    infer_ok(n);
    OUT_IS(n, 2, 12, 15, 13);
    WEIGHT_IS(n, "weight", "up.weight", 8, 6, 3, 2);
    cr_assert_eq(ir_node_macs(g, n), 2LL * 8 * 5 * 6 * 6 * 3 * 2);
}

Test(shape, conv_transpose2d_dilation_output_pad) {
    /* F.conv_transpose2d(zeros(1,4,6,6), zeros(4,4,3,3), output_padding=1, dilation=2) -> [1, 4, 11, 11]
     * (output_pad 1 >= stride 1 is allowed because it is below the dilation) */
    Node *n = convt(IN(1, 4, 6, 6), 4, 3);
    ir_set_int(g, n, "output_pad", 1);
    ir_set_int(g, n, "dilation", 2);
    infer_ok(n);
    OUT_IS(n, 1, 4, 11, 11);
}

Test(shape, conv_transpose2d_errors_output_pad) {
    Node *n = convt(IN(1, 4, 6, 6), 4, 3);
    ir_set_int(g, n, "stride", 2);
    ir_set_int(g, n, "output_pad", 2);
    infer_fails(n, "conv_transpose2d: output_pad [2, 2] must be smaller than stride [2, 2] or dilation [1, 1]");
}
Test(shape, conv_transpose2d_errors_empty) {
    Node *n = convt(IN(1, 3, 1, 1), 4, 3);
    ir_set_int(g, n, "pad", 2);
    infer_fails(n, "conv_transpose2d: input [1, 3, 1, 1] gives an empty output with kernel [3, 3], "
                   "stride [1, 1], pad [2, 2], dilation [1, 1], output_pad [0, 0]");
}
Test(shape, conv_transpose2d_errors_groups) {
    Node *n = convt(IN(1, 4, 6, 6), 6, 3);
    ir_set_int(g, n, "groups", 4);
    infer_fails(n, "conv_transpose2d: groups=4 does not divide out=6");
}

/* ---- linear, batchnorm, prelu ------------------------------------------------------------- */

Test(shape, linear) {
    /* F.linear(zeros(4,512), zeros(1000,512)) -> [4, 1000] */
    Node *n = node1(OP_LINEAR, "fc", IN(4, 512));
    ir_set_int(g, n, "out", 1000);
    infer_ok(n);
    OUT_IS(n, 4, 1000);
    WEIGHT_IS(n, "weight", "fc.weight", 1000, 512);
    WEIGHT_IS(n, "bias", "fc.bias", 1000);
    /* by hand: N·IN·OUT = 4·512·1000 */
    cr_assert_eq(ir_node_macs(g, n), 2048000);
    cr_assert_eq(ir_node_weight_count(g, n), 513000);
}
Test(shape, linear_errors) {
    Node *n = node1(OP_LINEAR, "fc", IN(1, 512, 7, 7));
    ir_set_int(g, n, "out", 10);
    infer_fails(n, "linear: input must be [N, F], got [1, 512, 7, 7] (flatten it first)");
}
Test(shape, linear_errors_rank1) {
    Node *n = node1(OP_LINEAR, "fc", IN(512));
    ir_set_int(g, n, "out", 10);
    infer_fails(n, "linear: input must be [N, F], got [512]");
}

Test(shape, batchnorm) {
    /* nn.BatchNorm1d(10)(zeros(4,10)) -> [4, 10] */
    Node *n = node1(OP_BATCHNORM, "bn", IN(4, 10));
    infer_ok(n);
    OUT_IS(n, 4, 10);
    WEIGHT_IS(n, "weight", "bn.weight", 10);
    WEIGHT_IS(n, "bias", "bn.bias", 10);
    WEIGHT_IS(n, "running_mean", "bn.running_mean", 10);
    WEIGHT_IS(n, "running_var", "bn.running_var", 10);
    cr_assert_eq(ir_node_weight_count(g, n), 40);
    cr_assert_eq(ir_node_macs(g, n), 0);
    Node *m = node1(OP_BATCHNORM, "bn2", IN(2, 64, 5, 5));
    infer_ok(m);
    OUT_IS(m, 2, 64, 5, 5);
    WEIGHT_IS(m, "running_var", "bn2.running_var", 64);
}
Test(shape, batchnorm_errors) {
    infer_fails(node1(OP_BATCHNORM, "bn", IN(1, 2, 3)),
                "batchnorm: input must be [N, C] or [N, C, H, W], got [1, 2, 3]");
}

Test(shape, layernorm_and_scale) {
    Node *n = node1(OP_LAYERNORM, "ln", IN(1, 96, 7, 7));
    infer_ok(n);
    OUT_IS(n, 1, 96, 7, 7);
    WEIGHT_IS(n, "weight", "ln.weight", 96);
    WEIGHT_IS(n, "bias", "ln.bias", 96);
    Node *m = node1(OP_LAYERNORM, "ln2", IN(3, 10));
    ir_set_bool(g, m, "affine", false);
    infer_ok(m);
    OUT_IS(m, 3, 10);
    cr_assert_eq(ir_node_weight_count(g, m), 0);
    Node *k = node1(OP_SCALE, "ls", IN(2, 24, 5, 5));
    infer_ok(k);
    WEIGHT_IS(k, "weight", "ls.weight", 24);
    cr_assert_eq(ir_node_weight_count(g, k), 24);
    Node *j = node1(OP_SCALE, "ls2", IN(2, 7, 3, 4, 5));
    ir_set_bool(g, j, "bias", true);
    infer_ok(j);
    WEIGHT_IS(j, "bias", "ls2.bias", 7);
}
Test(shape, layernorm_error_rank) {
    infer_fails(node1(OP_LAYERNORM, "ln", IN(1, 2, 3)), "layernorm: input must be [N, C] or [N, C, H, W], got [1, 2, 3]");
}
Test(shape, layernorm_error_eps) {
    Node *n = node1(OP_LAYERNORM, "ln2", IN(1, 2, 3, 3));
    ir_set_float(g, n, "eps", -1);
    infer_fails(n, "layernorm: eps must be >= 0, got -1");
}
Test(shape, scale_error_rank) {
    infer_fails(node1(OP_SCALE, "s", IN(5)), "scale: input must have a channel dimension (rank >= 2), got [5]");
}

Test(shape, prelu) {
    Node *n = node1(OP_PRELU, "act", IN(1, 64, 8, 8));
    infer_ok(n);
    OUT_IS(n, 1, 64, 8, 8);
    WEIGHT_IS(n, "weight", "act.weight", 1);
    Node *m = node1(OP_PRELU, "act2", IN(1, 64, 8, 8));
    ir_set_int(g, m, "num_parameters", 64);
    infer_ok(m);
    WEIGHT_IS(m, "weight", "act2.weight", 64);
    /* F.prelu(zeros(5), zeros(1)) -> [5]: a rank-1 input has one channel */
    Node *k = node1(OP_PRELU, "act3", IN(5));
    infer_ok(k);
    OUT_IS(k, 5);
}
Test(shape, prelu_errors) {
    Node *n = node1(OP_PRELU, "act", IN(1, 64, 8, 8));
    ir_set_int(g, n, "num_parameters", 3);
    infer_fails(n, "prelu: num_parameters=3 must be 1 or the 64 channels of [1, 64, 8, 8]");
}

/* ---- elementwise activations ------------------------------------------------------------- */

Test(shape, unary_any_rank) {
    static const OpKind ops[] = {OP_RELU, OP_RELU6, OP_LEAKY_RELU, OP_SIGMOID, OP_TANH, OP_SILU,
                                 OP_HARDSWISH, OP_HARDSIGMOID, OP_GELU, OP_ELU, OP_DROPOUT};
    int x = IN(2, 3, 4, 5, 6);
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        Node *n = node1(ops[i], "a", x);
        infer_ok(n);
        OUT_IS(n, 2, 3, 4, 5, 6);
        cr_assert_eq(ir_node_macs(g, n), 0);
        cr_assert_eq(ir_node_weight_count(g, n), 0);
    }
    Node *c = node1(OP_CLAMP, "c", IN(7));
    ir_set_float(g, c, "max", 6);
    infer_ok(c);
    OUT_IS(c, 7);
    Node *ge = node1(OP_GELU, "ge", x);
    ir_set_str(g, ge, "approximate", "tanh");
    infer_ok(ge);
}
Test(shape, clamp_errors_none) {
    infer_fails(node1(OP_CLAMP, "c", IN(1, 4)), "clamp: at least one of min and max must be given");
}
Test(shape, clamp_errors_order) {
    Node *n = node1(OP_CLAMP, "c", IN(1, 4));
    ir_set_float(g, n, "min", 6);
    ir_set_float(g, n, "max", 0);
    infer_fails(n, "clamp: min 6 is greater than max 0");
}
Test(shape, dropout_errors) {
    Node *n = node1(OP_DROPOUT, "dr", IN(1, 4));
    ir_set_float(g, n, "p", 1.5);
    infer_fails(n, "dropout: p must be between 0 and 1, got 1.5");
}
Test(shape, gelu_errors) {
    Node *n = node1(OP_GELU, "ge", IN(1, 4));
    ir_set_str(g, n, "approximate", "fast");
    infer_fails(n, "gelu: approximate must be \"none\" or \"tanh\", got \"fast\"");
}

/* ---- pools ------------------------------------------------------------------------------ */

static Node *pool(OpKind op, int x, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
    Node *n = node1(op, "pool", x);
    ir_set_int(g, n, "kernel", k);
    if (s) ir_set_int(g, n, "stride", s);
    ir_set_int(g, n, "pad", p);
    ir_set_bool(g, n, "ceil_mode", ceil_mode);
    return n;
}

Test(shape, maxpool2d) {
    /* F.max_pool2d(zeros(1,64,112,112), 3, 2, 1) -> [1, 64, 56, 56] */
    Node *n = pool(OP_MAXPOOL2D, IN(1, 64, 112, 112), 3, 2, 1, false);
    infer_ok(n);
    OUT_IS(n, 1, 64, 56, 56);
    cr_assert_eq(ir_node_macs(g, n), 0);
}
Test(shape, maxpool2d_ceil_last_window_rule_fires) {
    /* F.max_pool2d(zeros(1,1,5,5), 2, 2, 1, ceil_mode=True) -> [1, 1, 3, 3]: ceil((5+2-1-1)/2)+1 = 4,
     * but the 4th window would start at 6 >= 5 + 1 (beyond the input and left pad), so 3 */
    Node *n = pool(OP_MAXPOOL2D, IN(1, 1, 5, 5), 2, 2, 1, true);
    infer_ok(n);
    OUT_IS(n, 1, 1, 3, 3);
}
Test(shape, maxpool2d_ceil_rule_does_not_fire) {
    /* F.max_pool2d(zeros(1,1,5,5), 2, 2, 0, ceil_mode=True) -> [1, 1, 3, 3] (floor would give 2) */
    Node *n = pool(OP_MAXPOOL2D, IN(1, 1, 5, 5), 2, 2, 0, true);
    infer_ok(n);
    OUT_IS(n, 1, 1, 3, 3);
    Node *f = pool(OP_MAXPOOL2D, IN(1, 1, 5, 5), 2, 2, 0, false);
    infer_ok(f);
    OUT_IS(f, 1, 1, 2, 2);
    /* F.max_pool2d(zeros(1,1,7,9), 3, 3, 1, ceil_mode=True) -> [1, 1, 3, 4]; floor: [1, 1, 3, 3] */
    Node *m = pool(OP_MAXPOOL2D, IN(1, 1, 7, 9), 3, 3, 1, true);
    infer_ok(m);
    OUT_IS(m, 1, 1, 3, 4);
    /* F.max_pool2d(zeros(1,1,2,2), 3, ceil_mode=True) -> [1, 1, 1, 1] (floor mode is an error) */
    Node *k = pool(OP_MAXPOOL2D, IN(1, 1, 2, 2), 3, 0, 0, true);
    infer_ok(k);
    OUT_IS(k, 1, 1, 1, 1);
}
Test(shape, maxpool2d_dilation) {
    /* F.max_pool2d(zeros(1,3,10,10), 3, 1, 1, dilation=2) -> [1, 3, 8, 8] */
    Node *n = pool(OP_MAXPOOL2D, IN(1, 3, 10, 10), 3, 1, 1, false);
    ir_set_int(g, n, "dilation", 2);
    infer_ok(n);
    OUT_IS(n, 1, 3, 8, 8);
}
Test(shape, pool_stride_defaults_to_kernel) {
    /* F.avg_pool2d(zeros(1,8,9,11), 2) -> [1, 8, 4, 5] */
    Node *n = node1(OP_AVGPOOL2D, "pool", IN(1, 8, 9, 11));
    ir_set_int(g, n, "kernel", 2);
    cr_assert_not(ir_attr_set(n, "stride"));
    infer_ok(n);
    OUT_IS(n, 1, 8, 4, 5);
    pair_is(n, "stride", 2, 2);
    infer_ok(n); /* canonical form re-infers to the same */
    OUT_IS(n, 1, 8, 4, 5);
}
Test(shape, avgpool2d_pairs_ceil) {
    /* F.avg_pool2d(zeros(1,8,9,11), (3,2), (2,3), (1,1), ceil_mode=True) -> [1, 8, 5, 4] */
    Node *n = node1(OP_AVGPOOL2D, "pool", IN(1, 8, 9, 11));
    ir_set_pair(g, n, "kernel", 3, 2);
    ir_set_pair(g, n, "stride", 2, 3);
    ir_set_int(g, n, "pad", 1);
    ir_set_bool(g, n, "ceil_mode", true);
    infer_ok(n);
    OUT_IS(n, 1, 8, 5, 4);
    /* F.avg_pool2d(zeros(1,8,10,11), 3, 2, ceil_mode=True) -> [1, 8, 5, 5]; False -> [1, 8, 4, 5] */
    Node *c = pool(OP_AVGPOOL2D, IN(1, 8, 10, 11), 3, 2, 0, true);
    infer_ok(c);
    OUT_IS(c, 1, 8, 5, 5);
    Node *f = pool(OP_AVGPOOL2D, IN(1, 8, 10, 11), 3, 2, 0, false);
    infer_ok(f);
    OUT_IS(f, 1, 8, 4, 5);
}
Test(shape, maxpool2d_errors_pad_vs_dilated_kernel) {
    /* PyTorch bounds pad by half the kernel, not the dilated one */
    Node *n = pool(OP_MAXPOOL2D, IN(1, 3, 10, 10), 3, 1, 2, false);
    ir_set_int(g, n, "dilation", 2);
    infer_fails(n, "maxpool2d: pad [2, 2] must be at most half the kernel [3, 3]");
}
Test(shape, avgpool2d_errors_pad) {
    Node *n = pool(OP_AVGPOOL2D, IN(1, 3, 10, 10), 2, 2, 0, false);
    ir_set_pair(g, n, "pad", 1, 2);
    infer_fails(n, "avgpool2d: pad [1, 2] must be at most half the kernel [2, 2]");
}
Test(shape, maxpool2d_errors_empty) {
    infer_fails(pool(OP_MAXPOOL2D, IN(1, 1, 2, 2), 3, 0, 0, false),
                "maxpool2d: input [1, 1, 2, 2] gives an empty output with kernel [3, 3], stride [3, 3], "
                "pad [0, 0], dilation [1, 1]");
}
Test(shape, avgpool2d_errors_empty_ceil) {
    /* F.max_pool2d(zeros(1,1,1,1), 3, stride=1, ceil_mode=True): "Output size is too small" */
    infer_fails(pool(OP_AVGPOOL2D, IN(1, 1, 1, 1), 3, 1, 0, true),
                "avgpool2d: input [1, 1, 1, 1] gives an empty output with kernel [3, 3], stride [1, 1], "
                "pad [0, 0], ceil_mode");
}
Test(shape, pool_errors_stride) {
    infer_fails(pool(OP_MAXPOOL2D, IN(1, 1, 8, 8), 3, -1, 0, false),
                "maxpool2d: stride must be at least 1, got [-1, -1]");
}
Test(shape, pool_errors_rank) {
    infer_fails(pool(OP_AVGPOOL2D, IN(1, 8), 3, 0, 0, false),
                "avgpool2d: input must be [N, C, H, W], got [1, 8]");
}

Test(shape, global_and_adaptive_avgpool) {
    Node *n = node1(OP_GLOBAL_AVGPOOL, "gap", IN(2, 512, 7, 9));
    infer_ok(n);
    OUT_IS(n, 2, 512, 1, 1);
    /* F.adaptive_avg_pool2d(zeros(1,3,10,9), (4,4)) -> [1, 3, 4, 4] (neither divides) */
    Node *a = node1(OP_ADAPTIVE_AVGPOOL, "ap", IN(1, 3, 10, 9));
    ir_set_int(g, a, "size", 4);
    infer_ok(a);
    OUT_IS(a, 1, 3, 4, 4);
    /* F.adaptive_avg_pool2d(zeros(1,3,7,7), (3,5)) -> [1, 3, 3, 5] */
    Node *b = node1(OP_ADAPTIVE_AVGPOOL, "ap2", IN(1, 3, 7, 7));
    ir_set_pair(g, b, "size", 3, 5);
    infer_ok(b);
    OUT_IS(b, 1, 3, 3, 5);
}
Test(shape, global_avgpool_errors) {
    infer_fails(node1(OP_GLOBAL_AVGPOOL, "gap", IN(1, 8)),
                "global_avgpool: input must be [N, C, H, W], got [1, 8]");
}
Test(shape, adaptive_avgpool_errors) {
    Node *n = node1(OP_ADAPTIVE_AVGPOOL, "ap", IN(1, 3, 7, 7));
    ir_set_pair(g, n, "size", 0, 4);
    infer_fails(n, "adaptive_avgpool: size must be at least 1, got [0, 4]");
}

/* ---- binary ----------------------------------------------------------------------------- */

Test(shape, binary_broadcast_either_side) {
    /* zeros(2,8,1,1) + zeros(2,8,5,6) -> [2, 8, 5, 6], and the mirror */
    int big = IN(2, 8, 5, 6), small = IN(2, 8, 1, 1);
    Node *a = node2(OP_ADD, "a", small, big);
    infer_ok(a);
    OUT_IS(a, 2, 8, 5, 6);
    Node *m = node2(OP_MUL, "m", big, small);
    infer_ok(m);
    OUT_IS(m, 2, 8, 5, 6);
    Node *s = node2(OP_SUB, "s", small, small);
    infer_ok(s);
    OUT_IS(s, 2, 8, 1, 1);
    int f = IN(3, 7);
    Node *dv = node2(OP_DIV, "d", f, f);
    infer_ok(dv);
    OUT_IS(dv, 3, 7);
}
Test(shape, binary_errors_channels) {
    infer_fails(node2(OP_ADD, "a", IN(1, 64, 56, 56), IN(1, 32, 56, 56)),
                "add: shapes [1, 64, 56, 56] and [1, 32, 56, 56] do not broadcast");
}
Test(shape, binary_errors_batch) {
    infer_fails(node2(OP_MUL, "m", IN(1, 64, 1, 1), IN(2, 64, 5, 5)),
                "mul: shapes [1, 64, 1, 1] and [2, 64, 5, 5] do not broadcast");
}
Test(shape, binary_errors_rank) {
    infer_fails(node2(OP_SUB, "s", IN(1, 64), IN(1, 64, 1, 1)),
                "sub: shapes [1, 64] and [1, 64, 1, 1] do not broadcast");
}
Test(shape, binary_errors_partial) {
    infer_fails(node2(OP_DIV, "d", IN(1, 4, 5, 1), IN(1, 4, 5, 6)),
                "div: shapes [1, 4, 5, 1] and [1, 4, 5, 6] do not broadcast");
}

/* ---- concat, slice, channel_shuffle -------------------------------------------------------- */

static Node *concat(int n, const int *ins, int64_t axis) {
    Node *c = ir_add_node(g, OP_CONCAT, "cat", ins, n, LOC);
    ir_set_int(g, c, "axis", axis);
    return c;
}

Test(shape, concat_axes) {
    /* torch.cat([zeros(1,64,56,56), zeros(1,32,56,56)], 1) -> [1, 96, 56, 56] */
    Node *a = concat(2, (int[]){IN(1, 64, 56, 56), IN(1, 32, 56, 56)}, 1);
    infer_ok(a);
    OUT_IS(a, 1, 96, 56, 56);
    /* torch.cat([zeros(2,3), zeros(2,5)], -1) -> [2, 8]; the axis is stored as 1 */
    Node *b = concat(2, (int[]){IN(2, 3), IN(2, 5)}, -1);
    infer_ok(b);
    OUT_IS(b, 2, 8);
    cr_assert_eq(ir_attr_int(b, "axis"), 1);
    /* torch.cat([zeros(1,4), zeros(3,4), zeros(2,4)], 0) -> [6, 4] */
    Node *c = concat(3, (int[]){IN(1, 4), IN(3, 4), IN(2, 4)}, 0);
    infer_ok(c);
    OUT_IS(c, 6, 4);
}
Test(shape, concat_errors_dim) {
    int a = IN(1, 256, 33, 33);
    infer_fails(concat(3, (int[]){a, a, IN(1, 256, 17, 17)}, 1),
                "concat: input 3 has H=17, expected 33 (input 3 is [1, 256, 17, 17], input 1 is [1, 256, 33, 33])");
}
Test(shape, concat_errors_dim_rank2) {
    infer_fails(concat(2, (int[]){IN(2, 3), IN(3, 5)}, 1),
                "concat: input 2 has dim 0=3, expected 2 (input 2 is [3, 5], input 1 is [2, 3])");
}
Test(shape, concat_errors_rank) {
    infer_fails(concat(2, (int[]){IN(1, 64, 56, 56), IN(1, 64)}, 1),
                "concat: input 2 has rank 2 ([1, 64]), expected 4 like input 1 ([1, 64, 56, 56])");
}
Test(shape, concat_errors_axis) {
    infer_fails(concat(2, (int[]){IN(1, 64, 56, 56), IN(1, 64, 56, 56)}, 4),
                "concat: axis 4 is out of range for [1, 64, 56, 56] (expected -4..3)");
}
Test(shape, concat_errors_one_input) {
    infer_fails(concat(1, (int[]){IN(1, 64, 56, 56)}, 1), "concat: needs at least 2 inputs, got 1");
}

static Node *slice(int x, int64_t axis, int64_t start, bool has_end, int64_t end) {
    Node *n = node1(OP_SLICE, "sl", x);
    ir_set_int(g, n, "axis", axis);
    ir_set_int(g, n, "start", start);
    if (has_end) ir_set_int(g, n, "end", end);
    return n;
}
static void slice_attrs_are(const Node *n, int64_t axis, int64_t start, int64_t end) {
    cr_assert_eq(ir_attr_int(n, "axis"), axis);
    cr_assert_eq(ir_attr_int(n, "start"), start);
    cr_assert_eq(ir_attr_int(n, "end"), end);
}

Test(shape, slice_narrow) {
    int x = IN(1, 64, 8, 8);
    /* x.narrow(1, 16, 32) -> [1, 32, 8, 8] */
    Node *a = slice(x, 1, 16, true, 48);
    infer_ok(a);
    OUT_IS(a, 1, 32, 8, 8);
    slice_attrs_are(a, 1, 16, 48);
    /* x[:, -16:] -> [1, 16, 8, 8]; start and end are stored normalised */
    Node *b = slice(x, 1, -16, false, 0);
    infer_ok(b);
    OUT_IS(b, 1, 16, 8, 8);
    slice_attrs_are(b, 1, 48, 64);
    infer_ok(b);
    OUT_IS(b, 1, 16, 8, 8);
    /* x[:, 4:-8] -> [1, 52, 8, 8] */
    Node *c = slice(x, 1, 4, true, -8);
    infer_ok(c);
    OUT_IS(c, 1, 52, 8, 8);
    slice_attrs_are(c, 1, 4, 56);
    /* zeros(2,3,4).narrow(-1, 1, 2) -> [2, 3, 2] */
    Node *e = slice(IN(2, 3, 4), -1, 1, true, 3);
    infer_ok(e);
    OUT_IS(e, 2, 3, 2);
    slice_attrs_are(e, 2, 1, 3);
}
Test(shape, slice_errors_start) {
    infer_fails(slice(IN(1, 64, 8, 8), 1, 64, false, 0), "slice: start 64 is out of range for C=64 of [1, 64, 8, 8]");
}
Test(shape, slice_errors_negative_start) {
    infer_fails(slice(IN(1, 64, 8, 8), 1, -65, false, 0),
                "slice: start -65 is out of range for C=64 of [1, 64, 8, 8]");
}
Test(shape, slice_errors_end) {
    infer_fails(slice(IN(1, 64, 8, 8), 1, 0, true, 65), "slice: end 65 is out of range for C=64 of [1, 64, 8, 8]");
}
Test(shape, slice_errors_empty) {
    infer_fails(slice(IN(1, 64, 8, 8), 1, 10, true, 5),
                "slice: start 10 and end 5 select nothing of C=64 of [1, 64, 8, 8]");
}
Test(shape, slice_errors_dim_name) {
    infer_fails(slice(IN(2, 3, 4), 2, 0, true, 9), "slice: end 9 is out of range for dim 2=4 of [2, 3, 4]");
}
Test(shape, slice_errors_axis) {
    infer_fails(slice(IN(2, 3), -3, 0, false, 0), "slice: axis -3 is out of range for [2, 3] (expected -2..1)");
}

Test(shape, channel_shuffle) {
    /* F.channel_shuffle(zeros(1,12,3,3), 3) -> [1, 12, 3, 3] */
    Node *n = node1(OP_CHANNEL_SHUFFLE, "sh", IN(1, 12, 3, 3));
    ir_set_int(g, n, "groups", 3);
    infer_ok(n);
    OUT_IS(n, 1, 12, 3, 3);
}
Test(shape, channel_shuffle_errors) {
    Node *n = node1(OP_CHANNEL_SHUFFLE, "sh", IN(1, 12, 3, 3));
    ir_set_int(g, n, "groups", 5);
    infer_fails(n, "channel_shuffle: groups=5 does not divide C=12 of [1, 12, 3, 3]");
}

/* ---- pad -------------------------------------------------------------------------------- */

static Node *pad(int x, const char *mode, int64_t l, int64_t r, int64_t t, int64_t b) {
    Node *n = node1(OP_PAD, "p", x);
    ir_set_ints(g, n, "pad", (int64_t[]){l, r, t, b}, 4);
    ir_set_str(g, n, "mode", mode);
    return n;
}

Test(shape, pad_modes) {
    /* F.pad(zeros(1,2,5,6), [1,2,3,0], mode="reflect") -> [1, 2, 8, 9] */
    Node *a = pad(IN(1, 2, 5, 6), "reflect", 1, 2, 3, 0);
    infer_ok(a);
    OUT_IS(a, 1, 2, 8, 9);
    /* F.pad(zeros(1,2,5,6), [2,2,1,1], value=0.5) -> [1, 2, 7, 10] */
    Node *b = pad(IN(1, 2, 5, 6), "constant", 2, 2, 1, 1);
    ir_set_float(g, b, "value", 0.5);
    infer_ok(b);
    OUT_IS(b, 1, 2, 7, 10);
    /* F.pad(zeros(1,3,10,10), [-3,-2,1,-9]) -> [1, 3, 2, 5]: negative constant padding crops */
    Node *c = pad(IN(1, 3, 10, 10), "constant", -3, -2, 1, -9);
    infer_ok(c);
    OUT_IS(c, 1, 3, 2, 5);
    /* F.pad(zeros(1,3,10,10), [9,0,0,0], mode="reflect") -> [1, 3, 10, 19] (9 < W) */
    Node *e = pad(IN(1, 3, 10, 10), "reflect", 9, 0, 0, 0);
    infer_ok(e);
    OUT_IS(e, 1, 3, 10, 19);
}
Test(shape, pad_errors_count) {
    Node *n = node1(OP_PAD, "p", IN(1, 3, 10, 10));
    ir_set_ints(g, n, "pad", (int64_t[]){1, 1}, 2);
    infer_fails(n, "pad: pad must have 4 entries [left, right, top, bottom], got 2");
}
Test(shape, pad_errors_mode) {
    infer_fails(pad(IN(1, 3, 10, 10), "replicate", 1, 1, 1, 1),
                "pad: mode must be \"constant\" or \"reflect\", got \"replicate\"");
}
Test(shape, pad_errors_reflect_w) {
    /* PyTorch: "Padding size should be less than the corresponding input dimension" */
    infer_fails(pad(IN(1, 3, 10, 10), "reflect", 10, 0, 0, 0),
                "pad: reflect padding (10, 0) must be less than W=10 of [1, 3, 10, 10]");
}
Test(shape, pad_errors_reflect_h) {
    infer_fails(pad(IN(1, 3, 5, 10), "reflect", 0, 0, 1, 5),
                "pad: reflect padding (1, 5) must be less than H=5 of [1, 3, 5, 10]");
}
Test(shape, pad_errors_reflect_negative) {
    infer_fails(pad(IN(1, 3, 10, 10), "reflect", -1, 1, 0, 0),
                "pad: reflect padding must not be negative, got [-1, 1, 0, 0]");
}
Test(shape, pad_errors_reflect_value) {
    /* PyTorch: 'Padding mode "reflect" doesn't take in value argument' */
    Node *n = pad(IN(1, 3, 10, 10), "reflect", 1, 1, 1, 1);
    ir_set_float(g, n, "value", 1);
    infer_fails(n, "pad: mode \"reflect\" takes no value, got 1");
}
Test(shape, pad_errors_crop_all) {
    /* F.pad(zeros(1,3,10,10), [-5,-5,0,0]) is an empty tensor in PyTorch; netc has no empty tensors */
    infer_fails(pad(IN(1, 3, 10, 10), "constant", -5, -5, 0, 0),
                "pad: padding [-5, -5, 0, 0] leaves nothing of [1, 3, 10, 10]");
}
Test(shape, pad_errors_rank) {
    infer_fails(pad(IN(3, 10, 10), "constant", 1, 1, 1, 1), "pad: input must be [N, C, H, W], got [3, 10, 10]");
}

/* ---- upsample --------------------------------------------------------------------------- */

Test(shape, upsample_size) {
    /* F.interpolate(zeros(1,256,1,1), size=(33,33), mode="bilinear", align_corners=True) */
    Node *n = node1(OP_UPSAMPLE, "up", IN(1, 256, 1, 1));
    ir_set_pair(g, n, "size", 33, 33);
    ir_set_str(g, n, "mode", "bilinear");
    ir_set_bool(g, n, "align_corners", true);
    infer_ok(n);
    OUT_IS(n, 1, 256, 33, 33);
    cr_assert(ir_attr_bool(n, "align_corners"));
    cr_assert_not(ir_attr_set(n, "scale"));
}
Test(shape, upsample_scale_stores_size) {
    /* F.interpolate(zeros(1,4,7,5), scale_factor=2, mode="nearest") -> [1, 4, 14, 10] */
    Node *n = node1(OP_UPSAMPLE, "up", IN(1, 4, 7, 5));
    ir_set_float(g, n, "scale", 2);
    infer_ok(n);
    OUT_IS(n, 1, 4, 14, 10);
    pair_is(n, "size", 14, 10);
    cr_assert_float_eq(ir_attr_float(n, "scale"), 2.0, 0);
    cr_assert_not(ir_attr_set(n, "align_corners")); /* stays unset for nearest */
    infer_ok(n);                                    /* the canonical form (size and scale) re-infers */
    OUT_IS(n, 1, 4, 14, 10);
}
Test(shape, upsample_fractional_scales) {
    /* F.interpolate(zeros(1,1,7,5), scale_factor=1.5, mode="nearest") -> [1, 1, 10, 7] */
    Node *a = node1(OP_UPSAMPLE, "a", IN(1, 1, 7, 5));
    ir_set_float(g, a, "scale", 1.5);
    infer_ok(a);
    OUT_IS(a, 1, 1, 10, 7);
    /* F.interpolate(zeros(1,1,7,5), scale_factor=0.5, mode="bilinear") -> [1, 1, 3, 2] */
    Node *b = node1(OP_UPSAMPLE, "b", IN(1, 1, 7, 5));
    ir_set_float(g, b, "scale", 0.5);
    ir_set_str(g, b, "mode", "bilinear");
    infer_ok(b);
    OUT_IS(b, 1, 1, 3, 2);
    pair_is(b, "size", 3, 2);
    cr_assert_not(ir_attr_bool(b, "align_corners")); /* bilinear's default made explicit */
    /* F.interpolate(zeros(1,1,10,7), scale_factor=1/3, mode="bilinear") -> [1, 1, 3, 2] */
    Node *c = node1(OP_UPSAMPLE, "c", IN(1, 1, 10, 7));
    ir_set_float(g, c, "scale", 1.0 / 3.0);
    ir_set_str(g, c, "mode", "bilinear");
    infer_ok(c);
    OUT_IS(c, 1, 1, 3, 2);
}
Test(shape, upsample_errors_neither) {
    infer_fails(node1(OP_UPSAMPLE, "up", IN(1, 3, 7, 7)), "upsample: give size or scale");
}
Test(shape, upsample_errors_both) {
    Node *n = node1(OP_UPSAMPLE, "up", IN(1, 3, 7, 7));
    ir_set_pair(g, n, "size", 3, 3);
    ir_set_float(g, n, "scale", 2);
    infer_fails(n, "upsample: give size or scale, not both (size [3, 3], scale 2 gives [14, 14] from [1, 3, 7, 7])");
}
Test(shape, upsample_errors_mode) {
    Node *n = node1(OP_UPSAMPLE, "up", IN(1, 3, 7, 7));
    ir_set_float(g, n, "scale", 2);
    ir_set_str(g, n, "mode", "bicubic");
    infer_fails(n, "upsample: mode must be \"nearest\" or \"bilinear\", got \"bicubic\"");
}
Test(shape, upsample_errors_align_corners_nearest) {
    /* PyTorch: "align_corners option can only be set with the interpolating modes" */
    Node *n = node1(OP_UPSAMPLE, "up", IN(1, 3, 7, 7));
    ir_set_float(g, n, "scale", 2);
    ir_set_bool(g, n, "align_corners", false);
    infer_fails(n, "upsample: align_corners is only valid with mode=\"bilinear\"");
}
Test(shape, upsample_errors_empty) {
    /* F.interpolate(zeros(1,1,7,5), scale_factor=0.1): "Input and output sizes should be greater than 0" */
    Node *n = node1(OP_UPSAMPLE, "up", IN(1, 1, 7, 5));
    ir_set_float(g, n, "scale", 0.1);
    infer_fails(n, "upsample: scale 0.1 gives an empty output from [1, 1, 7, 5]");
}
Test(shape, upsample_errors_negative_scale) {
    Node *n = node1(OP_UPSAMPLE, "up", IN(1, 1, 7, 5));
    ir_set_float(g, n, "scale", -2);
    infer_fails(n, "upsample: scale must be a positive number, got -2");
}
Test(shape, upsample_errors_size) {
    Node *n = node1(OP_UPSAMPLE, "up", IN(1, 1, 7, 5));
    ir_set_pair(g, n, "size", 0, 4);
    infer_fails(n, "upsample: size must be at least 1, got [0, 4]");
}

/* ---- flatten, softmax ------------------------------------------------------------------- */

Test(shape, flatten) {
    /* torch.flatten(zeros(2,512,7,7), 1) -> [2, 25088]; (3,10) -> [3, 10]; (2,3,4) -> [2, 12] */
    Node *a = node1(OP_FLATTEN, "f", IN(2, 512, 7, 7));
    infer_ok(a);
    OUT_IS(a, 2, 25088);
    Node *b = node1(OP_FLATTEN, "f2", IN(3, 10));
    infer_ok(b);
    OUT_IS(b, 3, 10);
    Node *c = node1(OP_FLATTEN, "f3", IN(2, 3, 4));
    infer_ok(c);
    OUT_IS(c, 2, 12);
}
Test(shape, flatten_errors) {
    infer_fails(node1(OP_FLATTEN, "f", IN(5)), "flatten: input must have rank 2 or more, got [5]");
}

Test(shape, softmax_axes) {
    Node *a = node1(OP_SOFTMAX, "sm", IN(2, 10));
    ir_set_int(g, a, "axis", -1);
    infer_ok(a);
    OUT_IS(a, 2, 10);
    cr_assert_eq(ir_attr_int(a, "axis"), 1);
    Node *b = node1(OP_SOFTMAX, "sm2", IN(2, 3, 4, 5));
    ir_set_int(g, b, "axis", -4);
    infer_ok(b);
    cr_assert_eq(ir_attr_int(b, "axis"), 0);
    OUT_IS(b, 2, 3, 4, 5);
}
Test(shape, softmax_errors) {
    Node *n = node1(OP_SOFTMAX, "sm", IN(2, 10));
    ir_set_int(g, n, "axis", 2);
    infer_fails(n, "softmax: axis 2 is out of range for [2, 10] (expected -2..1)");
}

/* ---- dispatcher checks, call notes, the verifier ---------------------------------------- */

Test(shape, unknown_input_shape) {
    int x = IN(1, 3, 8, 8);
    Node *a = node1(OP_RELU, "a", x); /* never inferred: its output has no shape */
    infer_fails(node1(OP_RELU, "b", a->out), "relu: input 1 ('a') has no known shape");
}
Test(shape, arity) {
    int x = IN(1, 3, 8, 8);
    infer_fails(node2(OP_RELU, "r", x, x), "relu: takes 1 input, got 2");
}

Test(shape, error_has_call_notes) {
    CallSite outer = {{"t.net", 20, 11}, "block", NULL};
    CallSite inner = {{"t.net", 9, 3}, "cbr", &outer};
    Node *n = node2(OP_ADD, "a", IN(1, 64, 56, 56), IN(1, 32, 56, 56));
    n->calls = &inner;
    cr_assert_not(ir_infer_node(g, n, &d));
    char *s = diags_to_string(&d);
    cr_assert_str_eq(s, "t.net:3:5: error: add: shapes [1, 64, 56, 56] and [1, 32, 56, 56] do not broadcast\n"
                        "t.net:9:3: note: in call of 'cbr'\n"
                        "t.net:20:11: note: in call of 'block'\n");
    free(s);
}

/* A small network inferred node by node, then verified as a whole: every canonicalised
 * attribute re-infers to the same shapes. */
Test(shape, verify_after_inference) {
    int x = IN(1, 3, 32, 32);
    Node *c = conv(x, 16, 3);
    ir_set_int(g, c, "pad", 1);
    infer_ok(c);
    Node *p = pool(OP_MAXPOOL2D, c->out, 2, 0, 0, false);
    infer_ok(p);
    Node *u = node1(OP_UPSAMPLE, "up", p->out);
    ir_set_float(g, u, "scale", 2);
    ir_set_str(g, u, "mode", "bilinear");
    infer_ok(u);
    Node *s = slice(u->out, -3, -8, false, 0);
    infer_ok(s);
    Node *cat = concat(2, (int[]){s->out, s->out}, -3);
    infer_ok(cat);
    ir_add_output(g, cat->out, "y", LOC);
    OUT_IS(cat, 1, 16, 32, 32);
    int nt = g->tensors.len;
    cr_assert(ir_verify(g, &d, false));
    cr_assert_eq(d.nerrors, 0);
    cr_assert_eq(g->tensors.len, nt);
    OUT_IS(cat, 1, 16, 32, 32);
    OUT_IS(s, 1, 8, 32, 32);
}
