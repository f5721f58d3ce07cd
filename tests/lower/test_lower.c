/* test_lower.c — lowering: def expansion, constant arithmetic, weight naming, op argument
 * binding, against graphs checked node by node. Error messages live in tests/errors/. */
#include <criterion/criterion.h>
#include <string.h>

#include "frontend.h"
#include "ir/ir.h"
#include "testutil.h"

static Graph *load(const char *src, Diags *d) {
    diags_init(d);
    FrontendOptions o = {.quiet = true, .seed = 1};
    Graph *g = frontend_load_text("t.net", src, strlen(src), &o, d);
    if (!g) {
        char *s = diags_to_string(d);
        cr_log_error("%s", s);
        free(s);
    }
    return g;
}

static const Node *node_named(const Graph *g, const char *name) {
    for (int i = 0; i < g->nodes.len; i++)
        if (!strcmp(ir_node(g, i)->name, name)) return ir_node(g, i);
    return NULL;
}

static bool has_tensor(const Graph *g, const char *name) {
    for (int i = 0; i < g->tensors.len; i++)
        if (!strcmp(ir_tensor(g, i)->name, name)) return true;
    return false;
}

static const char aspp_src[] =
    "# ASPP head (DeepLab v3+), as in the PyTorch module it comes from\n"
    "net aspp\n"
    "\n"
    "input x: [1, 256, 33, 33]                 # float32, NCHW\n"
    "\n"
    "def cbr(t, out, kernel, rate=1) {         # conv -> batchnorm -> relu, reusable\n"
    "  conv = conv2d(t, out, kernel=kernel, pad=(kernel / 2) * rate, dilation=rate)\n"
    "  bn   = batchnorm(conv, eps=1e-5)\n"
    "  return relu(bn, inplace=true)\n"
    "}\n"
    "\n"
    "branch1 = cbr(x, 256, kernel=1)\n"
    "branch2 = cbr(x, 256, kernel=3, rate=4)\n"
    "branch3 = cbr(x, 256, kernel=3, rate=8)\n"
    "pooled  = global_avgpool(x)\n"
    "branch8 = cbr(pooled, 256, kernel=1)\n"
    "up      = upsample(branch8, size=[33, 33], mode=\"bilinear\", align_corners=true)\n"
    "cat     = concat(branch1, branch2, branch3, up, axis=1)\n"
    "fused   = cbr(cat, 256, kernel=1)\n"
    "\n"
    "output fused\n";

Test(lower, spec_example_names_weights_like_state_dict) {
    Diags d;
    Graph *g = load(aspp_src, &d);
    cr_assert_not_null(g);
    cr_expect_str_eq(g->name, "aspp");
    const char *want[] = {"branch1.conv.weight", "branch1.conv.bias", "branch1.bn.weight", "branch1.bn.bias",
                          "branch1.bn.running_mean", "branch1.bn.running_var", "branch2.conv.weight",
                          "branch8.conv.weight", "fused.bn.running_var"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) cr_expect(has_tensor(g, want[i]), "missing %s", want[i]);
    const Node *c2 = node_named(g, "branch2.conv");
    cr_assert_not_null(c2);
    int64_t pad[2], dil[2];
    ir_attr_pair(c2, "pad", pad);
    ir_attr_pair(c2, "dilation", dil);
    cr_expect_eq(pad[0], 4); /* (3 / 2) * 4 */
    cr_expect_eq(dil[1], 4);
    const Node *c1 = node_named(g, "branch1.conv");
    ir_attr_pair(c1, "pad", pad);
    cr_expect_eq(pad[0], 0); /* (1 / 2) * 1 truncates to 0 */
    /* the def's return is named after the binding that called it */
    const Node *r = node_named(g, "fused");
    cr_assert_not_null(r);
    cr_expect_eq(r->op, OP_RELU);
    cr_expect(ir_attr_bool(r, "inplace"));
    cr_expect_eq(g->noutputs, 1);
    cr_expect_eq(ir_tensor(g, g->outputs[0])->shape[1], 256);
    cr_expect_eq(ir_tensor(g, g->outputs[0])->shape[3], 33);
    /* every node inside a def remembers its call */
    cr_expect_not_null(c2->calls);
    cr_expect_str_eq(c2->calls->def_name, "cbr");
    cr_expect_eq(c2->calls->loc.line, 13);
    cr_expect_eq(c2->loc.line, 7);
    ir_graph_free(g);
    diags_free(&d);
}

Test(lower, return_of_weighted_op_and_of_def_call_take_caller_path) {
    Diags d;
    Graph *g = load("input x: [1, 3, 8, 8]\n"
                    "def g(t) {\n  c = conv2d(t, 4, kernel=1)\n  return c\n}\n"
                    "def f(t) { return conv2d(t, 4, kernel=3, pad=1) }\n"
                    "def h(t) { return g(t) }\n"
                    "stem = f(x)\n"
                    "body = h(stem)\n"
                    "output body\n",
                    &d);
    cr_assert_not_null(g);
    cr_expect(has_tensor(g, "stem.weight"));
    cr_expect(has_tensor(g, "stem.bias"));
    cr_expect(has_tensor(g, "body.c.weight"));
    cr_expect_eq(g->tensors.len, 1 + 2 + 2 + 2); /* input, 2 nodes, 4 weights */
    ir_graph_free(g);
    diags_free(&d);
}

Test(lower, arguments_positional_keyword_defaults_using_earlier_params) {
    Diags d;
    Graph *g = load("input x: [2, 8, 9, 9]\n"
                    "def f(t, k, p=(k - 1) / 2, s=1) { return conv2d(t, 8, kernel=k, pad=p, stride=s) }\n"
                    "a = f(x, 5)\n"
                    "b = f(k=3, t=x, s=2)\n"
                    "c = f(x, 7, 0)\n"
                    "output a, b, c\n",
                    &d);
    cr_assert_not_null(g);
    int64_t p[2], s[2];
    ir_attr_pair(node_named(g, "a"), "pad", p);
    cr_expect_eq(p[0], 2);
    ir_attr_pair(node_named(g, "b"), "pad", p);
    ir_attr_pair(node_named(g, "b"), "stride", s);
    cr_expect_eq(p[0], 1);
    cr_expect_eq(s[0], 2);
    cr_expect_eq(ir_tensor(g, g->outputs[1])->shape[2], 5); /* (9 + 2 - 3) / 2 + 1 */
    ir_graph_free(g);
    diags_free(&d);
}

Test(lower, constant_arithmetic_precedence_and_truncation) {
    Diags d;
    /* kernel = 2 + 3 * 2 - 1 = 7; pad = -7 / 2 * -1 = 3 (truncation toward zero: -7/2 = -3);
       out = -(-4) * 2 = 8 */
    Graph *g = load("input x: [1, 2, 10, 10]\n"
                    "y = conv2d(x, -(-4) * 2, kernel=2 + 3 * 2 - 1, pad=-7 / 2 * -1, bias=false)\n"
                    "z = leaky_relu(y, slope=1 / 4 + 0.5)\n"
                    "output z\n",
                    &d);
    cr_assert_not_null(g);
    const Node *y = node_named(g, "y");
    int64_t k[2], p[2];
    ir_attr_pair(y, "kernel", k);
    ir_attr_pair(y, "pad", p);
    cr_expect_eq(k[0], 7);
    cr_expect_eq(p[1], 3);
    cr_expect_eq(ir_attr_int(y, "out"), 8);
    cr_expect_null(ir_weight(g, y, "bias"));
    cr_expect_float_eq(ir_attr_float(node_named(g, "z"), "slope"), 0.5, 1e-12); /* 1/4 = 0 (ints) */
    ir_graph_free(g);
    diags_free(&d);
}

Test(lower, def_scope_is_its_own_and_names_may_repeat_top_level) {
    Diags d;
    Graph *g = load("input x: [1, 4, 4, 4]\n"
                    "y = relu(x)\n"
                    "def f(x) {\n  y = sigmoid(x)\n  return tanh(y)\n}\n"
                    "z = f(y)\n"
                    "output z\n",
                    &d);
    cr_assert_not_null(g);
    const Node *s = node_named(g, "z.y");
    cr_assert_not_null(s);
    cr_expect_eq(s->op, OP_SIGMOID);
    cr_expect_str_eq(ir_tensor(g, s->in[0])->name, "y");
    ir_graph_free(g);
    diags_free(&d);
}

Test(lower, nested_weightless_ops_and_aliases) {
    Diags d;
    Graph *g = load("input a: [1, 4, 3, 3]; input b: [1, 4, 1, 1]\n"
                    "s = relu(add(a, mul(a, b)))\n"
                    "t = s\n"
                    "output t\n",
                    &d);
    cr_assert_not_null(g);
    cr_expect_eq(g->nodes.len, 3);
    cr_expect_eq(ir_node(g, 2)->op, OP_RELU);
    cr_expect_str_eq(ir_node(g, 2)->name, "s");
    cr_expect_str_eq(g->output_names[0], "t");
    cr_expect_str_eq(ir_tensor(g, g->outputs[0])->name, "s");
    ir_graph_free(g);
    diags_free(&d);
}

Test(lower, defs_visible_before_definition_and_default_model_name) {
    Diags d;
    diags_init(&d);
    FrontendOptions o = {.quiet = true};
    const char *src = "input x: [1, 2]\ny = f(x)\noutput y\ndef f(t) { return linear(t, 3) }\n";
    Graph *g = frontend_load_text("dir/9my-model.v2.net", src, strlen(src), &o, &d);
    cr_assert_not_null(g);
    cr_expect_str_eq(g->name, "_9my_model_v2");
    cr_expect(has_tensor(g, "y.weight"));
    ir_graph_free(g);
    diags_free(&d);
}

Test(lower, op_arguments_positional_in_table_order) {
    Diags d;
    Graph *g = load("input x: [1, 3, 5, 5]\n"
                    "c = clamp(x, -1, 2.5)\n"
                    "p = maxpool2d(c, 3, 2, 1)\n"
                    "output p\n",
                    &d);
    cr_assert_not_null(g);
    const Node *c = node_named(g, "c");
    cr_expect_float_eq(ir_attr_float(c, "min"), -1.0, 0);
    cr_expect_float_eq(ir_attr_float(c, "max"), 2.5, 0);
    cr_expect_eq(ir_tensor(g, g->outputs[0])->shape[2], 3);
    ir_graph_free(g);
    diags_free(&d);
}
