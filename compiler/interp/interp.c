/* interp.c — the reference interpreter's driver: the op dispatch table (from ops.def) and
 * interp_run, which evaluates a whole graph node by node in schedule order. */
#include "interp.h"

#include <stdlib.h>
#include <string.h>

#include "interp_internal.h"

static const InterpFn interp_table[OP_COUNT] = {
#define OP(E, id, in, at, w, shape, fl) [OP_##E] = interp_##id,
#include "../ops.def"
#undef OP
};

void interp_node(const Graph *g, const Node *n, const float *const *in, float *out) {
    NETC_ASSERT(n->op >= 0 && n->op < OP_COUNT && interp_table[n->op]);
    interp_table[n->op](g, n, in, out);
}

/* Checks what interp_run needs and cannot take for granted (it does not re-verify): every
 * weight of a live node bound, every input of a live node computed before it. */
static bool check_graph(const Graph *g, Diags *d) {
    int nt = g->tensors.len;
    bool ok = true;
    char *ready = xcalloc((size_t)(nt ? nt : 1), 1);
    for (int i = 0; i < g->ninputs; i++) ready[g->inputs[i]] = 1;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        const OpInfo *o = op_info(n->op);
        for (int k = 0; k < o->nweights; k++) {
            if (n->w[k] < 0) continue;
            const Tensor *w = ir_tensor(g, n->w[k]);
            if (!w->data) {
                ir_node_error(d, n, "interp: weight '%s' of %s '%s' has no data", w->name, o->name,
                              n->name);
                ok = false;
            }
        }
        for (int k = 0; k < n->nin; k++) {
            int t = n->in[k];
            if (t < 0 || t >= nt || !ready[t]) {
                ir_node_error(d, n, "interp: input %d of %s '%s' is not computed before it", k,
                              o->name, n->name);
                ok = false;
            }
        }
        if (n->out >= 0 && n->out < nt) ready[n->out] = 1;
    }
    for (int i = 0; i < g->noutputs; i++) {
        int t = g->outputs[i];
        if (t < 0 || t >= nt || !ready[t]) {
            diag_error(d, g->output_locs[i], "interp: output '%s' is not computed",
                       g->output_names[i]);
            ok = false;
        }
    }
    free(ready);
    return ok;
}

/* A fused epilogue: each step on the node's result, in order. An activation runs through its
 * own (elementwise, so in-place safe) interpreter kernel; a residual add adds the operand. */
static void apply_epilogue(const Graph *g, const Node *n, float *y, int64_t numel, const float **data) {
    for (int k = 0; k < n->nepi; k++) {
        const EpiOp *e = &n->epi[k];
        if (e->residual >= 0) {
            const float *r = data[e->residual];
            for (int64_t i = 0; i < numel; i++) y[i] = (float)((double)y[i] + (double)r[i]);
        } else {
            const float *in[1] = {y};
            interp_node(g, e->act, in, y);
        }
    }
}

/* One heap buffer per computed tensor, freed after its last reader unless it is a graph output
 * (those are copied to the caller at the end). Graph inputs are read from the caller's buffers
 * in place and never written. */
bool interp_run(const Graph *g, const float *const *inputs, float *const *outputs, Diags *d) {
    if (!check_graph(g, d)) return false;
    int nt = g->tensors.len;
    float **buf = xcalloc((size_t)(nt ? nt : 1), sizeof *buf);
    const float **data = xcalloc((size_t)(nt ? nt : 1), sizeof *data);
    int *last_use = xmalloc((size_t)(nt ? nt : 1) * sizeof *last_use);
    for (int t = 0; t < nt; t++) {
        last_use[t] = -1;
        const Tensor *tt = ir_tensor(g, t);
        if (tt->kind == TK_WEIGHT) data[t] = tt->data;
    }
    for (int i = 0; i < g->ninputs; i++) data[g->inputs[i]] = inputs[i];
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        for (int k = 0; k < n->nin; k++) last_use[n->in[k]] = i;
        for (int k = 0; k < n->nepi; k++)
            if (n->epi[k].residual >= 0) last_use[n->epi[k].residual] = i;
    }
    for (int i = 0; i < g->noutputs; i++) last_use[g->outputs[i]] = g->nodes.len;

    int max_in = 1;
    for (int i = 0; i < g->nodes.len; i++)
        if (ir_node(g, i)->nin > max_in) max_in = ir_node(g, i)->nin;
    const float **in = xmalloc((size_t)max_in * sizeof *in);

    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        for (int k = 0; k < n->nin; k++) in[k] = data[n->in[k]];
        int64_t numel = ir_numel(ir_tensor(g, n->out));
        free(buf[n->out]); /* a node recomputing a tensor (never in a verified graph) */
        buf[n->out] = xmalloc((size_t)(numel ? numel : 1) * sizeof(float));
        interp_node(g, n, in, buf[n->out]);
        apply_epilogue(g, n, buf[n->out], numel, data);
        data[n->out] = buf[n->out];
        for (int k = 0; k < n->nin + n->nepi; k++) {
            int t = k < n->nin ? n->in[k] : n->epi[k - n->nin].residual;
            if (t < 0) continue;
            if (last_use[t] == i && buf[t]) {
                free(buf[t]);
                buf[t] = NULL;
                data[t] = NULL;
            }
        }
    }
    for (int i = 0; i < g->noutputs; i++) {
        int t = g->outputs[i];
        memcpy(outputs[i], data[t], (size_t)ir_numel(ir_tensor(g, t)) * sizeof(float));
    }
    for (int t = 0; t < nt; t++) free(buf[t]);
    free(in);
    free(last_use);
    free(data);
    free(buf);
    return true;
}
