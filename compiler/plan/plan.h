/* plan.h — memory planning: where every tensor of the graph lives at run time. One workspace
 * arena for all intermediates; offsets from lifetimes over the schedule (greedy first fit by
 * size); graph inputs and outputs in the caller's buffers. */
#ifndef NETC_PLAN_H
#define NETC_PLAN_H

#include <stdint.h>

#include "ir/ir.h"

typedef enum { PLAN_NONE, PLAN_WS, PLAN_IN, PLAN_OUT, PLAN_WEIGHT } PlanBufKind;

/* Physical layout of a tensor: rank-4 intermediates are NHWC (channels innermost, so kernels
 * vectorise over channels); everything else, and the caller's buffers, row-major (NCHW). */
typedef enum { LAYOUT_ROWMAJOR, LAYOUT_NHWC } PlanLayout;

typedef struct PlanSlot {
    PlanBufKind kind;
    int index;       /* PLAN_IN/PLAN_OUT: which input/output buffer */
    int64_t offset;  /* bytes into the workspace (PLAN_WS) */
    int64_t bytes;
    PlanLayout layout;
    int first, last; /* schedule positions: produced at `first`, last read at `last` */
    int root;        /* the tensor whose storage this one uses: itself, the input of an
                        in-place node, or the concat output it is a slice of */
} PlanSlot;

typedef struct Plan {
    PlanSlot *slots;      /* by tensor id */
    PlanSlot *in_copies;  /* per graph input: the internal (NHWC) copy of a rank-4 input */
    int64_t workspace_bytes;
    int64_t naive_bytes;  /* sum of all workspace tensors: what no reuse would cost */
} Plan;

/* Storage is shared along in-place nodes (output = input) and concat slices (Tensor.alias):
 * a storage root's lifetime covers all its members'.
 * Positions: 0 = the input conversions, node k of the schedule = k + 1, the output copies =
 * nodes + 1. Graph outputs live to the end. */
void plan_graph(const Graph *g, Plan *p);
void plan_free(Plan *p);
/* The peak workspace bytes of g's plan (for --stats before and after a pass). */
int64_t plan_peak(const Graph *g);

#endif
