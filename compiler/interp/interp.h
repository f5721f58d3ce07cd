/* interp.h — the reference interpreter: plain loops, PyTorch eval-mode semantics, the oracle
 * every pass and every generated kernel is tested against. */
#ifndef NETC_INTERP_H
#define NETC_INTERP_H

#include "../ir/ir.h"

/* Evaluate the graph. inputs[i] holds g->inputs[i] (numel floats, C order); outputs[i] is a
 * caller buffer for g->outputs[i]. Every weight must be bound (Tensor.data). Returns false and
 * reports in d on a problem it cannot evaluate (it does not re-verify the graph). */
bool interp_run(const Graph *g, const float *const *inputs, float *const *outputs, Diags *d);

/* One node: in[k] is the data of n->in[k], out is the node's output buffer. */
void interp_node(const Graph *g, const Node *n, const float *const *in, float *out);

/* Index rules that define PyTorch's semantics, shared with code generation (which computes its
 * tables with them at compile time, so both agree by construction). */
/* pad mode="reflect": the source index of output index o on an axis of `size`. */
int64_t interp_reflect_index(int64_t o, int64_t pad_before, int64_t size);
/* upsample: the float32 coordinate scale of an axis (in/out given size, 1/s given scale=s). */
float interp_upsample_scale(int64_t in_size, int64_t out_size, bool align_corners, bool has_scale, double s);
/* bilinear: source indices and weights of output index o on one axis. */
void interp_bilinear_axis(int64_t o, int64_t in_size, int64_t out_size, bool align_corners, float scale, int64_t *i0,
                          int64_t *i1, float *l0, float *l1);

#endif
