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
    double winograd_tol; /* winograd: max|Δ|/max|ref| allowed per layer (measured on a patch) */
    int64_t fuse_dw_min_bytes; /* fuse-dw: the smallest depthwise output fused; 0: the default, < 0: any */
    int64_t budget;    /* rewrites left (--pass-limit); < 0: unlimited */
    int64_t rewrites;  /* rewrites applied so far */
    FILE *stats;       /* --stats: per-pass lines go here; NULL: none */
    const char *pass;  /* the pass running now */
    bool repeat;       /* it ran before in this pipeline (warnings are not repeated) */
} PassCtx;

/* Every pass: returns true when it changed the graph. */
typedef bool (*PassFn)(Graph *g, PassCtx *c);

/* Facts about a graph that passes create, and that a later pass must know how to handle. They
 * are read off the graph itself (pass_graph_facts), never tracked by hand. */
enum {
    GF_WEIGHTS = 1 << 0,   /* every weight tensor has its values bound */
    GF_EPILOGUES = 1 << 1, /* nodes carry fused epilogues (Node.epi: activations, residual adds) */
    GF_INPLACE = 1 << 2,   /* nodes write over their input (Node.inplace) */
    GF_SLICES = 1 << 3,    /* tensors are stored as slices of a concat's output (Tensor.alias) */
    GF_DW_ROWS = 1 << 4,   /* depthwise convs computed row by row inside their 1x1 reader (Node.algo) */
    GF_COUNT = 5,
    GF_BENIGN = GF_WEIGHTS, /* facts every pass copes with: never a reason to refuse */
    GF_ANY = GF_EPILOGUES | GF_INPLACE | GF_SLICES | GF_DW_ROWS /* `handles` of a pass that copes with all */
};

/* A pass's contract, as data (QBE's requires / maintains / breaks, made executable). The pass
 * manager refuses a --passes list before anything runs when a pass would meet a fact it does
 * not list in `handles`, or miss one it `requires`; after each pass it checks that the graph
 * gained no fact the pass does not `establish`. A new pass that handles nothing is therefore
 * refused after fuse-act, inplace or concat-elim until it says it copes with their output. */
typedef struct PassInfo {
    const char *name;
    PassFn fn;
    unsigned requires;    /* GF_* that must hold before it runs */
    unsigned handles;     /* GF_* it rewrites correctly when present (others: refused) */
    unsigned establishes; /* GF_* it may create */
    const char *what;     /* one line for help and the README */
} PassInfo;

/* The pass table (pass_manager.c), NULL-name terminated. */
extern const PassInfo pass_table[];
/* The name of a fact, for messages ("fused epilogues"). */
const char *pass_fact_name(unsigned fact);
/* The facts a graph has now. */
unsigned pass_graph_facts(const Graph *g);
/* Check a comma-separated list against the contracts of `table` (NULL: pass_table), starting
 * from a freshly lowered graph (GF_WEIGHTS only). Reports the first conflict as
 * "--passes: B after A is not supported: B cannot handle <fact> (made by A)"; true when none. */
bool passes_check_order(const PassInfo *table, const char *list, Diags *d);

bool pass_fold_bn(Graph *g, PassCtx *c);
bool pass_split3x3(Graph *g, PassCtx *c);
bool pass_fuse_act(Graph *g, PassCtx *c);
bool pass_inplace(Graph *g, PassCtx *c);
bool pass_concat_elim(Graph *g, PassCtx *c);
bool pass_winograd(Graph *g, PassCtx *c);
bool pass_fuse_dw(Graph *g, PassCtx *c);

/* fuse-dw's threshold: depthwise outputs under 512 KiB stay in L2 between the two kernels */
#define PASS_FUSE_DW_MIN_BYTES_DEFAULT (512 * 1024)
/* --winograd-tol's default: F(4,3) in float measures 2-6e-6 on ResNet-18's layers, F(2,3) 2-4e-7
 * (direct ~1e-7) */
#define PASS_WINOGRAD_TOL_DEFAULT 1e-5

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
    double winograd_tol;      /* --winograd-tol (0 declines every layer: set it) */
    int64_t fuse_dw_min_bytes; /* fuse-dw's threshold (0: the default; < 0: fuse every pair) */
    bool verify;              /* run the verifier after every pass (tests, debug builds) */
    const PassInfo *table;    /* NULL: pass_table (tests and experiments bring their own) */
    struct Times *times;      /* with time_passes: each pass's time goes here (else printed) */
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
/* `to` replaces `from` (whose producer goes away): if `from` is stored as a concat slice,
 * `to` takes the slice over (`to` must be no slice and no in-place output). */
void pass_move_slice(Graph *g, int from, int to);
/* Give a weight tensor fresh data (heap, owned by the graph). */
void pass_set_weight(Tensor *t, float *data);

#endif
