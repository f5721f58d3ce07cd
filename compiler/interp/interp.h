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

#endif
