/* fuse_dw.c — a depthwise conv computed row by row inside the 1×1 conv that reads it.
 *
 * Requires: a verified graph. A depthwise conv2d D (groups = channels) whose output is read only
 * by the next node P, an ungrouped 1×1 stride-1 unpadded conv2d (ir_dw_rows_producer: the
 * "depthwise then project" of an inverted residual), is never stored: P's kernel computes one
 * output row of D (with its epilogue) into a buffer of one row and runs the 1×1 conv on it
 * straight away. D's output (1.2-1.8 MiB in MobileNetV2's first blocks) then never travels through
 * memory and back. Only where that pays: D's output is at least --fuse-dw's threshold (512 KiB:
 * smaller ones stay in L2 between the two kernels anyway) and a row of it fits in 64 KiB.
 * Handles epilogues (both convs keep theirs; D's has no residual add), in-place nodes and concat
 * slices (P writes through its view; D's output is no slice). Running it again changes nothing.
 * Guarantees: values unchanged (the same sums in the same order). Invalidates: the memory plan
 * (D's output takes no storage; D's inputs live until P). */
#include "passes.h"
#include "plan/plan.h"

enum { ROW_BYTES_MAX = 64 * 1024, CPAD_MAX = 16 /* the widest vector: rows are padded to it */ };

bool pass_fuse_dw(Graph *g, PassCtx *c) {
    int64_t before = c->stats ? plan_peak(g) : 0, min = c->fuse_dw_min_bytes, saved = 0;
    if (min == 0) min = PASS_FUSE_DW_MIN_BYTES_DEFAULT;
    int done = 0, small = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *p = ir_node(g, i);
        if (p->algo != CONV_ALGO_DIRECT) continue;
        const Node *dc = ir_dw_rows_producer(g, p);
        if (!dc || dc->algo != CONV_ALGO_DIRECT) continue;
        Node *d = ir_node(g, dc->id);
        const Tensor *t = ir_tensor(g, d->out);
        int64_t bytes = ir_numel(t) * 4, row = t->shape[3] * ((t->shape[1] + CPAD_MAX - 1) / CPAD_MAX * CPAD_MAX) * 4;
        if ((min > 0 && bytes < min) || row > ROW_BYTES_MAX) {
            small++;
            continue;
        }
        if (!pass_may_rewrite(c)) break;
        d->algo = CONV_ALGO_DW_IN_CONSUMER;
        p->algo = CONV_ALGO_DW_ROWS;
        saved += bytes;
        done++;
    }
    if (c->stats) {
        int64_t after = plan_peak(g);
        pass_stat(c, "%d depthwise conv%s computed row by row in the 1x1 conv that reads it (%.2f MiB not stored), "
                     "%d left alone (output under %.0f KiB or rows over 64 KiB), peak workspace %.2f MiB -> %.2f MiB",
                  done, done == 1 ? "" : "s", (double)saved / 1048576.0, small, (double)(min > 0 ? min : 0) / 1024.0,
                  (double)before / 1048576.0, (double)after / 1048576.0);
    }
    return done > 0;
}
