/* netrun.c — run and time a compiled model: a thin client of the loader API (netrt.h) and npy.h.
 *
 *   netrun MODEL.so [--input [NAME=]FILE.npy]... [--output [NAME=]FILE.npy]...
 *          [--bench N] [--warmup N] [--threads T] [--seed N] [--json]
 *          [--profile [--peak=GFLOPS]]
 *
 * Inputs without --input get seeded random values, uniform in [-1, 1): splitmix64 seeded with
 * seed * 1000003 + i + 1 for input i, the top 24 bits of each draw scaled to [0, 1) then mapped
 * to [-1, 1) — the same generator as `netc run`, so both see the same inputs for the same --seed.
 *
 * Output on stdout: per output `NAME [SHAPE] min=… max=… mean=…` (as `netc run` prints it, so the
 * two can be diffed); with --bench N, instead, one line
 * `latency_ms median=… p10=… p90=… min=… threads=T` (percentiles interpolated linearly, as
 * numpy.percentile); with --json, one JSON object instead of either:
 *   {"model": NAME, "threads": T, "outputs": [{"name", "shape", "min", "max", "mean"}...],
 *    and with --bench: "runs": N, "warmup": W, "latency_ms": {"median", "p10", "p90", "min"}}
 *
 * --profile times each node of the runs (netrt_profile_*: warm-up, then N runs, N from --bench,
 * default 10) and prints, instead of the output statistics, a table sorted by median time: per
 * node its name, op, kernel kind, fused epilogue, output shape, median ms over the runs, share
 * of the total, GFLOP/s (nominal flops: direct-convolution MACs x 2, also for Winograd) and %
 * of the FP32 peak; then "outside kernels" (each run's time outside the nodes: dispatch, the
 * entry point; its median), the total (the sum of those medians, which the shares divide), and
 * the --bench latency line of the same runs. Nodes that dispatch no kernel (an eliminated
 * concat) are counted below the table, not listed. The peak is measured in about 0.25 s with
 * tools/peak.c's code (netrt_peak_gflops) on the pool's thread count, unless --peak=GFLOPS
 * gives it; on other architectures than x86 it is not measured and the % column is left out.
 * With --json, the object also has
 *   "peak": {"gflops": G or null, "isa": "avx512f" or null, "source": "measured" | "given" |
 *            "not measured"},
 *   "profile": {"nodes": [{"id", "name", "op", "kind", "fused", "shape", "calls", "median_ms",
 *                          "share_pct", "gflops", "peak_pct"}...] (sorted as the table; calls:
 *                          over all runs; gflops null without flops, peak_pct null without them
 *                          or a peak),
 *               "no_kernel": [names], "outside_ms", "total_ms", "gflops", "peak_pct"}
 * (times: medians in ms; share_pct of total_ms, they and outside_ms's share sum to 100).
 * A model compiled before netrt ABI 3 has no profile table: --profile is then an error (1).
 * Exit status: 0 ok, 1 bad input (the message says why), 2 usage error. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netrt.h"
#include "npy.h"

enum { EXIT_OK = 0, EXIT_BAD_INPUT = 1, EXIT_USAGE = 2 };
enum { MAX_IO = 64, DEFAULT_WARMUP = 3, DEFAULT_PROFILE_RUNS = 10 };

static const char usage_text[] =
    "usage: netrun MODEL.so [--input [NAME=]FILE.npy]... [--output [NAME=]FILE.npy]...\n"
    "              [--bench N] [--warmup N] [--threads T] [--seed N] [--json]\n"
    "              [--profile [--peak=GFLOPS]]\n"
    "  --input   an input as .npy (float32, C order); by position, or by NAME=; inputs not given\n"
    "            get seeded random values in [-1, 1) (the same as `netc run --seed N`)\n"
    "  --output  write an output to a .npy file\n"
    "  --bench N time N runs after the warm-up (default 3 runs) and print latency_ms percentiles\n"
    "  --threads thread pool size (default: NETRT_NUM_THREADS, else all cores)\n"
    "  --seed    seed of the random inputs (default 0)\n"
    "  --json    print one JSON object instead of text\n"
    "  --profile time every node over the runs (--bench N, default 10) and print where the time\n"
    "            goes: median ms, share, GFLOP/s and % of the FP32 peak per node, sorted\n"
    "  --peak    the FP32 peak in GFLOP/s for --profile's % column (default: measured, ~0.25 s)\n";

typedef struct IoArg {
    char *name; /* NULL: positional */
    const char *path;
} IoArg;

typedef struct Options {
    const char *model;
    IoArg inputs[MAX_IO], outputs[MAX_IO];
    int ninputs, noutputs;
    long bench, warmup; /* warmup < 0: default */
    int threads;        /* 0: default */
    uint64_t seed;
    bool json, profile;
    double peak; /* 0: measure */
} Options;

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "netrun: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage_text);
    return EXIT_USAGE;
}

static void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "netrun: error: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* "--flag=value" or "--flag value"; NULL when the value is missing. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag) {
    size_t n = strlen(flag);
    const char *a = argv[*i];
    if (!strncmp(a, flag, n) && a[n] == '=') return a + n + 1;
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

static bool is_flag(const char *a, const char *flag) {
    size_t n = strlen(flag);
    return !strncmp(a, flag, n) && (a[n] == 0 || a[n] == '=');
}

static bool parse_count(const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || !*v || *end || x < lo || x > hi) return false;
    *out = x;
    return true;
}

static int parse_io(IoArg *arr, int *count, const char *v) {
    if (*count == MAX_IO) return -1;
    const char *eq = strchr(v, '=');
    IoArg *a = &arr[(*count)++];
    if (eq && eq != v) {
        a->name = strndup(v, (size_t)(eq - v));
        a->path = eq + 1;
    } else {
        a->name = NULL;
        a->path = v;
    }
    return 0;
}

static int parse_args(int argc, char **argv, Options *o) {
    o->warmup = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            exit(EXIT_OK);
        } else if (is_flag(a, "--input") || is_flag(a, "--output")) {
            bool in = a[2] == 'i';
            const char *flag = in ? "--input" : "--output";
            if (!(v = flag_value(argc, argv, &i, flag)) || !*v) return usage_error("%s needs [NAME=]FILE.npy", flag);
            if (parse_io(in ? o->inputs : o->outputs, in ? &o->ninputs : &o->noutputs, v))
                return usage_error("too many %s flags", flag);
        } else if (is_flag(a, "--bench")) {
            if (!(v = flag_value(argc, argv, &i, "--bench")) || !parse_count(v, 1, 100000000, &x))
                return usage_error("--bench needs a number of runs >= 1, got '%s'", v ? v : "");
            o->bench = x;
        } else if (is_flag(a, "--warmup")) {
            if (!(v = flag_value(argc, argv, &i, "--warmup")) || !parse_count(v, 0, 100000000, &x))
                return usage_error("--warmup needs a number of runs >= 0, got '%s'", v ? v : "");
            o->warmup = x;
        } else if (is_flag(a, "--threads")) {
            if (!(v = flag_value(argc, argv, &i, "--threads")) || !parse_count(v, 1, 1024, &x))
                return usage_error("--threads needs a number from 1 to 1024, got '%s'", v ? v : "");
            o->threads = (int)x;
        } else if (is_flag(a, "--seed")) {
            char *end;
            if (!(v = flag_value(argc, argv, &i, "--seed"))) return usage_error("%s needs a number", "--seed");
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || *end || !*v || *v == '-') return usage_error("--seed needs a non-negative integer, got '%s'", v);
            o->seed = s;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--profile")) {
            o->profile = true;
        } else if (is_flag(a, "--peak")) {
            char *end;
            if (!(v = flag_value(argc, argv, &i, "--peak"))) return usage_error("%s needs GFLOP/s", "--peak");
            errno = 0;
            double g = strtod(v, &end);
            if (errno || !*v || *end || !(g > 0) || !isfinite(g))
                return usage_error("--peak needs a positive number of GFLOP/s, got '%s'", v);
            o->peak = g;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'", a);
        } else if (!o->model) {
            o->model = a;
        } else {
            return usage_error("more than one model given ('%s')", a);
        }
    }
    if (!o->model) return usage_error("%s", "no model file given");
    if (o->peak > 0 && !o->profile) return usage_error("%s", "--peak is for --profile");
    return EXIT_OK;
}

static const char *dims_str(int rank, const int64_t *shape, char *buf, size_t len) {
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < rank && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (used < len) snprintf(buf + used, len - used, "]");
    return buf;
}

/* 64-byte aligned float buffers, so generated kernels see the alignment they were tuned for. */
static float *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

static int find_tensor(const netrt_model *m, bool input, const char *name) {
    int n = input ? netrt_num_inputs(m) : netrt_num_outputs(m);
    for (int i = 0; i < n; i++)
        if (!strcmp((input ? netrt_input(m, i) : netrt_output(m, i))->name, name)) return i;
    return -1;
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* JSON has no inf or nan: a non-finite statistic becomes null. */
static void json_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-th quantile of sorted v, linear interpolation between closest ranks (numpy's default). */
static double quantile(const double *v, long n, double q) {
    double pos = q * (double)(n - 1);
    long lo = (long)floor(pos);
    long hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (v[hi] - v[lo]) * (pos - (double)lo);
}

/* ---- --profile ------------------------------------------------------------------------------ */

typedef struct Row {
    int id;
    double ms;
} Row;

/* slowest first; equal times in schedule order */
static int cmp_row(const void *a, const void *b) {
    const Row *x = a, *y = b;
    if (x->ms != y->ms) return x->ms < y->ms ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

typedef struct Peak {
    double gflops; /* 0: not measured */
    const char *isa, *source;
} Peak;

static Peak find_peak(const Options *o, int threads) {
    if (o->peak > 0) return (Peak){o->peak, NULL, "given"};
    Peak p = {0, NULL, "not measured"};
    p.gflops = netrt_peak_gflops(threads, 0.25, &p.isa);
    if (p.gflops > 0) p.source = "measured";
    return p;
}

/* GFLOP/s of `flops` in `ms`; -1 when there are no flops or no time */
static double gflops_of(uint64_t flops, double ms) { return flops && ms > 0 ? (double)flops / ms * 1e-6 : -1; }

static void json_or_null(FILE *f, double v) {
    if (v < 0) fputs("null", f);
    else json_number(f, v);
}

/* The table (text) or the "peak" and "profile" members (JSON, after a comma) of a profile. */
static void print_profile(const netrt_model *m, const netrt_profile *prof, const Peak *peak, int threads, bool json) {
    const netrt_node_info *info;
    int n = netrt_profile_nodes(m, &info), nrows = 0, nskip = 0;
    Row *rows = calloc((size_t)n + 1, sizeof *rows);
    if (!rows) return;
    double sum = 0;
    uint64_t flops = 0;
    for (int i = 0; i < n; i++) {
        if (netrt_profile_calls(prof, i) == 0) {
            nskip++;
            continue;
        }
        rows[nrows] = (Row){i, netrt_profile_median_ms(prof, i)};
        sum += rows[nrows++].ms;
        flops += info[i].flops;
    }
    qsort(rows, (size_t)nrows, sizeof *rows, cmp_row);
    double outside = netrt_profile_median_ms(prof, -2), total = sum + outside;
    double share = total > 0 ? 100 / total : 0;
    double total_gf = gflops_of(flops, total);
    char shape[160], fused[96];
    if (json) {
        printf(", \"peak\": {\"gflops\": ");
        json_or_null(stdout, peak->gflops > 0 ? peak->gflops : -1);
        printf(", \"isa\": ");
        if (peak->isa) json_string(stdout, peak->isa);
        else fputs("null", stdout);
        printf(", \"source\": \"%s\"}", peak->source);
        printf(", \"profile\": {\"nodes\": [");
        for (int r = 0; r < nrows; r++) {
            const netrt_node_info *e = &info[rows[r].id];
            double gf = gflops_of(e->flops, rows[r].ms);
            printf("%s{\"id\": %d, \"name\": ", r ? ", " : "", rows[r].id);
            json_string(stdout, e->name);
            printf(", \"op\": ");
            json_string(stdout, e->op);
            printf(", \"kind\": ");
            json_string(stdout, e->kind);
            printf(", \"fused\": ");
            json_string(stdout, e->fused);
            printf(", \"shape\": %s, \"calls\": %" PRId64 ", \"flops\": %" PRIu64 ", \"median_ms\": ",
                   dims_str(e->rank, e->shape, shape, sizeof shape), netrt_profile_calls(prof, rows[r].id), e->flops);
            json_number(stdout, rows[r].ms);
            printf(", \"share_pct\": ");
            json_number(stdout, rows[r].ms * share);
            printf(", \"gflops\": ");
            json_or_null(stdout, gf);
            printf(", \"peak_pct\": ");
            json_or_null(stdout, gf >= 0 && peak->gflops > 0 ? 100 * gf / peak->gflops : -1);
            printf("}");
        }
        printf("], \"no_kernel\": [");
        for (int i = 0, k = 0; i < n; i++)
            if (netrt_profile_calls(prof, i) == 0) {
                printf("%s", k++ ? ", " : "");
                json_string(stdout, info[i].name);
            }
        printf("], \"outside_ms\": ");
        json_number(stdout, outside);
        printf(", \"outside_share_pct\": ");
        json_number(stdout, outside * share);
        printf(", \"total_ms\": ");
        json_number(stdout, total);
        printf(", \"gflops\": ");
        json_or_null(stdout, total_gf);
        printf(", \"peak_pct\": ");
        json_or_null(stdout, total_gf >= 0 && peak->gflops > 0 ? 100 * total_gf / peak->gflops : -1);
        printf("}");
        free(rows);
        return;
    }

    bool pct = peak->gflops > 0;
    if (pct)
        printf("peak: %.1f GFLOP/s on %d thread%s (%s%s%s)\n", peak->gflops, threads, threads == 1 ? "" : "s",
               peak->source, peak->isa ? ", " : "", peak->isa ? peak->isa : "");
    else
        printf("peak: not measured (%s): no %% of peak column\n", netrt_arch());
    /* the name and shape columns as wide as their longest entry */
    int wname = 4, wop = 2, wkind = 4, wfused = 5, wshape = 5;
    for (int r = 0; r < nrows; r++) {
        const netrt_node_info *e = &info[rows[r].id];
        int l;
        if ((l = (int)strlen(e->name)) > wname) wname = l;
        if ((l = (int)strlen(e->op)) > wop) wop = l;
        if ((l = (int)strlen(e->kind)) > wkind) wkind = l;
        if ((l = (int)strlen(e->fused)) > wfused) wfused = l;
        if ((l = (int)strlen(dims_str(e->rank, e->shape, shape, sizeof shape))) > wshape) wshape = l;
    }
    if (wname > 48) wname = 48;
    if (wfused > 32) wfused = 32;
    if (wname < 26) wname = 26; /* room for the total's label */
    printf("%-*s  %-*s  %-*s  %-*s  %-*s  %9s  %6s  %8s%s\n", wname, "node", wop, "op", wkind, "kind", wfused, "fused",
           wshape, "shape", "median_ms", "share", "GFLOP/s", pct ? "  % peak" : "");
    for (int r = 0; r < nrows; r++) {
        const netrt_node_info *e = &info[rows[r].id];
        double gf = gflops_of(e->flops, rows[r].ms);
        char gfs[32] = "-", pks[32] = "-";
        if (gf >= 0) snprintf(gfs, sizeof gfs, "%.1f", gf);
        if (gf >= 0 && pct) snprintf(pks, sizeof pks, "%.0f%%", 100 * gf / peak->gflops);
        snprintf(fused, sizeof fused, "%s", e->fused[0] ? e->fused : "-");
        printf("%-*.*s  %-*s  %-*s  %-*.*s  %-*s  %9.4f  %5.1f%%  %8s%s%*s\n", wname, wname, e->name, wop, e->op, wkind,
               e->kind, wfused, wfused, fused, wshape, dims_str(e->rank, e->shape, shape, sizeof shape), rows[r].ms,
               rows[r].ms * share, gfs, pct ? "  " : "", pct ? 6 : 0, pct ? pks : "");
    }
    int wlabel = wname + wop + wkind + wfused + wshape + 8;
    printf("%-*s  %9.4f  %5.1f%%\n", wlabel, "outside kernels", outside, outside * share);
    char gfs[32] = "-", pks[32] = "";
    if (total_gf >= 0) snprintf(gfs, sizeof gfs, "%.1f", total_gf);
    if (total_gf >= 0 && pct) snprintf(pks, sizeof pks, "  %5.0f%%", 100 * total_gf / peak->gflops);
    printf("%-*s  %9.4f  %5.1f%%  %8s%s\n", wlabel, "total (sum of the medians)", total, total > 0 ? 100.0 : 0.0, gfs,
           pks);
    if (nskip)
        printf("%d node%s without a kernel of %s own (eliminated concats, aliases) not listed\n", nskip,
               nskip == 1 ? "" : "s", nskip == 1 ? "its" : "their");
    free(rows);
}

typedef struct Stats {
    double min, max, mean;
} Stats;

static Stats stats(const float *x, size_t n) {
    Stats s = {INFINITY, -INFINITY, 0};
    double sum = 0;
    for (size_t j = 0; j < n; j++) {
        s.min = fmin(s.min, x[j]), s.max = fmax(s.max, x[j]);
        sum += x[j];
    }
    s.mean = sum / (double)n;
    return s;
}

int main(int argc, char **argv) {
    Options o = {0};
    int status = parse_args(argc, argv, &o);
    if (status != EXIT_OK) return status;
    status = EXIT_BAD_INPUT;
    if (o.profile && !o.bench) o.bench = DEFAULT_PROFILE_RUNS;

    if (!o.threads) {
        const char *env = getenv("NETRT_NUM_THREADS");
        long x;
        if (env && *env && !parse_count(env, 1, INT_MAX, &x))
            fprintf(stderr, "netrun: warning: NETRT_NUM_THREADS='%s' is not a positive integer: using all cores\n",
                    env);
    }

    char err[1024], s1[160], s2[160];
    netrt_model *m = netrt_open(o.model, err, sizeof err);
    if (!m) {
        error("%s", err);
        for (int k = 0; k < o.ninputs; k++) free(o.inputs[k].name);
        for (int k = 0; k < o.noutputs; k++) free(o.outputs[k].name);
        return EXIT_BAD_INPUT;
    }
    const netrt_model_desc *d = netrt_desc(m);
    int nin = netrt_num_inputs(m), nout = netrt_num_outputs(m);
    float **in = calloc((size_t)nin + 1, sizeof *in);
    float **out = calloc((size_t)nout + 1, sizeof *out);
    const char **out_paths = calloc((size_t)nout + 1, sizeof *out_paths);
    double *times = o.bench ? malloc((size_t)o.bench * sizeof *times) : NULL;
    void *ws = netrt_alloc_workspace(m);
    netrt_pool *pool = NULL;
    netrt_profile *prof = NULL;
    if (!in || !out || !out_paths || (o.bench && !times) || !ws) {
        error("out of memory");
        goto done;
    }

    /* inputs: given files, by name or in order; the rest random */
    if (o.ninputs > nin) {
        error("%d --input files given, the model has %d input%s", o.ninputs, nin, nin == 1 ? "" : "s");
        goto done;
    }
    for (int k = 0; k < o.ninputs; k++) {
        const IoArg *a = &o.inputs[k];
        int idx = a->name ? find_tensor(m, true, a->name) : k;
        if (idx < 0) {
            error("--input %s: the model has no input '%s'", a->path, a->name);
            goto done;
        }
        const netrt_tensor_info *t = netrt_input(m, idx);
        if (in[idx]) {
            error("input '%s' given twice", t->name);
            goto done;
        }
        netrt_npy arr;
        if (netrt_npy_read(a->path, &arr, err, sizeof err)) {
            error("%s", err);
            goto done;
        }
        bool same = arr.rank == t->rank;
        for (int r = 0; same && r < t->rank; r++) same = arr.shape[r] == t->shape[r];
        if (!same) {
            error("input '%s': expected shape %s, the file has %s", t->name, dims_str(t->rank, t->shape, s1, sizeof s1),
                  dims_str(arr.rank, arr.shape, s2, sizeof s2));
            netrt_npy_free(&arr);
            goto done;
        }
        in[idx] = alloc_floats(arr.count);
        if (in[idx]) memcpy(in[idx], arr.data, arr.count * sizeof(float));
        netrt_npy_free(&arr);
        if (!in[idx]) {
            error("out of memory");
            goto done;
        }
    }
    for (int i = 0; i < nin; i++) {
        if (in[i]) continue;
        const netrt_tensor_info *t = netrt_input(m, i);
        size_t n = netrt_tensor_count(t);
        if (!(in[i] = alloc_floats(n))) {
            error("out of memory");
            goto done;
        }
        netrt_random_input(in[i], n, o.seed, i);
        fprintf(stderr, "netrun: note: input '%s': no --input given, using seeded random values (seed %" PRIu64 ")\n",
                t->name, o.seed);
    }

    if (o.noutputs > nout) {
        error("%d --output files given, the model has %d output%s", o.noutputs, nout, nout == 1 ? "" : "s");
        goto done;
    }
    for (int k = 0; k < o.noutputs; k++) {
        const IoArg *a = &o.outputs[k];
        int idx = a->name ? find_tensor(m, false, a->name) : k;
        if (idx < 0) {
            error("--output %s: the model has no output '%s'", a->path, a->name);
            goto done;
        }
        if (out_paths[idx]) {
            error("output '%s' given twice", netrt_output(m, idx)->name);
            goto done;
        }
        out_paths[idx] = a->path;
    }
    for (int i = 0; i < nout; i++)
        if (!(out[i] = alloc_floats(netrt_tensor_count(netrt_output(m, i))))) {
            error("out of memory");
            goto done;
        }

    if (!(pool = netrt_pool_create(o.threads))) {
        error("cannot create a thread pool");
        goto done;
    }
    int threads = netrt_pool_threads(pool);
    if (o.profile && !(prof = netrt_profile_create(pool, m, (int)(o.bench < INT_MAX ? o.bench : INT_MAX)))) {
        if (netrt_profile_nodes(m, NULL) == 0)
            error("%s has no profile table (compiled before netrt ABI 3, or not by netc): "
                  "recompile it to profile it", o.model);
        else
            error("out of memory");
        goto done;
    }

    long warmup = o.bench ? (o.warmup >= 0 ? o.warmup : DEFAULT_WARMUP) : 0;
    long runs = warmup + (o.bench ? o.bench : 1);
    for (long r = 0; r < runs; r++) {
        double t0 = now_ms();
        netrt_status st = prof && r >= warmup ? netrt_profile_run(prof, (const float *const *)in, out, ws)
                                              : netrt_run(m, (const float *const *)in, out, ws, pool);
        double t1 = now_ms();
        if (st != NETRT_OK) {
            error("%s: run failed: %s", o.model, netrt_status_str(st));
            goto done;
        }
        /* a profiled run's own time: without netrun's clock reads around it */
        if (r >= warmup && times) times[r - warmup] = prof ? netrt_profile_ms(prof, (int)(r - warmup), -1) : t1 - t0;
    }
    Peak peak = {0};
    if (prof) peak = find_peak(&o, threads);

    for (int i = 0; i < nout; i++) {
        const netrt_tensor_info *t = netrt_output(m, i);
        if (out_paths[i] && netrt_npy_write(out_paths[i], out[i], t->rank, t->shape, err, sizeof err)) {
            error("%s", err);
            goto done;
        }
    }

    double med = 0, p10 = 0, p90 = 0, mn = 0;
    if (o.bench) {
        qsort(times, (size_t)o.bench, sizeof *times, cmp_double);
        med = quantile(times, o.bench, 0.5), p10 = quantile(times, o.bench, 0.1);
        p90 = quantile(times, o.bench, 0.9), mn = times[0];
    }
    if (o.json) {
        printf("{\"model\": ");
        json_string(stdout, d->name);
        printf(", \"threads\": %d", threads);
        const netrt_variant *v = netrt_variant_selected(m);
        printf(", \"variant\": {\"cpu\": ");
        json_string(stdout, v->cpu);
        printf(", \"features\": ");
        json_string(stdout, v->features);
        printf(", \"of\": %d}", d->nvariants);
        if (o.bench) {
            printf(", \"runs\": %ld, \"warmup\": %ld, \"latency_ms\": {\"median\": ", o.bench, warmup);
            json_number(stdout, med);
            printf(", \"p10\": ");
            json_number(stdout, p10);
            printf(", \"p90\": ");
            json_number(stdout, p90);
            printf(", \"min\": ");
            json_number(stdout, mn);
            printf("}");
        }
        if (prof) print_profile(m, prof, &peak, threads, true);
        printf(", \"outputs\": [");
        for (int i = 0; i < nout; i++) {
            const netrt_tensor_info *t = netrt_output(m, i);
            Stats s = stats(out[i], netrt_tensor_count(t));
            printf("%s{\"name\": ", i ? ", " : "");
            json_string(stdout, t->name);
            printf(", \"shape\": %s, \"min\": ", dims_str(t->rank, t->shape, s1, sizeof s1));
            json_number(stdout, s.min);
            printf(", \"max\": ");
            json_number(stdout, s.max);
            printf(", \"mean\": ");
            json_number(stdout, s.mean);
            printf("}");
        }
        printf("]}\n");
    } else if (o.bench) {
        if (prof) {
            const netrt_variant *v = netrt_variant_selected(m);
            printf("profile: %s, %ld runs after %ld warm-up, %d thread%s, --cpu=%s\n", d->name, o.bench, warmup, threads,
                   threads == 1 ? "" : "s", v->cpu);
            print_profile(m, prof, &peak, threads, false);
        }
        printf("latency_ms median=%.4g p10=%.4g p90=%.4g min=%.4g threads=%d\n", med, p10, p90, mn, threads);
        /* per-node medians pick each node's quiet runs; a busy machine makes whole runs slower */
        double sum = 0;
        for (int i = -2; prof && i < netrt_profile_nodes(m, NULL); i++)
            if (i != -1) sum += netrt_profile_median_ms(prof, i);
        if (prof && fabs(sum - med) > 0.1 * med) {
            fflush(stdout);
            fprintf(stderr,
                    "netrun: note: the median run took %.4g ms, the sum of the per-node medians is %.4g ms: the runs "
                    "vary (is the machine busy?); more --bench runs steady both\n",
                    med, sum);
        }
    } else {
        for (int i = 0; i < nout; i++) {
            const netrt_tensor_info *t = netrt_output(m, i);
            Stats s = stats(out[i], netrt_tensor_count(t));
            printf("%s %s min=%.6g max=%.6g mean=%.6g\n", t->name, dims_str(t->rank, t->shape, s1, sizeof s1), s.min,
                   s.max, s.mean);
        }
    }
    if (fflush(stdout) == 0 && !ferror(stdout)) status = EXIT_OK;
    else error("cannot write to stdout");

done:
    netrt_profile_destroy(prof);
    netrt_pool_destroy(pool);
    for (int i = 0; in && i < nin; i++) free(in[i]);
    for (int i = 0; out && i < nout; i++) free(out[i]);
    free(in), free(out), free(out_paths), free(times);
    netrt_free_workspace(ws);
    netrt_close(m);
    for (int k = 0; k < o.ninputs; k++) free(o.inputs[k].name);
    for (int k = 0; k < o.noutputs; k++) free(o.outputs[k].name);
    return status;
}
