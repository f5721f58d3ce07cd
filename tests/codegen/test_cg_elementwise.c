/* test_cg_elementwise.c — generated elementwise kernels (every activation, prelu, batchnorm,
 * binary ops with broadcast from either side) against the reference interpreter, at -O0 and
 * -O2, on odd shapes (channel counts not multiples of 16, 1×1 spatial, batch > 1, rank 2). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testutil.h"

static void check(const char *src, const char *what) {
    for (int opt = tu_min_opt(0); opt <= 2; opt += 2) {
        Graph *g = tu_load_text(src, 7);
        cr_assert_not_null(g, "%s: does not load", what);
        double e = tu_compiled_vs_interp(g, opt, TU_SERIAL_AND_POOL, 11);
        cr_expect(e >= 0 && e <= 1e-5, "%s at -O%d, serial and 2 threads: rel.err %g", what, opt, e);
        ir_graph_free(g);
    }
}

static const char *acts[] = {
    "relu(x)", "relu6(x)", "leaky_relu(x, slope=0.2)", "clamp(x, min=-0.3)", "clamp(x, max=0.25)",
    "clamp(x, min=-0.5, max=0.5)", "sigmoid(x)", "tanh(x)", "silu(x)", "hardswish(x)", "hardsigmoid(x)",
    "gelu(x)", "gelu(x, approximate=\"tanh\")", "elu(x, alpha=0.7)", "dropout(x, p=0.3)",
};

Test(cg_elementwise, every_activation_on_odd_shapes) {
    const char *shapes[] = {"[2, 19, 5, 7]", "[1, 16, 1, 1]", "[3, 33]", "[1, 3, 4, 5, 6]", "[1, 1, 1, 1]"};
    char src[512], what[256];
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
            /* the activation reads v = 8x: inputs in [-8, 8), so the transcendental ops see large
               arguments too */
            char act[128];
            snprintf(act, sizeof act, "%s", acts[a]);
            act[strchr(act, 'x') - act] = 'v';
            snprintf(src, sizeof src, "input x: %s\nt = add(x, x)\nu = add(t, t)\nv = add(u, u)\ny = %s\noutput y\n",
                     shapes[s], act);
            snprintf(what, sizeof what, "%s on %s", acts[a], shapes[s]);
            check(src, what);
        }
}

Test(cg_elementwise, binary_ops_broadcast_either_side) {
    const char *ops[] = {"add", "sub", "mul", "div"};
    char src[512], what[128];
    for (int k = 0; k < 4; k++) {
        snprintf(src, sizeof src,
                 "input a: [2, 21, 6, 5]\ninput b: [2, 21, 1, 1]\n"
                 "p = %s(a, b)\nq = %s(b, a)\nr = %s(a, a)\ns = %s(b, b)\noutput p, q, r, s\n",
                 ops[k], ops[k], ops[k], ops[k]);
        if (k == 3) /* keep divisors away from 0 */
            snprintf(src, sizeof src,
                     "input a0: [2, 21, 6, 5]\ninput b0: [2, 21, 1, 1]\n"
                     "a = add(sigmoid(a0), sigmoid(a0))\nb = add(sigmoid(b0), sigmoid(b0))\n"
                     "p = div(a, b)\nq = div(b, a)\nr = div(a0, a)\noutput p, q, r\n");
        snprintf(what, sizeof what, "%s", ops[k]);
        check(src, what);
    }
}

Test(cg_elementwise, batchnorm_and_prelu) {
    check("input x: [2, 37, 3, 9]\nb = batchnorm(x, eps=0.001)\np = prelu(b, num_parameters=37)\n"
          "q = prelu(x)\noutput p, q\n",
          "batchnorm + prelu rank 4");
    check("input x: [5, 20]\nb = batchnorm(x)\np = prelu(b, num_parameters=20)\noutput p\n", "batchnorm + prelu rank 2");
}

/* layernorm over the channels in each of its loop shapes: channels contiguous (after a conv:
 * one line of vectors per pixel), another dimension contiguous (a graph input in NCHW: lanes
 * are pixels), rank 2 (features), a concat slice as input, C = 1, 3, 37, 100; and scale with and
 * without bias on ranks 2-5, standalone (its input has another reader, so it is not folded) */
Test(cg_elementwise, layernorm_every_layout) {
    check("input x: [2, 37, 3, 9]\na = layernorm(x, eps=1e-6)\nb = layernorm(x, affine=false)\n"
          "c = conv2d(x, 100, kernel=1)\nd = layernorm(c)\ne = conv2d(d, 3, kernel=3, pad=1)\nf = layernorm(e)\n"
          "output a, b, f\n",
          "layernorm NCHW input, after a conv, 100 and 3 channels");
    check("input x: [5, 20]\na = layernorm(x)\nl = linear(x, 7)\nb = layernorm(l, eps=0.1)\noutput a, b\n",
          "layernorm rank 2");
    check("input x: [1, 1, 4, 4]\ninput y: [1, 16, 3, 5]\na = layernorm(x)\nc = conv2d(y, 17, kernel=1)\n"
          "d = concat(c, y)\ne = layernorm(d)\nf = relu(e)\noutput a, f\n",
          "layernorm one channel; over a concat; then relu");
}

Test(cg_elementwise, scale_with_and_without_bias) {
    check("input x: [2, 37, 3, 9]\na = scale(x)\nb = scale(x, bias=true)\nc = relu(b)\noutput a, c\n", "scale rank 4");
    check("input x: [5, 20]\na = scale(x, bias=true)\noutput a\n", "scale rank 2");
    check("input x: [1, 3, 4, 5, 6]\na = scale(x)\noutput a\n", "scale rank 5");
    check("input x: [1, 24, 6, 6]\nc = conv2d(x, 24, kernel=3, pad=1)\ns = scale(c)\nr = add(s, x)\noutput r, c\n",
          "scale after a conv with another reader");
}
