/* concat_elim.c — concat elimination: producers write straight into their slice of the
 * concat's output, so the concat costs no copy.
 *
 * Requires: a verified graph (after inplace). An input of a concat becomes a slice of the
 * concat's output (Tensor.alias, alias_axis, alias_offset) when it is computed by a node (not a
 * graph input), is not a graph output, appears once in this concat, is not already a slice of
 * another concat, and does not share storage through an in-place node (neither its producer
 * nor a reader overwrites in place), and is not read after the concat (whose output a later
 * in-place op may overwrite). Every reader — the producer's kernel, and any node reading it
 * before the concat — then addresses it through the concat's layout. A concat whose output is itself
 * a slice of a later concat chains. Inputs that stay copy as before.
 * Guarantees: values unchanged. Invalidates: the memory plan. */
#include "passes.h"
#include "plan/plan.h"

static bool in_place_involved(const Graph *g, int t) {
    const Tensor *x = ir_tensor(g, t);
    if (x->producer >= 0 && ir_node(g, x->producer)->inplace) return true;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (!n->dead && n->inplace && n->in[0] == t) return true;
    }
    return false;
}

/* Once the concat has run, its output may be overwritten in place by a later elementwise op: a
 * slice must therefore have no reader after the concat. */
static bool read_after(const Graph *g, int t, int pos) {
    for (int i = pos + 1; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == t) return true;
        for (int k = 0; k < n->nepi; k++)
            if (n->epi[k].residual == t) return true;
    }
    return false;
}

bool pass_concat_elim(Graph *g, PassCtx *c) {
    int64_t before = c->stats ? plan_peak(g) : 0;
    int slices = 0, copies = 0, concats = 0;
    /* later concats first, so that an inner concat's output can itself become a slice */
    for (int i = g->nodes.len - 1; i >= 0; i--) {
        Node *n = ir_node(g, i);
        if (n->dead || n->op != OP_CONCAT) continue;
        int axis = (int)ir_attr_int(n, "axis");
        int64_t off = 0;
        int here = 0;
        for (int k = 0; k < n->nin; k++) {
            int t = n->in[k];
            Tensor *x = ir_tensor(g, t);
            int64_t extent = x->shape[axis];
            bool twice = false;
            for (int j = 0; j < n->nin; j++) twice |= j != k && n->in[j] == t;
            bool ok = x->kind == TK_VALUE && x->producer >= 0 && !pass_is_graph_output(g, t) && !twice &&
                      x->alias < 0 && !in_place_involved(g, t) && !read_after(g, t, i);
            if (ok && pass_may_rewrite(c)) {
                x->alias = n->out;
                x->alias_axis = axis;
                x->alias_offset = off;
                here++;
            } else {
                copies++;
            }
            off += extent;
        }
        if (here) {
            n->concat_elim = true;
            concats++;
            slices += here;
        }
    }
    if (c->stats) {
        int64_t after = plan_peak(g);
        pass_stat(c, "%d concat input%s written in place (%d concat%s), %d still copied, peak workspace %.2f MiB -> %.2f MiB",
                  slices, slices == 1 ? "" : "s", concats, concats == 1 ? "" : "s", copies, (double)before / 1048576.0,
                  (double)after / 1048576.0);
    }
    return slices > 0;
}
