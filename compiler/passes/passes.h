/* passes.h — graph passes: one file per pass, one table of {name, fn} (pass_manager.c), the
 * -O levels, and what every pass shares: the rewrite budget (--pass-limit), statistics, the
 * split tolerance. Every pass treats a graph output as a reader that lives to the end and never
 * overwrites a graph input. */
#ifndef NETC_PASSES_H
#define NETC_PASSES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"

typedef struct PassCtx {
    Diags *d;
    double split_tol;  /* split3x3: relative Frobenius error allowed per layer */
    int64_t budget;    /* rewrites left (--pass-limit); < 0: unlimited */
    int64_t rewrites;  /* rewrites applied so far */
    FILE *stats;       /* --stats: per-pass lines go here; NULL: none */
    const char *pass;  /* the pass running now */
} PassCtx;

/* Every pass: returns true when it changed the graph. */
typedef bool (*PassFn)(Graph *g, PassCtx *c);

bool pass_fold_bn(Graph *g, PassCtx *c);
bool pass_split3x3(Graph *g, PassCtx *c);
bool pass_fuse_act(Graph *g, PassCtx *c);
bool pass_inplace(Graph *g, PassCtx *c);
bool pass_concat_elim(Graph *g, PassCtx *c);

/* A pass asks before each rewrite; false once the --pass-limit budget is spent. */
bool pass_may_rewrite(PassCtx *c);
/* One line of --stats output, prefixed with the pass name. */
void pass_stat(PassCtx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct PassOptions {
    int opt_level;            /* 0..3, the level's list when `list` is NULL */
    const char *list;         /* --passes=a,b,c: exactly these, in order */
    const char *disabled[16]; /* --disable-pass=NAME */
    int ndisabled;
    const char *print_after;  /* --print-ir-after=PASS|all */
    bool time_passes;         /* --time-passes */
    bool stats;               /* --stats */
    int64_t pass_limit;       /* --pass-limit=N; < 0: none */
    double split_tol;         /* --split-tol */
    bool verify;              /* run the verifier after every pass (tests, debug builds) */
} PassOptions;

/* The names of the passes, in table order, NULL-terminated (for help and validation). */
const char *const *pass_names(void);
/* The list of a level, comma-separated ("" for -O0). */
const char *pass_level_list(int level);
/* Check the names in o (unknown names: an error with "did you mean"); true when valid. */
bool passes_validate(const PassOptions *o, Diags *d);
/* Run the pipeline; reports (print-ir-after, times, stats) go to `report` (stderr). False
 * when the verifier caught a broken graph (a bug, reported as an internal error). */
bool passes_run(Graph *g, const PassOptions *o, Diags *d, FILE *report);

/* Helpers shared by the passes (pass_util.c). */
/* Readers of tensor t: node inputs, epilogue residual operands, and graph outputs (each
 * counts as a reader that lives to the end). */
int pass_reader_count(const Graph *g, int t);
bool pass_is_graph_output(const Graph *g, int t);
bool pass_is_graph_input(const Graph *g, int t);
/* Point every reader of `from` (inputs, residuals, graph outputs) at `to`. */
void pass_replace_uses(Graph *g, int from, int to);
/* Give a weight tensor fresh data (heap, owned by the graph). */
void pass_set_weight(Tensor *t, float *data);

#endif
