/* lower.c — AST -> graph IR. Expands defs (arguments, defaults, scopes, recursion check),
 * evaluates constant arithmetic, names weights by their binding path, checks every op call
 * against the op table, and runs shape inference node by node so errors point at the source. */
#include "lower.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A lowering graph larger than this is a runaway expansion (defs calling defs twice, ...). */
enum { LOWER_MAX_NODES = 200000 };

typedef struct Binding {
    const char *name;
    SrcLoc loc;
    Value val; /* VAL_NONE: poisoned by an error already reported */
    struct Binding *next;
} Binding;

typedef struct Scope {
    Binding *names;
    const char *prefix; /* weight path of this scope ("" at top level) */
    const Stmt *def;    /* the def being expanded, NULL at top level */
} Scope;

typedef struct Active {
    const Stmt *def;
    const struct Active *next;
} Active;

/* Open-addressing set of strings (node names, reported errors). */
typedef struct StrSet {
    const char **slots;
    size_t cap, len;
} StrSet;

typedef struct Lower {
    Graph *g;
    Diags *d;
    const Ast *ast;
    const char *file;      /* the .net file: every diagnostic names it, even an empty file's */
    const CallSite *calls; /* current def call chain, innermost first */
    const Active *active;  /* defs being expanded (recursion check) */
    StrSet node_names;
    StrSet reported; /* "line:col:msg" of errors reported inside defs, to report each once */
    bool too_big;
} Lower;

/* ---- small helpers --------------------------------------------------------------------- */

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* Returns false if already present. */
static bool strset_add(StrSet *s, Arena *a, const char *str) {
    if (2 * (s->len + 1) > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        const char **ns = xcalloc(ncap, sizeof *ns);
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i]) continue;
            size_t j = str_hash(s->slots[i]) & (ncap - 1);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    size_t j = str_hash(str) & (s->cap - 1);
    while (s->slots[j]) {
        if (!strcmp(s->slots[j], str)) return false;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = arena_strdup(a, str);
    s->len++;
    return true;
}

/* An error at loc, plus a note per def call on the way. Inside defs the same error (same
 * place, same text) is reported once even if the def is expanded many times. */
static void lerr(Lower *L, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void lerr(Lower *L, SrcLoc loc, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (L->calls) {
        char *key = arena_printf(&L->g->arena, "%d:%d:%s", loc.line, loc.col, msg);
        if (!strset_add(&L->reported, &L->g->arena, key)) return;
    }
    diag_error(L->d, loc, "%s", msg);
    for (const CallSite *c = L->calls; c; c = c->parent) diag_note(L->d, c->loc, "in call of '%s'", c->def_name);
}

static const char *path_join(Lower *L, const char *prefix, const char *name) {
    if (!prefix || !*prefix) return arena_strdup(&L->g->arena, name);
    return arena_printf(&L->g->arena, "%s.%s", prefix, name);
}

/* Short human description of a value for messages: "the integer 3", "the tensor 'x'". */
static const char *describe(Lower *L, const Value *v) {
    Arena *a = &L->g->arena;
    switch (v->kind) {
    case VAL_INT: return arena_printf(a, "the integer %" PRId64, v->i);
    case VAL_FLOAT: return arena_printf(a, "the number %g", v->f);
    case VAL_BOOL: return v->b ? "true" : "false";
    case VAL_STR: return arena_printf(a, "the string \"%s\"", v->s);
    case VAL_LIST: {
        char *buf = arena_alloc(a, 128);
        size_t n = (size_t)snprintf(buf, 128, "the list [");
        for (int i = 0; i < v->n && n < 100; i++) {
            const Value *it = &v->items[i];
            n += (size_t)snprintf(buf + n, 128 - n, "%s", i ? ", " : "");
            if (it->kind == VAL_INT) n += (size_t)snprintf(buf + n, 128 - n, "%" PRId64, it->i);
            else if (it->kind == VAL_FLOAT) n += (size_t)snprintf(buf + n, 128 - n, "%g", it->f);
            else n += (size_t)snprintf(buf + n, 128 - n, "...");
        }
        if (n < 126) snprintf(buf + n, 128 - n, "]");
        return buf;
    }
    case VAL_TENSOR: return arena_printf(a, "the tensor '%s'", ir_tensor(L->g, v->tensor)->name);
    case VAL_NONE: break;
    }
    return "nothing";
}

static const Stmt *find_def(const Lower *L, const char *name) {
    for (const Stmt *s = L->ast->stmts; s; s = s->next)
        if (s->kind == ST_DEF && !strcmp(s->name, name)) return s;
    return NULL;
}

static Binding *scope_find(const Scope *sc, const char *name) {
    for (Binding *b = sc->names; b; b = b->next)
        if (!strcmp(b->name, name)) return b;
    return NULL;
}

static void scope_bind(Lower *L, Scope *sc, const char *name, SrcLoc loc, Value v) {
    Binding *old = scope_find(sc, name);
    if (old) {
        lerr(L, loc, "'%s' is already bound in this scope (each name is bound once)", name);
        diag_note(L->d, old->loc, "'%s' was bound here", name);
        return;
    }
    Binding *b = arena_alloc(&L->g->arena, sizeof *b);
    b->name = name;
    b->loc = loc;
    b->val = v;
    b->next = sc->names;
    sc->names = b;
}

/* The closest candidate within a small edit distance, for "did you mean". */
typedef struct Suggest {
    const char *best;
    int dist;
    const char *want;
} Suggest;

static void suggest_try(Suggest *s, const char *cand) {
    int d = util_edit_distance(s->want, cand);
    int limit = ((int)strlen(s->want) + 1) / 3; /* 'q' suggests nothing, 'imgae' 'image' */
    if (d <= limit && (!s->best || d < s->dist)) s->best = cand, s->dist = d;
}

static const char *did_you_mean(Lower *L, const Suggest *s) {
    return s->best ? arena_printf(&L->g->arena, " (did you mean '%s'?)", s->best) : "";
}

/* ---- expressions ----------------------------------------------------------------------- */

static const Value NONE = {0};

/* Where an expression stands: the whole right-hand side of a binding or return (`path` names
 * a weighted node or a def call there), or nested (`path` NULL: only weightless ops). */
typedef struct Site {
    const char *path;      /* node name / callee prefix when whole RHS */
    const char *bind_name; /* for generated names of nested ops */
} Site;

static Value eval(Lower *L, Scope *sc, const Expr *e, const Site *site);

static Value mk_int(int64_t i) { return (Value){.kind = VAL_INT, .i = i}; }
static Value mk_float(double f) { return (Value){.kind = VAL_FLOAT, .f = f}; }

static bool is_num(const Value *v) { return v->kind == VAL_INT || v->kind == VAL_FLOAT; }
static double num(const Value *v) { return v->kind == VAL_INT ? (double)v->i : v->f; }

static Value eval_arith(Lower *L, const Expr *e, Value a, Value b) {
    if (a.kind == VAL_NONE || b.kind == VAL_NONE) return NONE;
    if (!is_num(&a) || !is_num(&b)) {
        const Value *bad = is_num(&a) ? &b : &a;
        lerr(L, e->loc, "'%c' needs numbers, got %s%s", e->op, describe(L, bad),
             bad->kind == VAL_TENSOR ? " (tensor arithmetic is written with add/sub/mul/div)" : "");
        return NONE;
    }
    if (a.kind == VAL_INT && b.kind == VAL_INT) {
        int64_t r;
        bool ovf = false;
        switch (e->op) {
        case '+': ovf = __builtin_add_overflow(a.i, b.i, &r); break;
        case '-': ovf = __builtin_sub_overflow(a.i, b.i, &r); break;
        case '*': ovf = __builtin_mul_overflow(a.i, b.i, &r); break;
        default:
            if (b.i == 0) {
                lerr(L, e->loc, "division by zero");
                return NONE;
            }
            ovf = a.i == INT64_MIN && b.i == -1;
            r = ovf ? 0 : a.i / b.i; /* C truncates toward zero, as the contract says */
        }
        if (ovf) {
            lerr(L, e->loc, "integer overflow in %" PRId64 " %c %" PRId64, a.i, e->op, b.i);
            return NONE;
        }
        return mk_int(r);
    }
    double x = num(&a), y = num(&b), r;
    switch (e->op) {
    case '+': r = x + y; break;
    case '-': r = x - y; break;
    case '*': r = x * y; break;
    default:
        if (y == 0) {
            lerr(L, e->loc, "division by zero");
            return NONE;
        }
        r = x / y;
    }
    if (!isfinite(r)) {
        lerr(L, e->loc, "floating-point overflow in %g %c %g", x, e->op, y);
        return NONE;
    }
    return mk_float(r);
}

static Value eval_call(Lower *L, Scope *sc, const Expr *e, const Site *site);

static Value eval(Lower *L, Scope *sc, const Expr *e, const Site *site) {
    switch (e->kind) {
    case EX_INT: return mk_int(e->i);
    case EX_FLOAT: return mk_float(e->f);
    case EX_STR: return (Value){.kind = VAL_STR, .s = e->s};
    case EX_BOOL: return (Value){.kind = VAL_BOOL, .b = e->b};
    case EX_NAME: {
        Binding *b = scope_find(sc, e->s);
        if (b) return b->val;
        if (op_lookup(e->s) != OP_COUNT) {
            lerr(L, e->loc, "'%s' is an op: call it, as in %s(...)", e->s, e->s);
            return NONE;
        }
        if (find_def(L, e->s)) {
            lerr(L, e->loc, "'%s' is a def: call it, as in %s(...)", e->s, e->s);
            return NONE;
        }
        Suggest s = {.want = e->s};
        for (Binding *x = sc->names; x; x = x->next) suggest_try(&s, x->name);
        lerr(L, e->loc, "unknown name '%s'%s%s", e->s, did_you_mean(L, &s),
             sc->def && !s.best ? " (a def sees only its parameters and its own bindings)" : "");
        return NONE;
    }
    case EX_LIST: {
        Value v = {.kind = VAL_LIST, .n = e->nitems};
        v.items = arena_alloc(&L->g->arena, (size_t)(e->nitems ? e->nitems : 1) * sizeof *v.items);
        bool ok = true;
        int k = 0;
        for (const Expr *it = e->items; it; it = it->next, k++) {
            v.items[k] = eval(L, sc, it, NULL);
            if (v.items[k].kind == VAL_NONE) ok = false;
            else if (v.items[k].kind == VAL_TENSOR) {
                lerr(L, it->loc, "a list holds constants, not tensors (got %s)", describe(L, &v.items[k]));
                ok = false;
            }
        }
        return ok ? v : NONE;
    }
    case EX_NEG: {
        Value a = eval(L, sc, e->lhs, NULL);
        if (a.kind == VAL_NONE) return NONE;
        if (a.kind == VAL_INT) {
            if (a.i == INT64_MIN) {
                lerr(L, e->loc, "integer overflow in -(%" PRId64 ")", a.i);
                return NONE;
            }
            return mk_int(-a.i);
        }
        if (a.kind == VAL_FLOAT) return mk_float(-a.f);
        lerr(L, e->loc, "'-' needs a number, got %s", describe(L, &a));
        return NONE;
    }
    case EX_BIN: {
        Value a = eval(L, sc, e->lhs, NULL);
        Value b = eval(L, sc, e->rhs, NULL);
        return eval_arith(L, e, a, b);
    }
    case EX_CALL: return eval_call(L, sc, e, site);
    }
    return NONE;
}

/* ---- op calls -------------------------------------------------------------------------- */

/* Does v fit attribute type t? (ints widen to floats; an int is a pair [v, v]) */
static bool attr_fits(AttrType t, const Value *v) {
    switch (t) {
    case AT_INT: return v->kind == VAL_INT;
    case AT_FLOAT: return is_num(v);
    case AT_BOOL: return v->kind == VAL_BOOL;
    case AT_STR: return v->kind == VAL_STR;
    case AT_PAIR:
        if (v->kind == VAL_INT) return true;
        return v->kind == VAL_LIST && v->n == 2 && v->items[0].kind == VAL_INT && v->items[1].kind == VAL_INT;
    case AT_INTS:
        if (v->kind != VAL_LIST) return false;
        for (int i = 0; i < v->n; i++)
            if (v->items[i].kind != VAL_INT) return false;
        return true;
    }
    return false;
}

static const char *unique_node_name(Lower *L, const char *base) {
    if (strset_add(&L->node_names, &L->g->arena, base)) return base;
    for (int k = 2;; k++) {
        const char *s = arena_printf(&L->g->arena, "%s_%d", base, k);
        if (strset_add(&L->node_names, &L->g->arena, s)) return s;
    }
}

static Value eval_op(Lower *L, Scope *sc, const Expr *e, OpKind op, const Site *site) {
    const OpInfo *o = op_info(op);
    bool weighted = o->flags & OPF_WEIGHTS;
    if (weighted && !site) {
        lerr(L, e->loc,
             "%s has weights: its call must be the whole right-hand side of a statement, so that its "
             "weights have a name",
             o->name);
        return NONE;
    }
    bool variadic = o->max_inputs < 0;
    int nin_slots = variadic ? 0 : o->max_inputs;
    Value inputs[64];
    SrcLoc in_locs[64];
    int nin = 0;
    Value attrs[IR_MAX_ATTRS] = {0};
    SrcLoc attr_locs[IR_MAX_ATTRS] = {0};
    bool given_in[2] = {0}, given_attr[IR_MAX_ATTRS] = {0};
    bool ok = true;

    int pos = 0;
    for (const Arg *a = e->args; a; a = a->next) {
        Value v = eval(L, sc, a->value, NULL);
        if (v.kind == VAL_NONE) ok = false;
        if (!a->key) {
            if (variadic) {
                if (nin == 64) {
                    lerr(L, a->value->loc, "%s: too many inputs (at most 64)", o->name);
                    return NONE;
                }
                in_locs[nin] = a->value->loc;
                inputs[nin++] = v;
            } else if (pos < nin_slots) {
                in_locs[pos] = a->value->loc;
                inputs[pos] = v;
                given_in[pos] = true;
            } else if (pos - nin_slots < o->nattrs) {
                int k = pos - nin_slots;
                attrs[k] = v, attr_locs[k] = a->value->loc, given_attr[k] = true;
            } else {
                lerr(L, a->value->loc, "%s takes at most %d positional arguments", o->name,
                     nin_slots + o->nattrs);
                ok = false;
            }
            pos++;
            continue;
        }
        int k = op_attr_index(op, a->key);
        int in_k = -1;
        for (int i = 0; i < nin_slots; i++)
            if (!strcmp(o->input_names[i], a->key)) in_k = i;
        if (k < 0 && in_k < 0) {
            Suggest s = {.want = a->key};
            for (int i = 0; i < o->nattrs; i++) suggest_try(&s, o->attrs[i].name);
            lerr(L, a->key_loc, "%s: unknown attribute '%s'%s", o->name, a->key, did_you_mean(L, &s));
            ok = false;
            continue;
        }
        bool *given = in_k >= 0 ? &given_in[in_k] : &given_attr[k];
        if (*given) {
            lerr(L, a->key_loc, "%s: argument '%s' given twice", o->name, a->key);
            ok = false;
            continue;
        }
        *given = true;
        if (in_k >= 0) inputs[in_k] = v, in_locs[in_k] = a->value->loc;
        else attrs[k] = v, attr_locs[k] = a->value->loc;
    }
    if (!variadic) {
        nin = nin_slots;
        for (int i = 0; i < nin_slots; i++)
            if (!given_in[i]) {
                lerr(L, e->loc, "%s: missing input '%s'", o->name, o->input_names[i]);
                return NONE;
            }
    } else if (nin < o->min_inputs) {
        lerr(L, e->loc, "%s needs at least %d inputs, got %d", o->name, o->min_inputs, nin);
        return NONE;
    }
    for (int i = 0; i < nin; i++) {
        if (inputs[i].kind != VAL_TENSOR && inputs[i].kind != VAL_NONE) {
            lerr(L, in_locs[i], "%s: input %d must be a tensor, got %s", o->name, i + 1, describe(L, &inputs[i]));
            ok = false;
        }
    }
    for (int k = 0; k < o->nattrs; k++) {
        const AttrSpec *as = &o->attrs[k];
        if (!given_attr[k]) {
            if (as->required) {
                lerr(L, e->loc, "%s: missing attribute '%s'", o->name, as->name);
                ok = false;
            }
            continue;
        }
        if (attrs[k].kind != VAL_NONE && !attr_fits(as->type, &attrs[k])) {
            lerr(L, attr_locs[k], "%s: attribute '%s' must be %s, got %s", o->name, as->name,
                 attr_type_name(as->type), describe(L, &attrs[k]));
            ok = false;
        }
    }
    if (!ok) return NONE;
    if (L->g->nodes.len >= LOWER_MAX_NODES) {
        if (!L->too_big) lerr(L, e->loc, "the graph grows past %d nodes (runaway def expansion?)", LOWER_MAX_NODES);
        L->too_big = true;
        return NONE;
    }

    const char *name;
    if (site && site->path) {
        name = site->path;
        if (!strset_add(&L->node_names, &L->g->arena, name)) {
            if (weighted) {
                lerr(L, e->loc, "two layers get the weight name '%s.*' (a def's bindings collide with the def "
                                "it returns)", name);
                return NONE;
            }
            name = unique_node_name(L, name);
        }
    } else {
        const char *bn = site && site->bind_name ? site->bind_name : NULL;
        /* '/' never appears in a binding path, so generated names cannot take a weight's name */
        name = unique_node_name(L, bn ? arena_printf(&L->g->arena, "%s/%s", bn, o->name) : o->name);
    }
    int in_ids[64];
    for (int i = 0; i < nin; i++) in_ids[i] = inputs[i].tensor;
    Node *n = ir_add_node(L->g, op, name, in_ids, nin, e->loc);
    n->calls = L->calls;
    for (int k = 0; k < o->nattrs; k++)
        if (given_attr[k]) ir_set_attr(L->g, n, o->attrs[k].name, attrs[k]);
    if (!ir_infer_node(L->g, n, L->d)) return NONE;
    return (Value){.kind = VAL_TENSOR, .tensor = n->out};
}

/* ---- def calls -------------------------------------------------------------------------- */

static Value expand_def(Lower *L, Scope *caller, const Expr *e, const Stmt *def, const Site *site);

static Value eval_call(Lower *L, Scope *sc, const Expr *e, const Site *site) {
    const Stmt *def = find_def(L, e->s);
    if (def) {
        if (!site) {
            lerr(L, e->loc,
                 "a call of def '%s' must be the whole right-hand side of a statement, so that its "
                 "weights have a name",
                 e->s);
            return NONE;
        }
        return expand_def(L, sc, e, def, site);
    }
    OpKind op = op_lookup(e->s);
    if (op != OP_COUNT) return eval_op(L, sc, e, op, site);
    Suggest s = {.want = e->s};
    for (int k = 0; k < OP_COUNT; k++) suggest_try(&s, op_info((OpKind)k)->name);
    for (const Stmt *st = L->ast->stmts; st; st = st->next)
        if (st->kind == ST_DEF) suggest_try(&s, st->name);
    lerr(L, e->loc, "unknown op or def '%s'%s", e->s, did_you_mean(L, &s));
    for (const Arg *a = e->args; a; a = a->next) eval(L, sc, a->value, NULL); /* report inside */
    return NONE;
}

static void lower_body(Lower *L, Scope *sc, const Stmt *body, Value *ret);

static Value expand_def(Lower *L, Scope *caller, const Expr *e, const Stmt *def, const Site *site) {
    for (const Active *a = L->active; a; a = a->next) {
        if (a->def == def) {
            lerr(L, e->loc, "recursive call of '%s' (defs may not call themselves, directly or indirectly)",
                 def->name);
            return NONE;
        }
    }
    int nparams = 0;
    for (const Param *p = def->params; p; p = p->next) nparams++;
    Value *vals = arena_alloc(&L->g->arena, (size_t)(nparams + 1) * sizeof *vals);
    bool *given = arena_alloc(&L->g->arena, (size_t)(nparams + 1));
    bool ok = true;
    int pos = 0;
    for (const Arg *a = e->args; a; a = a->next) {
        Value v = eval(L, caller, a->value, NULL);
        int k = -1;
        if (!a->key) {
            if (pos >= nparams) {
                lerr(L, a->value->loc, "'%s' takes %d argument%s, got more", def->name, nparams,
                     nparams == 1 ? "" : "s");
                ok = false;
                continue;
            }
            k = pos++;
        } else {
            int i = 0;
            Suggest s = {.want = a->key};
            for (const Param *p = def->params; p; p = p->next, i++) {
                if (!strcmp(p->name, a->key)) k = i;
                suggest_try(&s, p->name);
            }
            if (k < 0) {
                lerr(L, a->key_loc, "'%s' has no parameter '%s'%s", def->name, a->key, did_you_mean(L, &s));
                ok = false;
                continue;
            }
            if (given[k]) {
                lerr(L, a->key_loc, "%s: argument '%s' given twice", def->name, a->key);
                ok = false;
                continue;
            }
        }
        given[k] = true;
        vals[k] = v;
        if (v.kind == VAL_NONE) ok = false;
    }
    if (!ok) return NONE;

    CallSite *cs = arena_alloc(&L->g->arena, sizeof *cs);
    cs->loc = e->loc;
    cs->def_name = arena_strdup(&L->g->arena, def->name); /* the AST dies after lowering */
    cs->parent = L->calls;
    Active act = {def, L->active};
    const CallSite *saved_calls = L->calls;
    const Active *saved_active = L->active;
    L->calls = cs;
    L->active = &act;

    Scope callee = {.prefix = site->path, .def = def};
    int i = 0;
    for (const Param *p = def->params; p; p = p->next, i++) {
        if (given[i]) {
            scope_bind(L, &callee, p->name, p->loc, vals[i]);
        } else if (p->def) {
            /* defaults are evaluated in the callee's scope: they may use earlier parameters */
            scope_bind(L, &callee, p->name, p->loc, eval(L, &callee, p->def, NULL));
        } else {
            L->calls = saved_calls;
            lerr(L, e->loc, "call of '%s': missing argument '%s'", def->name, p->name);
            L->calls = cs;
            ok = false;
        }
    }
    Value ret = NONE;
    if (ok) lower_body(L, &callee, def->body, &ret);
    L->calls = saved_calls;
    L->active = saved_active;
    return ret;
}

/* ---- statements ------------------------------------------------------------------------- */

static void lower_bind(Lower *L, Scope *sc, const Stmt *s) {
    Site site = {.path = path_join(L, sc->prefix, s->name), .bind_name = NULL};
    site.bind_name = site.path;
    Value v = eval(L, sc, s->expr, &site);
    scope_bind(L, sc, s->name, s->name_loc, v);
}

/* A def body: bindings, then exactly one return, last. The placement rules are checked once per
 * def in check_structure(); here the statements are evaluated. */
static void lower_body(Lower *L, Scope *sc, const Stmt *body, Value *ret) {
    for (const Stmt *s = body; s; s = s->next) {
        if (s->kind == ST_BIND) lower_bind(L, sc, s);
        else if (s->kind == ST_RETURN) {
            Site site = {.path = sc->prefix, .bind_name = sc->prefix};
            *ret = eval(L, sc, s->expr, &site);
            return;
        }
    }
}

static const char *stmt_word(StmtKind k) {
    switch (k) {
    case ST_NET: return "net";
    case ST_INPUT: return "input";
    case ST_OUTPUT: return "output";
    case ST_BIND: return "a binding";
    case ST_RETURN: return "return";
    case ST_DEF: return "def";
    }
    return "?";
}

/* Placement rules, checked once: `net` first and once, `def` and `input`/`output` at top level,
 * `return` once and last in each def, unique def names and parameters. */
static void check_structure(Lower *L) {
    const Stmt *first_output = NULL, *net = NULL;
    bool seen_other = false;
    for (const Stmt *s = L->ast->stmts; s; s = s->next) {
        switch (s->kind) {
        case ST_NET:
            if (net) lerr(L, s->loc, "'net' given twice");
            else if (seen_other) lerr(L, s->loc, "'net' must be the first statement");
            net = s;
            break;
        case ST_OUTPUT:
            if (first_output) {
                lerr(L, s->loc, "'output' may appear only once");
                diag_note(L->d, first_output->loc, "first 'output' here");
            }
            if (!first_output) first_output = s;
            break;
        case ST_RETURN: lerr(L, s->loc, "'return' outside a def"); break;
        case ST_DEF: {
            if (op_lookup(s->name) != OP_COUNT) lerr(L, s->name_loc, "def '%s' has the name of an op", s->name);
            for (const Stmt *t = L->ast->stmts; t != s; t = t->next)
                if (t->kind == ST_DEF && !strcmp(t->name, s->name)) {
                    lerr(L, s->name_loc, "def '%s' is defined twice", s->name);
                    diag_note(L->d, t->name_loc, "first definition of '%s' here", s->name);
                    break;
                }
            bool seen_default = false;
            for (const Param *p = s->params; p; p = p->next) {
                for (const Param *q = s->params; q != p; q = q->next)
                    if (!strcmp(q->name, p->name)) lerr(L, p->loc, "parameter '%s' given twice", p->name);
                if (p->def) seen_default = true;
                else if (seen_default)
                    lerr(L, p->loc, "parameter '%s' without a default follows one with a default", p->name);
            }
            const Stmt *ret = NULL;
            for (const Stmt *b = s->body; b; b = b->next) {
                if (ret) {
                    lerr(L, b->loc, "statement after 'return' in def '%s'", s->name);
                    break;
                }
                if (b->kind == ST_RETURN) ret = b;
                else if (b->kind != ST_BIND)
                    lerr(L, b->loc, "%s is not allowed inside a def (only bindings and 'return')",
                         stmt_word(b->kind));
            }
            if (!ret) lerr(L, s->end_loc, "def '%s' has no 'return'", s->name);
            break;
        }
        default: break;
        }
        if (s->kind != ST_NET) seen_other = true;
    }
    if (!first_output) {
        SrcLoc end = {L->file, 0, 0};
        const Stmt *last = L->ast->stmts;
        while (last && last->next) last = last->next;
        if (last) end = last->loc;
        lerr(L, end, "the file has no 'output' statement");
    }
}

static void lower_input(Lower *L, Scope *sc, const Stmt *s) {
    Value v = eval(L, sc, s->expr, NULL);
    if (v.kind == VAL_NONE) {
        scope_bind(L, sc, s->name, s->name_loc, NONE);
        return;
    }
    if (v.kind != VAL_LIST || v.n < 1 || v.n > IR_MAX_RANK) {
        lerr(L, s->expr->loc, "input '%s': the shape must be a list of 1 to %d dimensions, got %s", s->name,
             IR_MAX_RANK, v.kind == VAL_LIST ? "an empty list" : describe(L, &v));
        scope_bind(L, sc, s->name, s->name_loc, NONE);
        return;
    }
    int64_t shape[IR_MAX_RANK];
    int64_t total = 1;
    bool ok = true;
    for (int i = 0; i < v.n; i++) {
        const Value *it = &v.items[i];
        if (it->kind != VAL_INT || it->i < 1) {
            lerr(L, s->expr->loc, "input '%s': dimension %d is %s; every dimension must be an integer >= 1",
                 s->name, i, describe(L, it));
            ok = false;
            break;
        }
        shape[i] = it->i;
        if (__builtin_mul_overflow(total, it->i, &total) || total > ((int64_t)1 << 30)) {
            lerr(L, s->expr->loc, "input '%s' is too large", s->name);
            ok = false;
            break;
        }
    }
    if (!ok) {
        scope_bind(L, sc, s->name, s->name_loc, NONE);
        return;
    }
    if (scope_find(sc, s->name)) {
        scope_bind(L, sc, s->name, s->name_loc, NONE); /* reports the duplicate */
        return;
    }
    strset_add(&L->node_names, &L->g->arena, s->name);
    int id = ir_add_input(L->g, s->name, v.n, shape, s->name_loc);
    scope_bind(L, sc, s->name, s->name_loc, (Value){.kind = VAL_TENSOR, .tensor = id});
}

static void lower_output(Lower *L, Scope *sc, const Stmt *s) {
    for (const Ident *id = s->names; id; id = id->next) {
        for (const Ident *p = s->names; p != id; p = p->next)
            if (!strcmp(p->name, id->name)) {
                lerr(L, id->loc, "output '%s' is listed twice", id->name);
                goto next;
            }
        Binding *b = scope_find(sc, id->name);
        if (!b) {
            Suggest sg = {.want = id->name};
            for (Binding *x = sc->names; x; x = x->next) suggest_try(&sg, x->name);
            lerr(L, id->loc, "output '%s' is not bound%s", id->name, did_you_mean(L, &sg));
        } else if (b->val.kind == VAL_NONE) {
            /* an error was reported where it was bound */
        } else if (b->val.kind != VAL_TENSOR) {
            lerr(L, id->loc, "output '%s' is %s, not a tensor", id->name, describe(L, &b->val));
        } else if (ir_tensor(L->g, b->val.tensor)->kind == TK_INPUT) {
            lerr(L, id->loc, "output '%s' is the input '%s': an output must be computed", id->name,
                 ir_tensor(L->g, b->val.tensor)->name);
        } else {
            ir_add_output(L->g, b->val.tensor, id->name, id->loc);
        }
    next:;
    }
}

const char *lower_default_name(const char *path, char *buf, size_t len) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) n = (size_t)(dot - base);
    size_t o = 0;
    if (len < 3) return "";
    if (n == 0 || (base[0] >= '0' && base[0] <= '9')) buf[o++] = '_';
    for (size_t i = 0; i < n && o + 1 < len; i++) {
        char c = base[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        buf[o++] = ok ? c : '_';
    }
    buf[o] = 0;
    return buf;
}

Graph *lower_ast(const Ast *ast, const char *file, Diags *d) {
    char namebuf[256];
    const char *name = lower_default_name(file, namebuf, sizeof namebuf);
    for (const Stmt *s = ast->stmts; s; s = s->next)
        if (s->kind == ST_NET) {
            name = s->name;
            break;
        }
    Lower L = {.g = ir_graph_new(name), .d = d, .ast = ast, .file = file};
    int errors0 = d->nerrors;
    check_structure(&L);
    Scope top = {.prefix = ""};
    const Stmt *output = NULL;
    for (const Stmt *s = ast->stmts; s; s = s->next) {
        switch (s->kind) {
        case ST_INPUT: lower_input(&L, &top, s); break;
        case ST_BIND: lower_bind(&L, &top, s); break;
        case ST_OUTPUT:
            if (!output) output = s;
            break;
        default: break;
        }
    }
    if (output) lower_output(&L, &top, output);
    if (L.g->ninputs == 0 && d->nerrors == errors0) {
        SrcLoc loc = {file, ast->stmts ? ast->stmts->loc.line : 0, ast->stmts ? ast->stmts->loc.col : 0};
        lerr(&L, loc, "the file declares no 'input'");
    }
    free(L.node_names.slots);
    free(L.reported.slots);
    if (d->nerrors > errors0) {
        ir_graph_free(L.g);
        return NULL;
    }
    return L.g;
}
