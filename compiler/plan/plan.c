/* plan.c — greedy memory planning of the workspace from tensor lifetimes. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#define PLAN_ALIGN 64

static int64_t align_up(int64_t v) { return (v + PLAN_ALIGN - 1) & ~(int64_t)(PLAN_ALIGN - 1); }

typedef struct Req {
    PlanSlot *slot;
} Req;

static int by_size_desc(const void *a, const void *b) {
    const PlanSlot *x = ((const Req *)a)->slot, *y = ((const Req *)b)->slot;
    if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
    return x->first - y->first;
}

static bool overlap_time(const PlanSlot *a, const PlanSlot *b) { return a->first <= b->last && b->first <= a->last; }

/* Greedy by size, largest first: each tensor takes the lowest offset that does not collide
 * with an already placed tensor whose lifetime overlaps its own. */
static int64_t place(Req *reqs, int n) {
    qsort(reqs, (size_t)n, sizeof *reqs, by_size_desc);
    int64_t peak = 0;
    for (int i = 0; i < n; i++) {
        PlanSlot *s = reqs[i].slot;
        int64_t off = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (int j = 0; j < i; j++) {
                PlanSlot *t = reqs[j].slot;
                if (!overlap_time(s, t)) continue;
                if (off < t->offset + t->bytes && t->offset < off + s->bytes) {
                    off = align_up(t->offset + t->bytes);
                    moved = true;
                }
            }
        }
        s->offset = off;
        if (off + s->bytes > peak) peak = off + s->bytes;
    }
    return peak;
}

static int find_root(const int *link, int t) {
    while (link[t] >= 0) t = link[t];
    return t;
}

void plan_graph(const Graph *g, Plan *p) {
    int nt = g->tensors.len, nn = g->nodes.len;
    memset(p, 0, sizeof *p);
    p->slots = xcalloc((size_t)(nt ? nt : 1), sizeof *p->slots);
    p->in_copies = xcalloc((size_t)(g->ninputs ? g->ninputs : 1), sizeof *p->in_copies);
    int end = nn + 1;
    int *link = xmalloc((size_t)(nt ? nt : 1) * sizeof *link);
    for (int t = 0; t < nt; t++) {
        const Tensor *x = ir_tensor(g, t);
        PlanSlot *s = &p->slots[t];
        s->bytes = align_up(ir_numel(x) * 4);
        s->layout = x->rank == 4 ? LAYOUT_NHWC : LAYOUT_ROWMAJOR;
        s->first = s->last = -1;
        s->root = t;
        link[t] = x->alias;
        if (x->kind == TK_WEIGHT) s->kind = PLAN_WEIGHT;
    }
    for (int i = 0; i < g->ninputs; i++) {
        PlanSlot *s = &p->slots[g->inputs[i]];
        s->kind = PLAN_IN, s->index = i, s->first = 0, s->last = 0;
        s->layout = LAYOUT_ROWMAJOR;
    }
    for (int k = 0; k < nn; k++) {
        const Node *n = ir_node(g, k);
        if (n->dead) continue;
        if (n->algo == CONV_ALGO_DW_IN_CONSUMER) continue; /* never stored: the next node computes it */
        if (n->algo == CONV_ALGO_DW_ROWS) { /* ... from the depthwise conv's inputs, read now */
            const Node *dw = ir_node(g, ir_tensor(g, n->in[0])->producer);
            for (int j = 0; j < dw->nin; j++) p->slots[dw->in[j]].last = k + 1;
        }
        if (n->inplace) link[n->out] = n->in[0];
        PlanSlot *o = &p->slots[n->out];
        o->kind = PLAN_WS, o->first = k + 1;
        if (o->last < k + 1) o->last = k + 1;
        for (int j = 0; j < n->nin; j++) p->slots[n->in[j]].last = k + 1;
        for (int j = 0; j < n->nepi; j++)
            if (n->epi[j].residual >= 0) p->slots[n->epi[j].residual].last = k + 1;
    }
    /* outputs live to the end: rank-4 ones are converted from NHWC at the end; others live in
       the caller's buffer of their first listing */
    for (int i = 0; i < g->noutputs; i++) {
        PlanSlot *s = &p->slots[g->outputs[i]];
        s->last = end;
        if (s->layout == LAYOUT_ROWMAJOR && s->kind == PLAN_WS && find_root(link, g->outputs[i]) == g->outputs[i])
            s->kind = PLAN_OUT, s->index = i;
    }
    /* the NHWC copies of rank-4 graph inputs */
    for (int i = 0; i < g->ninputs; i++) {
        const Tensor *x = ir_tensor(g, g->inputs[i]);
        PlanSlot *c = &p->in_copies[i];
        if (x->rank != 4) {
            c->kind = PLAN_NONE;
            continue;
        }
        *c = (PlanSlot){.kind = PLAN_WS, .bytes = align_up(ir_numel(x) * 4), .layout = LAYOUT_NHWC,
                        .first = 0, .last = p->slots[g->inputs[i]].last, .root = -1};
        p->slots[g->inputs[i]].last = 0;
    }
    /* members extend their storage root's lifetime */
    for (int t = 0; t < nt; t++) {
        PlanSlot *s = &p->slots[t];
        if (s->kind != PLAN_WS || s->first < 0) continue;
        int r = find_root(link, t);
        s->root = r;
        if (r == t) continue;
        PlanSlot *rs = &p->slots[r];
        if (rs->first < 0 || s->first < rs->first) rs->first = s->first;
        if (s->last > rs->last) rs->last = s->last;
    }
    Req *reqs = xcalloc((size_t)nt + (size_t)g->ninputs + 1, sizeof *reqs);
    int nr = 0;
    for (int t = 0; t < nt; t++) {
        PlanSlot *s = &p->slots[t];
        if (s->kind == PLAN_WS && s->first >= 0 && s->root == t) reqs[nr++].slot = s;
        if ((s->kind == PLAN_WS || s->kind == PLAN_OUT) && s->first >= 0) p->naive_bytes += s->bytes;
    }
    for (int i = 0; i < g->ninputs; i++)
        if (p->in_copies[i].kind == PLAN_WS) reqs[nr++].slot = &p->in_copies[i], p->naive_bytes += p->in_copies[i].bytes;
    p->workspace_bytes = place(reqs, nr);
    /* members take their root's place */
    for (int t = 0; t < nt; t++) {
        PlanSlot *s = &p->slots[t];
        if ((s->kind != PLAN_WS && s->kind != PLAN_OUT) || s->root == t || s->first < 0) continue;
        const PlanSlot *rs = &p->slots[s->root];
        s->kind = rs->kind, s->index = rs->index, s->offset = rs->offset, s->layout = rs->layout;
    }
    free(reqs);
    free(link);
}

void plan_free(Plan *p) {
    free(p->slots);
    free(p->in_copies);
    memset(p, 0, sizeof *p);
}

int64_t plan_peak(const Graph *g) {
    Plan p;
    plan_graph(g, &p);
    int64_t b = p.workspace_bytes;
    plan_free(&p);
    return b;
}
