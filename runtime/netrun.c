/* netrun.c — run and time a compiled model: a thin client of the loader API (netrt.h) and npy.h.
 *
 *   netrun MODEL.so [--input [NAME=]FILE.npy]... [--output [NAME=]FILE.npy]...
 *          [--bench N] [--warmup N] [--threads T] [--seed N] [--json]
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
enum { MAX_IO = 64, DEFAULT_WARMUP = 3 };

static const char usage_text[] =
    "usage: netrun MODEL.so [--input [NAME=]FILE.npy]... [--output [NAME=]FILE.npy]...\n"
    "              [--bench N] [--warmup N] [--threads T] [--seed N] [--json]\n"
    "  --input   an input as .npy (float32, C order); by position, or by NAME=; inputs not given\n"
    "            get seeded random values in [-1, 1) (the same as `netc run --seed N`)\n"
    "  --output  write an output to a .npy file\n"
    "  --bench N time N runs after the warm-up (default 3 runs) and print latency_ms percentiles\n"
    "  --threads thread pool size (default: NETRT_NUM_THREADS, else all cores)\n"
    "  --seed    seed of the random inputs (default 0)\n"
    "  --json    print one JSON object instead of text\n";

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
    bool json;
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
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'", a);
        } else if (!o->model) {
            o->model = a;
        } else {
            return usage_error("more than one model given ('%s')", a);
        }
    }
    if (!o->model) return usage_error("%s", "no model file given");
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

    long warmup = o.bench ? (o.warmup >= 0 ? o.warmup : DEFAULT_WARMUP) : 0;
    long runs = warmup + (o.bench ? o.bench : 1);
    for (long r = 0; r < runs; r++) {
        double t0 = now_ms();
        netrt_status st = netrt_run(m, (const float *const *)in, out, ws, pool);
        double t1 = now_ms();
        if (st != NETRT_OK) {
            error("%s: run failed: %s", o.model, netrt_status_str(st));
            goto done;
        }
        if (r >= warmup && times) times[r - warmup] = t1 - t0;
    }

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
        printf("latency_ms median=%.4g p10=%.4g p90=%.4g min=%.4g threads=%d\n", med, p10, p90, mn, threads);
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
