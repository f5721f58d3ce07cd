/* test_parser.c — the flex/bison front end: every construct to its AST, precedence, newline rules,
 * number forms, locations, print/parse round trips, and every syntax error with its exact text. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"

/* ---- one parse per test: the arena and diagnostics are freed by the fixture ---- */

static Arena arena;
static Diags diags;

static void setup(void) {
    memset(&arena, 0, sizeof arena);
    diags_init(&diags);
}

static void teardown(void) {
    arena_free(&arena);
    diags_free(&diags);
}

TestSuite(parser, .init = setup, .fini = teardown);

static const char FILE_NAME[] = "m.net";

static bool parse_n(const char *src, size_t len, Ast *out) {
    diags_free(&diags);
    diags_init(&diags);
    diags_set_source(&diags, FILE_NAME, src, len);
    return ast_parse(&arena, &diags, FILE_NAME, src, len, out);
}

/* A program that must parse without any diagnostic. */
static Ast ok(const char *src) {
    Ast ast;
    bool r = parse_n(src, strlen(src), &ast);
    if (!r || diags.len) {
        char *s = diags_to_string(&diags);
        cr_log_error("unexpected diagnostics for:\n%s\n%s", src, s);
        free(s);
    }
    cr_assert(r);
    cr_assert_eq(diags.len, 0);
    return ast;
}

/* A program with exactly one error, at line:col, saying msg. */
static void one_error(const char *src, int line, int col, const char *msg) {
    Ast ast;
    bool r = parse_n(src, strlen(src), &ast);
    cr_assert_not(r, "accepted: %s", src);
    if (diags.len != 1) {
        char *s = diags_to_string(&diags);
        cr_log_error("for:\n%s\n%s", src, s);
        free(s);
    }
    cr_assert_eq(diags.nerrors, 1, "%d errors for: %s", diags.nerrors, src);
    cr_assert_eq(diags.len, 1);
    const Diag *g = &diags.items[0];
    cr_assert_eq(g->level, DIAG_ERROR);
    cr_assert_str_eq(g->msg, msg, "for: %s", src);
    cr_assert_eq(g->loc.line, line, "line %d, expected %d, for: %s", g->loc.line, line, src);
    cr_assert_eq(g->loc.col, col, "col %d, expected %d, for: %s", g->loc.col, col, src);
    cr_assert_eq(g->loc.file, FILE_NAME);
}

static int count(const Stmt *s) {
    int n = 0;
    for (; s; s = s->next) n++;
    return n;
}

static const Stmt *nth(const Stmt *s, int i) {
    while (i-- > 0 && s) s = s->next;
    cr_assert_not_null(s);
    return s;
}

static const Arg *arg_n(const Expr *call, int i) {
    cr_assert_eq(call->kind, EX_CALL);
    const Arg *a = call->args;
    while (i-- > 0 && a) a = a->next;
    cr_assert_not_null(a);
    return a;
}

/* The value of the only statement `x = EXPR`. */
static const Expr *rhs(const char *src) {
    Ast ast = ok(src);
    cr_assert_eq(count(ast.stmts), 1);
    cr_assert_eq(ast.stmts->kind, ST_BIND);
    return ast.stmts->expr;
}

static void expect_int(const Expr *e, int64_t v) {
    cr_assert_not_null(e);
    cr_assert_eq(e->kind, EX_INT);
    cr_assert_eq(e->i, v);
}

static void expect_float(const Expr *e, double v) {
    cr_assert_not_null(e);
    cr_assert_eq(e->kind, EX_FLOAT);
    cr_assert_eq(e->f, v, "%.17g != %.17g", e->f, v);
}

static void expect_name(const Expr *e, const char *s) {
    cr_assert_not_null(e);
    cr_assert_eq(e->kind, EX_NAME);
    cr_assert_str_eq(e->s, s);
}

static void expect_bin(const Expr *e, char op) {
    cr_assert_not_null(e);
    cr_assert_eq(e->kind, EX_BIN);
    cr_assert_eq(e->op, op, "op '%c', expected '%c'", e->op, op);
}

static void expect_loc(SrcLoc l, int line, int col) {
    cr_assert_eq(l.file, FILE_NAME);
    cr_assert_eq(l.line, line, "line %d, expected %d", l.line, line);
    cr_assert_eq(l.col, col, "col %d, expected %d", l.col, col);
}

/* ---- statements ---- */

Test(parser, statements) {
    Ast ast = ok("net resnet\n"
                 "input x: [1, 3, 224, 224]\n"
                 "input y: [2, 5]\n"
                 "c = conv2d(x, 64, kernel=7)\n"
                 "output c, y\n");
    cr_assert_eq(count(ast.stmts), 5);
    const Stmt *s = ast.stmts;
    cr_assert_eq(s->kind, ST_NET);
    cr_assert_str_eq(s->name, "resnet");
    expect_loc(s->loc, 1, 1);
    expect_loc(s->name_loc, 1, 5);

    s = nth(ast.stmts, 1);
    cr_assert_eq(s->kind, ST_INPUT);
    cr_assert_str_eq(s->name, "x");
    expect_loc(s->name_loc, 2, 7);
    cr_assert_eq(s->expr->kind, EX_LIST);
    cr_assert_eq(s->expr->nitems, 4);
    expect_int(s->expr->items, 1);
    expect_int(s->expr->items->next->next->next, 224);
    cr_assert_null(s->expr->items->next->next->next->next);
    expect_loc(s->expr->loc, 2, 10);

    s = nth(ast.stmts, 3);
    cr_assert_eq(s->kind, ST_BIND);
    cr_assert_str_eq(s->name, "c");
    expect_loc(s->loc, 4, 1);
    cr_assert_eq(s->expr->kind, EX_CALL);
    cr_assert_str_eq(s->expr->s, "conv2d");
    expect_loc(s->expr->loc, 4, 5);
    cr_assert_null(arg_n(s->expr, 0)->key);
    expect_name(arg_n(s->expr, 0)->value, "x");
    expect_int(arg_n(s->expr, 1)->value, 64);
    cr_assert_str_eq(arg_n(s->expr, 2)->key, "kernel");
    expect_loc(arg_n(s->expr, 2)->key_loc, 4, 19);
    expect_int(arg_n(s->expr, 2)->value, 7);
    expect_loc(arg_n(s->expr, 2)->value->loc, 4, 26);
    cr_assert_null(arg_n(s->expr, 2)->next);

    s = nth(ast.stmts, 4);
    cr_assert_eq(s->kind, ST_OUTPUT);
    expect_loc(s->loc, 5, 1);
    cr_assert_str_eq(s->names->name, "c");
    expect_loc(s->names->loc, 5, 8);
    cr_assert_str_eq(s->names->next->name, "y");
    expect_loc(s->names->next->loc, 5, 11);
    cr_assert_null(s->names->next->next);
}

Test(parser, def_with_params_defaults_and_body) {
    Ast ast = ok("def cbr(t, out, kernel, rate=1, p=(kernel - 1) / 2) {\n"
                 "  conv = conv2d(t, out, kernel=kernel)\n"
                 "\n"
                 "  return relu(conv)\n"
                 "}\n");
    cr_assert_eq(count(ast.stmts), 1);
    const Stmt *d = ast.stmts;
    cr_assert_eq(d->kind, ST_DEF);
    cr_assert_str_eq(d->name, "cbr");
    expect_loc(d->loc, 1, 1);
    expect_loc(d->name_loc, 1, 5);
    expect_loc(d->end_loc, 5, 1);
    const char *names[] = {"t", "out", "kernel", "rate", "p"};
    const int cols[] = {9, 12, 17, 25, 33};
    const Param *p = d->params;
    for (int i = 0; i < 5; i++, p = p->next) {
        cr_assert_not_null(p);
        cr_assert_str_eq(p->name, names[i]);
        expect_loc(p->loc, 1, cols[i]);
        cr_assert_eq(p->def != NULL, i >= 3);
    }
    cr_assert_null(p);
    expect_int(d->params->next->next->next->def, 1);
    const Expr *pd = d->params->next->next->next->next->def;
    expect_bin(pd, '/');
    expect_bin(pd->lhs, '-');
    expect_name(pd->lhs->lhs, "kernel");
    cr_assert_eq(count(d->body), 2);
    cr_assert_eq(d->body->kind, ST_BIND);
    expect_loc(d->body->loc, 2, 3);
    cr_assert_eq(d->body->next->kind, ST_RETURN);
    expect_loc(d->body->next->loc, 4, 3);
    cr_assert_eq(d->body->next->expr->kind, EX_CALL);
    cr_assert_str_eq(d->body->next->expr->s, "relu");
}

Test(parser, def_on_one_line_and_empty) {
    Ast ast = ok("def f(t) { return relu(t) }\n"
                 "def g() {}\n"
                 "def h(a, b,) { x = a; return x }\n"
                 "def k() {\n}\n");
    cr_assert_eq(count(ast.stmts), 4);
    const Stmt *f = ast.stmts;
    cr_assert_eq(count(f->body), 1);
    cr_assert_eq(f->body->kind, ST_RETURN);
    expect_loc(f->end_loc, 1, 27);
    const Stmt *g = nth(ast.stmts, 1);
    cr_assert_null(g->params);
    cr_assert_null(g->body);
    const Stmt *h = nth(ast.stmts, 2);
    cr_assert_eq(count(h->body), 2);
    cr_assert_str_eq(h->params->next->name, "b");
    cr_assert_null(h->params->next->next);
    cr_assert_null(nth(ast.stmts, 3)->body);
}

Test(parser, permissive_placement_is_left_to_lowering) {
    /* return at top level, input inside a def, a def inside a def: all parse */
    Ast ast = ok("return x\n"
                 "def f(t) {\n"
                 "  input z: [1]\n"
                 "  def g(u) { return u }\n"
                 "  return g(t)\n"
                 "}\n"
                 "net late\n");
    cr_assert_eq(count(ast.stmts), 3);
    cr_assert_eq(ast.stmts->kind, ST_RETURN);
    const Stmt *f = nth(ast.stmts, 1);
    cr_assert_eq(count(f->body), 3);
    cr_assert_eq(f->body->kind, ST_INPUT);
    cr_assert_eq(f->body->next->kind, ST_DEF);
    cr_assert_eq(count(f->body->next->body), 1);
}

/* ---- expressions ---- */

Test(parser, constants) {
    const Expr *e = rhs("x = [7, 0.5, \"bilinear\", true, false, name, [], [[1]]]\n");
    cr_assert_eq(e->kind, EX_LIST);
    cr_assert_eq(e->nitems, 8);
    const Expr *it = e->items;
    expect_int(it, 7);
    it = it->next;
    expect_float(it, 0.5);
    it = it->next;
    cr_assert_eq(it->kind, EX_STR);
    cr_assert_str_eq(it->s, "bilinear");
    expect_loc(it->loc, 1, 14);
    it = it->next;
    cr_assert_eq(it->kind, EX_BOOL);
    cr_assert(it->b);
    it = it->next;
    cr_assert_eq(it->kind, EX_BOOL);
    cr_assert_not(it->b);
    it = it->next;
    expect_name(it, "name");
    it = it->next;
    cr_assert_eq(it->kind, EX_LIST);
    cr_assert_eq(it->nitems, 0);
    cr_assert_null(it->items);
    it = it->next;
    cr_assert_eq(it->kind, EX_LIST);
    cr_assert_eq(it->nitems, 1);
    cr_assert_eq(it->items->kind, EX_LIST);
    expect_int(it->items->items, 1);
    cr_assert_null(it->next);
}

Test(parser, number_forms) {
    expect_float(rhs("x = 2.\n"), 2.0);
    expect_float(rhs("x = 1e-5\n"), 1e-5);
    expect_float(rhs("x = 1E+3\n"), 1000.0);
    expect_float(rhs("x = 0.5\n"), 0.5);
    expect_float(rhs("x = 2.5e2\n"), 250.0);
    expect_float(rhs("x = 3e0\n"), 3.0);
    expect_int(rhs("x = 0\n"), 0);
    expect_int(rhs("x = 007\n"), 7);
    expect_int(rhs("x = 9223372036854775807\n"), INT64_MAX);
    /* a minus sign is an operator: -0.2 is NEG(0.2), k-1 is k minus 1 */
    const Expr *e = rhs("x = -0.2\n");
    cr_assert_eq(e->kind, EX_NEG);
    expect_float(e->lhs, 0.2);
    e = rhs("x = k-1\n");
    expect_bin(e, '-');
    expect_name(e->lhs, "k");
    expect_int(e->rhs, 1);
}

Test(parser, precedence_and_associativity) {
    /* -2*3+4 = ((-2)*3)+4 */
    const Expr *e = rhs("x = -2*3+4\n");
    expect_bin(e, '+');
    expect_loc(e->loc, 1, 9);
    expect_bin(e->lhs, '*');
    expect_loc(e->lhs->loc, 1, 7);
    cr_assert_eq(e->lhs->lhs->kind, EX_NEG);
    expect_loc(e->lhs->lhs->loc, 1, 5);
    expect_int(e->lhs->lhs->lhs, 2);
    expect_int(e->lhs->rhs, 3);
    expect_int(e->rhs, 4);

    /* 1+2*3 = 1+(2*3) */
    e = rhs("x = 1 + 2 * 3\n");
    expect_bin(e, '+');
    expect_int(e->lhs, 1);
    expect_bin(e->rhs, '*');

    /* left associative: 1-2-3 = (1-2)-3, a/b*c = (a/b)*c */
    e = rhs("x = 1 - 2 - 3\n");
    expect_bin(e, '-');
    expect_bin(e->lhs, '-');
    expect_int(e->rhs, 3);
    expect_int(e->lhs->lhs, 1);
    e = rhs("x = a / b * c\n");
    expect_bin(e, '*');
    expect_bin(e->lhs, '/');
    expect_name(e->rhs, "c");

    /* parentheses */
    e = rhs("x = 2 * (3 + 4)\n");
    expect_bin(e, '*');
    expect_bin(e->rhs, '+');

    /* unary minus binds tighter than anything: -a*b = (-a)*b, - - x, -f(x), -(1+2) */
    e = rhs("x = -a * b\n");
    expect_bin(e, '*');
    cr_assert_eq(e->lhs->kind, EX_NEG);
    e = rhs("x = - -y\n");
    cr_assert_eq(e->kind, EX_NEG);
    cr_assert_eq(e->lhs->kind, EX_NEG);
    expect_name(e->lhs->lhs, "y");
    e = rhs("x = -f(y)\n");
    cr_assert_eq(e->kind, EX_NEG);
    cr_assert_eq(e->lhs->kind, EX_CALL);
    e = rhs("x = -(1 + 2)\n");
    cr_assert_eq(e->kind, EX_NEG);
    expect_bin(e->lhs, '+');
    e = rhs("x = 4 - -1\n");
    expect_bin(e, '-');
    cr_assert_eq(e->rhs->kind, EX_NEG);
}

Test(parser, calls_nested_and_trailing_commas) {
    const Expr *e = rhs("x = relu(add(a, b),)\n");
    cr_assert_eq(e->kind, EX_CALL);
    cr_assert_str_eq(e->s, "relu");
    const Expr *inner = arg_n(e, 0)->value;
    cr_assert_eq(inner->kind, EX_CALL);
    cr_assert_str_eq(inner->s, "add");
    expect_loc(inner->loc, 1, 10);
    expect_name(arg_n(inner, 1)->value, "b");
    cr_assert_null(arg_n(e, 0)->next);

    e = rhs("x = f()\n");
    cr_assert_eq(e->kind, EX_CALL);
    cr_assert_null(e->args);

    e = rhs("x = [1, 2,]\n");
    cr_assert_eq(e->nitems, 2);

    e = rhs("x = conv2d(t, w * 4, kernel=[1, 3], pad=[0, d],)\n");
    expect_bin(arg_n(e, 1)->value, '*');
    cr_assert_str_eq(arg_n(e, 3)->key, "pad");
    cr_assert_eq(arg_n(e, 3)->value->items->next->kind, EX_NAME);
    cr_assert_null(arg_n(e, 3)->next);
}

/* ---- layout ---- */

Test(parser, newlines_inside_brackets_are_whitespace) {
    Ast ast = ok("x = conv2d(\n"
                 "  a,   # the input\n"
                 "\n"
                 "  8,\n"
                 "  kernel=[\n"
                 "    1,\n"
                 "    3\n"
                 "  ]\n"
                 ")\n"
                 "y = (1 +\n"
                 "     2)\n");
    cr_assert_eq(count(ast.stmts), 2);
    const Expr *e = ast.stmts->expr;
    cr_assert_eq(arg_n(e, 2)->value->nitems, 2);
    expect_loc(arg_n(e, 2)->key_loc, 5, 3);
    expect_loc(arg_n(e, 2)->value->items->next->loc, 7, 5);
    expect_bin(nth(ast.stmts, 1)->expr, '+');
    expect_loc(nth(ast.stmts, 1)->loc, 10, 1);
}

Test(parser, semicolons_blank_lines_comments) {
    Ast ast = ok("\n\n# header comment\n"
                 "   \n"
                 "a = 1; b = 2;;\n"
                 ";\n"
                 "c = 3 # trailing\n"
                 "# last line without newline");
    cr_assert_eq(count(ast.stmts), 3);
    cr_assert_str_eq(ast.stmts->name, "a");
    expect_loc(ast.stmts->loc, 5, 1);
    cr_assert_str_eq(nth(ast.stmts, 1)->name, "b");
    expect_loc(nth(ast.stmts, 1)->loc, 5, 8);
    cr_assert_str_eq(nth(ast.stmts, 2)->name, "c");
    expect_loc(nth(ast.stmts, 2)->loc, 7, 1);
}

Test(parser, crlf_line_endings) {
    Ast ast = ok("input x: [1, 2]\r\n"
                 "y = relu(x)\r\n"
                 "\r\n"
                 "def f(t) {\r\n"
                 "  return t\r\n"
                 "}\r\n"
                 "output y\r\n");
    cr_assert_eq(count(ast.stmts), 4);
    expect_loc(nth(ast.stmts, 1)->expr->loc, 2, 5);
    expect_loc(nth(ast.stmts, 2)->end_loc, 6, 1);
    cr_assert_str_eq(nth(ast.stmts, 3)->names->name, "y");
    /* a lone '\r' is whitespace, also inside a comment, which it does not end */
    ast = ok("# a comment\rx = )\ny\r=\r1\n");
    cr_assert_eq(count(ast.stmts), 1);
    cr_assert_str_eq(ast.stmts->name, "y");
    /* "\r\n" is one newline, located at its '\r', after a comment too */
    one_error("x = 1 +\r\n", 1, 8, "syntax error, unexpected newline, expecting expression");
    one_error("x = # c\r\n", 1, 8, "syntax error, unexpected newline, expecting expression");
}

Test(parser, last_statement_needs_no_newline) {
    Ast ast = ok("x = 1\ny = 2");
    cr_assert_eq(count(ast.stmts), 2);
    ast = ok("");
    cr_assert_null(ast.stmts);
    ast = ok("\n\n");
    cr_assert_null(ast.stmts);
}

Test(parser, locations_are_1_based_bytes_and_tabs_count_one) {
    Ast ast = ok("\tx\t=\t3\n");
    expect_loc(ast.stmts->loc, 1, 2);
    expect_loc(ast.stmts->expr->loc, 1, 6);
}

/* ---- print / parse round trips ---- */

static bool expr_eq(const Expr *a, const Expr *b);

static bool str_eq(const char *a, const char *b) {
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool expr_eq(const Expr *a, const Expr *b) {
    if (!a || !b) return a == b;
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case EX_INT: return a->i == b->i;
    case EX_FLOAT: return a->f == b->f;
    case EX_STR:
    case EX_NAME: return str_eq(a->s, b->s);
    case EX_BOOL: return a->b == b->b;
    case EX_NEG: return expr_eq(a->lhs, b->lhs);
    case EX_BIN: return a->op == b->op && expr_eq(a->lhs, b->lhs) && expr_eq(a->rhs, b->rhs);
    case EX_LIST: {
        if (a->nitems != b->nitems) return false;
        const Expr *x = a->items, *y = b->items;
        for (; x && y; x = x->next, y = y->next)
            if (!expr_eq(x, y)) return false;
        return !x && !y;
    }
    case EX_CALL: {
        if (!str_eq(a->s, b->s)) return false;
        const Arg *x = a->args, *y = b->args;
        for (; x && y; x = x->next, y = y->next)
            if (!str_eq(x->key, y->key) || !expr_eq(x->value, y->value)) return false;
        return !x && !y;
    }
    }
    return false;
}

static bool stmts_eq(const Stmt *a, const Stmt *b) {
    for (; a && b; a = a->next, b = b->next) {
        if (a->kind != b->kind || !str_eq(a->name, b->name) || !expr_eq(a->expr, b->expr))
            return false;
        const Ident *i = a->names, *j = b->names;
        for (; i && j; i = i->next, j = j->next)
            if (!str_eq(i->name, j->name)) return false;
        if (i || j) return false;
        const Param *p = a->params, *q = b->params;
        for (; p && q; p = p->next, q = q->next)
            if (!str_eq(p->name, q->name) || !expr_eq(p->def, q->def)) return false;
        if (p || q) return false;
        if (!stmts_eq(a->body, b->body)) return false;
    }
    return !a && !b;
}

/* ast_print's text, malloc'ed */
static char *print_ast(const Ast *ast) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    ast_print(ast, f);
    fclose(f);
    return buf;
}

static void round_trip(const char *src) {
    Ast a = ok(src);
    char *text = print_ast(&a);
    Diags d2;
    diags_init(&d2);
    Ast b;
    bool r = ast_parse(&arena, &d2, "printed.net", text, strlen(text), &b);
    if (!r) cr_log_error("printed text does not parse:\n%s", text);
    cr_assert(r);
    cr_assert(stmts_eq(a.stmts, b.stmts), "round trip differs:\n%s\n---\n%s", src, text);
    /* and printing is a fixed point */
    char *text2 = print_ast(&b);
    cr_assert_str_eq(text, text2);
    free(text);
    free(text2);
    diags_free(&d2);
}

static const char spec_example[] =
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

Test(parser, spec_example_structure) {
    Ast ast = ok(spec_example);
    cr_assert_eq(count(ast.stmts), 12);
    const Stmt *def = nth(ast.stmts, 2);
    cr_assert_eq(def->kind, ST_DEF);
    cr_assert_eq(count(def->body), 3);
    /* pad=(kernel / 2) * rate */
    const Expr *pad = arg_n(def->body->expr, 3)->value;
    cr_assert_str_eq(arg_n(def->body->expr, 3)->key, "pad");
    expect_bin(pad, '*');
    expect_loc(pad->loc, 7, 57);
    expect_bin(pad->lhs, '/');
    expect_float(arg_n(def->body->next->expr, 1)->value, 1e-5);
    const Stmt *up = nth(ast.stmts, 8);
    cr_assert_str_eq(up->name, "up");
    cr_assert_str_eq(arg_n(up->expr, 2)->value->s, "bilinear");
    cr_assert_eq(nth(ast.stmts, 11)->kind, ST_OUTPUT);
    expect_loc(nth(ast.stmts, 11)->loc, 21, 1);
}

Test(parser, round_trips) {
    round_trip(spec_example);
    round_trip("x = -2*3+4\ny = 1 - (2 - 3)\nz = a / (b * c)\nw = --x\nv = -(-1)\n");
    round_trip("input x: [1, 16]\nk = linear(x, 2 * 4 + -1 - (3 - 1) / 2, bias=false)\n");
    round_trip("def f(t, k=3, p=(k - 1) / 2) { return conv2d(t, 8, kernel=k, pad=p) }\n"
               "def g() {}\ny = f(x)\noutput y, x\n");
    round_trip("x = [0.1, 1e-5, 2., 1E+3, 123456.789, 3.0e-300, 1.7976931348623157e308]\n");
    round_trip("x = f([], [[]], \"\", \"a b # c\", true, false)\n");
}

Test(parser, print_text) {
    Ast ast = ok("x = -2*3+4\ndef f(t, k=1) { return relu(t, inplace=true) }\ny = [1e-5, 2., 3]\n");
    char *text = print_ast(&ast);
    cr_assert_str_eq(text, "x = ((-2 * 3) + 4)\n"
                           "def f(t, k=1) {\n"
                           "  return relu(t, inplace=true)\n"
                           "}\n"
                           "y = [1e-05, 2.0, 3]\n");
    free(text);
}

/* ---- syntax errors: exact text and location ---- */

Test(parser, error_unexpected_token_expecting_expression) {
    one_error("x = )\n", 1, 5, "syntax error, unexpected ')', expecting expression");
    one_error("x =\n", 1, 4, "syntax error, unexpected newline, expecting expression");
    one_error("x = 1 +* 2\n", 1, 8, "syntax error, unexpected '*', expecting expression");
    one_error("y = 1\nx = ", 2, 5, "syntax error, unexpected end of file, expecting expression");
    one_error("x = f(1,, 2)\n", 1, 9, "syntax error, unexpected ',', expecting expression or ')'");
    one_error("x = [,]\n", 1, 6, "syntax error, unexpected ',', expecting expression or ']'");
    one_error("x = 1;; y = ;\n", 1, 13, "syntax error, unexpected ';', expecting expression");
    one_error("x = def\n", 1, 5, "syntax error, unexpected 'def', expecting expression");
}

Test(parser, error_missing_separator) {
    one_error("x = f(a b)\n", 1, 9,
              "syntax error, unexpected identifier 'b', expecting ',' or ')'");
    one_error("x = [1 2]\n", 1, 8, "syntax error, unexpected integer, expecting ',' or ']'");
    one_error("x = a b\n", 1, 7, "syntax error, unexpected identifier 'b', expecting newline");
    one_error("x = 1 2.5", 1, 7, "syntax error, unexpected float, expecting newline");
    one_error("output a b\n", 1, 10,
              "syntax error, unexpected identifier 'b', expecting ',' or newline");
    one_error("x = f(a; b)\n", 1, 8, "syntax error, unexpected ';', expecting ',' or ')'");
}

Test(parser, error_statement_forms) {
    one_error(")\n", 1, 1, "syntax error, unexpected ')', expecting statement");
    one_error("x 3\n", 1, 3, "syntax error, unexpected integer, expecting '='");
    one_error("input x [1, 2]\n", 1, 9, "syntax error, unexpected '[', expecting ':'");
    one_error("net 3\n", 1, 5, "syntax error, unexpected integer, expecting identifier");
    one_error("output\n", 1, 7, "syntax error, unexpected newline, expecting identifier");
    one_error("output a,\n", 1, 10, "syntax error, unexpected newline, expecting identifier");
    one_error("\"s\" = 1\n", 1, 1, "syntax error, unexpected string, expecting statement");
    one_error("def f(t) {\n  )\n}\n", 2, 3,
              "syntax error, unexpected ')', expecting statement or '}'");
    one_error("def f(t) { return t } x = 1\n", 1, 23,
              "syntax error, unexpected identifier 'x', expecting newline");
    one_error("def (x) { return x }\n", 1, 5,
              "syntax error, unexpected '(', expecting identifier");
    one_error("def f(t, 3) { return t }\n", 1, 10,
              "syntax error, unexpected integer, expecting identifier or ')'");
    one_error("def f(t) return t\n", 1, 10, "syntax error, unexpected 'return', expecting '{'");
}

Test(parser, error_mismatched_closers) {
    one_error("x = 1 + 2)\nz = 3\n", 1, 10, "syntax error, unexpected ')', expecting newline");
    one_error("x = [1, 2)\nz = 3\n", 1, 10, "syntax error, unexpected ')', expecting ',' or ']'");
    one_error("x = (1, 2]\n", 1, 7, "syntax error, unexpected ',', expecting ')'");
    one_error("}\ny = 1\n", 1, 1, "syntax error, unexpected '}', expecting statement");
    one_error("def f(t) {\n  x = relu(t\n}\ny = 1\n", 3, 1,
              "syntax error, unexpected '}', expecting ',' or ')'");
}

Test(parser, error_unclosed_brackets) {
    one_error("x = (1 + 2\n", 1, 5, "syntax error, unclosed '(', expecting ')'");
    one_error("x = [1, 2", 1, 5, "syntax error, unclosed '[', expecting ']'");
    one_error("def f(\n", 1, 6, "syntax error, unclosed '(', expecting ')'");
    /* the next statement shows the bracket was left open: the error points at the opener and
     * parsing goes on after it */
    one_error("input a: [1, 3, 8, 8]\nx = conv2d(a, 3, kernel=3\ny = relu(x)\noutput y\n", 2, 11,
              "syntax error, unclosed '(', expecting ')'");
    one_error("x = f(a,\noutput x\n", 1, 6, "syntax error, unclosed '(', expecting ')'");
    one_error("def f(t) {\n  a = g(t\n  return a\n}\n", 2, 8,
              "syntax error, unclosed '(', expecting ')'");
    one_error("def f(t) {\n  return t\n\nx = f(y)\noutput x\n", 1, 10,
              "syntax error, unclosed '{', expecting '}'");
    one_error("def f(t) {\n  return g(t\n", 2, 11, "syntax error, unclosed '(', expecting ')'");
}

Test(parser, error_positional_after_keyword) {
    one_error("x = f(1, k=2, 3, 4)\n", 1, 15, "positional argument after keyword argument");
    one_error("x = f(k=2, -a * 3)\n", 1, 12, "positional argument after keyword argument");
}

Test(parser, error_lexical) {
    one_error("x = @\n", 1, 5, "invalid character '@'");
    one_error("x = 1 $ 2 $\n", 1, 7, "invalid character '$'");
    one_error("x = 'a'\n", 1, 5, "invalid character \"'\"");
    one_error("x = \"abc\ny = 1\n", 1, 5, "unterminated string literal");
    one_error("x = f(\"abc)\ny = relu(x)\n", 1, 7, "unterminated string literal");
    one_error("x = 99999999999999999999\n", 1, 5, "integer literal too large");
    one_error("x = 9223372036854775808\n", 1, 5, "integer literal too large");
    one_error("x = 1e999\n", 1, 5, "float literal too large");
    one_error("x = 12ab\n", 1, 5, "invalid number literal '12ab'");
    one_error("x = 1e\n", 1, 5, "invalid number literal '1e'");
    one_error("x = 0x1F\n", 1, 5, "invalid number literal '0x1F'");
    one_error("x = .5\n", 1, 5, "invalid character '.'");
    one_error("x = \xc3\xa9\n", 1, 5, "invalid character '\\xC3'");
    one_error("x = 1\x01\n", 1, 6, "invalid character '\\x01'");
}

Test(parser, error_nul_bytes) {
    static const char src[] = "x = 1\0\ny = \"a\0b\"\nz = 3\n";
    Ast ast;
    cr_assert_not(parse_n(src, sizeof src - 1, &ast));
    cr_assert_eq(diags.nerrors, 2);
    cr_assert_str_eq(diags.items[0].msg, "invalid character '\\x00'");
    expect_loc(diags.items[0].loc, 1, 6);
    cr_assert_str_eq(diags.items[1].msg, "invalid character '\\x00' in a string");
    expect_loc(diags.items[1].loc, 2, 5);
}

Test(parser, three_separate_errors_report_exactly_three) {
    static const char src[] = "input x: [1, 3, 8, 8]\n"
                              "a = relu(x))\n"
                              "b = relu(x)\n"
                              "def f(t t) {\n"
                              "  c = [1 2]\n"
                              "  return t\n"
                              "}\n"
                              "output b\n";
    Ast ast;
    cr_assert_not(parse_n(src, sizeof src - 1, &ast));
    cr_assert_eq(diags.nerrors, 3);
    cr_assert_eq(diags.len, 3);
    int lines[] = {2, 4, 5}, cols[] = {12, 9, 10};
    for (int i = 0; i < 3; i++) {
        expect_loc(diags.items[i].loc, lines[i], cols[i]);
        cr_assert_eq(diags.items[i].level, DIAG_ERROR);
    }
    cr_assert_str_eq(diags.items[0].msg, "syntax error, unexpected ')', expecting newline");
    cr_assert_str_eq(diags.items[1].msg,
                     "syntax error, unexpected identifier 't', expecting ',' or ')'");
    cr_assert_str_eq(diags.items[2].msg, "syntax error, unexpected integer, expecting ',' or ']'");
}

Test(parser, errors_on_consecutive_lines_are_each_reported) {
    static const char src[] = ")\n)\nx = )\ndef f() { x = ) }\n)\n";
    Ast ast;
    cr_assert_not(parse_n(src, sizeof src - 1, &ast));
    cr_assert_eq(diags.nerrors, 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(diags.items[i].loc.line, i + 1);
}

Test(parser, one_error_per_statement) {
    /* the rest of a broken statement is skipped: no cascade */
    one_error("x = f(a b c d e)\n", 1, 9,
              "syntax error, unexpected identifier 'b', expecting ',' or ')'");
    one_error("x = ) @ $ \"open\n", 1, 5, "syntax error, unexpected ')', expecting expression");
    one_error("x = f(a b,\n      c=1)\n", 1, 9,
              "syntax error, unexpected identifier 'b', expecting ',' or ')'");
}

/* ---- limits ---- */

static char *repeat(const char *head, const char *unit, int n, const char *tail) {
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * (size_t)n + tl + 1);
    memcpy(s, head, hl);
    for (int i = 0; i < n; i++) memcpy(s + hl + ul * (size_t)i, unit, ul);
    memcpy(s + hl + ul * (size_t)n, tail, tl + 1);
    return s;
}

Test(parser, deep_nesting_is_an_error_not_a_crash) {
    char *s = repeat("x = ", "(", 100000, "1\n");
    one_error(s, 1, 5 + 256, "nesting too deep (more than 256 levels)");
    free(s);
    s = repeat("x = ", "-", 100000, "1\n");
    one_error(s, 1, 5 + 256, "nesting too deep (more than 256 levels)");
    free(s);
    s = repeat("", "def f() {\n", 1000, "");
    one_error(s, 257, 6, "nesting too deep (more than 256 levels)");
    free(s);
    /* a left-leaning chain is deep too, as a tree */
    s = repeat("x = 1", " + 1", 100000, "\n");
    one_error(s, 1, 4 * 1000 + 3, "expression too deeply nested (more than 1000 levels)");
    free(s);
}

Test(parser, nesting_up_to_the_limit_parses) {
    char *s = repeat("x = ", "[", 256, "1");
    char *t = repeat(s, "]", 256, "\n");
    const Expr *e = rhs(t);
    int depth = 0;
    for (; e->kind == EX_LIST; e = e->items) depth++;
    cr_assert_eq(depth, 256);
    expect_int(e, 1);
    free(s);
    free(t);
}
