/* pass_util.c — small graph queries and rewrites the passes share. */
#include <stdlib.h>

#include "passes.h"

int pass_reader_count(const Graph *g, int t) {
    int n = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *x = ir_node(g, i);
        if (x->dead) continue;
        for (int k = 0; k < x->nin; k++) n += x->in[k] == t;
        for (int k = 0; k < x->nepi; k++) n += x->epi[k].residual == t;
    }
    for (int i = 0; i < g->noutputs; i++) n += g->outputs[i] == t;
    return n;
}

bool pass_is_graph_output(const Graph *g, int t) {
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == t) return true;
    return false;
}

bool pass_is_graph_input(const Graph *g, int t) {
    for (int i = 0; i < g->ninputs; i++)
        if (g->inputs[i] == t) return true;
    return false;
}

void pass_replace_uses(Graph *g, int from, int to) {
    for (int i = 0; i < g->nodes.len; i++) {
        Node *x = ir_node(g, i);
        if (x->dead) continue;
        for (int k = 0; k < x->nin; k++)
            if (x->in[k] == from) x->in[k] = to;
        for (int k = 0; k < x->nepi; k++)
            if (x->epi[k].residual == from) x->epi[k].residual = to;
    }
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == from) g->outputs[i] = to;
}

void pass_move_slice(Graph *g, int from, int to) {
    Tensor *f = ir_tensor(g, from), *t = ir_tensor(g, to);
    if (f->alias < 0) return;
    NETC_ASSERT(t->alias < 0 && !(t->producer >= 0 && ir_node(g, t->producer)->inplace));
    t->alias = f->alias, t->alias_axis = f->alias_axis, t->alias_offset = f->alias_offset;
    f->alias = -1;
}

void pass_set_weight(Tensor *t, float *data) {
    free(t->data);
    t->data = data;
}
