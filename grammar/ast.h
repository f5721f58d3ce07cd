/* ast.h — the syntax tree the flex/bison front end builds from a .net file; nothing else.
 * Every node keeps the location of the token it came from, so every later error points there. */
#ifndef NETC_AST_H
#define NETC_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../compiler/diag.h"
#include "../compiler/util.h"

typedef enum {
    EX_INT,   /* i */
    EX_FLOAT, /* f */
    EX_STR,   /* s (without quotes) */
    EX_BOOL,  /* b */
    EX_NAME,  /* s */
    EX_CALL,  /* s = callee, args */
    EX_LIST,  /* items (linked through Expr.next) */
    EX_NEG,   /* lhs; loc = the '-' token */
    EX_BIN    /* op is one of + - * /, lhs, rhs; loc = the operator token */
} ExprKind;

typedef struct Expr Expr;
typedef struct Arg Arg;

struct Arg {
    const char *key; /* NULL for a positional argument */
    SrcLoc key_loc;  /* location of the keyword, when key != NULL */
    Expr *value;
    Arg *next;
};

struct Expr {
    ExprKind kind;
    SrcLoc loc;     /* first token of the expression (for EX_BIN/EX_NEG: the operator) */
    int64_t i;
    double f;
    bool b;
    const char *s;
    char op;
    Expr *lhs, *rhs;
    Arg *args;      /* EX_CALL */
    Expr *items;    /* EX_LIST: first item */
    int nitems;
    Expr *next;     /* next item of the enclosing list */
};

typedef enum {
    ST_NET,    /* net NAME */
    ST_INPUT,  /* input NAME: EXPR   (expr is the shape list) */
    ST_OUTPUT, /* output NAME, NAME... (names) */
    ST_BIND,   /* NAME = EXPR */
    ST_RETURN, /* return EXPR */
    ST_DEF     /* def NAME(params) { body } */
} StmtKind;

typedef struct Ident {
    const char *name;
    SrcLoc loc;
    struct Ident *next;
} Ident;

typedef struct Param {
    const char *name;
    SrcLoc loc;
    Expr *def; /* default value or NULL */
    struct Param *next;
} Param;

typedef struct Stmt Stmt;
struct Stmt {
    StmtKind kind;
    SrcLoc loc;       /* the statement's first token */
    const char *name; /* net/input/bind/def name */
    SrcLoc name_loc;
    Expr *expr;       /* input shape, bind value, return value */
    Ident *names;     /* output */
    Param *params;    /* def */
    Stmt *body;       /* def body, in order */
    SrcLoc end_loc;   /* def: the closing '}' */
    Stmt *next;
};

typedef struct Ast {
    Stmt *stmts; /* in source order; the grammar accepts any statement anywhere and
                    lowering checks placement (def at top level, return in a def, ...) */
} Ast;

/* Parse `text` (len bytes, may contain NULs) of `file`. All syntax errors the parser can recover
 * from are reported in `d`. Returns true when no error was reported. AST memory comes from `a`.
 * Reentrant: no global state. */
bool ast_parse(Arena *a, Diags *d, const char *file, const char *text, size_t len, Ast *out);

/* Print the AST back as .net text (tests: parse(print(parse(x))) == parse(x)). */
void ast_print(const Ast *ast, FILE *out);

#endif
