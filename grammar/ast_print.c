/* ast_print.c — prints an AST back as .net text that parses to the same tree (arithmetic fully
 * parenthesised), for tests and debugging. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"

/* The shortest decimal form that reads back as the same double, with a '.' or an exponent so
 * that it reads back as a float and not an integer. */
static void print_float(double f, FILE *out) {
    if (!isfinite(f)) { /* never from the parser; keep the output parseable */
        fputs(isnan(f) ? "(0.0 / 0.0)" : f > 0 ? "(1.0 / 0.0)" : "(-1.0 / 0.0)", out);
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, fabs(f));
        if (strtod(buf, NULL) == fabs(f)) break;
    }
    if (!strpbrk(buf, ".e")) strcat(buf, ".0");
    if (signbit(f)) fprintf(out, "(-%s)", buf);
    else fputs(buf, out);
}

static void print_expr(const Expr *e, FILE *out);

static void print_args(const Arg *a, FILE *out) {
    for (; a; a = a->next) {
        if (a->key) fprintf(out, "%s=", a->key);
        print_expr(a->value, out);
        if (a->next) fputs(", ", out);
    }
}

static void print_expr(const Expr *e, FILE *out) {
    if (!e) {
        fputs("0", out);
        return;
    }
    switch (e->kind) {
    case EX_INT:
        if (e->i >= 0) fprintf(out, "%" PRId64, e->i);
        else if (e->i == INT64_MIN) fprintf(out, "(-%" PRId64 " - 1)", INT64_MAX);
        else fprintf(out, "(-%" PRId64 ")", -e->i);
        break;
    case EX_FLOAT: print_float(e->f, out); break;
    case EX_STR: fprintf(out, "\"%s\"", e->s ? e->s : ""); break;
    case EX_BOOL: fputs(e->b ? "true" : "false", out); break;
    case EX_NAME: fputs(e->s ? e->s : "_", out); break;
    case EX_CALL:
        fprintf(out, "%s(", e->s ? e->s : "_");
        print_args(e->args, out);
        fputc(')', out);
        break;
    case EX_LIST:
        fputc('[', out);
        for (const Expr *it = e->items; it; it = it->next) {
            print_expr(it, out);
            if (it->next) fputs(", ", out);
        }
        fputc(']', out);
        break;
    case EX_NEG: /* unary minus binds tightest and its operand prints as an atom */
        fputc('-', out);
        print_expr(e->lhs, out);
        break;
    case EX_BIN:
        fputc('(', out);
        print_expr(e->lhs, out);
        fprintf(out, " %c ", e->op);
        print_expr(e->rhs, out);
        fputc(')', out);
        break;
    }
}

static void print_stmts(const Stmt *s, int indent, FILE *out) {
    for (; s; s = s->next) {
        fprintf(out, "%*s", indent, "");
        switch (s->kind) {
        case ST_NET: fprintf(out, "net %s", s->name); break;
        case ST_INPUT:
            fprintf(out, "input %s: ", s->name);
            print_expr(s->expr, out);
            break;
        case ST_OUTPUT:
            fputs("output ", out);
            for (const Ident *id = s->names; id; id = id->next)
                fprintf(out, "%s%s", id->name, id->next ? ", " : "");
            break;
        case ST_BIND:
            fprintf(out, "%s = ", s->name);
            print_expr(s->expr, out);
            break;
        case ST_RETURN:
            fputs("return ", out);
            print_expr(s->expr, out);
            break;
        case ST_DEF:
            fprintf(out, "def %s(", s->name);
            for (const Param *p = s->params; p; p = p->next) {
                fputs(p->name, out);
                if (p->def) {
                    fputc('=', out);
                    print_expr(p->def, out);
                }
                if (p->next) fputs(", ", out);
            }
            fputs(") {\n", out);
            print_stmts(s->body, indent + 2, out);
            fprintf(out, "%*s}", indent, "");
            break;
        }
        fputc('\n', out);
    }
}

void ast_print(const Ast *ast, FILE *out) { print_stmts(ast->stmts, 0, out); }
