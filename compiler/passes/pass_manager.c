/* pass_manager.c — the one table of passes with their contracts, the -O levels, and the driver
 * loop: check each pass's contract, run it, verify after it, print the IR, time it, count its
 * rewrites. */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "passes.h"
#include "timing.h"

/* The one table of passes. `handles`: what each pass rewrites correctly when an earlier pass has
 * left it in the graph (fold-bn moves a batchnorm's epilogue onto the conv; every rewrite that
 * replaces a node hands its concat slice on to the replacement; inplace never overwrites or
 * produces a slice; winograd only chooses how a conv is computed, Node.algo, and the kernel's
 * store step honours epilogues and slices; split3x3 replacing such a conv drops the choice with
 * it; a depthwise conv fuse-dw put inside its 1x1 reader is read by that conv alone, so no pass
 * fuses into it or between the two, and split3x3 and winograd leave it). */
const PassInfo pass_table[] = {
    {"fold-bn", pass_fold_bn, GF_WEIGHTS, GF_ANY, 0,
     "conv/linear + batchnorm (or scale) -> conv/linear with folded weights"},
    {"split3x3", pass_split3x3, GF_WEIGHTS, GF_ANY, 0,
     "3x3 conv -> 1x3 then 3x1 where exact (or within --split-tol)"},
    {"winograd", pass_winograd, GF_WEIGHTS, GF_ANY, 0,
     "3x3 stride-1 convs by Winograd F(4,3) or F(2,3) where it pays and its error is within --winograd-tol"},
    {"fuse-act", pass_fuse_act, 0, GF_ANY, GF_EPILOGUES,
     "activations and residual adds into the producer's epilogue"},
    {"inplace", pass_inplace, 0, GF_ANY, GF_INPLACE, "elementwise ops overwrite their input where safe"},
    {"concat-elim", pass_concat_elim, 0, GF_ANY, GF_SLICES, "producers write straight into their concat slice"},
    {"fuse-dw", pass_fuse_dw, 0, GF_ANY, GF_DW_ROWS,
     "depthwise conv computed row by row inside the 1x1 conv reading it, never stored"},
    {NULL, NULL, 0, 0, 0, NULL},
};
enum { NPASSES = sizeof pass_table / sizeof *pass_table - 1 };

const char *pass_fact_name(unsigned fact) {
    switch (fact) {
    case GF_WEIGHTS: return "bound weights";
    case GF_EPILOGUES: return "fused epilogues";
    case GF_INPLACE: return "in-place nodes";
    case GF_SLICES: return "concat slices";
    case GF_DW_ROWS: return "depthwise convs computed by their reader";
    default: return "?";
    }
}

unsigned pass_graph_facts(const Graph *g) {
    unsigned f = GF_WEIGHTS;
    for (int i = 0; i < g->tensors.len; i++) {
        const Tensor *t = ir_tensor(g, i);
        if (t->kind == TK_WEIGHT && !t->data) f &= ~(unsigned)GF_WEIGHTS;
        if (t->alias >= 0) f |= GF_SLICES;
    }
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        if (n->nepi) f |= GF_EPILOGUES;
        if (n->inplace) f |= GF_INPLACE;
        if (n->algo == CONV_ALGO_DW_ROWS) f |= GF_DW_ROWS;
    }
    return f;
}

/* -O0 runs nothing; -O1 the local rewrites; -O2 and -O3 everything (split3x3 exact by default;
 * winograd within --winograd-tol: ResNet-18 1.31× faster at 1 thread with AVX-512, 1.54× with AVX2
 * (2026-12-02); 1.3× at 2 threads, AVX-512, when it was F(4,3) alone). */
static const char *const levels[4] = {
    "",
    "fold-bn,fuse-act",
    "fold-bn,split3x3,winograd,fuse-act,inplace,concat-elim,fuse-dw",
    "fold-bn,split3x3,winograd,fuse-act,inplace,concat-elim,fuse-dw",
};

const char *const *pass_names(void) {
    static const char *names[NPASSES + 1];
    for (int i = 0; i < NPASSES; i++) names[i] = pass_table[i].name;
    return names;
}

const char *pass_level_list(int level) { return levels[level < 0 ? 0 : level > 3 ? 3 : level]; }

static int find_in(const PassInfo *table, const char *name, size_t len) {
    for (int i = 0; table[i].name; i++)
        if (strlen(table[i].name) == len && !strncmp(table[i].name, name, len)) return i;
    return -1;
}

static void unknown_pass(Diags *d, const char *flag, const char *name, size_t len) {
    char buf[128];
    snprintf(buf, sizeof buf, "%.*s", (int)len, name);
    const char *best = NULL;
    int bestd = 4;
    for (int i = 0; i < NPASSES; i++) {
        int dist = util_edit_distance(buf, pass_table[i].name);
        if (dist < bestd) bestd = dist, best = pass_table[i].name;
    }
    if (best) {
        diag_error(d, (SrcLoc){0}, "%s: unknown pass '%s' (did you mean '%s'?)", flag, buf, best);
        return;
    }
    char all[256] = "";
    for (int i = 0; i < NPASSES; i++)
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", i ? ", " : "", pass_table[i].name);
    diag_error(d, (SrcLoc){0}, "%s: unknown pass '%s' (passes: %s)", flag, buf, all);
}

/* The next name of a comma-separated list: its index in table (-1 when unknown or empty); *p
 * moves past it and its comma. */
static int next_in_list(const PassInfo *table, const char **p) {
    const char *e = strchr(*p, ',');
    size_t len = e ? (size_t)(e - *p) : strlen(*p);
    int k = len ? find_in(table, *p, len) : -1;
    *p += len + (e ? 1 : 0);
    return k;
}

static bool is_disabled(const PassOptions *o, const char *name) {
    for (int i = 0; i < o->ndisabled; i++)
        if (!strcmp(o->disabled[i], name)) return true;
    return false;
}

/* The list that will run: --passes (or the level's), without the --disable-pass names. */
static void effective_list(const PassOptions *o, char *buf, size_t cap) {
    const PassInfo *table = o->table ? o->table : pass_table;
    const char *list = o->list ? o->list : pass_level_list(o->opt_level);
    buf[0] = 0;
    for (const char *p = list; *p;) {
        int k = next_in_list(table, &p);
        if (k < 0 || is_disabled(o, table[k].name)) continue;
        size_t used = strlen(buf);
        snprintf(buf + used, cap - used, "%s%s", used ? "," : "", table[k].name);
    }
}

/* Walk the list as the graph's facts would evolve, assuming each pass makes every fact it may
 * establish: a refusal here means some graph would meet a pass that cannot handle it. */
bool passes_check_order(const PassInfo *table, const char *list, Diags *d) {
    if (!table) table = pass_table;
    unsigned facts = GF_WEIGHTS;
    const char *maker[GF_COUNT] = {0};
    for (const char *p = list; *p;) {
        int k = next_in_list(table, &p);
        if (k < 0) continue;
        const PassInfo *pi = &table[k];
        unsigned bad = facts & ~(pi->handles | GF_BENIGN), missing = pi->requires & ~facts;
        for (int f = 0; f < GF_COUNT; f++) {
            if (bad & (1u << f)) {
                diag_error(d, (SrcLoc){0}, "--passes: %s after %s is not supported: %s cannot handle %s (made by %s)",
                           pi->name, maker[f] ? maker[f] : "lowering", pi->name, pass_fact_name(1u << f),
                           maker[f] ? maker[f] : "lowering");
                return false;
            }
            if (missing & (1u << f)) {
                diag_error(d, (SrcLoc){0}, "--passes: %s is not supported here: it needs %s, which no pass before it makes",
                           pi->name, pass_fact_name(1u << f));
                return false;
            }
        }
        for (int f = 0; f < GF_COUNT; f++)
            if ((pi->establishes & (1u << f)) && !(facts & (1u << f))) maker[f] = pi->name;
        facts |= pi->establishes;
    }
    return true;
}

bool passes_validate(const PassOptions *o, Diags *d) {
    int errors = d->nerrors;
    const PassInfo *table = o->table ? o->table : pass_table;
    if (o->list) {
        for (const char *p = o->list; *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len && find_in(table, p, len) < 0) unknown_pass(d, "--passes", p, len);
            p += len + (e ? 1 : 0);
        }
    }
    for (int i = 0; i < o->ndisabled; i++)
        if (find_in(table, o->disabled[i], strlen(o->disabled[i])) < 0)
            unknown_pass(d, "--disable-pass", o->disabled[i], strlen(o->disabled[i]));
    if (o->print_after && strcmp(o->print_after, "all") && strcmp(o->print_after, "lower") &&
        find_in(table, o->print_after, strlen(o->print_after)) < 0)
        unknown_pass(d, "--print-ir-after", o->print_after, strlen(o->print_after));
    if (o->split_tol < 0 || o->split_tol >= 1)
        diag_error(d, (SrcLoc){0}, "--split-tol=%g: must be in [0, 1)", o->split_tol);
    if (o->winograd_tol < 0 || o->winograd_tol >= 1)
        diag_error(d, (SrcLoc){0}, "--winograd-tol=%g: must be in [0, 1)", o->winograd_tol);
    if (d->nerrors == errors) {
        char list[1024];
        effective_list(o, list, sizeof list);
        passes_check_order(o->table, list, d);
    }
    return d->nerrors == errors;
}

bool pass_may_rewrite(PassCtx *c) {
    if (c->budget == 0) return false;
    if (c->budget > 0) c->budget--;
    c->rewrites++;
    return true;
}

void pass_stat(PassCtx *c, const char *fmt, ...) {
    if (!c->stats) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->stats, "%s: ", c->pass);
    vfprintf(c->stats, fmt, ap);
    fputc('\n', c->stats);
    va_end(ap);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool passes_run(Graph *g, const PassOptions *o, Diags *d, FILE *report) {
    char list[1024];
    effective_list(o, list, sizeof list);
    PassCtx c = {.d = d, .split_tol = o->split_tol, .winograd_tol = o->winograd_tol,
                 .fuse_dw_min_bytes = o->fuse_dw_min_bytes, .budget = o->pass_limit,
                 .stats = o->stats ? report : NULL};
    if (o->print_after && (!strcmp(o->print_after, "all") || !strcmp(o->print_after, "lower"))) {
        fprintf(report, "; IR after lower\n");
        ir_print(g, report);
    }
    double total = 0;
    const PassInfo *table = o->table ? o->table : pass_table;
    int ran[64] = {0};
    for (const char *p = list; *p;) {
        int k = next_in_list(table, &p);
        if (k < 0) continue;
        const PassInfo *pi = &table[k];
        c.pass = pi->name;
        c.repeat = k < 64 && ran[k]++ > 0;
        /* the contract, on the graph as it is (passes_validate checked the list; a graph that
           arrives with facts of its own is refused here) */
        unsigned facts = pass_graph_facts(g);
        unsigned bad = (facts & ~(pi->handles | GF_BENIGN)) | (pi->requires & ~facts);
        if (bad) {
            for (int f = 0; f < GF_COUNT; f++)
                if (bad & (1u << f))
                    diag_error(d, (SrcLoc){0}, "--passes: %s cannot run on this graph: %s %s", pi->name,
                               facts & (1u << f) ? "it cannot handle" : "it needs", pass_fact_name(1u << f));
            return false;
        }
        int64_t before = c.rewrites;
        double t0 = now_ms();
        bool changed = pi->fn(g, &c);
        double ms = now_ms() - t0;
        total += ms;
        if (changed) ir_compact(g);
        if (o->time_passes && o->times) times_add(o->times, "pass", pi->name, ms);
        else if (o->time_passes)
            fprintf(report, "time: %-12s %8.2f ms  (%lld rewrites)\n", c.pass, ms, (long long)(c.rewrites - before));
        unsigned gained = pass_graph_facts(g) & ~facts & ~pi->establishes;
        for (int f = 0; f < GF_COUNT; f++)
            if (gained & (1u << f)) {
                diag_error(d, (SrcLoc){0}, "internal error (a bug in netc): pass '%s' made %s, which its contract does not establish",
                           c.pass, pass_fact_name(1u << f));
                return false;
            }
        if (o->verify && !ir_verify(g, d, true)) {
            diag_error(d, (SrcLoc){0}, "internal error (a bug in netc): the graph is broken after pass '%s'", c.pass);
            return false;
        }
        if (o->print_after && (!strcmp(o->print_after, "all") || !strcmp(o->print_after, c.pass))) {
            fprintf(report, "; IR after %s\n", c.pass);
            ir_print(g, report);
        }
    }
    if (o->time_passes && !o->times) fprintf(report, "time: %-12s %8.2f ms\n", "total", total);
    if (o->pass_limit >= 0 && c.stats)
        fprintf(report, "pass-limit: %lld of %lld rewrites applied\n", (long long)c.rewrites, (long long)o->pass_limit);
    return true;
}
