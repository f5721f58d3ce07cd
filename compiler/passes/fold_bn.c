/* fold_bn.c — fold a batchnorm, or a per-channel scale, into the conv2d or linear that feeds it.
 *
 * Requires: a verified graph with bound weights. Matches conv2d/linear -> batchnorm (or scale)
 * where the batchnorm is the producer's only reader (a graph output counts as a reader) and the
 * producer has no epilogue yet (a conv's fused relu comes before the batchnorm: not foldable).
 * Both are y = x * s[c] + t[c] per output channel c, with, in double precision,
 *     batchnorm: s = gamma[c] / sqrt(var[c] + eps),  t = beta[c] - mean[c] * s
 *     scale:     s = weight[c],                      t = bias[c] (0 without bias)
 * and fold as W'[c, ...] = W[c, ...] * s,  b'[c] = b[c] * s + t   (b = 0 if absent).
 * Grouped and depthwise convolutions too: output channel c is always dim 0 of the weight.
 * Handles what earlier passes leave: the batchnorm's own epilogue (fuse-act ran first) moves onto
 * the producer, which has none; the batchnorm's concat slice (concat-elim ran first) passes to
 * the producer's output; an in-place batchnorm simply disappears.
 * Guarantees: the batchnorm is gone and its readers read the producer. Invalidates: nothing
 * else (shapes are unchanged). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static bool foldable_producer(const Graph *g, const Node *bn, Node **out) {
    const Tensor *x = ir_tensor(g, bn->in[0]);
    if (x->producer < 0) return false;
    Node *p = ir_node(g, x->producer);
    if (p->dead || (p->op != OP_CONV2D && p->op != OP_LINEAR) || p->nepi) return false;
    if (pass_reader_count(g, p->out) != 1) return false;
    /* the batchnorm's epilogue will run in p's kernel: its residual operands must be ready then */
    for (int k = 0; k < bn->nepi; k++)
        if (bn->epi[k].residual >= 0 && ir_tensor(g, bn->epi[k].residual)->producer >= p->id) return false;
    *out = p;
    return true;
}

/* The per-channel affine map of a batchnorm or scale node: y = x * s + t at channel oc. */
static void channel_affine(const Graph *g, const Node *bn, int64_t oc, double *s, double *t) {
    if (bn->op == OP_SCALE) {
        *s = ir_weight(g, bn, "weight")->data[oc];
        *t = ir_attr_bool(bn, "bias") ? (double)ir_weight(g, bn, "bias")->data[oc] : 0.0;
        return;
    }
    const Tensor *gm = ir_weight(g, bn, "weight"), *bt = ir_weight(g, bn, "bias");
    const Tensor *mu = ir_weight(g, bn, "running_mean"), *var = ir_weight(g, bn, "running_var");
    *s = (double)gm->data[oc] / sqrt((double)var->data[oc] + ir_attr_float(bn, "eps"));
    *t = (double)bt->data[oc] - (double)mu->data[oc] * *s;
}

bool pass_fold_bn(Graph *g, PassCtx *c) {
    int folded = 0, kept = 0, scales = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *bn = ir_node(g, i);
        if (bn->dead || (bn->op != OP_BATCHNORM && bn->op != OP_SCALE)) continue;
        Node *p;
        if (!foldable_producer(g, bn, &p)) {
            kept++;
            continue;
        }
        if (!pass_may_rewrite(c)) break;
        Tensor *w = ir_weight(g, p, "weight");
        Tensor *b = ir_weight(g, p, "bias");
        int64_t C = ir_numel(ir_weight(g, bn, "weight")), per = ir_numel(w) / C;
        float *nb = xmalloc((size_t)C * sizeof *nb);
        for (int64_t oc = 0; oc < C; oc++) { /* the weight is the producer's own: scaled in place */
            double s, t;
            channel_affine(g, bn, oc, &s, &t);
            float *row = w->data + oc * per;
            for (int64_t k = 0; k < per; k++) row[k] = (float)((double)row[k] * s);
            double b0 = b ? (double)b->data[oc] : 0.0;
            nb[oc] = (float)(b0 * s + t);
        }
        if (!b) {
            ir_set_bool(g, p, "bias", true);
            ir_infer_node(g, p, c->d); /* creates the bias tensor */
            b = ir_weight(g, p, "bias");
        }
        pass_set_weight(b, nb);
        memcpy(p->epi, bn->epi, sizeof p->epi);
        p->nepi = bn->nepi;
        pass_move_slice(g, bn->out, p->out);
        pass_replace_uses(g, bn->out, p->out);
        bn->dead = true;
        if (bn->op == OP_SCALE) scales++;
        else folded++;
    }
    char sc[64] = "";
    if (scales) snprintf(sc, sizeof sc, ", %d scale%s", scales, scales == 1 ? "" : "s");
    pass_stat(c, "folded %d batchnorm%s%s%s", folded, folded == 1 ? "" : "s", sc,
              kept ? " (kept the ones whose input has other readers or no conv/linear producer)" : "");
    return folded + scales > 0;
}
