/* pass_manager.c — the one table of passes, the -O levels, and the driver loop: run each pass,
 * verify after it (tests and debug builds), print the IR, time it, count its rewrites. */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "passes.h"

static const struct {
    const char *name;
    PassFn fn;
} pass_table[] = {
    {"fold-bn", pass_fold_bn},         /* conv/linear + batchnorm -> conv/linear with folded weights */
    {"split3x3", pass_split3x3},       /* 3x3 conv -> 1x3 then 3x1 where exact (or within --split-tol) */
    {"fuse-act", pass_fuse_act},       /* activations and residual adds into the producer's epilogue */
    {"inplace", pass_inplace},         /* elementwise ops overwrite their input where safe */
    {"concat-elim", pass_concat_elim}, /* producers write straight into their concat slice */
};
enum { NPASSES = sizeof pass_table / sizeof *pass_table };

/* -O0 runs nothing; -O1 the local rewrites; -O2 and -O3 everything (split3x3 exact by default). */
static const char *const levels[4] = {
    "",
    "fold-bn,fuse-act",
    "fold-bn,split3x3,fuse-act,inplace,concat-elim",
    "fold-bn,split3x3,fuse-act,inplace,concat-elim",
};

const char *const *pass_names(void) {
    static const char *names[NPASSES + 1];
    for (int i = 0; i < NPASSES; i++) names[i] = pass_table[i].name;
    return names;
}

const char *pass_level_list(int level) { return levels[level < 0 ? 0 : level > 3 ? 3 : level]; }

static int find_pass(const char *name, size_t len) {
    for (int i = 0; i < NPASSES; i++)
        if (strlen(pass_table[i].name) == len && !strncmp(pass_table[i].name, name, len)) return i;
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
    if (best) diag_error(d, (SrcLoc){0}, "%s: unknown pass '%s' (did you mean '%s'?)", flag, buf, best);
    else diag_error(d, (SrcLoc){0}, "%s: unknown pass '%s' (passes: fold-bn, split3x3, fuse-act, inplace, concat-elim)", flag, buf);
}

bool passes_validate(const PassOptions *o, Diags *d) {
    int errors = d->nerrors;
    if (o->list) {
        for (const char *p = o->list; *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len && find_pass(p, len) < 0) unknown_pass(d, "--passes", p, len);
            p += len + (e ? 1 : 0);
        }
    }
    for (int i = 0; i < o->ndisabled; i++)
        if (find_pass(o->disabled[i], strlen(o->disabled[i])) < 0)
            unknown_pass(d, "--disable-pass", o->disabled[i], strlen(o->disabled[i]));
    if (o->print_after && strcmp(o->print_after, "all") && strcmp(o->print_after, "lower") &&
        find_pass(o->print_after, strlen(o->print_after)) < 0)
        unknown_pass(d, "--print-ir-after", o->print_after, strlen(o->print_after));
    if (o->split_tol < 0 || o->split_tol >= 1)
        diag_error(d, (SrcLoc){0}, "--split-tol=%g: must be in [0, 1)", o->split_tol);
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
    const char *list = o->list ? o->list : pass_level_list(o->opt_level);
    PassCtx c = {.d = d, .split_tol = o->split_tol, .budget = o->pass_limit, .stats = o->stats ? report : NULL};
    if (o->print_after && (!strcmp(o->print_after, "all") || !strcmp(o->print_after, "lower"))) {
        fprintf(report, "; IR after lower\n");
        ir_print(g, report);
    }
    double total = 0;
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int k = len ? find_pass(p, len) : -1;
        p += len + (e ? 1 : 0);
        if (k < 0) continue;
        bool disabled = false;
        for (int i = 0; i < o->ndisabled; i++) disabled |= !strcmp(o->disabled[i], pass_table[k].name);
        if (disabled) continue;
        c.pass = pass_table[k].name;
        int64_t before = c.rewrites;
        double t0 = now_ms();
        bool changed = pass_table[k].fn(g, &c);
        double ms = now_ms() - t0;
        total += ms;
        if (changed) ir_compact(g);
        if (o->time_passes)
            fprintf(report, "time: %-12s %8.2f ms  (%lld rewrites)\n", c.pass, ms, (long long)(c.rewrites - before));
        if (o->verify && !ir_verify(g, d, true)) {
            diag_error(d, (SrcLoc){0}, "internal error (a bug in netc): the graph is broken after pass '%s'", c.pass);
            return false;
        }
        if (o->print_after && (!strcmp(o->print_after, "all") || !strcmp(o->print_after, c.pass))) {
            fprintf(report, "; IR after %s\n", c.pass);
            ir_print(g, report);
        }
    }
    if (o->time_passes) fprintf(report, "time: %-12s %8.2f ms\n", "total", total);
    if (o->pass_limit >= 0 && c.stats)
        fprintf(report, "pass-limit: %lld of %lld rewrites applied\n", (long long)c.rewrites, (long long)o->pass_limit);
    return true;
}
