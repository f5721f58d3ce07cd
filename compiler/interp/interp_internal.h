/* interp_internal.h — what the interpreter's files share: one kernel per op (generated from
 * ops.def), and small shape helpers. Not part of the compiler's public interface. */
#ifndef NETC_INTERP_INTERNAL_H
#define NETC_INTERP_INTERNAL_H

#include <stdint.h>

#include "interp.h"

/* Every op of ops.def has a kernel interp_<id> with interp_node's signature. */
typedef void (*InterpFn)(const Graph *g, const Node *n, const float *const *in, float *out);

#define OP(E, id, ins, at, ws, shape, fl)                                                          \
    void interp_##id(const Graph *g, const Node *n, const float *const *in, float *out);
#include "../ops.def"
#undef OP

static inline const Tensor *interp_in_tensor(const Graph *g, const Node *n, int k) {
    return ir_tensor(g, n->in[k]);
}
static inline const Tensor *interp_out_tensor(const Graph *g, const Node *n) {
    return ir_tensor(g, n->out);
}

/* Weight data of the node by parameter name, NULL when the weight is absent (bias=false). */
static inline const float *interp_weight(const Graph *g, const Node *n, const char *param) {
    const Tensor *t = ir_weight(g, n, param);
    return t ? t->data : NULL;
}

/* Product of dims [from, to) of t. */
static inline int64_t interp_dims_product(const Tensor *t, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= t->shape[i];
    return p;
}

#endif
