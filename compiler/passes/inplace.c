/* inplace.c — elementwise ops write over their input where that is safe.
 *
 * Requires: a verified graph (after fuse-act, whatever elementwise ops remain standalone). An
 * elementwise node (activation, batchnorm, binary op, dropout) may overwrite in[0] when in[0]
 * has the output's shape, is not a graph input or output, has no reader after the node, and the
 * output is not a graph output kept in the caller's buffer (rank ≠ 4), so both live in the
 * workspace, and neither tensor is a concat slice (concat-elim ran first). `inplace=true` in the
 * source is honoured only where this holds; otherwise a warning names the later reader. The memory planner gives the output the input's storage.
 * Guarantees: values unchanged. Invalidates: the memory plan (peak workspace shrinks). */
#include "passes.h"
#include "plan/plan.h"

bool pass_inplace(Graph *g, PassCtx *c) {
    int64_t before = c->stats ? plan_peak(g) : 0;
    int done = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->dead || n->inplace || !(op_info(n->op)->flags & OPF_ELEMENTWISE)) continue;
        const Tensor *x = ir_tensor(g, n->in[0]), *y = ir_tensor(g, n->out);
        int a = op_attr_index(n->op, "inplace");
        bool requested = a >= 0 && n->attrs[a].kind == VAL_BOOL && n->attrs[a].b;
        const Node *later = NULL;
        bool unsafe = ir_inplace_unsafe(g, n, &later);
        /* a slice of a concat is stored in the concat's output: it can neither be overwritten
           nor be the in-place output (the planner links a tensor to one storage only) */
        bool shape_ok = ir_same_shape(x, y) && x->kind == TK_VALUE && x->alias < 0 && y->alias < 0;
        bool out_ok = !(pass_is_graph_output(g, n->out) && y->rank != 4);
        for (int k = 1; k < n->nin; k++) shape_ok &= n->in[k] != n->in[0]; /* add(x, x): keep x */
        if (unsafe || !shape_ok || !out_ok) {
            if (requested && !c->repeat) {
                if (later)
                    diag_warning(c->d, n->loc, "%s: inplace=true ignored: '%s' reads '%s' later", op_info(n->op)->name,
                                 later->name, x->name);
                else if (x->alias >= 0 || y->alias >= 0)
                    diag_warning(c->d, n->loc, "%s: inplace=true ignored: '%s' is stored in the output of concat '%s'",
                                 op_info(n->op)->name, x->alias >= 0 ? x->name : y->name,
                                 ir_tensor(g, x->alias >= 0 ? x->alias : y->alias)->name);
                else if (pass_is_graph_input(g, n->in[0]))
                    diag_warning(c->d, n->loc, "%s: inplace=true ignored: '%s' is a graph input, never overwritten",
                                 op_info(n->op)->name, x->name);
                else
                    diag_warning(c->d, n->loc, "%s: inplace=true ignored: '%s' is a graph output", op_info(n->op)->name,
                                 pass_is_graph_output(g, n->in[0]) ? x->name : y->name);
            }
            continue;
        }
        if (!pass_may_rewrite(c)) break;
        n->inplace = true;
        done++;
    }
    if (c->stats) {
        int64_t after = plan_peak(g);
        pass_stat(c, "%d elementwise op%s in place, peak workspace %.2f MiB -> %.2f MiB", done, done == 1 ? "" : "s",
                  (double)before / 1048576.0, (double)after / 1048576.0);
    }
    return done > 0;
}
