/* net.y — the bison grammar of the .net language: statements and expressions to an AST, with error
 * recovery so that every syntax error of a file is reported once. */

/* Diagnostic style: every message of the front end (tests/parser checks them verbatim).
 *   syntax error, unexpected X, expecting Y or Z    a token the grammar cannot take here
 *   syntax error, unexpected X                       when more than five things could follow
 *   syntax error, unclosed '(', expecting ')'        at the opener of a bracket never closed
 *   positional argument after keyword argument       at the positional argument
 *   expression too deeply nested (more than 1000 levels)
 *   nesting too deep (more than 256 levels)           brackets, or a run of unary '-'
 *   nesting too deep (the parser's stack is exhausted)
 *   invalid character '@'  /  invalid character '\xC3'   printable ASCII quoted, others as \xNN
 *   invalid character '\x00' in a string  /  unterminated string literal
 *   invalid number literal '12ab'  /  integer literal too large  /  float literal too large
 *   file too large (N bytes)
 * Token names: punctuation and keywords in single quotes ('(' 'def'), classes in words (newline,
 * identifier 'name', integer, float, string, end of file); a ';' is named ';'. In the
 * "expecting" list the tokens that can start an expression read "expression", those that can
 * start a statement read "statement", and operators, the '(' of a call and the '=' of a keyword
 * argument are left out when something else could follow too (they are rarely what was
 * forgotten). Each error points at the offending token (file:line:col, 1-based, columns in
 * bytes). After a syntax or lexical error the rest of its statement is skipped and parsing
 * resumes at the next statement (or at the '{' of a def whose header is broken), so one mistake
 * never yields two messages; range errors of literals and a positional argument after a keyword
 * leave the statement parseable, so other mistakes in it are still found. */

%define api.pure full
%define api.prefix {netp_}
%define parse.error custom
%define parse.lac full
%locations
%param {ParseCtx *ctx}
%expect 0

%code requires {
#include <stdbool.h>
#include <stdint.h>

#include "ast.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

typedef struct ParseCtx ParseCtx;

/* Semantic values under construction: lists keep their tail for O(1) appends and every
 * expression carries its depth, so that no later recursive walk can overflow the C stack. */
typedef struct { Expr *e; int depth; } ExprD;
typedef struct { Expr *head, *tail; int n, depth; } ExprList;
typedef struct { Arg *a; int depth; } ArgD;
typedef struct { Arg *head, *tail; int depth; bool seen_key, reported; } ArgList;
typedef struct { Param *head, *tail; } ParamList;
typedef struct { Ident *head, *tail; } IdentList;
typedef struct { Stmt *head, *tail; } StmtList;
typedef struct { Stmt *head; SrcLoc end; } Body;
}

%code provides {
/* Limits that keep the parser's stack and every later recursion bounded. */
enum { NET_MAX_NEST = 256, NET_MAX_EXPR_DEPTH = 1000 };

typedef struct Bracket {
    char kind; /* ( [ { */
    NETP_LTYPE loc;
} Bracket;

typedef struct QueuedTok {
    int kind;
    NETP_STYPE val;
    NETP_LTYPE loc;
    bool semi;
} QueuedTok;

/* Everything one parse needs: shared by the scanner (net.l) and the grammar actions. */
struct ParseCtx {
    Arena *arena;
    Diags *diags;
    const char *file;
    yyscan_t scanner;
    int line, col;        /* position of the next byte */
    /* layout (net.l: net_lex) */
    Bracket stack[NET_MAX_NEST];
    int depth;
    int prev;             /* kind of the last token given to the parser */
    int minus_run;        /* consecutive unary '-' */
    bool nl_seen;         /* a newline was swallowed inside brackets since the last token */
    NETP_LTYPE nl_loc;
    QueuedTok queue[2];
    int qhead, qlen;
    bool fatal;           /* nesting limit hit: the rest of the file reads as end of file */
    bool stmt_error;      /* an error was reported in the current statement */
    char unclosed;        /* opener kind of the UNCLOSED token given last */
    /* the lookahead, for messages */
    const char *look_str;
    bool look_semi;
    Stmt *result;
};

int net_lex(NETP_STYPE *lval, NETP_LTYPE *lloc, ParseCtx *ctx);
bool net_scan_begin(ParseCtx *ctx, const char *text, size_t len);
void net_scan_end(ParseCtx *ctx);
}

%code {
#include <limits.h>
#include <stdio.h>
#include <string.h>

static int netp_lex(NETP_STYPE *lval, NETP_LTYPE *lloc, ParseCtx *ctx) { return net_lex(lval, lloc, ctx); }
static void netp_error(NETP_LTYPE *loc, ParseCtx *ctx, const char *msg);

static SrcLoc sl(const ParseCtx *ctx, NETP_LTYPE l) {
    return (SrcLoc){.file = ctx->file, .line = l.first_line, .col = l.first_column};
}

static Expr *new_expr(ParseCtx *ctx, ExprKind k, NETP_LTYPE l) {
    Expr *e = arena_alloc(ctx->arena, sizeof *e);
    e->kind = k;
    e->loc = sl(ctx, l);
    return e;
}

static ExprD leaf(Expr *e) { return (ExprD){e, 1}; }

/* A node of depth `depth`: reports (once, as the statement is then skipped) when it is too deep. */
static bool depth_ok(ParseCtx *ctx, int depth, NETP_LTYPE l) {
    if (depth <= NET_MAX_EXPR_DEPTH) return true;
    diag_error(ctx->diags, sl(ctx, l), "expression too deeply nested (more than %d levels)",
               NET_MAX_EXPR_DEPTH);
    ctx->stmt_error = true;
    return false;
}

static int max2(int a, int b) { return a > b ? a : b; }

static Stmt *new_stmt(ParseCtx *ctx, StmtKind k, NETP_LTYPE l) {
    Stmt *s = arena_alloc(ctx->arena, sizeof *s);
    s->kind = k;
    s->loc = sl(ctx, l);
    return s;
}

static StmtList stmts_add(StmtList l, Stmt *s) {
    if (!s) return l; /* a statement recovered from an error */
    if (l.tail) l.tail->next = s;
    else l.head = s;
    l.tail = s;
    return l;
}

static bool mk_list(ParseCtx *ctx, NETP_LTYPE l, ExprList items, ExprD *out) {
    if (!depth_ok(ctx, items.depth + 1, l)) return false;
    Expr *e = new_expr(ctx, EX_LIST, l);
    e->items = items.head;
    e->nitems = items.n;
    *out = (ExprD){e, items.depth + 1};
    return true;
}

static bool mk_call(ParseCtx *ctx, NETP_LTYPE l, const char *callee, ArgList args, ExprD *out) {
    if (!depth_ok(ctx, args.depth + 1, l)) return false;
    Expr *e = new_expr(ctx, EX_CALL, l);
    e->s = callee;
    e->args = args.head;
    *out = (ExprD){e, args.depth + 1};
    return true;
}

/* A binary node; the location is the operator's. */
#define BIN(res, opc, a, b, oploc)                                                             \
    do {                                                                                       \
        int d_ = max2((a).depth, (b).depth) + 1;                                               \
        if (!depth_ok(ctx, d_, oploc)) YYERROR;                                                \
        Expr *e_ = new_expr(ctx, EX_BIN, oploc);                                               \
        e_->op = (opc);                                                                        \
        e_->lhs = (a).e;                                                                       \
        e_->rhs = (b).e;                                                                       \
        (res) = (ExprD){e_, d_};                                                               \
    } while (0)
}

%union {
    int64_t ival;
    double fval;
    const char *str;
    ExprD ex;
    ExprList el;
    ArgD arg;
    ArgList al;
    Param *param;
    ParamList pl;
    IdentList il;
    Stmt *stmt;
    StmtList sl;
    Body body;
}

%token NL "newline"
%token <str> IDENT "identifier"
%token <ival> INT "integer"
%token <fval> FLOAT "float"
%token <str> STRING "string"
%token NET "'net'" INPUT "'input'" OUTPUT "'output'" DEF "'def'" RETURN "'return'"
%token TRUE "'true'" FALSE "'false'"
%token UNCLOSED "unclosed bracket"
%token SEMI "';'" /* a ';' inside brackets: never valid, and no statement end */

%type <ex> expr term unary primary
%type <el> items
%type <arg> arg
%type <al> args
%type <param> param
%type <pl> params params_opt
%type <il> names
%type <stmt> stmt
%type <sl> lines
%type <body> body

%%

/* file = lines [stmt]: the last statement needs no newline */
file
    : lines               { ctx->result = $1.head; (void)yynerrs; }
    | lines stmt          { ctx->result = stmts_add($1, $2).head; }
    | lines error         { ctx->result = $1.head; }
    ;

/* lines = { [stmt] NL }: blank lines and empty statements (';;') are allowed */
lines
    : %empty              { $$ = (StmtList){0}; }
    | lines NL            { $$ = $1; }
    | lines stmt NL       { $$ = stmts_add($1, $2); }
    | lines error NL      { $$ = $1; yyerrok; }
    ;

stmt
    : NET IDENT
        { $$ = new_stmt(ctx, ST_NET, @1); $$->name = $2; $$->name_loc = sl(ctx, @2); }
    | INPUT IDENT ':' expr
        { $$ = new_stmt(ctx, ST_INPUT, @1); $$->name = $2; $$->name_loc = sl(ctx, @2); $$->expr = $4.e; }
    | OUTPUT names
        { $$ = new_stmt(ctx, ST_OUTPUT, @1); $$->names = $2.head; }
    | IDENT '=' expr
        { $$ = new_stmt(ctx, ST_BIND, @1); $$->name = $1; $$->name_loc = sl(ctx, @1); $$->expr = $3.e; }
    | RETURN expr
        { $$ = new_stmt(ctx, ST_RETURN, @1); $$->expr = $2.e; }
    | DEF IDENT '(' params_opt ')' body
        {
          $$ = new_stmt(ctx, ST_DEF, @1);
          $$->name = $2;
          $$->name_loc = sl(ctx, @2);
          $$->params = $4.head;
          $$->body = $6.head;
          $$->end_loc = $6.end;
        }
    /* an error in a def's header: skip to its body (still checked) or to the end of the line */
    | DEF error body      { $$ = NULL; yyerrok; }
    | DEF error           { $$ = NULL; yyerrok; }
    ;

/* body = '{' lines [stmt] '}': `{ return relu(t) }` fits on one line */
body
    : '{' lines '}'       { $$ = (Body){$2.head, sl(ctx, @3)}; }
    | '{' lines stmt '}'  { $$ = (Body){stmts_add($2, $3).head, sl(ctx, @4)}; }
    | '{' lines error '}' { $$ = (Body){$2.head, sl(ctx, @4)}; yyerrok; }
    ;

names
    : IDENT
        {
          Ident *id = arena_alloc(ctx->arena, sizeof *id);
          id->name = $1;
          id->loc = sl(ctx, @1);
          $$ = (IdentList){id, id};
        }
    | names ',' IDENT
        {
          Ident *id = arena_alloc(ctx->arena, sizeof *id);
          id->name = $3;
          id->loc = sl(ctx, @3);
          $1.tail->next = id;
          $$ = (IdentList){$1.head, id};
        }
    ;

params_opt
    : %empty              { $$ = (ParamList){0}; }
    | params              { $$ = $1; }
    | params ','          { $$ = $1; }
    ;

params
    : param               { $$ = (ParamList){$1, $1}; }
    | params ',' param    { $1.tail->next = $3; $$ = (ParamList){$1.head, $3}; }
    ;

param
    : IDENT
        { $$ = arena_alloc(ctx->arena, sizeof *$$); $$->name = $1; $$->loc = sl(ctx, @1); }
    | IDENT '=' expr
        {
          $$ = arena_alloc(ctx->arena, sizeof *$$);
          $$->name = $1;
          $$->loc = sl(ctx, @1);
          $$->def = $3.e;
        }
    ;

/* expr = term { ('+' | '-') term }; term = unary { ('*' | '/') unary }; unary = '-' unary | primary */
expr
    : expr '+' term       { BIN($$, '+', $1, $3, @2); }
    | expr '-' term       { BIN($$, '-', $1, $3, @2); }
    | term
    ;

term
    : term '*' unary      { BIN($$, '*', $1, $3, @2); }
    | term '/' unary      { BIN($$, '/', $1, $3, @2); }
    | unary
    ;

unary
    : '-' unary
        {
          if (!depth_ok(ctx, $2.depth + 1, @1)) YYERROR;
          Expr *e = new_expr(ctx, EX_NEG, @1);
          e->lhs = $2.e;
          $$ = (ExprD){e, $2.depth + 1};
        }
    | primary
    ;

primary
    : IDENT               { $$ = leaf(new_expr(ctx, EX_NAME, @1)); $$.e->s = $1; }
    | INT                 { $$ = leaf(new_expr(ctx, EX_INT, @1)); $$.e->i = $1; }
    | FLOAT               { $$ = leaf(new_expr(ctx, EX_FLOAT, @1)); $$.e->f = $1; }
    | STRING              { $$ = leaf(new_expr(ctx, EX_STR, @1)); $$.e->s = $1; }
    | TRUE                { $$ = leaf(new_expr(ctx, EX_BOOL, @1)); $$.e->b = true; }
    | FALSE               { $$ = leaf(new_expr(ctx, EX_BOOL, @1)); $$.e->b = false; }
    | '(' expr ')'        { $$ = $2; }
    | '[' ']'             { $$ = leaf(new_expr(ctx, EX_LIST, @1)); }
    | '[' items ']'       { if (!mk_list(ctx, @1, $2, &$$)) YYERROR; }
    | '[' items ',' ']'   { if (!mk_list(ctx, @1, $2, &$$)) YYERROR; }
    | IDENT '(' ')'       { $$ = leaf(new_expr(ctx, EX_CALL, @1)); $$.e->s = $1; }
    | IDENT '(' args ')'     { if (!mk_call(ctx, @1, $1, $3, &$$)) YYERROR; }
    | IDENT '(' args ',' ')' { if (!mk_call(ctx, @1, $1, $3, &$$)) YYERROR; }
    ;

items
    : expr                { $$ = (ExprList){$1.e, $1.e, 1, $1.depth}; }
    | items ',' expr
        {
          $1.tail->next = $3.e;
          $$ = (ExprList){$1.head, $3.e, $1.n + 1, max2($1.depth, $3.depth)};
        }
    ;

args
    : arg                 { $$ = (ArgList){$1.a, $1.a, $1.depth, $1.a->key != NULL, false}; }
    | args ',' arg
        {
          $$ = $1;
          if (!$3.a->key && $$.seen_key && !$$.reported) {
              diag_error(ctx->diags, sl(ctx, @3), "positional argument after keyword argument");
              $$.reported = true;
          }
          if ($3.a->key) $$.seen_key = true;
          $$.tail->next = $3.a;
          $$.tail = $3.a;
          $$.depth = max2($$.depth, $3.depth);
        }
    ;

arg
    : expr
        {
          Arg *a = arena_alloc(ctx->arena, sizeof *a);
          a->value = $1.e;
          $$ = (ArgD){a, $1.depth};
        }
    | IDENT '=' expr
        {
          Arg *a = arena_alloc(ctx->arena, sizeof *a);
          a->key = $1;
          a->key_loc = sl(ctx, @1);
          a->value = $3.e;
          $$ = (ArgD){a, $3.depth};
        }
    ;

%%

/* The token names of the style comment at the top. */
static const char *tok_name(yysymbol_kind_t k) {
    switch (k) {
    case YYSYMBOL_YYEOF: return "end of file";
    case YYSYMBOL_NL: return "newline";
    case YYSYMBOL_IDENT: return "identifier";
    case YYSYMBOL_INT: return "integer";
    case YYSYMBOL_FLOAT: return "float";
    case YYSYMBOL_STRING: return "string";
    default: return yysymbol_name(k);
    }
}

/* The character of a single-character token ('(' -> '('), 0 for the others. */
static char sym_char(yysymbol_kind_t k) {
    const char *n = yysymbol_name(k);
    return n[0] == '\'' && n[1] && n[2] == '\'' && !n[3] ? n[1] : 0;
}

static bool is_expr_start(yysymbol_kind_t k) {
    return k == YYSYMBOL_IDENT || k == YYSYMBOL_INT || k == YYSYMBOL_FLOAT || k == YYSYMBOL_STRING ||
           k == YYSYMBOL_TRUE || k == YYSYMBOL_FALSE || (sym_char(k) && strchr("([-", sym_char(k)));
}

static bool is_stmt_start(yysymbol_kind_t k) {
    return k == YYSYMBOL_NET || k == YYSYMBOL_INPUT || k == YYSYMBOL_OUTPUT || k == YYSYMBOL_DEF ||
           k == YYSYMBOL_RETURN || k == YYSYMBOL_IDENT;
}

/* operators, the '(' of a call and the '=' of a keyword argument */
static bool is_continuation(yysymbol_kind_t k) { return sym_char(k) && strchr("+-*/(=", sym_char(k)); }

/* When every token `in` accepts is expected (there are `total` of them), drop those, and those
 * `also` accepts, from the list; true when it did. */
static bool take_group(yysymbol_kind_t *exp, int *n, bool (*in)(yysymbol_kind_t), int total,
                       bool (*also)(yysymbol_kind_t)) {
    int found = 0;
    for (int i = 0; i < *n; i++) found += in(exp[i]);
    if (found != total) return false;
    int m = 0;
    for (int i = 0; i < *n; i++)
        if (!in(exp[i]) && !(also && also(exp[i]))) exp[m++] = exp[i];
    *n = m;
    return true;
}

/* A stable, readable order for the "expecting" list: identifier, then the tokens of an
 * expression, then those that end a statement (inner to outer). */
static int display_rank(yysymbol_kind_t k) {
    static const char order[] = ",)]:=([";
    if (k == YYSYMBOL_IDENT) return -1;
    if (k == YYSYMBOL_NL) return 20;
    if (sym_char(k) == '}') return 21;
    if (sym_char(k) == '{') return 22;
    const char *p = sym_char(k) ? strchr(order, sym_char(k)) : NULL;
    return p ? (int)(p - order) : 100 + (int)k;
}

static bool is_stmt_sep(yysymbol_kind_t k) { return k == YYSYMBOL_NL || k == YYSYMBOL_YYEOF; }

/* Bison calls this for every syntax error it reports (not while it recovers from one). */
static int yyreport_syntax_error(const yypcontext_t *yyctx, ParseCtx *ctx) {
    yysymbol_kind_t look = yypcontext_token(yyctx);
    const NETP_LTYPE *loc = yypcontext_location(yyctx);
    SrcLoc at = sl(ctx, *loc);
    if (look != YYSYMBOL_NL && look != YYSYMBOL_YYEOF) ctx->stmt_error = true;
    if (look == YYSYMBOL_UNCLOSED) {
        char close = ctx->unclosed == '(' ? ')' : ctx->unclosed == '[' ? ']' : '}';
        diag_error(ctx->diags, at, "syntax error, unclosed '%c', expecting '%c'", ctx->unclosed, close);
        return 0;
    }
    if (look == YYSYMBOL_YYerror || look == YYSYMBOL_YYUNDEF) return 0; /* reported by the scanner */

    char unexpected[80];
    if (look == YYSYMBOL_IDENT && ctx->look_str) {
        size_t n = strlen(ctx->look_str);
        if (n > 40) snprintf(unexpected, sizeof unexpected, "identifier '%.40s...'", ctx->look_str);
        else snprintf(unexpected, sizeof unexpected, "identifier '%s'", ctx->look_str);
    } else if (look == YYSYMBOL_NL && ctx->look_semi) {
        snprintf(unexpected, sizeof unexpected, "';'");
    } else {
        snprintf(unexpected, sizeof unexpected, "%s", tok_name(look));
    }

    yysymbol_kind_t exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(yyctx, exp, YYNTOKENS);
    if (n < 0) n = 0;
    bool is_expr = take_group(exp, &n, is_expr_start, 9, NULL);
    bool is_stmt = !is_expr && take_group(exp, &n, is_stmt_start, 6, is_stmt_sep);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!is_continuation(exp[i])) exp[m++] = exp[i];
    if (m > 0 || is_expr || is_stmt) n = m;
    /* where a newline may end the file's last statement, so may the end of the file: say newline */
    bool has_nl = false;
    for (int i = 0; i < n; i++) has_nl |= exp[i] == YYSYMBOL_NL;
    m = 0;
    for (int i = 0; i < n; i++)
        if (!(has_nl && exp[i] == YYSYMBOL_YYEOF)) exp[m++] = exp[i];
    n = m;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && display_rank(exp[j]) < display_rank(exp[j - 1]); j--) {
            yysymbol_kind_t t = exp[j];
            exp[j] = exp[j - 1];
            exp[j - 1] = t;
        }

    char buf[400];
    int len = snprintf(buf, sizeof buf, "syntax error, unexpected %s", unexpected);
    int total = n + is_expr + is_stmt;
    if (total > 0 && total <= 5) {
        const char *sep = ", expecting ";
        if (is_expr) len += snprintf(buf + len, sizeof buf - (size_t)len, "%sexpression", sep), sep = " or ";
        if (is_stmt) len += snprintf(buf + len, sizeof buf - (size_t)len, "%sstatement", sep), sep = " or ";
        for (int i = 0; i < n; i++)
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%s", sep, tok_name(exp[i])), sep = " or ";
    }
    diag_error(ctx->diags, at, "%s", buf);
    return 0;
}

/* Only reached when the parser's own stack is exhausted (yyerror's other uses go through
 * yyreport_syntax_error): deep nesting that the scanner's limits did not catch. */
static void netp_error(NETP_LTYPE *loc, ParseCtx *ctx, const char *msg) {
    (void)msg;
    diag_error(ctx->diags, sl(ctx, *loc), "nesting too deep (the parser's stack is exhausted)");
}

bool ast_parse(Arena *a, Diags *d, const char *file, const char *text, size_t len, Ast *out) {
    out->stmts = NULL;
    int before = d->nerrors;
    /* the scanner counts in int; a file this large is not a network description */
    if (len > (size_t)INT_MAX / 2) {
        diag_error(d, (SrcLoc){.file = file}, "file too large (%zu bytes)", len);
        return false;
    }
    ParseCtx *ctx = xcalloc(1, sizeof *ctx);
    ctx->arena = a;
    ctx->diags = d;
    ctx->file = file; /* the caller's string: diagnostics outlive the AST's arena */
    ctx->line = ctx->col = 1;
    ctx->prev = NL;
    int rc = 1;
    if (net_scan_begin(ctx, text, len)) {
        rc = netp_parse(ctx);
        net_scan_end(ctx);
    }
    if (rc != 0 && d->nerrors == before) /* cannot happen: every failure is reported */
        diag_error(d, (SrcLoc){.file = file, .line = ctx->line, .col = ctx->col}, "syntax error");
    out->stmts = ctx->result;
    free(ctx);
    return d->nerrors == before;
}
