/* ir.c — the op table (parsed from ops.def), the graph builder, attribute access, the verifier
 * and the text printer. Shape rules live in shape.c. */
#include "ir.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- the op table ---------------------------------------------------------------------- */

typedef struct OpDecl {
    const char *name, *inputs, *attrs, *weights;
    unsigned flags;
} OpDecl;

static const OpDecl op_decls[OP_COUNT] = {
#define OP(E, id, in, at, w, shape, fl) [OP_##E] = {#id, in, at, w, fl},
#include "../ops.def"
#undef OP
};

/* The parsed table is filled once, on first use, and only read afterwards. */
static OpInfo op_infos[OP_COUNT];
static bool op_infos_ready;

static AttrType parse_type(const char *t, size_t n) {
    static const struct { const char *s; AttrType t; } types[] = {
        {"int", AT_INT}, {"float", AT_FLOAT}, {"bool", AT_BOOL},
        {"str", AT_STR}, {"pair", AT_PAIR},   {"ints", AT_INTS},
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strlen(types[i].s) == n && !strncmp(types[i].s, t, n)) return types[i].t;
    NETC_ASSERT(!"unknown attribute type in ops.def");
}

/* Defaults in ops.def are literals; the strings live as long as the program. */
static Value parse_default(AttrType t, const char *s, size_t n) {
    static Value pair_items[OP_COUNT * IR_MAX_ATTRS][2];
    static int npairs;
    char buf[64];
    NETC_ASSERT(n < sizeof buf);
    memcpy(buf, s, n);
    buf[n] = 0;
    Value v = {0};
    switch (t) {
    case AT_INT: v.kind = VAL_INT, v.i = strtoll(buf, NULL, 10); break;
    case AT_FLOAT: v.kind = VAL_FLOAT, v.f = strtod(buf, NULL); break;
    case AT_BOOL: v.kind = VAL_BOOL, v.b = !strcmp(buf, "true"); break;
    case AT_STR: v.kind = VAL_STR, v.s = strndup(s, n); break;
    case AT_PAIR: {
        Value *it = pair_items[npairs++];
        it[0] = it[1] = (Value){.kind = VAL_INT, .i = strtoll(buf, NULL, 10)};
        v.kind = VAL_LIST, v.n = 2, v.items = it;
        break;
    }
    case AT_INTS: NETC_ASSERT(!"ints attributes have no default");
    }
    return v;
}

static void parse_decl(OpKind k) {
    const OpDecl *d = &op_decls[k];
    OpInfo *o = &op_infos[k];
    o->name = d->name;
    o->flags = d->flags;
    /* inputs: "x", "a b" or "x*" */
    if (strchr(d->inputs, '*')) {
        o->min_inputs = 2, o->max_inputs = -1, o->input_names[0] = "x";
    } else if (strchr(d->inputs, ' ')) {
        o->min_inputs = o->max_inputs = 2, o->input_names[0] = "a", o->input_names[1] = "b";
    } else {
        o->min_inputs = o->max_inputs = 1, o->input_names[0] = d->inputs;
    }
    for (const char *p = d->attrs; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char *colon = strchr(p, ':');
        NETC_ASSERT(colon && o->nattrs < IR_MAX_ATTRS);
        AttrSpec *a = &o->attrs[o->nattrs++];
        a->name = strndup(p, (size_t)(colon - p));
        const char *t = colon + 1, *te = t;
        while (*te >= 'a' && *te <= 'z') te++;
        a->type = parse_type(t, (size_t)(te - t));
        const char *end = strchr(te, ' ');
        if (!end) end = te + strlen(te);
        if (*te == '!') a->required = true;
        else if (*te == '=') a->def = parse_default(a->type, te + 1, (size_t)(end - te - 1));
        else NETC_ASSERT(*te == '?');
        p = end;
    }
    for (const char *p = d->weights; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char *end = strchr(p, ' ');
        if (!end) end = p + strlen(p);
        NETC_ASSERT(o->nweights < IR_MAX_WEIGHTS);
        o->weight_names[o->nweights++] = strndup(p, (size_t)(end - p));
        p = end;
    }
}

const OpInfo *op_info(OpKind k) {
    NETC_ASSERT(k >= 0 && k < OP_COUNT);
    if (!op_infos_ready) {
        for (int i = 0; i < OP_COUNT; i++) parse_decl((OpKind)i);
        op_infos_ready = true;
    }
    return &op_infos[k];
}

OpKind op_lookup(const char *name) {
    for (int k = 0; k < OP_COUNT; k++)
        if (!strcmp(op_decls[k].name, name)) return (OpKind)k;
    return OP_COUNT;
}

int op_attr_index(OpKind k, const char *name) {
    const OpInfo *o = op_info(k);
    for (int i = 0; i < o->nattrs; i++)
        if (!strcmp(o->attrs[i].name, name)) return i;
    return -1;
}

const char *attr_type_name(AttrType t) {
    switch (t) {
    case AT_INT: return "an integer";
    case AT_FLOAT: return "a number";
    case AT_BOOL: return "true or false";
    case AT_STR: return "a string";
    case AT_PAIR: return "an integer or a list of 2 integers";
    case AT_INTS: return "a list of integers";
    }
    return "?";
}

/* ---- graph building -------------------------------------------------------------------- */

Graph *ir_graph_new(const char *name) {
    Graph *g = xcalloc(1, sizeof *g);
    g->name = arena_strdup(&g->arena, name ? name : "model");
    return g;
}

void ir_graph_free(Graph *g) {
    if (!g) return;
    for (int i = 0; i < g->tensors.len; i++) free(ir_tensor(g, i)->data);
    for (int i = 0; i < g->nodes.len; i++) free(ir_node(g, i)->in);
    for (int i = 0; i < g->removed.len; i++) free(((Node *)g->removed.items[i])->in);
    ptrvec_free(&g->removed);
    ptrvec_free(&g->tensors);
    ptrvec_free(&g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->output_names);
    free(g->output_locs);
    arena_free(&g->arena);
    free(g);
}

int64_t ir_numel(const Tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

bool ir_same_shape(const Tensor *a, const Tensor *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

int ir_new_tensor(Graph *g, const char *name, TensorKind k, int rank, const int64_t *shape,
                  SrcLoc loc) {
    NETC_ASSERT(rank >= 0 && rank <= IR_MAX_RANK);
    Tensor *t = arena_alloc(&g->arena, sizeof *t);
    t->id = g->tensors.len;
    t->name = arena_strdup(&g->arena, name);
    t->kind = k;
    t->rank = rank;
    if (rank) memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
    t->producer = -1;
    t->alias = -1;
    t->loc = loc;
    ptrvec_push(&g->tensors, t);
    return t->id;
}

int ir_add_input(Graph *g, const char *name, int rank, const int64_t *shape, SrcLoc loc) {
    int id = ir_new_tensor(g, name, TK_INPUT, rank, shape, loc);
    g->inputs = xrealloc(g->inputs, (size_t)(g->ninputs + 1) * sizeof *g->inputs);
    g->inputs[g->ninputs++] = id;
    return id;
}

Node *ir_add_node(Graph *g, OpKind op, const char *name, const int *inputs, int nin, SrcLoc loc) {
    const OpInfo *o = op_info(op);
    Node *n = arena_alloc(&g->arena, sizeof *n);
    n->id = g->nodes.len;
    n->op = op;
    n->name = arena_strdup(&g->arena, name);
    n->loc = loc;
    n->nin = nin;
    n->in = xmalloc((size_t)(nin ? nin : 1) * sizeof *n->in);
    if (nin) memcpy(n->in, inputs, (size_t)nin * sizeof *inputs);
    for (int i = 0; i < o->nattrs; i++) n->attrs[i] = o->attrs[i].def;
    for (int i = 0; i < IR_MAX_WEIGHTS; i++) n->w[i] = -1;
    n->out = ir_new_tensor(g, name, TK_VALUE, 0, NULL, loc);
    ir_tensor(g, n->out)->producer = n->id;
    ptrvec_push(&g->nodes, n);
    return n;
}

void ir_add_output(Graph *g, int tensor, const char *name, SrcLoc loc) {
    int k = g->noutputs++;
    g->outputs = xrealloc(g->outputs, (size_t)g->noutputs * sizeof *g->outputs);
    g->output_names = xrealloc(g->output_names, (size_t)g->noutputs * sizeof *g->output_names);
    g->output_locs = xrealloc(g->output_locs, (size_t)g->noutputs * sizeof *g->output_locs);
    g->outputs[k] = tensor;
    g->output_names[k] = arena_strdup(&g->arena, name);
    g->output_locs[k] = loc;
}

/* ---- attributes ------------------------------------------------------------------------ */

static int attr_slot(const Node *n, const char *name) {
    int i = op_attr_index(n->op, name);
    if (i < 0) {
        fprintf(stderr, "netc: internal error: op %s has no attribute '%s'\n", op_info(n->op)->name,
                name);
        NETC_ASSERT(!"unknown attribute");
    }
    return i;
}

void ir_set_attr(Graph *g, Node *n, const char *name, Value v) {
    int i = attr_slot(n, name);
    AttrType t = op_info(n->op)->attrs[i].type;
    Value out = {0};
    switch (t) {
    case AT_INT:
        NETC_ASSERT(v.kind == VAL_INT);
        out = v;
        break;
    case AT_FLOAT:
        NETC_ASSERT(v.kind == VAL_INT || v.kind == VAL_FLOAT);
        out.kind = VAL_FLOAT;
        out.f = v.kind == VAL_INT ? (double)v.i : v.f;
        break;
    case AT_BOOL:
        NETC_ASSERT(v.kind == VAL_BOOL);
        out = v;
        break;
    case AT_STR:
        NETC_ASSERT(v.kind == VAL_STR);
        out.kind = VAL_STR;
        out.s = arena_strdup(&g->arena, v.s);
        break;
    case AT_PAIR:
    case AT_INTS: {
        int cnt = v.kind == VAL_INT ? (t == AT_PAIR ? 2 : 1) : v.n;
        NETC_ASSERT(v.kind == VAL_INT || v.kind == VAL_LIST);
        out.kind = VAL_LIST;
        out.n = cnt;
        out.items = arena_alloc(&g->arena, (size_t)(cnt ? cnt : 1) * sizeof(Value));
        for (int k = 0; k < cnt; k++) {
            const Value *src = v.kind == VAL_INT ? &v : &v.items[k];
            NETC_ASSERT(src->kind == VAL_INT);
            out.items[k] = (Value){.kind = VAL_INT, .i = src->i};
        }
        break;
    }
    }
    n->attrs[i] = out;
}

void ir_set_int(Graph *g, Node *n, const char *name, int64_t v) {
    ir_set_attr(g, n, name, (Value){.kind = VAL_INT, .i = v});
}
void ir_set_float(Graph *g, Node *n, const char *name, double v) {
    ir_set_attr(g, n, name, (Value){.kind = VAL_FLOAT, .f = v});
}
void ir_set_bool(Graph *g, Node *n, const char *name, bool v) {
    ir_set_attr(g, n, name, (Value){.kind = VAL_BOOL, .b = v});
}
void ir_set_str(Graph *g, Node *n, const char *name, const char *v) {
    ir_set_attr(g, n, name, (Value){.kind = VAL_STR, .s = v});
}
void ir_set_pair(Graph *g, Node *n, const char *name, int64_t a, int64_t b) {
    Value items[2] = {{.kind = VAL_INT, .i = a}, {.kind = VAL_INT, .i = b}};
    ir_set_attr(g, n, name, (Value){.kind = VAL_LIST, .n = 2, .items = items});
}
void ir_set_ints(Graph *g, Node *n, const char *name, const int64_t *v, int count) {
    Value items[16];
    NETC_ASSERT(count <= 16);
    for (int i = 0; i < count; i++) items[i] = (Value){.kind = VAL_INT, .i = v[i]};
    ir_set_attr(g, n, name, (Value){.kind = VAL_LIST, .n = count, .items = items});
}

const Value *ir_attr(const Node *n, const char *name) { return &n->attrs[attr_slot(n, name)]; }
bool ir_attr_set(const Node *n, const char *name) { return ir_attr(n, name)->kind != VAL_NONE; }

int64_t ir_attr_int(const Node *n, const char *name) {
    const Value *v = ir_attr(n, name);
    NETC_ASSERT(v->kind == VAL_INT);
    return v->i;
}
double ir_attr_float(const Node *n, const char *name) {
    const Value *v = ir_attr(n, name);
    NETC_ASSERT(v->kind == VAL_FLOAT || v->kind == VAL_INT);
    return v->kind == VAL_FLOAT ? v->f : (double)v->i;
}
bool ir_attr_bool(const Node *n, const char *name) {
    const Value *v = ir_attr(n, name);
    NETC_ASSERT(v->kind == VAL_BOOL);
    return v->b;
}
const char *ir_attr_str(const Node *n, const char *name) {
    const Value *v = ir_attr(n, name);
    NETC_ASSERT(v->kind == VAL_STR);
    return v->s;
}
void ir_attr_pair(const Node *n, const char *name, int64_t out[2]) {
    const Value *v = ir_attr(n, name);
    NETC_ASSERT(v->kind == VAL_LIST && v->n == 2);
    out[0] = v->items[0].i;
    out[1] = v->items[1].i;
}
int ir_attr_ints(const Node *n, const char *name, int64_t *out, int max) {
    const Value *v = ir_attr(n, name);
    NETC_ASSERT(v->kind == VAL_LIST);
    for (int i = 0; i < v->n && i < max; i++) out[i] = v->items[i].i;
    return v->n;
}

Tensor *ir_weight(const Graph *g, const Node *n, const char *param) {
    const OpInfo *o = op_info(n->op);
    for (int i = 0; i < o->nweights; i++)
        if (!strcmp(o->weight_names[i], param)) return n->w[i] >= 0 ? ir_tensor(g, n->w[i]) : NULL;
    NETC_ASSERT(!"op has no such weight");
}

/* ---- errors ----------------------------------------------------------------------------- */

void ir_node_error(Diags *d, const Node *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_add(d, DIAG_ERROR, n->loc, fmt, ap);
    va_end(ap);
    for (const CallSite *c = n->calls; c; c = c->parent)
        diag_note(d, c->loc, "in call of '%s'", c->def_name);
}

/* ---- verifier -------------------------------------------------------------------------- */

bool ir_winograd_eligible(const Graph *g, const Node *n) {
    if (n->op != OP_CONV2D || n->nin < 1 || ir_attr_int(n, "groups") != 1) return false;
    const Tensor *x = ir_tensor(g, n->in[0]), *y = ir_tensor(g, n->out);
    if (x->rank != 4 || y->rank != 4) return false;
    int64_t k[2], s[2];
    ir_attr_pair(n, "kernel", k);
    ir_attr_pair(n, "stride", s);
    return k[0] == 3 && k[1] == 3 && s[0] == 1 && s[1] == 1; /* any dilation: per phase sub-grid */
}

static bool conv_is(const Node *n, int64_t kernel, int64_t stride, int64_t pad) {
    int64_t k[2], s[2], p[2];
    ir_attr_pair(n, "kernel", k);
    ir_attr_pair(n, "stride", s);
    ir_attr_pair(n, "pad", p);
    return k[0] == kernel && k[1] == kernel && s[0] == stride && s[1] == stride && p[0] == pad && p[1] == pad;
}

const Node *ir_dw_rows_producer(const Graph *g, const Node *p) {
    if (p->dead || p->op != OP_CONV2D || p->nin < 1 || ir_attr_int(p, "groups") != 1 || !conv_is(p, 1, 1, 0))
        return NULL;
    const Tensor *t = ir_tensor(g, p->in[0]);
    if (t->kind != TK_VALUE || t->rank != 4 || t->alias >= 0 || t->producer < 0 || t->producer >= p->id) return NULL;
    const Node *d = ir_node(g, t->producer);
    if (d->dead || d->op != OP_CONV2D || d->inplace) return NULL;
    int64_t C = ir_tensor(g, d->in[0])->shape[1];
    if (ir_attr_int(d, "groups") != C || t->shape[1] != C) return NULL;
    for (int k = 0; k < d->nepi; k++)
        if (d->epi[k].residual >= 0) return NULL;
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == t->id) return NULL;
    for (int i = d->id + 1; i < p->id; i++) /* d is the live node just before p */
        if (!ir_node(g, i)->dead) return NULL;
    for (int i = 0; i < g->nodes.len; i++) { /* p is t's only reader */
        const Node *x = ir_node(g, i);
        if (x->dead) continue;
        for (int k = 0; k < x->nin; k++)
            if (x->in[k] == t->id && x != p) return NULL;
        for (int k = 0; k < x->nepi; k++)
            if (x->epi[k].residual == t->id) return NULL;
    }
    for (int k = 1; k < p->nin; k++)
        if (p->in[k] == t->id) return NULL;
    return d;
}

/* An in-place node overwrites in[0]: unsafe when that is a graph input or output, or when a
 * node after it (or an epilogue) still reads it. */
bool ir_inplace_unsafe(const Graph *g, const Node *n, const Node **later) {
    int t = n->in[0];
    if (later) *later = NULL;
    for (int i = 0; i < g->ninputs; i++)
        if (g->inputs[i] == t) return true;
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == t) return true;
    for (int i = n->id + 1; i < g->nodes.len; i++) {
        const Node *x = ir_node(g, i);
        if (x->dead) continue;
        bool reads = false;
        for (int k = 0; k < x->nin; k++) reads |= x->in[k] == t;
        for (int k = 0; k < x->nepi; k++) reads |= x->epi[k].residual == t;
        if (reads) {
            if (later) *later = x;
            return true;
        }
    }
    return false;
}

static bool reads_tensor(const Node *x, int t) {
    for (int k = 0; k < x->nin; k++)
        if (x->in[k] == t) return true;
    for (int k = 0; k < x->nepi; k++)
        if (x->epi[k].residual == t) return true;
    return false;
}

/* Concat slices (concat-elim): a slice is computed by a live node, is no graph input or output,
 * feeds its concat exactly once, covers exactly its range of the concat's output along the
 * concat's axis, shares no storage through an in-place node, and has no reader after the concat
 * (whose output a later in-place node may overwrite). */
static void verify_slices(const Graph *g, Diags *d) {
    for (int t = 0; t < g->tensors.len; t++) {
        const Tensor *x = ir_tensor(g, t);
        if (x->alias < 0) continue;
        const Tensor *cat = x->alias < g->tensors.len ? ir_tensor(g, x->alias) : NULL;
        const Node *c = cat && cat->producer >= 0 ? ir_node(g, cat->producer) : NULL;
        const Node *p = x->producer >= 0 ? ir_node(g, x->producer) : NULL;
        if (!c || c->dead || c->op != OP_CONCAT || !c->concat_elim) {
            diag_error(d, x->loc, "verifier: '%s' is a slice of '%s', which no live eliminated concat produces", x->name,
                       cat ? cat->name : "?");
            continue;
        }
        bool io = false;
        for (int i = 0; i < g->ninputs; i++) io |= g->inputs[i] == t;
        for (int i = 0; i < g->noutputs; i++) io |= g->outputs[i] == t;
        if (x->kind != TK_VALUE || !p || p->dead || io) {
            ir_node_error(d, c, "verifier: concat '%s': slice '%s' is a graph input or output, or has no producer", c->name,
                          x->name);
            continue;
        }
        int axis = (int)ir_attr_int(c, "axis"), seen = 0;
        int64_t off = 0, at = -1;
        for (int k = 0; k < c->nin; k++) {
            if (c->in[k] == t) seen++, at = off;
            off += ir_tensor(g, c->in[k])->shape[axis];
        }
        bool dims = x->rank == cat->rank && x->alias_axis == axis;
        for (int j = 0; dims && j < x->rank; j++) dims = j == axis || x->shape[j] == cat->shape[j];
        if (seen != 1 || !dims || at != x->alias_offset)
            ir_node_error(d, c, "verifier: concat '%s': slice '%s' at offset %lld along axis %d does not cover exactly "
                          "its range (it feeds the concat %d times, at offset %lld)", c->name, x->name,
                          (long long)x->alias_offset, x->alias_axis, seen, (long long)at);
        if (p->inplace)
            ir_node_error(d, p, "verifier: '%s' writes in place into '%s', a slice of concat '%s'", p->name, x->name, c->name);
        for (int i = 0; i < g->nodes.len; i++) {
            const Node *r = ir_node(g, i);
            if (r->dead || !reads_tensor(r, t)) continue;
            if (r->inplace && r->in[0] == t)
                ir_node_error(d, r, "verifier: '%s' overwrites '%s', a slice of concat '%s'", r->name, x->name, c->name);
            else if (i > c->id)
                ir_node_error(d, r, "verifier: '%s' reads '%s', a slice of concat '%s', after the concat", r->name, x->name,
                              c->name);
        }
    }
}

/* Structure first (ids, order, producers), then shapes through the shape rules, so a pass that
 * leaves an inconsistent graph is caught right after it runs. */
bool ir_verify(Graph *g, Diags *d, bool need_data) {
    int errors = d->nerrors;
    int nt = g->tensors.len;
    char *ready = xcalloc((size_t)nt, 1);
    for (int i = 0; i < g->ninputs; i++) {
        NETC_ASSERT(g->inputs[i] >= 0 && g->inputs[i] < nt);
        ready[g->inputs[i]] = 1;
    }
    for (int i = 0; i < nt; i++) {
        Tensor *t = ir_tensor(g, i);
        if (t->id != i) diag_error(d, t->loc, "verifier: tensor '%s' has id %d at index %d", t->name, t->id, i);
        if (t->kind == TK_WEIGHT) {
            ready[i] = 1;
            if (need_data && !t->data) diag_error(d, t->loc, "verifier: weight '%s' has no data", t->name);
        }
    }
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->dead) continue;
        const OpInfo *o = op_info(n->op);
        if (n->id != i) ir_node_error(d, n, "verifier: node '%s' has id %d at index %d", n->name, n->id, i);
        if (n->nin < o->min_inputs || (o->max_inputs >= 0 && n->nin > o->max_inputs))
            ir_node_error(d, n, "verifier: %s '%s' has %d inputs", o->name, n->name, n->nin);
        for (int k = 0; k < n->nin; k++) {
            int t = n->in[k];
            if (t < 0 || t >= nt) {
                ir_node_error(d, n, "verifier: %s '%s' input %d is not a tensor", o->name, n->name, k);
                continue;
            }
            if (!ready[t])
                ir_node_error(d, n, "verifier: %s '%s' reads '%s' before it is computed", o->name, n->name,
                              ir_tensor(g, t)->name);
        }
        if (n->out < 0 || n->out >= nt || ir_tensor(g, n->out)->producer != n->id) {
            ir_node_error(d, n, "verifier: %s '%s' output is not produced by it", o->name, n->name);
            continue;
        }
        if (n->nepi < 0 || n->nepi > IR_MAX_EPI) {
            ir_node_error(d, n, "verifier: %s '%s' has %d epilogue steps (at most %d)", o->name, n->name, n->nepi,
                          IR_MAX_EPI);
            continue;
        }
        for (int k = 0; k < n->nepi; k++) {
            const EpiOp *e = &n->epi[k];
            if (e->residual >= 0) {
                const Tensor *r = e->residual < nt ? ir_tensor(g, e->residual) : NULL;
                const Tensor *y = ir_tensor(g, n->out);
                bool same = r && r->rank == y->rank;
                for (int j = 0; same && j < y->rank; j++) same = r->shape[j] == y->shape[j];
                if (!r || !ready[e->residual] || !same)
                    ir_node_error(d, n, "verifier: %s '%s' epilogue adds a tensor that is not ready or not of its shape",
                                  o->name, n->name);
            } else if (!e->act || !((op_info(e->act->op)->flags & OPF_ACTIVATION) || e->act->op == OP_DROPOUT)) {
                ir_node_error(d, n, "verifier: %s '%s' epilogue step %d is not an activation", o->name, n->name, k);
            } else if (!e->act->dead || e->act->nepi) {
                ir_node_error(d, n, "verifier: %s '%s' epilogue step %d ('%s') is still scheduled or has steps of its own",
                              o->name, n->name, k, e->act->name);
            }
        }
        if (n->inplace && (n->nin < 1 || ir_inplace_unsafe(g, n, NULL)))
            ir_node_error(d, n, "verifier: %s '%s' is marked in place but its input is read later or is a graph input",
                          o->name, n->name);
        else if (n->inplace && (!(o->flags & OPF_ELEMENTWISE) || n->in[0] < 0 || n->in[0] >= nt ||
                                ir_tensor(g, n->in[0])->kind != TK_VALUE ||
                                !ir_same_shape(ir_tensor(g, n->in[0]), ir_tensor(g, n->out))))
            ir_node_error(d, n, "verifier: %s '%s' is marked in place but does not map its input onto its output",
                          o->name, n->name);
        else if (n->inplace && (ir_tensor(g, n->in[0])->alias >= 0 || ir_tensor(g, n->out)->alias >= 0))
            ir_node_error(d, n, "verifier: %s '%s' is in place and reads or writes a concat slice (one storage each)",
                          o->name, n->name);
        if (ir_winograd_m(n)) {
            if (n->nin >= 1 && n->in[0] >= 0 && n->in[0] < nt && !ir_winograd_eligible(g, n))
                ir_node_error(d, n, "verifier: %s '%s' is marked for Winograd F(%d,3) (algo %d) but is no 3x3, stride-1, "
                              "ungrouped conv2d", o->name, n->name, ir_winograd_m(n), n->algo);
        } else if (n->algo == CONV_ALGO_DW_ROWS && n->nin >= 1 && n->in[0] >= 0 && n->in[0] < nt) {
            const Node *dw = ir_dw_rows_producer(g, n);
            if (!dw || dw->algo != CONV_ALGO_DW_IN_CONSUMER)
                ir_node_error(d, n, "verifier: %s '%s' computes its input's producer row by row but is no 1x1 conv "
                              "right after a depthwise conv marked for it, read by it alone", o->name, n->name);
        } else if (n->algo == CONV_ALGO_DW_IN_CONSUMER) {
            const Node *p = NULL;
            for (int j = n->id + 1; j < g->nodes.len && !p; j++)
                if (!ir_node(g, j)->dead) p = ir_node(g, j);
            if (!p || p->algo != CONV_ALGO_DW_ROWS || ir_dw_rows_producer(g, p) != n)
                ir_node_error(d, n, "verifier: %s '%s' is to be computed inside its consumer, but the next node is no "
                              "1x1 conv doing that", o->name, n->name);
        } else if (n->algo != CONV_ALGO_DIRECT)
            ir_node_error(d, n, "verifier: %s '%s' has an unknown algorithm %d", o->name, n->name, n->algo);
        if (ready[n->out]) ir_node_error(d, n, "verifier: tensor '%s' is produced twice", ir_tensor(g, n->out)->name);
        ready[n->out] = 1;
    }
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] < 0 || g->outputs[i] >= nt || !ready[g->outputs[i]])
            diag_error(d, g->output_locs[i], "verifier: output '%s' is not computed", g->output_names[i]);
    free(ready);
    if (d->nerrors == errors) verify_slices(g, d);
    if (d->nerrors > errors) return false;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (!n->dead) ir_infer_node(g, n, d);
    }
    return d->nerrors == errors;
}

void ir_compact(Graph *g) {
    int k = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->dead) {
            ptrvec_push(&g->removed, n);
            continue;
        }
        n->id = k;
        ir_tensor(g, n->out)->producer = k;
        g->nodes.items[k++] = n;
    }
    g->nodes.len = k;
}

/* ---- printing -------------------------------------------------------------------------- */

const char *ir_dims_str(int rank, const int64_t *shape, char *buf, size_t len) {
    size_t used = 0;
    used += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < rank && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (used < len) snprintf(buf + used, len - used, "]");
    return buf;
}

const char *ir_shape_str(const Tensor *t, char *buf, size_t len) {
    return ir_dims_str(t->rank, t->shape, buf, len);
}

static bool value_equal(const Value *a, const Value *b) {
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case VAL_NONE: return true;
    case VAL_INT: return a->i == b->i;
    case VAL_FLOAT: return a->f == b->f;
    case VAL_BOOL: return a->b == b->b;
    case VAL_STR: return !strcmp(a->s, b->s);
    case VAL_TENSOR: return a->tensor == b->tensor;
    case VAL_LIST:
        if (a->n != b->n) return false;
        for (int i = 0; i < a->n; i++)
            if (!value_equal(&a->items[i], &b->items[i])) return false;
        return true;
    }
    return false;
}

static void print_value(const Value *v, FILE *out) {
    switch (v->kind) {
    case VAL_NONE: fputs("none", out); break;
    case VAL_INT: fprintf(out, "%" PRId64, v->i); break;
    case VAL_FLOAT: fprintf(out, "%.9g", v->f); break;
    case VAL_BOOL: fputs(v->b ? "true" : "false", out); break;
    case VAL_STR: fprintf(out, "\"%s\"", v->s); break;
    case VAL_TENSOR: fprintf(out, "%%%d", v->tensor); break;
    case VAL_LIST:
        fputc('[', out);
        for (int i = 0; i < v->n; i++) {
            if (i) fputs(", ", out);
            print_value(&v->items[i], out);
        }
        fputc(']', out);
        break;
    }
}

/* One line per node, close to the .net syntax:
 *   %name: [shape] = op(%in, ..., attr=value, ...)  {weight [..], bias [..]}
 * Attributes equal to their default are left out so a dump reads like the source. */
void ir_print(const Graph *g, FILE *out) {
    char buf[160];
    fprintf(out, "net %s\n", g->name);
    for (int i = 0; i < g->ninputs; i++) {
        Tensor *t = ir_tensor(g, g->inputs[i]);
        fprintf(out, "input %%%s: %s\n", t->name, ir_shape_str(t, buf, sizeof buf));
    }
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        const OpInfo *o = op_info(n->op);
        const Tensor *t = ir_tensor(g, n->out);
        fprintf(out, "%%%s: %s = %s(", t->name, ir_shape_str(t, buf, sizeof buf), o->name);
        for (int k = 0; k < n->nin; k++) fprintf(out, "%s%%%s", k ? ", " : "", ir_tensor(g, n->in[k])->name);
        for (int k = 0; k < o->nattrs; k++) {
            if (n->attrs[k].kind == VAL_NONE || value_equal(&n->attrs[k], &o->attrs[k].def)) continue;
            fprintf(out, ", %s=", o->attrs[k].name);
            print_value(&n->attrs[k], out);
        }
        fputc(')', out);
        bool any = false;
        for (int k = 0; k < o->nweights; k++) {
            if (n->w[k] < 0) continue;
            const Tensor *w = ir_tensor(g, n->w[k]);
            fprintf(out, "%s%s %s", any ? ", " : "  {", o->weight_names[k], ir_shape_str(w, buf, sizeof buf));
            any = true;
        }
        if (any) fputc('}', out);
        for (int k = 0; k < n->nepi; k++) {
            if (n->epi[k].residual >= 0) {
                fprintf(out, " -> add(%%%s)", ir_tensor(g, n->epi[k].residual)->name);
                continue;
            }
            const Node *a = n->epi[k].act;
            const OpInfo *ao = op_info(a->op);
            fprintf(out, " -> %s(", ao->name);
            bool first = true;
            for (int j = 0; j < ao->nattrs; j++) {
                if (a->attrs[j].kind == VAL_NONE || value_equal(&a->attrs[j], &ao->attrs[j].def)) continue;
                fprintf(out, "%s%s=", first ? "" : ", ", ao->attrs[j].name);
                print_value(&a->attrs[j], out);
                first = false;
            }
            fputc(')', out);
        }
        if (n->inplace) fprintf(out, "  [in place of %%%s]", ir_tensor(g, n->in[0])->name);
        if (n->concat_elim) fputs("  [inputs written in place]", out);
        if (ir_winograd_m(n)) fprintf(out, "  [winograd F(%d,3)]", ir_winograd_m(n));
        if (n->algo == CONV_ALGO_DW_IN_CONSUMER) fputs("  [rows computed by its consumer]", out);
        if (n->algo == CONV_ALGO_DW_ROWS) fputs("  [computes its input row by row]", out);
        if (t->alias >= 0)
            fprintf(out, "  [slice of %%%s at %lld]", ir_tensor(g, t->alias)->name, (long long)t->alias_offset);
        fputc('\n', out);
    }
    fputs("output ", out);
    for (int i = 0; i < g->noutputs; i++) {
        const char *tn = ir_tensor(g, g->outputs[i])->name;
        if (strcmp(tn, g->output_names[i]))
            fprintf(out, "%s%s=%%%s", i ? ", " : "", g->output_names[i], tn);
        else
            fprintf(out, "%s%%%s", i ? ", " : "", tn);
    }
    fputc('\n', out);
}
