/* fuse_act.c — activations and residual adds into the producing kernel's epilogue.
 *
 * Requires: a verified graph. An activation (any of the language's, prelu and dropout too)
 * whose input has exactly one reader (a graph output counts as a reader) becomes the next step
 * of its producer's epilogue, applied while the result is in registers — when the producer is
 * a conv2d, conv_transpose2d, linear, batchnorm, scale, add/sub/mul/div or another activation. Chains
 * fuse one after another (conv -> relu6 -> ...). A residual `add(c, r)` with equal shapes whose
 * operand c comes from a conv2d/linear read only by the add, and whose other operand r is
 * computed before that conv, becomes an epilogue step "+ r" of the conv: ResNet's
 * relu(add(bn2, x)) is one kernel after fold-bn.
 * A fusion happens only when the whole result fits: the host's steps, the fused node and the
 * fused node's own epilogue together at most IR_MAX_EPI steps; nothing is ever truncated.
 * Handles what earlier passes leave: a fused node's concat slice passes to the host (not when the
 * host writes in place: a tensor cannot be both); in-place flags of dead nodes vanish with them.
 * Runs to a fixpoint, so running it again changes nothing.
 * Guarantees: values unchanged. Invalidates: the fused nodes (dead), readers now read the
 * producer. */
#include "passes.h"

static bool epilogue_host(OpKind op) {
    switch (op) {
    case OP_CONV2D: case OP_CONV_TRANSPOSE2D: case OP_LINEAR: case OP_BATCHNORM: case OP_SCALE:
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
        return true;
    default:
        return op_info(op)->flags & OPF_ACTIVATION || op == OP_DROPOUT;
    }
}

static bool fusable_activation(OpKind op) { return (op_info(op)->flags & OPF_ACTIVATION) || op == OP_DROPOUT; }

/* schedule position of the tensor's producer; -1 for inputs and weights */
static int position(const Graph *g, int t) { return ir_tensor(g, t)->producer; }

static bool try_residual(Graph *g, PassCtx *c, Node *add) {
    for (int side = 0; side < 2; side++) {
        int ct = add->in[side], rt = add->in[1 - side];
        const Tensor *ctt = ir_tensor(g, ct);
        if (ctt->producer < 0 || ct == rt) continue;
        Node *p = ir_node(g, ctt->producer);
        if (p->dead || (p->op != OP_CONV2D && p->op != OP_LINEAR) || p->nepi + 1 + add->nepi > IR_MAX_EPI) continue;
        if (!ir_same_shape(ctt, ir_tensor(g, rt)) || !ir_same_shape(ctt, ir_tensor(g, add->out))) continue;
        if (pass_reader_count(g, ct) != 1 || position(g, rt) >= p->id) continue;
        bool ready = true;
        for (int k = 0; k < add->nepi; k++)
            ready &= add->epi[k].residual < 0 || position(g, add->epi[k].residual) < p->id;
        if (!ready) continue;
        if (!pass_may_rewrite(c)) return false;
        p->epi[p->nepi++] = (EpiOp){.act = NULL, .residual = rt};
        /* the add's own epilogue (if any) follows; its residuals were ready before the add, but
           must be ready before the conv too */
        for (int k = 0; k < add->nepi; k++) p->epi[p->nepi++] = add->epi[k];
        pass_move_slice(g, add->out, p->out);
        pass_replace_uses(g, add->out, p->out);
        add->dead = true;
        return true;
    }
    return false;
}

/* Fuse activation n into its producer; false when it does not apply. */
static bool try_activation(Graph *g, PassCtx *c, Node *n, bool *stop) {
    const Tensor *x = ir_tensor(g, n->in[0]);
    if (x->producer < 0) return false;
    Node *p = ir_node(g, x->producer);
    if (p->dead || !epilogue_host(p->op) || p->nepi + 1 + n->nepi > IR_MAX_EPI) return false;
    if (pass_reader_count(g, n->in[0]) != 1) return false;
    if (ir_tensor(g, n->out)->alias >= 0 && p->inplace) return false; /* the slice cannot move */
    for (int k = 0; k < n->nepi; k++) /* n's own epilogue runs earlier now: its operands must be ready */
        if (n->epi[k].residual >= 0 && position(g, n->epi[k].residual) >= p->id) return false;
    if (!pass_may_rewrite(c)) {
        *stop = true;
        return false;
    }
    p->epi[p->nepi++] = (EpiOp){.act = n, .residual = -1};
    for (int k = 0; k < n->nepi; k++) p->epi[p->nepi++] = n->epi[k];
    n->nepi = 0;
    pass_move_slice(g, n->out, p->out);
    pass_replace_uses(g, n->out, p->out);
    n->dead = true;
    return true;
}

bool pass_fuse_act(Graph *g, PassCtx *c) {
    int acts = 0, residuals = 0;
    bool stop = false;
    for (bool again = true; again && !stop;) {
        again = false;
        for (int i = 0; i < g->nodes.len && !stop; i++) {
            Node *n = ir_node(g, i);
            if (n->dead) continue;
            if (n->op == OP_ADD && try_residual(g, c, n)) {
                residuals++, again = true;
                continue;
            }
            if (fusable_activation(n->op) && try_activation(g, c, n, &stop)) acts++, again = true;
        }
    }
    int standalone = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        standalone += !n->dead && fusable_activation(n->op) && n->op != OP_DROPOUT;
    }
    pass_stat(c, "fused %d activation%s and %d residual add%s into their producers (%d activation%s left standalone)",
              acts, acts == 1 ? "" : "s", residuals, residuals == 1 ? "" : "s", standalone, standalone == 1 ? "" : "s");
    return acts + residuals > 0;
}
