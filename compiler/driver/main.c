/* main.c — the netc driver: command-line parsing and the only place that turns diagnostics into
 * an exit status (0 ok, 1 bad input, 2 usage, 3 internal error). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "frontend.h"
#include "interp/interp.h"
#include "ir/ir.h"
#include "netrt.h"
#include "npy.h"
#include "passes/passes.h"
#include "timing.h"
#include "plan/plan.h"

enum { EXIT_OK = 0, EXIT_BAD_INPUT = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: netc MODEL.net [-o OUT] [--weights FILE.safetensors] [--seed N] [-O0|-O1|-O2|-O3]\n"
    "            [--passes=LIST] [--disable-pass=NAME]... [--split-tol=EPS] [--winograd-tol=EPS]\n"
    "            [--emit=so|obj|header|ll|asm] [--target=TRIPLE] [--cpu=NAME] [--mattr=+F,-F]\n"
    "            [--print-ir-after=PASS|all] [--dot=FILE] [--stats] [--time-passes] [--pass-limit=N]\n"
    "            [--jobs=N] [--llvm-passes=PIPELINE]\n"
    "       passes: fold-bn, split3x3, winograd, fuse-act, inplace, concat-elim, fuse-dw;\n"
    "       -O0: none, -O1: fold-bn,fuse-act,\n"
    "       -O2/-O3: fold-bn,split3x3,winograd,fuse-act,inplace,concat-elim,fuse-dw\n"
    "       netc run MODEL.net [--weights FILE] [--seed N] [-O...] [--passes=LIST] [pass flags]\n"
    "            [--input [NAME=]FILE.npy]... [--output [NAME=]FILE.npy]...\n"
    "       netc check MODEL.net [--weights FILE] [--seed N] [--print-ir-after=all]\n"
    "See spec/tools.md and README.md.\n";

typedef struct IoArg {
    const char *name; /* NULL: positional (in order); else points at buf */
    const char *path;
    char buf[256];
} IoArg;

typedef struct Options {
    const char *cmd; /* "compile", "run", "check" */
    const char *model;
    const char *out;
    const char *weights;
    uint64_t seed;
    int opt_level;
    const char *llvm_passes; /* --llvm-passes: LLVM's pipeline instead of the level's */
    int jobs; /* --jobs: code generation threads (0: all the CPUs this process may use) */
    const char *emit;
    const char *print_ir_after;
    const char *target, *cpu, *mattr;
    const char *passes;
    const char *disabled[16];
    int ndisabled;
    double split_tol, winograd_tol;
    const char *dot;
    bool stats, time_passes;
    int64_t pass_limit;
    IoArg inputs[64], outputs[64];
    int ninputs, noutputs;
} Options;

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "netc: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage_text);
    return EXIT_USAGE;
}

/* "--flag=value" or "--flag value": returns the value or NULL (usage error reported). */
static const char *flag_value(int argc, char **argv, int *i, const char *flag) {
    size_t n = strlen(flag);
    const char *a = argv[*i];
    if (!strncmp(a, flag, n) && a[n] == '=') return a + n + 1;
    if (!strcmp(a, flag)) {
        if (*i + 1 >= argc) return NULL;
        return argv[++*i];
    }
    return NULL;
}

static bool is_flag(const char *a, const char *flag) {
    size_t n = strlen(flag);
    return !strncmp(a, flag, n) && (a[n] == 0 || a[n] == '=');
}

static int parse_io(IoArg *arr, int *count, const char *v) {
    if (*count == 64) return -1;
    const char *eq = strchr(v, '=');
    IoArg *a = &arr[(*count)++];
    if (eq && eq != v) {
        snprintf(a->buf, sizeof a->buf, "%.*s", (int)(eq - v), v);
        a->name = a->buf;
        a->path = eq + 1;
    } else {
        a->name = NULL;
        a->path = v;
    }
    return 0;
}

static int parse_args(int argc, char **argv, Options *o) {
    int i = 1;
    o->cmd = "compile";
    o->opt_level = -1;
    o->split_tol = 1e-6;
    o->winograd_tol = PASS_WINOGRAD_TOL_DEFAULT;
    o->pass_limit = -1;
    if (argc > 1 && (!strcmp(argv[1], "run") || !strcmp(argv[1], "check"))) o->cmd = argv[i++];
    for (; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            exit(EXIT_OK);
        } else if (!strcmp(a, "-o")) {
            if (i + 1 >= argc) return usage_error("%s needs a value", a);
            o->out = argv[++i];
        } else if (is_flag(a, "--weights")) {
            if (!(v = flag_value(argc, argv, &i, "--weights"))) return usage_error("%s needs a file", a);
            o->weights = v;
        } else if (is_flag(a, "--seed")) {
            if (!(v = flag_value(argc, argv, &i, "--seed"))) return usage_error("%s needs a number", a);
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || *end || !*v) return usage_error("--seed needs a non-negative integer, got '%s'", v);
            o->seed = s;
        } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            o->opt_level = a[2] - '0';
        } else if (is_flag(a, "--emit")) {
            if (!(v = flag_value(argc, argv, &i, "--emit"))) return usage_error("%s needs a kind", a);
            o->emit = v;
        } else if (is_flag(a, "--target")) {
            if (!(v = flag_value(argc, argv, &i, "--target"))) return usage_error("%s needs a triple", a);
            o->target = v;
        } else if (is_flag(a, "--cpu")) {
            if (!(v = flag_value(argc, argv, &i, "--cpu"))) return usage_error("%s needs a CPU name", a);
            o->cpu = v;
        } else if (is_flag(a, "--mattr")) {
            if (!(v = flag_value(argc, argv, &i, "--mattr"))) return usage_error("%s needs a feature list (+avx2,+fma)", a);
            o->mattr = v;
        } else if (is_flag(a, "--passes")) {
            if (!(v = flag_value(argc, argv, &i, "--passes"))) return usage_error("%s needs a list", a);
            o->passes = v;
        } else if (is_flag(a, "--disable-pass")) {
            if (!(v = flag_value(argc, argv, &i, "--disable-pass"))) return usage_error("%s needs a pass name", a);
            if (o->ndisabled == 16) return usage_error("too many %s flags", a);
            o->disabled[o->ndisabled++] = v;
        } else if (is_flag(a, "--split-tol")) {
            if (!(v = flag_value(argc, argv, &i, "--split-tol"))) return usage_error("%s needs a number", a);
            char *end;
            errno = 0;
            o->split_tol = strtod(v, &end);
            if (errno || *end || !*v || !(o->split_tol >= 0 && o->split_tol < 1))
                return usage_error("--split-tol needs a number in [0, 1), got '%s'", v);
        } else if (is_flag(a, "--winograd-tol")) {
            if (!(v = flag_value(argc, argv, &i, "--winograd-tol"))) return usage_error("%s needs a number", a);
            char *end;
            errno = 0;
            o->winograd_tol = strtod(v, &end);
            if (errno || *end || !*v || !(o->winograd_tol >= 0 && o->winograd_tol < 1))
                return usage_error("--winograd-tol needs a number in [0, 1), got '%s'", v);
        } else if (is_flag(a, "--dot")) {
            if (!(v = flag_value(argc, argv, &i, "--dot"))) return usage_error("%s needs a file", a);
            o->dot = v;
        } else if (!strcmp(a, "--stats")) {
            o->stats = true;
        } else if (!strcmp(a, "--time-passes")) {
            o->time_passes = true;
        } else if (is_flag(a, "--llvm-passes")) {
            if (!(v = flag_value(argc, argv, &i, "--llvm-passes"))) return usage_error("%s needs a pipeline", a);
            o->llvm_passes = v;
        } else if (is_flag(a, "--jobs")) {
            if (!(v = flag_value(argc, argv, &i, "--jobs"))) return usage_error("%s needs a number", a);
            char *end;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || *end || !*v || n < 1 || n > 64) return usage_error("--jobs needs a number from 1 to 64, got '%s'", v);
            o->jobs = (int)n;
        } else if (is_flag(a, "--pass-limit")) {
            if (!(v = flag_value(argc, argv, &i, "--pass-limit"))) return usage_error("%s needs a number", a);
            char *end;
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || *end || !*v || n < 0) return usage_error("--pass-limit needs a non-negative integer, got '%s'", v);
            o->pass_limit = n;
        } else if (is_flag(a, "--print-ir-after")) {
            if (!(v = flag_value(argc, argv, &i, "--print-ir-after"))) return usage_error("%s needs a pass name or 'all'", a);
            o->print_ir_after = v;
        } else if (is_flag(a, "--input")) {
            if (!(v = flag_value(argc, argv, &i, "--input"))) return usage_error("%s needs [NAME=]FILE.npy", a);
            if (parse_io(o->inputs, &o->ninputs, v)) return usage_error("too many %s flags", a);
        } else if (is_flag(a, "--output")) {
            if (!(v = flag_value(argc, argv, &i, "--output"))) return usage_error("%s needs [NAME=]FILE.npy", a);
            if (parse_io(o->outputs, &o->noutputs, v)) return usage_error("too many %s flags", a);
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'", a);
        } else if (!o->model) {
            o->model = a;
        } else {
            return usage_error("more than one model given ('%s')", a);
        }
    }
    if (!o->model) return usage_error("%s", "no model file given");
    if (o->emit && strcmp(o->emit, "so") && strcmp(o->emit, "obj") && strcmp(o->emit, "header") &&
        strcmp(o->emit, "ll") && strcmp(o->emit, "asm"))
        return usage_error("--emit: unknown kind '%s' (so, obj, header, ll, asm)", o->emit);
    return EXIT_OK;
}

static int finish(Diags *d, int status) {
    diags_print(d, stderr);
    diags_free(d);
    return status;
}

/* ---- netc check ------------------------------------------------------------------------- */

static void human_count(int64_t v, char *buf, size_t len) {
    if (v >= 1000000000) snprintf(buf, len, "%.2fG", (double)v / 1e9);
    else if (v >= 1000000) snprintf(buf, len, "%.2fM", (double)v / 1e6);
    else if (v >= 10000) snprintf(buf, len, "%.1fk", (double)v / 1e3);
    else snprintf(buf, len, "%" PRId64, v);
}

static void print_summary(const Graph *g, FILE *out) {
    char shape[128], macs[32], wc[32];
    int64_t total_macs = 0, total_w = 0;
    int nodes = 0;
    fprintf(out, "model %s\n", g->name);
    for (int i = 0; i < g->ninputs; i++) {
        const Tensor *t = ir_tensor(g, g->inputs[i]);
        fprintf(out, "  input  %-28s %s\n", t->name, ir_shape_str(t, shape, sizeof shape));
    }
    fprintf(out, "  %-32s %-18s %-20s %10s %10s\n", "node", "op", "shape", "MACs", "weights");
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        int64_t m = ir_node_macs(g, n), w = ir_node_weight_count(g, n);
        total_macs += m, total_w += w, nodes++;
        human_count(m, macs, sizeof macs);
        human_count(w, wc, sizeof wc);
        fprintf(out, "  %-32s %-18s %-20s %10s %10s\n", n->name, op_info(n->op)->name,
                ir_shape_str(ir_tensor(g, n->out), shape, sizeof shape), macs, wc);
    }
    for (int i = 0; i < g->noutputs; i++) {
        const Tensor *t = ir_tensor(g, g->outputs[i]);
        fprintf(out, "  output %-28s %s\n", g->output_names[i], ir_shape_str(t, shape, sizeof shape));
    }
    human_count(total_macs, macs, sizeof macs);
    human_count(total_w, wc, sizeof wc);
    fprintf(out, "total: %d nodes, %s MACs (%" PRId64 "), %s weights (%" PRId64 " bytes)\n", nodes, macs,
            total_macs, wc, total_w * 4);
}

/* ---- netc run --------------------------------------------------------------------------- */

static int find_input(const Graph *g, const char *name) {
    for (int i = 0; i < g->ninputs; i++)
        if (!strcmp(ir_tensor(g, g->inputs[i])->name, name)) return i;
    return -1;
}

static int find_output(const Graph *g, const char *name) {
    for (int i = 0; i < g->noutputs; i++)
        if (!strcmp(g->output_names[i], name)) return i;
    return -1;
}

static int cmd_run(const Options *o, Graph *g, Diags *d) {
    int status = EXIT_BAD_INPUT;
    float **in = xcalloc((size_t)g->ninputs, sizeof *in);
    float **out = xcalloc((size_t)g->noutputs, sizeof *out);
    netrt_npy *arrays = xcalloc((size_t)o->ninputs + 1, sizeof *arrays);
    const char **out_paths = xcalloc((size_t)g->noutputs, sizeof *out_paths);
    bool *random_in = xcalloc((size_t)g->ninputs, sizeof *random_in);
    char err[512], s1[128], s2[128];
    bool ok = true;

    if (o->ninputs > g->ninputs) {
        diag_error(d, (SrcLoc){0}, "%d --input files given, the model has %d input%s", o->ninputs, g->ninputs,
                   g->ninputs == 1 ? "" : "s");
        ok = false;
    }
    for (int k = 0; ok && k < o->ninputs; k++) {
        int idx = o->inputs[k].name ? find_input(g, o->inputs[k].name) : k;
        if (idx < 0) {
            diag_error(d, (SrcLoc){0}, "--input %s: the model has no input '%s'", o->inputs[k].path, o->inputs[k].name);
            ok = false;
            break;
        }
        if (in[idx]) {
            diag_error(d, (SrcLoc){0}, "input '%s' given twice", ir_tensor(g, g->inputs[idx])->name);
            ok = false;
            break;
        }
        if (netrt_npy_read(o->inputs[k].path, &arrays[k], err, sizeof err)) {
            diag_error(d, (SrcLoc){0}, "%s", err); /* the reader names the file */
            ok = false;
            break;
        }
        const Tensor *t = ir_tensor(g, g->inputs[idx]);
        bool same = arrays[k].rank == t->rank;
        for (int r = 0; same && r < t->rank; r++) same = arrays[k].shape[r] == t->shape[r];
        if (!same) {
            diag_error(d, (SrcLoc){.file = o->inputs[k].path}, "input '%s': expected shape %s, the file has %s", t->name,
                       ir_shape_str(t, s1, sizeof s1), ir_dims_str(arrays[k].rank, arrays[k].shape, s2, sizeof s2));
            ok = false;
            break;
        }
        in[idx] = arrays[k].data;
    }
    for (int i = 0; ok && i < g->ninputs; i++) {
        if (in[i]) continue;
        const Tensor *t = ir_tensor(g, g->inputs[i]);
        in[i] = xmalloc((size_t)ir_numel(t) * sizeof(float));
        random_in[i] = true;
        netrt_random_input(in[i], (size_t)ir_numel(t), o->seed, i);
        diag_note(d, (SrcLoc){0}, "input '%s': no --input given, using seeded random values", t->name);
    }
    if (o->noutputs > g->noutputs && ok) {
        diag_error(d, (SrcLoc){0}, "%d --output files given, the model has %d output%s", o->noutputs, g->noutputs,
                   g->noutputs == 1 ? "" : "s");
        ok = false;
    }
    for (int k = 0; ok && k < o->noutputs; k++) {
        int idx = o->outputs[k].name ? find_output(g, o->outputs[k].name) : k;
        if (idx < 0) {
            diag_error(d, (SrcLoc){0}, "--output %s: the model has no output '%s'", o->outputs[k].path, o->outputs[k].name);
            ok = false;
        } else if (out_paths[idx]) {
            diag_error(d, (SrcLoc){0}, "output '%s' given twice", g->output_names[idx]);
            ok = false;
        } else {
            out_paths[idx] = o->outputs[k].path;
        }
    }
    if (ok) {
        for (int i = 0; i < g->noutputs; i++)
            out[i] = xmalloc((size_t)ir_numel(ir_tensor(g, g->outputs[i])) * sizeof(float));
        ok = interp_run(g, (const float *const *)in, out, d);
    }
    for (int i = 0; ok && i < g->noutputs; i++) {
        const Tensor *t = ir_tensor(g, g->outputs[i]);
        int64_t n = ir_numel(t);
        double mn = INFINITY, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; j++) {
            mn = fmin(mn, out[i][j]), mx = fmax(mx, out[i][j]);
            sum += out[i][j];
        }
        printf("%s %s min=%.6g max=%.6g mean=%.6g\n", g->output_names[i], ir_shape_str(t, s1, sizeof s1), mn, mx,
               sum / (double)n);
        if (out_paths[i] && netrt_npy_write(out_paths[i], out[i], t->rank, t->shape, err, sizeof err)) {
            diag_error(d, (SrcLoc){.file = out_paths[i]}, "%s", err);
            ok = false;
        }
    }
    if (ok) status = EXIT_OK;
    for (int i = 0; i < g->ninputs; i++)
        if (random_in[i]) free(in[i]);
    for (int k = 0; k < o->ninputs; k++) netrt_npy_free(&arrays[k]);
    for (int i = 0; i < g->noutputs; i++) free(out[i]);
    free(in), free(out), free(arrays), free(out_paths), free(random_in);
    return status;
}

/* ---- --stats totals and --dot ------------------------------------------------------------ */

static void print_totals(const Graph *g, FILE *out) {
    int64_t macs = 0, weights = 0;
    int nodes = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        nodes++;
        macs += ir_node_macs(g, n);
        weights += ir_node_weight_count(g, n);
    }
    Plan p;
    plan_graph(g, &p);
    fprintf(out, "totals: %d nodes, %.3f GMACs, %.2f MiB of weights, peak workspace %.2f MiB (%lld bytes; %.2f MiB without reuse)\n",
            nodes, (double)macs / 1e9, (double)weights * 4 / 1048576.0, (double)p.workspace_bytes / 1048576.0,
            (long long)p.workspace_bytes, (double)p.naive_bytes / 1048576.0);
    plan_free(&p);
}

static bool write_dot(const Graph *g, const char *path, Diags *d) {
    size_t n = strlen(path) + 32;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    bool ok = f != NULL;
    if (ok) {
        Plan p;
        plan_graph(g, &p);
        ir_write_dot(g, &p, f);
        plan_free(&p);
        ok = !ferror(f);
        ok &= fclose(f) == 0;
        ok = ok && rename(tmp, path) == 0;
    }
    if (!ok) {
        diag_error(d, (SrcLoc){.file = path}, "cannot write: %s", strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok;
}

/* ---- netc MODEL.net: code generation ------------------------------------------------------ */

static int cmd_compile(const Options *o, Graph *g, Diags *d, Times *times) {
    static const struct { const char *name, *ext; EmitKind kind; } kinds[] = {
        {"so", ".so", EMIT_SO}, {"obj", "", EMIT_OBJ}, {"header", "", EMIT_HEADER},
        {"ll", ".ll", EMIT_LL}, {"asm", ".s", EMIT_ASM}};
    const char *emit = o->emit ? o->emit : "so";
    CodegenOptions co = {.triple = o->target, .cpu = o->cpu, .mattr = o->mattr, .stats = o->stats ? stderr : NULL, .times = times, .opt_level = o->opt_level < 0 ? 2 : o->opt_level, .jobs = o->jobs, .llvm_passes = o->llvm_passes};
    if (o->passes && o->opt_level < 0) co.opt_level = 2;
    const char *ext = "";
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(emit, kinds[i].name)) co.emit = kinds[i].kind, ext = kinds[i].ext;
    char def_out[4096];
    if (!o->out) {
        /* ./STEM.ext in the working directory */
        const char *base = strrchr(o->model, '/');
        base = base ? base + 1 : o->model;
        size_t n = strlen(base);
        if (n > 4 && !strcmp(base + n - 4, ".net")) n -= 4;
        snprintf(def_out, sizeof def_out, "%.*s%s", (int)n, base, ext);
    }
    co.out = o->out ? o->out : def_out;
    return codegen_emit(g, &co, d) ? EXIT_OK : EXIT_BAD_INPUT;
}

int main(int argc, char **argv) {
    double t_start = times_now();
    static Times times; /* --time-passes */
    Options o = {0};
    int st = parse_args(argc, argv, &o);
    if (st != EXIT_OK) return st;
    Diags d;
    diags_init(&d);
    bool compile = strcmp(o.cmd, "run") && strcmp(o.cmd, "check");
    PassOptions po = {.opt_level = o.opt_level >= 0 ? o.opt_level : compile ? 2 : 0,
                      .list = o.passes,
                      .print_after = o.print_ir_after,
                      .time_passes = o.time_passes,
                      .stats = o.stats,
                      .pass_limit = o.pass_limit,
                      .split_tol = o.split_tol,
                      .winograd_tol = o.winograd_tol,
                      .verify = true};
    memcpy(po.disabled, o.disabled, sizeof o.disabled);
    po.ndisabled = o.ndisabled;
    if (!passes_validate(&po, &d)) {
        diags_print(&d, stderr);
        diags_free(&d);
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    /* check needs shapes, not values: without --weights it binds none */
    Times *tt = o.time_passes ? &times : NULL;
    po.times = tt;
    FrontendOptions fo = {.weights_path = o.weights, .seed = o.seed, .times = tt, .no_weights = !compile && !o.weights && !strcmp(o.cmd, "check")};
    Graph *g = frontend_load(o.model, &fo, &d);
    if (!g) return finish(&d, EXIT_BAD_INPUT);
    if (strcmp(o.cmd, "check")) {
        if (!passes_run(g, &po, &d, stderr)) {
            ir_graph_free(g);
            return finish(&d, 3);
        }
        if (o.stats) print_totals(g, stderr);
        if (o.dot && !write_dot(g, o.dot, &d)) {
            ir_graph_free(g);
            return finish(&d, EXIT_BAD_INPUT);
        }
    } else if (o.print_ir_after) {
        fprintf(stderr, "; IR after lower\n");
        ir_print(g, stderr);
    }
    if (!strcmp(o.cmd, "check")) {
        char target[1024];
        CodegenOptions co = {.triple = o.target, .cpu = o.cpu, .mattr = o.mattr, .opt_level = 2};
        if (codegen_target_summary(&co, target, sizeof target, &d)) {
            print_summary(g, stdout);
            printf("%s\n", target);
            st = EXIT_OK;
        } else {
            st = EXIT_BAD_INPUT;
        }
    } else if (!strcmp(o.cmd, "run")) {
        st = cmd_run(&o, g, &d);
    } else {
        st = cmd_compile(&o, g, &d, tt);
    }
    ir_graph_free(g);
    if (tt) times_print(tt, times_now() - t_start, stderr);
    return finish(&d, st);
}
