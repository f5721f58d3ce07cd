/* difftest.c — the random-graph differential tester: generates valid .net graphs, optimises each
 * at several -O levels and with random --passes lists (permutations, repeats, subsets), and
 * compares the interpreter on the optimised graph and the generated code (serial, on a 2-thread
 * pool, and over a workspace poisoned with a large finite value) with the reference interpreter
 * on the unoptimised graph, element by element against an error bound; a failing graph is
 * minimised (ops, inputs, batch, spatial sizes, channel counts and the pass list) and written out
 * with its weights and inputs, and the commands that reproduce it are printed.
 *
 *     netc-difftest [--count N] [--seed S] [--out DIR] [--opt-levels 0,2,3] [--pass-orders N]
 *                   [--passes LIST]... [--list-level L] [--special FRACTION] [-v] [--jobs J] [--max-ops N]
 *                   [--exclude OP,...] [--pass-limit N] [--keep-going] [--no-minimise]
 *                   [--inject-fault epilogue|inplace|weight|scale] [--timeout SEC] [--dump]
 *                   [--disable-pass NAME]... [--cpu NAME]
 *     netc-difftest --file MODEL.net [--seed S] [same options]
 *
 * Graph i of a run has the seed S + i: `--seed X --count 1` reruns exactly the graph of seed X,
 * with the same pass lists and inputs. --pass-orders N (default 2, at most 8; 0: none) adds N
 * lists per graph: a permutation of every pass, then lists of 1-7 passes drawn with repetition;
 * --passes LIST adds a given list; the code generator compiles the lists at --list-level (default
 * 0: LLVM's time goes to the -O levels, and what a pass order breaks is in the graph, not in
 * LLVM's optimisations). A list the pass manager refuses (an error saying "is not supported") is
 * counted as refused; any other error, an internal error, a crash or a wrong number is a failure. --special (default
 * 0.25) is the fraction of graphs whose inputs also hold a few NaN, ±inf or ±1e30.
 * Every graph is checked in a child process, so a crash or a hang in generated code is reported
 * as a failure of that graph (with the stage it happened in) instead of killing the tester. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "frontend.h"
#include "interp/interp.h"
#include "ir/ir.h"
#include "netrt.h"
#include "npy.h"
#include "passes/passes.h"
#include "winograd.h"

/* OpenBLAS (split3x3's SVD) starts its own threads; the children run two at a time already. */
void openblas_set_num_threads(int n);

/* ---- random numbers ------------------------------------------------------------------------ */

typedef struct Rng {
    uint64_t s;
} Rng;

static uint64_t rng_u64(Rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(Rng *r) { return (double)(rng_u64(r) >> 11) / 9007199254740992.0; }
static bool rng_chance(Rng *r, double p) { return rng_unit(r) < p; }

/* uniform in [lo, hi] */
static int64_t rng_int(Rng *r, int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    return lo + (int64_t)(rng_u64(r) % (uint64_t)(hi - lo + 1));
}

static double rng_normal(Rng *r) {
    double u1 = ((double)(rng_u64(r) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = rng_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static uint64_t hash_str(uint64_t h, const char *s) {
    h ^= 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* ---- the generated graph, before it becomes text --------------------------------------------
 * Values are numbered: 0 .. ninputs-1 are the inputs (x0, x1), ninputs + j is op j's result
 * (tj). Ops are in topological order; the minimiser marks deleted ones dead, so names stay. */

enum { MAX_OPS = 72, MAX_IN = 5, MAX_OUTPUTS = 3, MAX_INPUTS = 2, MAX_VALUES = MAX_OPS + MAX_INPUTS };

typedef struct Shape {
    int rank;
    int64_t d[4];
} Shape;

typedef enum { GK_OP, GK_CBR, GK_RES } GKind; /* an op of the language, or a call of a def below */

typedef struct GOp {
    GKind kind;
    OpKind op;
    int nin, in[MAX_IN];
    char args[200]; /* the text after the tensor arguments: ", 16, kernel=3, pad=1" */
    Shape shape;
    bool alive;
    bool nest;   /* may be written nested inside its only reader: relu(add(a, b)) */
    int ch_len;  /* > 0: args[2 .. 2 + ch_len) spells the output channel count `ch` (conv2d,
                    conv_transpose2d, linear, cbr), which the minimiser may shrink */
    int64_t ch;
} GOp;

typedef struct GGraph {
    uint64_t seed;
    int ninputs;
    Shape input[MAX_INPUTS];
    int nops;
    GOp ops[MAX_OPS];
    int noutputs, outputs[MAX_OUTPUTS];
} GGraph;

static const char def_cbr_text[] =
    "def cbr(t, out, k, s=1) {\n"
    "  conv = conv2d(t, out, kernel=k, stride=s, pad=k / 2, bias=false)\n"
    "  bn = batchnorm(conv)\n"
    "  return relu(bn)\n"
    "}\n";
static const char def_res_text[] =
    "def res(t, c) {\n"
    "  a = conv2d(t, c, kernel=3, pad=1)\n"
    "  b = batchnorm(a)\n"
    "  r = relu6(b, inplace=true)\n"
    "  d = conv2d(r, c, kernel=3, pad=1, bias=false)\n"
    "  e = batchnorm(d)\n"
    "  return relu(add(e, t))\n"
    "}\n";

static bool shape_eq(const Shape *a, const Shape *b) {
    return a->rank == b->rank && !memcmp(a->d, b->d, (size_t)a->rank * sizeof *a->d);
}

static int64_t shape_numel(const Shape *s) {
    int64_t n = 1;
    for (int a = 0; a < s->rank; a++) n *= s->d[a];
    return n;
}

static bool value_alive(const GGraph *G, int v) { return v < G->ninputs || G->ops[v - G->ninputs].alive; }

static const Shape *value_shape(const GGraph *G, int v) {
    return v < G->ninputs ? &G->input[v] : &G->ops[v - G->ninputs].shape;
}

/* readers of value v: op arguments (with multiplicity) and graph outputs */
static int value_readers(const GGraph *G, int v) {
    int n = 0;
    for (int j = 0; j < G->nops; j++) {
        if (!G->ops[j].alive) continue;
        for (int k = 0; k < G->ops[j].nin; k++) n += G->ops[j].in[k] == v;
    }
    for (int i = 0; i < G->noutputs; i++) n += G->outputs[i] == v;
    return n;
}

static int alive_ops(const GGraph *G) {
    int n = 0;
    for (int j = 0; j < G->nops; j++) n += G->ops[j].alive;
    return n;
}

/* ---- the generator ----------------------------------------------------------------------- */

typedef struct Gen {
    GGraph *G;
    Rng r;
    const bool *excluded; /* by OpKind */
    bool gemm;            /* a graph of the GEMM shapes (gen_graph): more 1×1 convs, its channel counts */
} Gen;

static void app(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void app(char *buf, size_t cap, const char *fmt, ...) {
    size_t n = strlen(buf);
    if (n + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

/* An integer constant, now and then as arithmetic the front end must fold. */
static void fmt_int(Rng *r, char *buf, size_t cap, int64_t v) {
    int k = (int)rng_int(r, 0, 24);
    if (k == 0 && v >= 0) app(buf, cap, "(%lld * 2) / 2", (long long)v);
    else if (k == 1) app(buf, cap, "%lld + 1 - 1", (long long)v);
    else if (k == 2 && v >= 0) app(buf, cap, "(%lld + 1) / 2", (long long)(2 * v));
    else app(buf, cap, "%lld", (long long)v);
}

static void fmt_pair(Rng *r, char *buf, size_t cap, int64_t a, int64_t b) {
    if (a == b && rng_chance(r, 0.8)) {
        fmt_int(r, buf, cap, a);
        return;
    }
    app(buf, cap, "[");
    fmt_int(r, buf, cap, a);
    app(buf, cap, ", ");
    fmt_int(r, buf, cap, b);
    app(buf, cap, "]");
}

static bool op_excluded(const Gen *x, OpKind k) { return x->excluded[k]; }

static int new_op(Gen *x, GKind kind, OpKind op, const int *in, int nin, const Shape *s, const char *args) {
    GGraph *G = x->G;
    if (G->nops >= MAX_OPS) return -1;
    if (kind == GK_OP && op_excluded(x, op)) return -1;
    for (int a = 0; a < s->rank; a++)
        if (s->d[a] < 1) return -1;
    if (shape_numel(s) / s->d[0] > 65536) return -1; /* keep every tensor small */
    GOp *o = &G->ops[G->nops];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->op = op;
    o->nin = nin;
    memcpy(o->in, in, (size_t)nin * sizeof *in);
    snprintf(o->args, sizeof o->args, "%s", args);
    o->shape = *s;
    o->alive = true;
    o->nest = rng_chance(&x->r, 0.3);
    return G->ninputs + G->nops++;
}

/* Record where op v's args spell its output channel count (right after the leading ", "). */
static int with_channels(Gen *x, int v, int64_t ch, const char *args) {
    if (v >= 0) {
        GOp *o = &x->G->ops[v - x->G->ninputs];
        o->ch = ch;
        o->ch_len = (int)strlen(args) - 2;
    }
    return v;
}

enum { R2 = 1 << 2, R4 = 1 << 4 };

/* A live value whose rank is in the mask: usually one nobody reads yet (so the graph stays one
 * piece), otherwise any, later ones more likely. -1 when there is none. */
static int pick_value(Gen *x, unsigned rank_mask) {
    const GGraph *G = x->G;
    int cand[MAX_VALUES], fresh[MAX_VALUES], nc = 0, nf = 0;
    for (int v = 0; v < G->ninputs + G->nops; v++) {
        if (!value_alive(G, v) || !((rank_mask >> value_shape(G, v)->rank) & 1)) continue;
        cand[nc++] = v;
        if (value_readers(G, v) == 0) fresh[nf++] = v;
    }
    if (!nc) return -1;
    if (nf && rng_chance(&x->r, 0.6)) return fresh[rng_int(&x->r, 0, nf - 1)];
    int a = (int)rng_int(&x->r, 0, nc - 1), b = (int)rng_int(&x->r, 0, nc - 1);
    return cand[a > b ? a : b];
}

/* values (other than `except`) of exactly shape s */
static int values_of_shape(const GGraph *G, const Shape *s, int except, int *out) {
    int n = 0;
    for (int v = 0; v < G->ninputs + G->nops; v++)
        if (v != except && value_alive(G, v) && shape_eq(value_shape(G, v), s)) out[n++] = v;
    return n;
}

static int64_t choose_channels(Rng *r, int64_t c) {
    static const int64_t common[] = {4, 8, 12, 16, 24, 32};
    double u = rng_unit(r);
    if (u < 0.3) return c;
    if (u < 0.55) return common[rng_int(r, 0, 5)];
    return rng_int(r, 1, 40);
}

/* The channel counts and image sizes the GEMM kernel's tests ask for (tails of every kind, fewer
 * channels than a vector, a row's narrower last tile). */
static const int64_t gemm_channels[] = {1, 3, 17, 100};
static const int64_t gemm_hw[][2] = {{1, 1}, {2, 2}, {5, 7}, {57, 57}};

/* PyTorch's output size of a sliding window, with the ceil_mode rule of the language spec. */
static int64_t win_out(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    int64_t num = n + 2 * p - d * (k - 1) - 1;
    if (num < 0) return 0;
    int64_t o = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    if (ceil_mode && (o - 1) * s >= n + p) o--;
    return o;
}

static const OpKind act_ops[] = {OP_RELU, OP_RELU6,   OP_LEAKY_RELU, OP_PRELU, OP_CLAMP, OP_SIGMOID,    OP_TANH,
                                 OP_SILU, OP_HARDSWISH, OP_HARDSIGMOID, OP_GELU, OP_ELU, OP_DROPOUT};
enum { NACTS = sizeof act_ops / sizeof *act_ops };

/* an activation of any kind (every attribute form) on v */
static int gen_act_on(Gen *x, int v) {
    Rng *r = &x->r;
    Shape s = *value_shape(x->G, v);
    for (int tries = 0; tries < 6; tries++) {
        OpKind k = act_ops[rng_int(r, 0, NACTS - 1)];
        if (op_excluded(x, k)) continue;
        char a[200] = "";
        switch (k) {
        case OP_LEAKY_RELU:
            if (rng_chance(r, 0.5)) app(a, sizeof a, rng_chance(r, 0.5) ? ", 0.2" : ", slope=0.05");
            break;
        case OP_PRELU:
            if (rng_chance(r, 0.55)) app(a, sizeof a, ", num_parameters=%lld", (long long)s.d[1]);
            else if (rng_chance(r, 0.3)) app(a, sizeof a, ", num_parameters=1");
            break;
        case OP_CLAMP: {
            static const char *forms[] = {", min=-0.5, max=0.75", ", min=0", ", max=0.5", ", -1, 1"};
            app(a, sizeof a, "%s", forms[rng_int(r, 0, 3)]);
            break;
        }
        case OP_GELU:
            if (rng_chance(r, 0.5)) app(a, sizeof a, ", approximate=\"tanh\"");
            else if (rng_chance(r, 0.2)) app(a, sizeof a, ", approximate=\"none\"");
            break;
        case OP_ELU:
            if (rng_chance(r, 0.5)) app(a, sizeof a, ", alpha=0.5");
            break;
        case OP_DROPOUT:
            if (rng_chance(r, 0.5)) app(a, sizeof a, ", p=0.25");
            break;
        default: break;
        }
        if (op_attr_index(k, "inplace") >= 0 && rng_chance(r, 0.2)) app(a, sizeof a, ", inplace=true");
        return new_op(x, GK_OP, k, &v, 1, &s, a);
    }
    return -1;
}

static int gen_bn_on(Gen *x, int v) {
    Shape s = *value_shape(x->G, v);
    double u = rng_unit(&x->r);
    return new_op(x, GK_OP, OP_BATCHNORM, &v, 1, &s, u < 0.2 ? ", eps=1e-3" : u < 0.3 ? ", 0.0001" : "");
}

enum { CONV_KEEP_HW = 1, CONV_KEEP_C = 2 };

/* conv2d on v: kernel 1/3/5/1×3/3×1 (now and then 2), stride 1-2, dilation 1-2, "same", no or
 * odd padding, dense, depthwise (multiplier 1-2) or grouped, bias on or off. CONV_KEEP_HW keeps
 * H and W (stride 1, same padding), CONV_KEEP_C keeps the channel count. */
static int gen_conv_on(Gen *x, int v, unsigned keep) {
    Rng *r = &x->r;
    Shape s = *value_shape(x->G, v);
    int64_t C = s.d[1], H = s.d[2], W = s.d[3];
    for (int tries = 0; tries < 8; tries++) {
        int64_t k[2], st[2] = {1, 1}, dl[2] = {1, 1}, p[2];
        int u = (int)rng_int(r, 0, 19);
        if (x->gemm && rng_chance(r, 0.5)) u = 0; /* 1×1: the GEMM kernel */
        if (u < 5) k[0] = k[1] = 1;
        else if (u < 13) k[0] = k[1] = 3;
        else if (u < 15) k[0] = k[1] = 5;
        else if (u < 17) k[0] = 1, k[1] = 3;
        else if (u < 19) k[0] = 3, k[1] = 1;
        else k[0] = k[1] = 2;
        if ((keep & CONV_KEEP_HW) && (k[0] % 2 == 0 || k[1] % 2 == 0)) continue;
        if (!(keep & CONV_KEEP_HW)) {
            if (rng_chance(r, 0.25)) st[0] = st[1] = 2;
            else if (rng_chance(r, 0.05)) st[rng_int(r, 0, 1)] = 2;
        }
        if ((k[0] > 1 || k[1] > 1) && rng_chance(r, 0.2)) {
            if (rng_chance(r, 0.7)) dl[0] = dl[1] = 2;
            else dl[k[0] > 1 ? 0 : 1] = 2;
        }
        int pm = (keep & CONV_KEEP_HW) ? 0 : (int)rng_int(r, 0, 9);
        for (int a = 0; a < 2; a++)
            p[a] = pm < 7 ? (k[a] - 1) / 2 * dl[a] : pm < 8 ? 0 : rng_int(r, 0, k[a] * dl[a] / 2 + 1);
        int64_t oh = win_out(H, k[0], st[0], p[0], dl[0], false), ow = win_out(W, k[1], st[1], p[1], dl[1], false);
        if (oh < 1 || ow < 1) continue;
        int64_t groups = 1, oc = (keep & CONV_KEEP_C) ? C : -1;
        int gm = (int)rng_int(r, 0, 19);
        if (gm < 5 && C > 1 && (oc < 0 || oc == C)) {
            groups = C;
            if (oc < 0) oc = C * (rng_chance(r, 0.7) ? 1 : 2);
        } else if (gm < 8) {
            int64_t divs[40];
            int nd = 0;
            for (int64_t g = 2; g < C && nd < 40; g++)
                if (C % g == 0 && (oc < 0 || oc % g == 0)) divs[nd++] = g;
            if (nd) {
                groups = divs[rng_int(r, 0, nd - 1)];
                if (oc < 0) oc = groups * rng_int(r, 1, 40 / groups > 1 ? 40 / groups : 1);
            }
        }
        if (oc < 0 && x->gemm && rng_chance(r, 0.6)) oc = gemm_channels[rng_int(r, 0, 3)];
        if (oc < 0) oc = choose_channels(r, C);
        char a[200] = ", ", chs[64];
        fmt_int(r, a, sizeof a, oc);
        snprintf(chs, sizeof chs, "%.63s", a);
        app(a, sizeof a, rng_chance(r, 0.15) ? ", " : ", kernel=");
        fmt_pair(r, a, sizeof a, k[0], k[1]);
        if (st[0] != 1 || st[1] != 1 || rng_chance(r, 0.15)) {
            app(a, sizeof a, ", stride=");
            fmt_pair(r, a, sizeof a, st[0], st[1]);
        }
        if (p[0] || p[1] || rng_chance(r, 0.15)) {
            app(a, sizeof a, ", pad=");
            fmt_pair(r, a, sizeof a, p[0], p[1]);
        }
        if (dl[0] != 1 || dl[1] != 1 || rng_chance(r, 0.1)) {
            app(a, sizeof a, ", dilation=");
            fmt_pair(r, a, sizeof a, dl[0], dl[1]);
        }
        if (groups != 1 || rng_chance(r, 0.1)) app(a, sizeof a, ", groups=%lld", (long long)groups);
        if (rng_chance(r, 0.3)) app(a, sizeof a, ", bias=false");
        else if (rng_chance(r, 0.1)) app(a, sizeof a, ", bias=true");
        Shape o = {4, {s.d[0], oc, oh, ow}};
        return with_channels(x, new_op(x, GK_OP, OP_CONV2D, &v, 1, &o, a), oc, chs);
    }
    return -1;
}

/* a op b; a divisor goes through clamp(min > 0) first so that the result stays well-conditioned.
 * Either side may be [N, C, 1, 1] against [N, C, H, W]. */
static int emit_binary(Gen *x, OpKind op, int a, int b) {
    if (op == OP_DIV) {
        static const char *forms[] = {", min=0.5", ", min=0.25, max=4", ", min=1"};
        Shape sb = *value_shape(x->G, b);
        int c = new_op(x, GK_OP, OP_CLAMP, &b, 1, &sb, forms[rng_int(&x->r, 0, 2)]);
        if (c < 0) return -1;
        b = c;
    }
    const Shape *sa = value_shape(x->G, a), *sb = value_shape(x->G, b);
    Shape o = *sa;
    if (!shape_eq(sa, sb) && sa->rank == 4 && sa->d[2] == 1 && sa->d[3] == 1) o = *sb;
    int in[2] = {a, b};
    return new_op(x, GK_OP, op, in, 2, &o, "");
}

/* conv [-> batchnorm] [-> activation] [-> residual add] (or add before the activation): fold-bn,
 * fuse-act and its residual fusion get something to do. */
static bool gen_conv_block(Gen *x) {
    if (op_excluded(x, OP_CONV2D)) return false;
    int v = pick_value(x, R4);
    if (v < 0) return false;
    bool residual_style = rng_chance(&x->r, 0.35);
    int y = gen_conv_on(x, v, residual_style ? CONV_KEEP_HW | CONV_KEEP_C : 0);
    if (y < 0) return false;
    if (rng_chance(&x->r, 0.55)) {
        int b = gen_bn_on(x, y);
        if (b >= 0) y = b;
    }
    bool act_first = rng_chance(&x->r, 0.5);
    if (act_first && rng_chance(&x->r, 0.6)) {
        int t = gen_act_on(x, y);
        if (t >= 0) y = t;
    }
    if (rng_chance(&x->r, residual_style ? 0.8 : 0.4)) {
        int cand[MAX_VALUES], nc = values_of_shape(x->G, value_shape(x->G, y), y, cand);
        int e = -1;
        if (shape_eq(value_shape(x->G, v), value_shape(x->G, y)) && rng_chance(&x->r, 0.6)) e = v;
        else if (nc) e = cand[rng_int(&x->r, 0, nc - 1)];
        if (e >= 0) {
            bool swap = rng_chance(&x->r, 0.4);
            int t = emit_binary(x, OP_ADD, swap ? e : y, swap ? y : e);
            if (t >= 0) y = t;
        }
    }
    if (!act_first && rng_chance(&x->r, 0.6)) gen_act_on(x, y);
    return true;
}

/* MobileNetV2's inverted residual on v: 1×1 expand (t = 1-6, at most 96 channels), batchnorm,
 * relu6, depthwise 3×3 (stride 1 or 2), batchnorm, relu6, 1×1 project, batchnorm, and the residual
 * add where the shapes allow: after fold-bn and fuse-act, fuse-dw's depthwise -> 1×1 pair. */
static bool gen_inverted_residual(Gen *x, int v) {
    if (op_excluded(x, OP_CONV2D) || v < 0 || value_shape(x->G, v)->rank != 4) return false;
    Rng *r = &x->r;
    Shape s = *value_shape(x->G, v);
    int64_t C = s.d[1], E = C * rng_int(r, 1, 6), st = rng_chance(r, 0.35) ? 2 : 1;
    if (E > 96) E = 96;
    char a[200];
    snprintf(a, sizeof a, ", %lld, kernel=1, bias=false", (long long)E);
    Shape se = {4, {s.d[0], E, s.d[2], s.d[3]}};
    int y = new_op(x, GK_OP, OP_CONV2D, &v, 1, &se, a);
    if (y >= 0) y = gen_bn_on(x, y);
    if (y >= 0) y = new_op(x, GK_OP, OP_RELU6, &y, 1, &se, "");
    snprintf(a, sizeof a, ", %lld, kernel=3, stride=%lld, pad=1, groups=%lld%s", (long long)E, (long long)st,
             (long long)E, rng_chance(r, 0.5) ? ", bias=false" : "");
    Shape sd = {4, {s.d[0], E, (s.d[2] - 1) / st + 1, (s.d[3] - 1) / st + 1}};
    if (y >= 0) y = new_op(x, GK_OP, OP_CONV2D, &y, 1, &sd, a);
    if (y >= 0 && rng_chance(r, 0.7)) y = gen_bn_on(x, y);
    if (y >= 0) y = rng_chance(r, 0.7) ? new_op(x, GK_OP, OP_RELU6, &y, 1, &sd, "") : gen_act_on(x, y);
    int64_t O = st == 1 && rng_chance(r, 0.6) ? C : choose_channels(r, C);
    snprintf(a, sizeof a, ", %lld, kernel=1%s", (long long)O, rng_chance(r, 0.5) ? ", bias=false" : "");
    Shape so = {4, {s.d[0], O, sd.d[2], sd.d[3]}};
    if (y >= 0) y = new_op(x, GK_OP, OP_CONV2D, &y, 1, &so, a);
    if (y >= 0 && rng_chance(r, 0.6)) y = gen_bn_on(x, y);
    if (y >= 0 && shape_eq(&so, &s)) y = emit_binary(x, OP_ADD, y, v);
    return y >= 0;
}

static bool gen_act(Gen *x) {
    int v = pick_value(x, R2 | R4);
    return v >= 0 && gen_act_on(x, v) >= 0;
}

static bool gen_bn(Gen *x) {
    int v = pick_value(x, R2 | R4);
    return v >= 0 && gen_bn_on(x, v) >= 0;
}

/* layernorm over the channels (ConvNeXt's), or a per-channel scale (its layer scale; after a
 * conv it folds into the conv's weights) */
static bool gen_norm(Gen *x) {
    Rng *r = &x->r;
    int v = pick_value(x, R2 | R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    char a[200] = "";
    if (rng_chance(r, 0.5)) {
        if (rng_chance(r, 0.3)) app(a, sizeof a, ", eps=1e-6");
        if (rng_chance(r, 0.2)) app(a, sizeof a, ", affine=false");
        return new_op(x, GK_OP, OP_LAYERNORM, &v, 1, &s, a) >= 0;
    }
    if (rng_chance(r, 0.4)) app(a, sizeof a, ", bias=true");
    return new_op(x, GK_OP, OP_SCALE, &v, 1, &s, a) >= 0;
}

/* add/sub/mul/div against a tensor of the same shape, a [N, C, 1, 1] one (global_avgpool, maybe
 * through a sigmoid as in squeeze-excitation), or an activation of the same tensor (a tensor
 * read twice, which inplace must respect). */
static bool gen_binary(Gen *x) {
    static const OpKind ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV};
    Rng *r = &x->r;
    OpKind op = ops[rng_int(r, 0, 3)];
    if (op_excluded(x, op)) return false;
    int v = pick_value(x, R2 | R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    int p = -1;
    double u = rng_unit(r);
    if (u < 0.45) {
        int cand[MAX_VALUES], nc = values_of_shape(x->G, &s, rng_chance(r, 0.15) ? -1 : v, cand);
        if (nc) p = cand[rng_int(r, 0, nc - 1)];
    }
    if (p < 0 && u < 0.8 && s.rank == 4 && (s.d[2] > 1 || s.d[3] > 1)) {
        Shape b = {4, {s.d[0], s.d[1], 1, 1}};
        int cand[MAX_VALUES], nc = values_of_shape(x->G, &b, -1, cand);
        if (nc && rng_chance(r, 0.3)) {
            p = cand[rng_int(r, 0, nc - 1)];
        } else if (!op_excluded(x, OP_GLOBAL_AVGPOOL)) {
            /* pool v itself or another tensor with the same N and C */
            int src = v;
            if (rng_chance(r, 0.5)) {
                for (int w = x->G->ninputs + x->G->nops - 1; w >= 0; w--) {
                    const Shape *sw = value_shape(x->G, w);
                    if (w != v && value_alive(x->G, w) && sw->rank == 4 && sw->d[0] == s.d[0] && sw->d[1] == s.d[1]) {
                        src = w;
                        break;
                    }
                }
            }
            p = new_op(x, GK_OP, OP_GLOBAL_AVGPOOL, &src, 1, &b, "");
            if (p >= 0 && rng_chance(r, 0.5)) {
                int t = gen_act_on(x, p);
                if (t >= 0) p = t;
            }
        }
    }
    if (p < 0) p = gen_act_on(x, v);
    if (p < 0) return false;
    bool swap = rng_chance(r, 0.5);
    return emit_binary(x, op, swap ? p : v, swap ? v : p) >= 0;
}

/* concat of 2-4 branches (axis 1 mostly): sometimes one tensor twice, sometimes a graph input,
 * both of which concat-elim must copy rather than write in place. */
static bool gen_concat(Gen *x) {
    Rng *r = &x->r;
    if (op_excluded(x, OP_CONCAT)) return false;
    int v = pick_value(x, R2 | R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    int axis = 1;
    if (s.rank == 4 && rng_chance(r, 0.15)) axis = (int)rng_int(r, 2, 3);
    int64_t limit = axis == 1 ? 160 : 48;
    int cand[MAX_VALUES], nc = 0, input_cand = -1;
    for (int w = 0; w < x->G->ninputs + x->G->nops; w++) {
        const Shape *sw = value_shape(x->G, w);
        if (w == v || !value_alive(x->G, w) || sw->rank != s.rank) continue;
        bool ok = true;
        for (int a = 0; a < s.rank; a++) ok &= a == axis || sw->d[a] == s.d[a];
        if (!ok) continue;
        cand[nc++] = w;
        if (w < x->G->ninputs) input_cand = w;
    }
    int want = (int)rng_int(r, 2, 4), ins[MAX_IN] = {v}, n = 1;
    int64_t total = s.d[axis];
    for (int tries = 0; n < want && tries < 8; tries++) {
        int u;
        if (rng_chance(r, 0.15)) u = ins[rng_int(r, 0, n - 1)];
        else if (input_cand >= 0 && rng_chance(r, 0.25)) u = input_cand;
        else if (nc && rng_chance(r, 0.75)) u = cand[rng_int(r, 0, nc - 1)];
        else if (s.rank == 4 && axis == 1 && rng_chance(r, 0.5)) u = gen_conv_on(x, v, CONV_KEEP_HW);
        else u = gen_act_on(x, v);
        if (u < 0) continue;
        if (total + value_shape(x->G, u)->d[axis] > limit) continue;
        total += value_shape(x->G, u)->d[axis];
        ins[n++] = u;
    }
    if (n < 2) {
        if (2 * s.d[axis] > limit) return false;
        ins[n++] = v;
        total = 2 * s.d[axis];
    }
    Shape o = s;
    o.d[axis] = total;
    char a[200] = "";
    if (axis == 1) {
        double u = rng_unit(r);
        if (u < 0.3) app(a, sizeof a, ", axis=1");
        else if (u < 0.45) app(a, sizeof a, ", axis=%d", 1 - s.rank);
    } else {
        app(a, sizeof a, ", axis=%d", rng_chance(r, 0.5) ? axis : axis - s.rank);
    }
    return new_op(x, GK_OP, OP_CONCAT, ins, n, &o, a) >= 0;
}

static bool gen_pool(Gen *x) {
    Rng *r = &x->r;
    int v = pick_value(x, R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    bool mx = rng_chance(r, 0.5);
    OpKind op = mx ? OP_MAXPOOL2D : OP_AVGPOOL2D;
    for (int tries = 0; tries < 6; tries++) {
        int64_t k[2], st[2], p[2], dl = 1;
        k[0] = k[1] = rng_int(r, 1, 3);
        if (rng_chance(r, 0.2)) k[1] = rng_int(r, 1, 3);
        bool dflt_stride = rng_chance(r, 0.4);
        if (dflt_stride) st[0] = k[0], st[1] = k[1];
        else st[0] = st[1] = rng_int(r, 1, 2);
        if (!dflt_stride && rng_chance(r, 0.15)) st[1] = rng_int(r, 1, 2);
        for (int a = 0; a < 2; a++) p[a] = rng_int(r, 0, k[a] / 2);
        /* dilation only where the dilated window fits the input: otherwise a window can lie in
           the padding alone, whose -inf then turns into NaN downstream (-inf - -inf) */
        if (mx && rng_chance(r, 0.15) && s.d[2] >= 2 * k[0] - 1 && s.d[3] >= 2 * k[1] - 1) dl = 2;
        bool ceil_mode = rng_chance(r, 0.3), no_pad_count = !mx && rng_chance(r, 0.3);
        int64_t oh = win_out(s.d[2], k[0], st[0], p[0], dl, ceil_mode), ow = win_out(s.d[3], k[1], st[1], p[1], dl, ceil_mode);
        if (oh < 1 || ow < 1) continue;
        char a[200] = "";
        app(a, sizeof a, rng_chance(r, 0.3) ? ", " : ", kernel=");
        fmt_pair(r, a, sizeof a, k[0], k[1]);
        if (!dflt_stride) {
            app(a, sizeof a, ", stride=");
            fmt_pair(r, a, sizeof a, st[0], st[1]);
        }
        if (p[0] || p[1] || rng_chance(r, 0.1)) {
            app(a, sizeof a, ", pad=");
            fmt_pair(r, a, sizeof a, p[0], p[1]);
        }
        if (dl != 1) app(a, sizeof a, ", dilation=2");
        if (ceil_mode) app(a, sizeof a, ", ceil_mode=true");
        if (no_pad_count) app(a, sizeof a, ", count_include_pad=false");
        Shape o = {4, {s.d[0], s.d[1], oh, ow}};
        return new_op(x, GK_OP, op, &v, 1, &o, a) >= 0;
    }
    return false;
}

static bool gen_gap(Gen *x) {
    Rng *r = &x->r;
    int v = pick_value(x, R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    if (rng_chance(r, 0.75)) {
        Shape o = {4, {s.d[0], s.d[1], 1, 1}};
        return new_op(x, GK_OP, OP_GLOBAL_AVGPOOL, &v, 1, &o, "") >= 0;
    }
    int64_t h = rng_int(r, 1, s.d[2]), w = rng_int(r, 1, s.d[3]);
    char a[200] = "";
    app(a, sizeof a, rng_chance(r, 0.5) ? ", " : ", size=");
    fmt_pair(r, a, sizeof a, h, w);
    Shape o = {4, {s.d[0], s.d[1], h, w}};
    return new_op(x, GK_OP, OP_ADAPTIVE_AVGPOOL, &v, 1, &o, a) >= 0;
}

static bool gen_upsample(Gen *x) {
    Rng *r = &x->r;
    int v = pick_value(x, R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    int64_t H = s.d[2], W = s.d[3], oh, ow;
    char a[200] = "";
    int u = (int)rng_int(r, 0, 9);
    if (u < 5 && 2 * H <= 40 && 2 * W <= 40) {
        app(a, sizeof a, rng_chance(r, 0.5) ? ", scale=2" : ", scale=2.0");
        oh = 2 * H, ow = 2 * W;
    } else if (u < 6 && H >= 2 && W >= 2) {
        app(a, sizeof a, ", scale=0.5");
        oh = H / 2, ow = W / 2;
    } else if (u < 7 && 3 * H <= 40 && 3 * W <= 40) {
        app(a, sizeof a, ", scale=3");
        oh = 3 * H, ow = 3 * W;
    } else {
        oh = rng_int(r, 1, 2 * H + 3 < 32 ? 2 * H + 3 : 32);
        ow = rng_chance(r, 0.5) && oh <= 2 * W + 3 ? oh : rng_int(r, 1, 2 * W + 3 < 32 ? 2 * W + 3 : 32);
        app(a, sizeof a, ", size=");
        fmt_pair(r, a, sizeof a, oh, ow);
    }
    if (rng_chance(r, 0.5)) {
        app(a, sizeof a, ", mode=\"bilinear\"");
        double w = rng_unit(r);
        if (w < 0.4) app(a, sizeof a, ", align_corners=true");
        else if (w < 0.6) app(a, sizeof a, ", align_corners=false");
    } else if (rng_chance(r, 0.2)) {
        app(a, sizeof a, ", mode=\"nearest\"");
    }
    Shape o = {4, {s.d[0], s.d[1], oh, ow}};
    return new_op(x, GK_OP, OP_UPSAMPLE, &v, 1, &o, a) >= 0;
}

static bool gen_pad(Gen *x) {
    Rng *r = &x->r;
    int v = pick_value(x, R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    bool reflect = rng_chance(r, 0.3);
    int64_t p[4]; /* left, right, top, bottom */
    for (int i = 0; i < 4; i++) {
        int64_t dim = i < 2 ? s.d[3] : s.d[2];
        if (reflect) p[i] = rng_int(r, 0, dim - 1 < 2 ? dim - 1 : 2);
        else p[i] = rng_int(r, -1, 2);
    }
    if (s.d[3] + p[0] + p[1] < 1) p[0] = p[1] = 0;
    if (s.d[2] + p[2] + p[3] < 1) p[2] = p[3] = 0;
    char a[200] = "";
    app(a, sizeof a, "%s[%lld, %lld, %lld, %lld]", rng_chance(r, 0.5) ? ", " : ", pad=", (long long)p[0],
        (long long)p[1], (long long)p[2], (long long)p[3]);
    if (reflect) {
        app(a, sizeof a, ", mode=\"reflect\"");
    } else {
        double u = rng_unit(r);
        if (u < 0.15) app(a, sizeof a, ", value=0.5");
        else if (u < 0.3) app(a, sizeof a, ", value=-1.5");
        else if (u < 0.4) app(a, sizeof a, ", mode=\"constant\"");
    }
    Shape o = {4, {s.d[0], s.d[1], s.d[2] + p[2] + p[3], s.d[3] + p[0] + p[1]}};
    return new_op(x, GK_OP, OP_PAD, &v, 1, &o, a) >= 0;
}

static bool gen_slice(Gen *x) {
    Rng *r = &x->r;
    int v = pick_value(x, R2 | R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    int axis = s.rank == 4 && rng_chance(r, 0.4) ? (int)rng_int(r, 2, 3) : 1;
    int64_t dim = s.d[axis], start = rng_int(r, 0, dim - 1), end = rng_int(r, start + 1, dim);
    char a[200] = "";
    if (axis != 1 || rng_chance(r, 0.4)) app(a, sizeof a, ", axis=%d", rng_chance(r, 0.7) ? axis : axis - s.rank);
    if (start || rng_chance(r, 0.3)) app(a, sizeof a, ", start=%lld", (long long)start);
    if (end != dim || rng_chance(r, 0.4)) app(a, sizeof a, ", end=%lld", (long long)end);
    Shape o = s;
    o.d[axis] = end - start;
    return new_op(x, GK_OP, OP_SLICE, &v, 1, &o, a) >= 0;
}

static bool gen_shuffle(Gen *x) {
    Rng *r = &x->r;
    int v = pick_value(x, R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    int64_t divs[40];
    int nd = 0;
    for (int64_t g = 2; g <= s.d[1] && nd < 40; g++)
        if (s.d[1] % g == 0) divs[nd++] = g;
    if (!nd) return false;
    char a[200] = "";
    app(a, sizeof a, rng_chance(r, 0.5) ? ", groups=%lld" : ", %lld", (long long)divs[rng_int(r, 0, nd - 1)]);
    return new_op(x, GK_OP, OP_CHANNEL_SHUFFLE, &v, 1, &s, a) >= 0;
}

static bool gen_softmax(Gen *x) {
    Rng *r = &x->r;
    int v = pick_value(x, R2 | R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    char a[200] = "";
    double u = rng_unit(r);
    if (u < 0.5) {
    } else if (u < 0.65) app(a, sizeof a, ", axis=1");
    else if (u < 0.8) app(a, sizeof a, ", axis=-1");
    else if (u < 0.95 && s.rank == 4) app(a, sizeof a, ", axis=2");
    else app(a, sizeof a, ", axis=0");
    return new_op(x, GK_OP, OP_SOFTMAX, &v, 1, &s, a) >= 0;
}

static bool gen_convt(Gen *x) {
    Rng *r = &x->r;
    int v = pick_value(x, R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    int64_t C = s.d[1];
    for (int tries = 0; tries < 6; tries++) {
        int64_t k = rng_int(r, 1, 4), st = rng_int(r, 1, 2), dl = rng_chance(r, 0.15) ? 2 : 1;
        int64_t p = rng_int(r, 0, dl * (k - 1) / 2), op = rng_int(r, 0, (st > dl ? st : dl) - 1);
        int64_t groups = 1, oc = rng_int(r, 1, 24);
        if (rng_chance(r, 0.2)) {
            int64_t divs[40];
            int nd = 0;
            for (int64_t g = 2; g <= C && nd < 40; g++)
                if (C % g == 0) divs[nd++] = g;
            if (nd) {
                groups = divs[rng_int(r, 0, nd - 1)];
                oc = groups * rng_int(r, 1, 2);
            }
        }
        int64_t oh = (s.d[2] - 1) * st - 2 * p + dl * (k - 1) + op + 1;
        int64_t ow = (s.d[3] - 1) * st - 2 * p + dl * (k - 1) + op + 1;
        if (oh < 1 || ow < 1 || oh > 40 || ow > 40) continue;
        char a[200] = "", chs[64];
        app(a, sizeof a, ", %lld", (long long)oc);
        snprintf(chs, sizeof chs, "%.63s", a);
        app(a, sizeof a, ", kernel=%lld", (long long)k);
        if (st != 1) app(a, sizeof a, ", stride=%lld", (long long)st);
        if (p) app(a, sizeof a, ", pad=%lld", (long long)p);
        if (op) app(a, sizeof a, ", output_pad=%lld", (long long)op);
        if (dl != 1) app(a, sizeof a, ", dilation=%lld", (long long)dl);
        if (groups != 1) app(a, sizeof a, ", groups=%lld", (long long)groups);
        if (rng_chance(r, 0.3)) app(a, sizeof a, ", bias=false");
        Shape o = {4, {s.d[0], oc, oh, ow}};
        return with_channels(x, new_op(x, GK_OP, OP_CONV_TRANSPOSE2D, &v, 1, &o, a), oc, chs) >= 0;
    }
    return false;
}

static int gen_linear_on(Gen *x, int v) {
    Shape s = *value_shape(x->G, v);
    int64_t out = rng_int(&x->r, 1, 40);
    char a[200] = "", chs[64];
    app(a, sizeof a, ", %lld", (long long)out);
    snprintf(chs, sizeof chs, "%.63s", a);
    if (rng_chance(&x->r, 0.3)) app(a, sizeof a, ", bias=false");
    Shape o = {2, {s.d[0], out}};
    return with_channels(x, new_op(x, GK_OP, OP_LINEAR, &v, 1, &o, a), out, chs);
}

/* a classifier tail: [global_avgpool ->] flatten -> linear [-> batchnorm] [-> activation] */
static bool gen_tail(Gen *x) {
    int v = pick_value(x, R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    if (s.d[1] * s.d[2] * s.d[3] > 512 || rng_chance(&x->r, 0.5)) {
        Shape o = {4, {s.d[0], s.d[1], 1, 1}};
        v = new_op(x, GK_OP, OP_GLOBAL_AVGPOOL, &v, 1, &o, "");
        if (v < 0) return false;
        s = o;
    }
    Shape f = {2, {s.d[0], s.d[1] * s.d[2] * s.d[3]}};
    int y = new_op(x, GK_OP, OP_FLATTEN, &v, 1, &f, "");
    if (y < 0) return false;
    y = gen_linear_on(x, y);
    if (y < 0) return true;
    if (rng_chance(&x->r, 0.4)) {
        int b = gen_bn_on(x, y);
        if (b >= 0) y = b;
    }
    if (rng_chance(&x->r, 0.5)) gen_act_on(x, y);
    return true;
}

static bool gen_linear(Gen *x) {
    int v = pick_value(x, R2);
    return v >= 0 && gen_linear_on(x, v) >= 0;
}

/* a call of one of the two defs (weight names through the def's bindings) */
static bool gen_def(Gen *x) {
    Rng *r = &x->r;
    if (op_excluded(x, OP_CONV2D) || op_excluded(x, OP_BATCHNORM) || op_excluded(x, OP_RELU)) return false;
    int v = pick_value(x, R4);
    if (v < 0) return false;
    Shape s = *value_shape(x->G, v);
    char a[200] = "";
    if (rng_chance(r, 0.5) && !op_excluded(x, OP_RELU6) && !op_excluded(x, OP_ADD)) {
        app(a, sizeof a, ", %lld", (long long)s.d[1]);
        return new_op(x, GK_RES, OP_COUNT, &v, 1, &s, a) >= 0;
    }
    int64_t out = choose_channels(r, s.d[1]), k = rng_chance(r, 0.6) ? 3 : 1, st = rng_chance(r, 0.25) ? 2 : 1;
    char chs[64];
    app(a, sizeof a, ", %lld", (long long)out);
    snprintf(chs, sizeof chs, "%.63s", a);
    app(a, sizeof a, ", %lld", (long long)k);
    if (st == 2) app(a, sizeof a, rng_chance(r, 0.5) ? ", 2" : ", s=2");
    Shape o = {4, {s.d[0], out, (s.d[2] - 1) / st + 1, (s.d[3] - 1) / st + 1}};
    return with_channels(x, new_op(x, GK_CBR, OP_COUNT, &v, 1, &o, a), out, chs) >= 0;
}

typedef bool (*GenFn)(Gen *);
static const struct {
    GenFn fn;
    int weight;
} generators[] = {
    {gen_conv_block, 26}, {gen_act, 10},    {gen_binary, 12}, {gen_concat, 8},  {gen_pool, 7},
    {gen_gap, 4},         {gen_upsample, 4}, {gen_pad, 4},     {gen_slice, 4},   {gen_shuffle, 3},
    {gen_softmax, 3},     {gen_bn, 3},       {gen_convt, 2},   {gen_tail, 2},    {gen_linear, 2},
    {gen_def, 4},         {gen_norm, 3},
};
enum { NGENERATORS = sizeof generators / sizeof *generators };

static int64_t input_channels(Rng *r) {
    static const int64_t common[] = {1, 3, 4, 8, 16, 17, 24, 32, 33};
    return rng_chance(r, 0.5) ? common[rng_int(r, 0, 8)] : rng_int(r, 1, 40);
}

static void input_hw(Rng *r, int64_t *h, int64_t *w) {
    *h = rng_chance(r, 0.12) ? rng_int(r, 1, 3) : rng_int(r, 4, 20);
    *w = rng_chance(r, 0.6) ? *h : rng_chance(r, 0.12) ? rng_int(r, 1, 3) : rng_int(r, 4, 20);
}

static void gen_graph(GGraph *G, uint64_t seed, const bool *excluded, int max_ops) {
    memset(G, 0, sizeof *G);
    G->seed = seed;
    Gen x = {G, {seed * 0x2545F4914F6CDD1Dull + 0x1234567}, excluded, false};
    Rng *r = &x.r;
    int64_t N = rng_chance(r, 0.7) ? 1 : 2;
    G->ninputs = rng_chance(r, 0.3) ? 2 : 1;
    for (int i = 0; i < G->ninputs; i++) {
        Shape s = {4, {N, input_channels(r), 0, 0}};
        input_hw(r, &s.d[2], &s.d[3]);
        if (i == 1) {
            double u = rng_unit(r);
            if (u < 0.4) s = G->input[0];
            else if (u < 0.7) s.d[2] = G->input[0].d[2], s.d[3] = G->input[0].d[3];
        }
        G->input[i] = s;
    }
    /* one graph in five has its inputs' sides tripled (12-48), so that convolutions reach the 32
       tiles of 4×4 winograd asks for; chosen by a hash of the seed, so the other graphs are the
       ones they always were */
    if (hash_str(seed, "winograd sizes") % 5 == 0)
        for (int i = 0; i < G->ninputs; i++)
            for (int a = 2; a < 4; a++)
                if (G->input[i].d[a] >= 4) G->input[i].d[a] = G->input[i].d[a] * 3 > 48 ? 48 : G->input[i].d[a] * 3;
    /* one graph in six takes the GEMM shapes: inputs of 1, 3, 17 or 100 channels on 1×1, 2×2, 5×7
       or 57×57 pixels (at most 65536 elements an image), half its convs 1×1, and those channel
       counts for their outputs */
    if (hash_str(seed, "gemm shapes") % 6 == 0) {
        x.gemm = true;
        for (int i = 0; i < G->ninputs; i++) {
            Shape *s = &G->input[i];
            const int64_t *hw = gemm_hw[rng_int(r, 0, 3)];
            s->d[1] = gemm_channels[rng_int(r, 0, 3)];
            s->d[2] = hw[0], s->d[3] = hw[1];
            while (s->d[1] * s->d[2] * s->d[3] > 65536) s->d[1] = gemm_channels[rng_int(r, 0, 2)];
            if (i == 1 && rng_chance(r, 0.5)) *s = G->input[0];
        }
    }
    /* one graph in six starts with an inverted residual (fuse-dw's pattern), its other ops as
       they come */
    if (hash_str(seed, "inverted residual") % 6 == 0) gen_inverted_residual(&x, G->ninputs - 1);
    int lo = max_ops < 3 ? max_ops : 3;
    int target = lo + (int)((max_ops - lo) * pow(rng_unit(r), 1.6) + 0.5);
    int total = 0;
    for (int k = 0; k < NGENERATORS; k++) total += generators[k].weight;
    for (int attempts = 0; G->nops < target && attempts < 300; attempts++) {
        int64_t pick = rng_int(r, 0, total - 1);
        int k = 0;
        while (pick >= generators[k].weight) pick -= generators[k++].weight;
        generators[k].fn(&x);
    }
    /* outputs: the sinks (the last op first), and sometimes a tensor that is read further on */
    int limit = (int)rng_int(r, 1, MAX_OUTPUTS);
    for (int j = G->nops - 1; j >= 0 && G->noutputs < MAX_OUTPUTS; j--) {
        int v = G->ninputs + j;
        if (value_readers(G, v) == 0 && (G->noutputs < limit || rng_chance(r, 0.7))) G->outputs[G->noutputs++] = v;
    }
    if (G->noutputs < MAX_OUTPUTS && G->nops > 1 && rng_chance(r, 0.35)) {
        int v = G->ninputs + (int)rng_int(r, 0, G->nops - 2);
        bool dup = false;
        for (int i = 0; i < G->noutputs; i++) dup |= G->outputs[i] == v;
        if (!dup) G->outputs[G->noutputs++] = v;
    }
    for (int i = G->noutputs - 1; i > 0; i--) {
        int k = (int)rng_int(r, 0, i), t = G->outputs[i];
        G->outputs[i] = G->outputs[k];
        G->outputs[k] = t;
    }
}

/* ---- rendering as .net text -------------------------------------------------------------- */

/* Op j may be written inside its reader's call when it has no weights, exactly one reader (an op
 * call, not a def call, not a graph output) and the generator flagged it; never when `flat` (the
 * minimiser's shape check names every op's tensor tj). */
static bool nested_op(const GGraph *G, int j, bool flat) {
    const GOp *o = &G->ops[j];
    if (flat || !o->alive || o->kind != GK_OP || !o->nest || (op_info(o->op)->flags & OPF_WEIGHTS)) return false;
    int v = G->ninputs + j, reads = 0, reader = -1;
    for (int i = 0; i < G->noutputs; i++)
        if (G->outputs[i] == v) return false;
    for (int k = j + 1; k < G->nops; k++) {
        if (!G->ops[k].alive) continue;
        for (int i = 0; i < G->ops[k].nin; i++)
            if (G->ops[k].in[i] == v) reads++, reader = k;
    }
    return reads == 1 && G->ops[reader].kind == GK_OP;
}

static void put_call(FILE *f, const GGraph *G, int j, bool flat);

static void put_value(FILE *f, const GGraph *G, int v, bool flat) {
    if (v < G->ninputs) fprintf(f, "x%d", v);
    else if (nested_op(G, v - G->ninputs, flat)) put_call(f, G, v - G->ninputs, flat);
    else fprintf(f, "t%d", v - G->ninputs);
}

static void put_call(FILE *f, const GGraph *G, int j, bool flat) {
    const GOp *o = &G->ops[j];
    fprintf(f, "%s(", o->kind == GK_CBR ? "cbr" : o->kind == GK_RES ? "res" : op_info(o->op)->name);
    for (int k = 0; k < o->nin; k++) {
        if (k) fputs(", ", f);
        put_value(f, G, o->in[k], flat);
    }
    fprintf(f, "%s)", o->args);
}

/* malloc'ed .net text of G */
static char *render_text(const GGraph *G, size_t *len, bool flat) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    fprintf(f, "# netc-difftest graph, seed %llu\nnet difftest\n\n", (unsigned long long)G->seed);
    for (int i = 0; i < G->ninputs; i++) {
        const Shape *s = &G->input[i];
        fprintf(f, "input x%d: [%lld, %lld, %lld, %lld]\n", i, (long long)s->d[0], (long long)s->d[1],
                (long long)s->d[2], (long long)s->d[3]);
    }
    bool cbr = false, res = false;
    for (int j = 0; j < G->nops; j++) {
        cbr |= G->ops[j].alive && G->ops[j].kind == GK_CBR;
        res |= G->ops[j].alive && G->ops[j].kind == GK_RES;
    }
    if (cbr) fprintf(f, "\n%s", def_cbr_text);
    if (res) fprintf(f, "\n%s", def_res_text);
    fputc('\n', f);
    for (int j = 0; j < G->nops; j++) {
        if (!G->ops[j].alive || nested_op(G, j, flat)) continue;
        fprintf(f, "t%d = ", j);
        put_call(f, G, j, flat);
        fputc('\n', f);
    }
    fprintf(f, "\noutput ");
    for (int i = 0; i < G->noutputs; i++) {
        if (i) fputs(", ", f);
        put_value(f, G, G->outputs[i], flat);
    }
    fputc('\n', f);
    fclose(f);
    return buf;
}

static char *render(const GGraph *G, size_t *len) { return render_text(G, len, false); }

/* ---- checking one graph (in a child process) --------------------------------------------- */

enum {
    RW_FOLD, RW_SPLIT, RW_WINOGRAD, RW_WINOGRAD23, RW_FUSE_ACT, RW_FUSE_RES, RW_INPLACE, RW_CONCAT, RW_CONCAT_IN,
    RW_FUSE_DW, NRW
};
static const char *const rw_names[NRW] = {"fold-bn",  "split3x3",    "winograd F(4,3)", "winograd F(2,3)",
                                          "fuse-act (activations)",
                                          "fuse-act (residual adds)", "inplace", "concat-elim (concats)",
                                          "concat-elim (inputs in place)", "fuse-dw"};

enum { ST_PASS, ST_DISCARD, ST_FAIL };
enum {
    STAGE_LOAD,
    STAGE_REF,
    STAGE_BOUNDS,
    STAGE_PASSES,
    STAGE_INTERP_AFTER,
    STAGE_CODEGEN,
    STAGE_OPEN,
    STAGE_RUN, /* + run: the three runs below */
    STAGE_RUN_POOL,
    STAGE_RUN_POISON,
    STAGE_DONE
};
static const char *const stage_names[] = {"loading",
                                          "the reference interpreter",
                                          "the error bounds",
                                          "the passes",
                                          "the interpreter after the passes",
                                          "code generation",
                                          "loading the .so",
                                          "the compiled run (serial)",
                                          "the compiled run (2 threads)",
                                          "the compiled run (serial, finite poison)",
                                          "cleaning up"};
enum { NRUNS = 3 };
static const char *const run_names[NRUNS] = {"serial", "2 threads", "serial, workspace and outputs poisoned with"};

enum { FAULT_NONE, FAULT_EPILOGUE, FAULT_INPLACE, FAULT_WEIGHT, FAULT_SCALE };

/* What a graph is checked with: each -O level, each --passes list of the command line, and
 * --pass-orders lists drawn from the graph's seed. */
enum { MAX_LEVELS = 4, MAX_LISTS = 4, MAX_ORDERS = 8, MAX_CFGS = MAX_LEVELS + MAX_LISTS + MAX_ORDERS, LIST_CAP = 160 };

typedef struct Cfg {
    int level;           /* the -O level: the code generator's, and the passes' unless `list` is set */
    char list[LIST_CAP]; /* --passes=LIST instead of the level's list; "" for none */
} Cfg;

/* --cpu, for the code generator (one per process, set once while parsing the arguments) */
static const char *g_cpu;

typedef struct Config {
    int count;
    uint64_t seed;
    const char *out_dir;
    int levels[MAX_LEVELS], nlevels;
    const char *lists[MAX_LISTS]; /* --passes */
    int nlists, pass_orders, list_level; /* list_level: the code generator's -O for lists */
    double special; /* --special: the fraction of graphs whose inputs hold NaN, ±inf or ±1e30 */
    bool verbose, keep_going, minimise, dump;
    int jobs, max_ops, timeout, fault;
    int64_t pass_limit;
    bool excluded[OP_COUNT];
    const char *file; /* --file: check this .net file instead of generated graphs */
    const char *cpu;  /* --cpu: what the generated code is compiled for (NULL: the host) */
    const char *disabled[16]; /* --disable-pass: hide a known bug while hunting for others */
    int ndisabled;
    char tmpdir[64];
} Config;

/* What a child reports, in memory shared with the parent: written as the check progresses, so a
 * crash still tells where it happened. Per configuration (index into the graph's Cfg list). */
typedef struct Shared {
    int status, stage, cfg; /* cfg: the configuration being checked, -1 before the first */
    char kind[32];
    char msg[3072];
    int nodes; /* lowered nodes */
    int opcount[OP_COUNT];
    bool done[MAX_CFGS], refused[MAX_CFGS];
    int rw[MAX_CFGS][NRW];
    double err[MAX_CFGS], err_passes[MAX_CFGS]; /* worst |Δ| / tolerance */
    char refusal[256];                          /* the first refusal's message */
    long long excused;                          /* NaN/inf differences of split3x3 (compare) */
} Shared;

static void fail(Shared *sh, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(Shared *sh, const char *kind, const char *fmt, ...) {
    sh->status = ST_FAIL;
    snprintf(sh->kind, sizeof sh->kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->msg, sizeof sh->msg, fmt, ap);
    va_end(ap);
}

static void diags_into(Shared *sh, const Diags *d) {
    char *s = diags_to_string(d);
    size_t n = strlen(sh->msg);
    snprintf(sh->msg + n, sizeof sh->msg - n, "%s", s);
    free(s);
}

static bool cfg_has_passes(const Cfg *cf) { return cf->list[0] || cf->level > 0; }

/* "-O2", or "--passes=a,b" (with "-O3" when the code generator's level is not netc's default 2):
 * the flags that select the configuration on netc's command line. */
static const char *cfg_name(const Cfg *cf, char *buf, size_t cap) {
    if (!cf->list[0]) snprintf(buf, cap, "-O%d", cf->level);
    else if (cf->level == 2) snprintf(buf, cap, "--passes=%s", cf->list);
    else snprintf(buf, cap, "--passes=%s -O%d", cf->list, cf->level);
    return buf;
}

/* The configurations of the graph of `seed`: the levels, the given lists, then --pass-orders
 * lists: the first a permutation of every pass, the others 1-7 passes drawn with repetition. */
static int graph_cfgs(const Config *c, uint64_t seed, Cfg *cf) {
    int n = 0;
    for (int i = 0; i < c->nlevels; i++) cf[n++] = (Cfg){.level = c->levels[i]};
    for (int i = 0; i < c->nlists; i++) {
        cf[n] = (Cfg){.level = c->list_level};
        snprintf(cf[n++].list, LIST_CAP, "%s", c->lists[i]);
    }
    const char *const *names = pass_names();
    int np = 0;
    while (names[np] && np < 32) np++;
    Rng r = {hash_str(seed * 0x9E3779B97F4A7C15ull + 3, "pass orders")};
    for (int k = 0; k < c->pass_orders && np; k++) {
        int idx[32], len;
        if (k == 0) {
            len = np;
            for (int i = 0; i < np; i++) idx[i] = i;
            for (int i = np - 1; i > 0; i--) {
                int j = (int)rng_int(&r, 0, i), t = idx[i];
                idx[i] = idx[j], idx[j] = t;
            }
        } else {
            len = (int)rng_int(&r, 1, 7);
            for (int i = 0; i < len; i++) idx[i] = (int)rng_int(&r, 0, np - 1);
        }
        cf[n] = (Cfg){.level = c->list_level};
        for (int i = 0; i < len; i++) app(cf[n].list, LIST_CAP, "%s%s", i ? "," : "", names[idx[i]]);
        n++;
    }
    return n;
}

static Graph *load_graph(const char *text, size_t len, uint64_t seed, Diags *d);

/* Make some 3×3 convolutions low-rank so split3x3 has something to split: W[o,i,h,w] =
 * Σ_k U_k[(o,h)] V_k[(i,w)], the [o,h]×[i,w] unfolding split3x3 factorises (DESIGN.md), rank 1-3;
 * depthwise ones get a rank-1 kernel per channel. Which layers, and their rank, follow from the
 * seed and the node's name, so a minimised graph keeps them (fold-bn scales rows (o,h), which
 * keeps the rank). PReLU slopes become distinct per channel: the default 0.25 everywhere would
 * hide a channel-indexing bug. */
static void plant_weights(Graph *g, uint64_t seed) {
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        Rng r = {hash_str(seed * 0x9E3779B97F4A7C15ull + 77, n->name)};
        if (n->op == OP_PRELU) {
            Tensor *w = ir_weight(g, n, "weight");
            for (int64_t k = 0; k < ir_numel(w); k++) w->data[k] = (float)(0.05 + 0.5 * rng_unit(&r));
            continue;
        }
        if (n->op != OP_CONV2D) continue;
        int64_t k[2];
        ir_attr_pair(n, "kernel", k);
        if (k[0] != 3 || k[1] != 3 || !rng_chance(&r, 0.5)) continue;
        Tensor *w = ir_weight(g, n, "weight");
        int64_t O = w->shape[0], I = w->shape[1], groups = ir_attr_int(n, "groups");
        if (groups == 1) {
            int64_t rank = rng_int(&r, 1, 3);
            double *U = xmalloc((size_t)(rank * 3 * O) * sizeof *U), *V = xmalloc((size_t)(rank * 3 * I) * sizeof *V);
            double sv = sqrt(2.0 / (9.0 * (double)I * (double)rank));
            for (int64_t q = 0; q < rank * 3 * O; q++) U[q] = rng_normal(&r);
            for (int64_t q = 0; q < rank * 3 * I; q++) V[q] = sv * rng_normal(&r);
            for (int64_t o = 0; o < O; o++)
                for (int64_t c = 0; c < I; c++)
                    for (int64_t h = 0; h < 3; h++)
                        for (int64_t x = 0; x < 3; x++) {
                            double acc = 0;
                            for (int64_t q = 0; q < rank; q++) acc += U[q * 3 * O + o * 3 + h] * V[q * 3 * I + c * 3 + x];
                            w->data[((o * I + c) * 3 + h) * 3 + x] = (float)acc;
                        }
            free(U);
            free(V);
        } else if (I == 1) {
            for (int64_t o = 0; o < O; o++) {
                double a[3], b[3];
                for (int q = 0; q < 3; q++) a[q] = rng_normal(&r), b[q] = sqrt(2.0 / 9.0) * rng_normal(&r);
                for (int h = 0; h < 3; h++)
                    for (int x = 0; x < 3; x++) w->data[(o * 3 + h) * 3 + x] = (float)(a[h] * b[x]);
            }
        }
    }
}

static Graph *load_graph(const char *text, size_t len, uint64_t seed, Diags *d) {
    FrontendOptions fo = {.seed = seed, .quiet = true};
    Graph *g = frontend_load_text("difftest.net", text, len, &fo, d);
    if (g) plant_weights(g, seed);
    return g;
}

/* Inputs are uniform in [-1, 1]. In a fraction --special of the graphs (chosen by seed) every
 * input also gets a few special elements, so that relu, clamp, the pools, concat and whatever
 * follows see them: large finite values (±1e30), ±inf, NaN, or a mix of the three. PyTorch's
 * semantics, which the interpreter implements: NaN propagates through relu, relu6, clamp and
 * max pooling (a window holding a NaN gives NaN). */
enum { SP_NONE, SP_LARGE, SP_INF, SP_NAN, SP_MIXED, NSPECIAL };
static const char *const special_names[NSPECIAL] = {"none", "±1e30", "±inf", "NaN", "±1e30, ±inf and NaN"};

static int special_kind(double fraction, uint64_t seed) {
    Rng r = {hash_str(seed * 0x9E3779B97F4A7C15ull + 11, "special inputs")};
    double u = rng_unit(&r);
    int kind = (int)rng_int(&r, SP_LARGE, SP_MIXED); /* the same with any fraction: --special 1 rechecks */
    return u < fraction ? kind : SP_NONE;
}

static uint64_t input_seed(uint64_t seed, int i) { return seed * 1000003u + 7919u * (uint64_t)(i + 1); }

static void fill_inputs(float *x, int64_t n, uint64_t seed, int i, int special) {
    Rng r = {input_seed(seed, i)};
    for (int64_t k = 0; k < n; k++) x[k] = (float)(2.0 * rng_unit(&r) - 1.0);
    if (special == SP_NONE) return;
    int64_t count = rng_int(&r, 1, 3) + n / 1024;
    for (int64_t q = 0; q < count; q++) {
        int64_t at = rng_int(&r, 0, n - 1);
        int kind = special == SP_MIXED ? (int)rng_int(&r, SP_LARGE, SP_NAN) : special;
        float sign = rng_chance(&r, 0.5) ? 1.0f : -1.0f;
        x[at] = kind == SP_LARGE ? sign * 1e30f : kind == SP_INF ? sign * INFINITY : NAN;
    }
}

/* ---- the tolerance: an error bound per element ----------------------------------------------
 * The compiled code, and the interpreter on the optimised graph, compute the reference's function
 * with other roundings: other summation orders (blocked, vectorised, with FMA), weights folded
 * (fold-bn) or factorised (split3x3) in double and rounded to float, libmvec's expf/tanhf/erff
 * instead of libm's double functions. A global max|Δ| / max|ref| lets a wrong element hide when
 * it is small next to the tensor's largest one (a weak branch of a concat), and a plain
 * |Δ| ≤ rtol·|ref| cries wolf where an output is near zero by cancellation. So every element gets
 * its own tolerance from a forward error analysis run beside the interpreter (error_bounds): for
 * each tensor element a scale σ of |computed − exact|.
 *
 * Rounding follows the probabilistic model (Higham and Mary, "A new approach to probabilistic
 * rounding error analysis", SISC 2019): a sum of K terms computed in any order, rounding to
 * nearest, is within λ·√K·u·Σ|terms| of the exact sum with probability ≥ 1 − 2·exp(−λ²/2),
 * u = 2^-24 (the worst case, K·u·Σ|terms|, is far too loose for K in the hundreds). Errors from
 * different terms are independent, so they propagate through a convolution in quadrature: with
 * the worst-case |W|·σ instead, every layer would grow the bound by another √K (the abs-network
 * |W_L|···|W_1|·|x| outgrows the real values exponentially with depth). Rules, per element:
 *   graph inputs       σ = 0 (both sides read the same floats)
 *   conv, linear       σ = √(Σ w²σ_x²) + u·(√K + 4)·(Σ|w·x| + |b|), K the terms of this element
 *                      (in-channels per group × the taps inside the input); the 4 covers the
 *                      rounding of folded or factorised weights (each product within ~u of the
 *                      exact one) and of the stored result
 *   batchnorm          σ = |s|·σ_x + 3u·(|s·x| + |s·mean| + |β|), s = γ/√(var + eps)
 *   activations        σ = L·σ_x + ρ·u·|y|: L bounds |f'| where x may be (the derivative at the
 *                      end of x ± SAFETY·σ_x nearest 0 for sigmoid and tanh), ρ the ulps of the
 *                      vector math (libmvec's are within 4; 8 here), 0 for relu/relu6/clamp
 *   add, sub           σ = σ_a + σ_b + 2u·|y| (added, not in quadrature: x + x is one error twice)
 *   mul, div           the first-order product and quotient rules, + 2u·|y|
 *   avg pools          σ = mean σ_x + u·(√k + 2)·mean|x|; max pool: the window's largest σ
 *   data movement      σ moves with the data (0 in constant padding)
 *   softmax            σ_i = y_i·(σ_i + max σ + u·(2·|x_i − max x| + √K + ρ + 2))
 *   scale              σ = |w|·σ_x + 2u·(|w·x| + |b|)
 *   layernorm          z = (x − m)/sd over K channels: σ_z = (σ_i + mean σ + |z_i|·mean(|z|·σ))/sd
 *                      + u·((√K + 4)·(|x_i| + mean|x|)/sd + (√K + 6)·|z_i|); then as scale
 * Where the reference is not finite σ = 0 and the comparison is exact: NaN must meet NaN, ±inf the
 * same infinity. The interpreter after the passes sums convolutions and softmax in double and
 * calls libm: its bound (dbl) has no √K there and ρ = 2, so that check stays about √K tighter.
 * The bound is computed on both graphs, before and after the passes, and the larger one counts:
 * each bounds an implementation of its own graph against the exact result (split3x3's factors
 * have magnitudes |U|·|V·x| of their own, which may exceed |W|·|x|), and the reference's own
 * error is far below its bound. An element passes when |out − ref| ≤ ATOL + SAFETY·σ: SAFETY is
 * the λ above (8: a false alarm rate of 1e-14 per element if the model held tightly; it is
 * conservative besides, Σ|w·x| bounding every partial sum), ATOL only absorbs underflow (an exp
 * flushing to 0 on one side). On thousands of graphs the worst |Δ| stays below 1/4 of the
 * tolerance; a difference of one ulp is at most 1/8 of it. */
#define U32 5.9604644775390625e-8 /* 2^-24: the unit roundoff of float32 */
#define SAFETY 8.0
#define ULPS_MATH 8.0
#define ATOL 1e-30

/* One output element of a convolution: the terms' magnitudes and their errors' variance. */
typedef struct Acc {
    double mag, var;
    int64_t terms;
} Acc;

static void acc_term(Acc *a, double w, double x, double sx) {
    if (!isfinite(x)) return; /* the output is not finite either: compared exactly */
    a->mag += fabs(w * x);
    a->var += w * w * sx * sx;
    a->terms++;
}

/* dbl: the sum runs in double (the interpreter), rounded once: no √K */
static float acc_bound(const Acc *a, bool dbl) {
    return (float)(sqrt(a->var) + U32 * ((dbl ? 0 : sqrt((double)a->terms)) + 4) * a->mag);
}

/* A conv the winograd pass marked runs as Winograd F(m,3) (m = 4 or 2) in the compiled code: it
 * rounds in the transformed domain, whose terms are far larger than the outputs they cancel down
 * to, so an output's error scales with the magnitudes of its whole T×T input tile (T = m + 2), not
 * of its 3×3 window (a ±1e30 input spoils the m×m outputs of its tiles). Added to the direct bound
 * of each output (its propagated input error √(Σ w²σ_x²) is the same function's):
 * u·F·Σ_ab |Aᵀ|_ia |Aᵀ|_jb S_ab with S_ab = Σ_c |U_c|_ab (|Bᵀ| |d_c| |B|)_ab, the transformed
 * terms' magnitudes (no cancellation), F = √(chunk) + √(chunks) + 12 for the sums over channels
 * (in chunks of WINO_CHUNK) and the three or so roundings of each of the four 1-D transforms
 * (F(2,3)'s take two). Non-finite inputs count 0 here: the NaNs they spread through a tile are
 * excused as split3x3's are (compare). */
static void bound_winograd(const Graph *g, const Node *n, const float *x, float *s) {
    static const double BT4[6][6] = {{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
    static const double AT4[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
    static const double BT2[6][6] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
    static const double AT2[4][6] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
    const int m = ir_winograd_m(n), T = wino_t(m), P = wino_p(m);
    const double(*BT)[6] = m == 2 ? BT2 : BT4, (*AT)[6] = m == 2 ? AT2 : AT4;
    const Tensor *ti = ir_tensor(g, n->in[0]), *to = ir_tensor(g, n->out);
    int64_t p[2], dl[2];
    ir_attr_pair(n, "pad", p);
    ir_attr_pair(n, "dilation", dl);
    const float *w = ir_weight(g, n, "weight")->data;
    int64_t N = ti->shape[0], C = ti->shape[1], H = ti->shape[2], W = ti->shape[3];
    int64_t O = to->shape[1], OH = to->shape[2], OW = to->shape[3];
    double *ua = malloc((size_t)(O * C * P) * sizeof *ua), *da = malloc((size_t)(C * P) * sizeof *da);
    for (int64_t k = 0; k < O * C; k++) {
        float u[WINO_PMAX];
        wino_kernel(m, w + k * 9, u);
        for (int q = 0; q < P; q++) ua[k * P + q] = fabs((double)u[q]);
    }
    double F = sqrt((double)(C < WINO_CHUNK ? C : WINO_CHUNK)) + sqrt((double)((C + WINO_CHUNK - 1) / WINO_CHUNK)) + 12;
    /* the tiles of each phase's sub-grid (dilation 1: one phase, the image): outputs
       (oy0 + i·dh, ox0 + j·dw), inputs (oy0 - pad + r·dh, ox0 - pad + q·dw) */
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t ph = 0; ph < dl[0] && ph < OH; ph++)
        for (int64_t pw = 0; pw < dl[1] && pw < OW; pw++)
        for (int64_t oy0 = ph; oy0 < OH; oy0 += m * dl[0])
            for (int64_t ox0 = pw; ox0 < OW; ox0 += m * dl[1]) {
                for (int64_t c = 0; c < C; c++) { /* |Bᵀ| |d| |B| */
                    double d[6][6], t1[6][6];
                    for (int r = 0; r < T; r++)
                        for (int q = 0; q < T; q++) {
                            int64_t iy = oy0 - p[0] + r * dl[0], ix = ox0 - p[1] + q * dl[1];
                            double v = iy >= 0 && iy < H && ix >= 0 && ix < W ? fabs(x[((nn * C + c) * H + iy) * W + ix]) : 0;
                            d[r][q] = isfinite(v) ? v : 0;
                        }
                    for (int a = 0; a < T; a++)
                        for (int q = 0; q < T; q++) {
                            t1[a][q] = 0;
                            for (int r = 0; r < T; r++) t1[a][q] += fabs(BT[a][r]) * d[r][q];
                        }
                    for (int a = 0; a < T; a++)
                        for (int b = 0; b < T; b++) {
                            double v = 0;
                            for (int q = 0; q < T; q++) v += t1[a][q] * fabs(BT[b][q]);
                            da[c * P + a * T + b] = v;
                        }
                }
                for (int64_t o = 0; o < O; o++) {
                    double S[WINO_PMAX] = {0};
                    for (int64_t c = 0; c < C; c++)
                        for (int q = 0; q < P; q++) S[q] += ua[(o * C + c) * P + q] * da[c * P + q];
                    for (int64_t i = 0; i < m && oy0 + i * dl[0] < OH; i++)
                        for (int64_t j = 0; j < m && ox0 + j * dl[1] < OW; j++) {
                            double e = 0;
                            for (int a = 0; a < T; a++)
                                for (int b = 0; b < T; b++) e += fabs(AT[i][a]) * fabs(AT[j][b]) * S[a * T + b];
                            s[((nn * O + o) * OH + oy0 + i * dl[0]) * OW + ox0 + j * dl[1]] += (float)(U32 * F * e);
                        }
                }
            }
    free(ua), free(da);
}

/* The attributes, shapes and weights a conv or transposed conv's bound reads. */
typedef struct ConvTerms {
    int64_t k[2], st[2], p[2], dl[2];
    const float *w, *b;
    int64_t N, C, H, W, O, OH, OW, cpg, opg;
} ConvTerms;

static ConvTerms conv_terms(const Graph *g, const Node *n) {
    const Tensor *ti = ir_tensor(g, n->in[0]), *to = ir_tensor(g, n->out), *bt = ir_weight(g, n, "bias");
    ConvTerms t = {.w = ir_weight(g, n, "weight")->data, .b = bt ? bt->data : NULL};
    ir_attr_pair(n, "kernel", t.k);
    ir_attr_pair(n, "stride", t.st);
    ir_attr_pair(n, "pad", t.p);
    ir_attr_pair(n, "dilation", t.dl);
    t.N = ti->shape[0], t.C = ti->shape[1], t.H = ti->shape[2], t.W = ti->shape[3];
    t.O = to->shape[1], t.OH = to->shape[2], t.OW = to->shape[3];
    t.cpg = t.C / ir_attr_int(n, "groups"), t.opg = t.O / ir_attr_int(n, "groups");
    return t;
}

/* interp_conv2d's loops over the same terms */
static void bound_conv2d(const Graph *g, const Node *n, const float *x, const float *sx, float *s, bool dbl) {
    ConvTerms t = conv_terms(g, n);
    const int64_t *k = t.k, *st = t.st, *p = t.p, *dl = t.dl;
    const float *w = t.w, *b = t.b;
    int64_t N = t.N, C = t.C, H = t.H, W = t.W, O = t.O, OH = t.OH, OW = t.OW, cpg = t.cpg, opg = t.opg;
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t y = 0; y < OH; y++)
                for (int64_t xx = 0; xx < OW; xx++) {
                    Acc a = {b ? fabs(b[o]) : 0, 0, 0};
                    for (int64_t c = 0; c < cpg; c++) {
                        int64_t base = (nn * C + o / opg * cpg + c) * H * W;
                        const float *wk = w + (o * cpg + c) * k[0] * k[1];
                        for (int64_t i = 0; i < k[0]; i++) {
                            int64_t iy = y * st[0] - p[0] + i * dl[0];
                            if (iy < 0 || iy >= H) continue;
                            for (int64_t j = 0; j < k[1]; j++) {
                                int64_t ix = xx * st[1] - p[1] + j * dl[1];
                                int64_t at = base + iy * W + ix;
                                if (ix >= 0 && ix < W) acc_term(&a, wk[i * k[1] + j], x[at], sx[at]);
                            }
                        }
                    }
                    s[((nn * O + o) * OH + y) * OW + xx] = acc_bound(&a, dbl);
                }
    if (!dbl && ir_winograd_m(n)) bound_winograd(g, n, x, s);
}

/* interp_conv_transpose2d's gather; weight layout [C_in, O/groups, kh, kw] */
static void bound_conv_transpose2d(const Graph *g, const Node *n, const float *x, const float *sx, float *s, bool dbl) {
    ConvTerms t = conv_terms(g, n);
    const int64_t *k = t.k, *st = t.st, *p = t.p, *dl = t.dl;
    const float *w = t.w, *b = t.b;
    int64_t N = t.N, C = t.C, H = t.H, W = t.W, O = t.O, OH = t.OH, OW = t.OW, cpg = t.cpg, opg = t.opg;
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t y = 0; y < OH; y++)
                for (int64_t xx = 0; xx < OW; xx++) {
                    Acc a = {b ? fabs(b[o]) : 0, 0, 0};
                    for (int64_t i = 0; i < k[0]; i++) {
                        int64_t ny = y + p[0] - i * dl[0];
                        if (ny < 0 || ny % st[0] || ny / st[0] >= H) continue;
                        for (int64_t j = 0; j < k[1]; j++) {
                            int64_t nx = xx + p[1] - j * dl[1];
                            if (nx < 0 || nx % st[1] || nx / st[1] >= W) continue;
                            for (int64_t c = 0; c < cpg; c++) {
                                int64_t ci = o / opg * cpg + c, at = ((nn * C + ci) * H + ny / st[0]) * W + nx / st[1];
                                acc_term(&a, w[((ci * opg + o % opg) * k[0] + i) * k[1] + j], x[at], sx[at]);
                            }
                        }
                    }
                    s[((nn * O + o) * OH + y) * OW + xx] = acc_bound(&a, dbl);
                }
}

static void bound_linear(const Graph *g, const Node *n, const float *x, const float *sx, float *s, bool dbl) {
    const Tensor *ti = ir_tensor(g, n->in[0]), *to = ir_tensor(g, n->out), *bt = ir_weight(g, n, "bias");
    const float *w = ir_weight(g, n, "weight")->data, *b = bt ? bt->data : NULL;
    int64_t F = ti->shape[ti->rank - 1], O = to->shape[to->rank - 1], rows = ir_numel(ti) / (F ? F : 1);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < O; o++) {
            Acc a = {b ? fabs(b[o]) : 0, 0, 0};
            for (int64_t f = 0; f < F; f++) acc_term(&a, w[o * F + f], x[r * F + f], sx[r * F + f]);
            s[r * O + o] = acc_bound(&a, dbl);
        }
}

static void bound_batchnorm(const Graph *g, const Node *n, const float *x, const float *sx, float *s) {
    const Tensor *t = ir_tensor(g, n->in[0]);
    const float *w = ir_weight(g, n, "weight")->data, *b = ir_weight(g, n, "bias")->data;
    const float *mean = ir_weight(g, n, "running_mean")->data, *var = ir_weight(g, n, "running_var")->data;
    double eps = ir_attr_float(n, "eps");
    int64_t N = t->shape[0], C = t->shape[1], inner = ir_numel(t) / (N * C);
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t c = 0; c < C; c++) {
            double sc = fabs((double)w[c] / sqrt((double)var[c] + eps));
            for (int64_t i = (nn * C + c) * inner; i < (nn * C + c + 1) * inner; i++)
                s[i] = (float)(sc * sx[i] + 3 * U32 * (sc * fabs(x[i]) + sc * fabs(mean[c]) + fabs(b[c])));
        }
}

/* the activations, and dropout (the identity) */
static void bound_activation(const Graph *g, const Node *n, const float *x, const float *sx, const float *y, float *s,
                             bool dbl) {
    double ulps = dbl ? 2 : ULPS_MATH; /* the interpreter: libm in double, each side rounded once */
    const Tensor *t = ir_tensor(g, n->in[0]);
    int64_t cnt = ir_numel(t), C = t->rank >= 2 ? t->shape[1] : 1, inner = t->rank >= 2 ? cnt / (t->shape[0] * C) : 1;
    const Tensor *slopes = n->op == OP_PRELU ? ir_weight(g, n, "weight") : NULL;
    for (int64_t i = 0; i < cnt; i++) {
        double sv = sx[i], ay = fabs(y[i]), L = 1, local = 0;
        double d = fmax(0.0, fabs(x[i]) - SAFETY * sv); /* the |x| nearest 0 that x may be */
        switch (n->op) {
        case OP_LEAKY_RELU:
            L = fmax(1.0, fabs(ir_attr_float(n, "slope")));
            local = 2 * U32 * ay; /* one rounding each side (and a slope rounded to float) */
            break;
        case OP_PRELU:
            L = fmax(1.0, fabs(slopes->data[ir_numel(slopes) == 1 ? 0 : (i / inner) % C]));
            local = 2 * U32 * ay;
            break;
        case OP_HARDSIGMOID:
        case OP_HARDSWISH:
            L = n->op == OP_HARDSIGMOID ? 1.0 / 6 : 1.5;
            local = 4 * U32 * (ay + 1);
            break;
        case OP_SIGMOID: {
            double e = 1 / (1 + exp(-d));
            L = e * (1 - e);
            local = ulps * U32 * ay;
            break;
        }
        case OP_TANH: {
            double th = tanh(d);
            L = 1 - th * th;
            local = ulps * U32 * ay;
            break;
        }
        case OP_SILU:
        case OP_GELU: /* |f'| ≤ 1.1 (silu), 1.13 (gelu); gelu's 1 + erf(x/√2) cancels for x < 0 */
            L = 1.2;
            local = ulps * U32 * (ay + (n->op == OP_GELU ? 0.5 * fabs(x[i]) : 0));
            break;
        case OP_ELU:
            L = fmax(1.0, fabs(ir_attr_float(n, "alpha")));
            local = ulps * U32 * ay;
            break;
        default: break; /* relu, relu6, clamp, dropout: exact */
        }
        s[i] = (float)(L * sv + local);
    }
}

/* Strides of t seen through the output's shape (NumPy broadcasting): 0 where t's dim is 1. */
static void broadcast_strides(const Tensor *t, const Tensor *o, int64_t *st) {
    int64_t m = 1;
    for (int d = o->rank - 1; d >= 0; d--) {
        int td = d - (o->rank - t->rank);
        st[d] = td < 0 || t->shape[td] == 1 ? 0 : m;
        if (td >= 0) m *= t->shape[td];
    }
}

static void bound_binary(const Graph *g, const Node *n, const float *const *x, const float *const *sx, const float *y,
                         float *s) {
    const Tensor *ta = ir_tensor(g, n->in[0]), *tb = ir_tensor(g, n->in[1]), *to = ir_tensor(g, n->out);
    int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, ia = 0, ib = 0, cnt = ir_numel(to);
    broadcast_strides(ta, to, sa);
    broadcast_strides(tb, to, sb);
    for (int64_t i = 0; i < cnt; i++) {
        double a = fabs(x[0][ia]), b = fabs(x[1][ib]), da = sx[0][ia], db = sx[1][ib], e;
        if (n->op == OP_MUL) e = da * b + a * db;
        else if (n->op == OP_DIV) e = da / b + a * db / (b * b);
        else e = da + db;
        s[i] = (float)(e + 2 * U32 * fabs(y[i]));
        for (int d = to->rank - 1; d >= 0; d--) { /* the output coordinate as an odometer */
            idx[d]++, ia += sa[d], ib += sb[d];
            if (idx[d] < to->shape[d]) break;
            ia -= sa[d] * idx[d], ib -= sb[d] * idx[d], idx[d] = 0;
        }
    }
}

static void bound_softmax(const Graph *g, const Node *n, const float *x, const float *sx, const float *y, float *s,
                          bool dbl) {
    const Tensor *t = ir_tensor(g, n->in[0]);
    int axis = (int)ir_attr_int(n, "axis");
    int64_t outer = 1, inner = 1, d = t->shape[axis];
    for (int a = 0; a < axis; a++) outer *= t->shape[a];
    for (int a = axis + 1; a < t->rank; a++) inner *= t->shape[a];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * d * inner + i;
            double xm = -INFINITY, sm = 0;
            for (int64_t k = 0; k < d; k++) {
                xm = fmax(xm, x[base + k * inner]);
                sm = fmax(sm, sx[base + k * inner]);
            }
            for (int64_t k = 0; k < d; k++) {
                int64_t at = base + k * inner;
                double rel = sx[at] + sm + U32 * (dbl ? 2 : 2 * fabs(x[at] - xm) + sqrt((double)d) + ULPS_MATH + 2);
                s[at] = isfinite(x[at]) ? (float)(fabs(y[at]) * rel) : 0;
            }
        }
}

static void bound_scale(const Graph *g, const Node *n, const float *x, const float *sx, float *s) {
    const Tensor *t = ir_tensor(g, n->in[0]);
    const float *w = ir_weight(g, n, "weight")->data;
    const float *b = ir_attr_bool(n, "bias") ? ir_weight(g, n, "bias")->data : NULL;
    int64_t N = t->shape[0], C = t->shape[1], inner = ir_numel(t) / (N * C);
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = (nn * C + c) * inner; i < (nn * C + c + 1) * inner; i++)
                s[i] = (float)(fabs(w[c]) * sx[i] + 2 * U32 * (fabs((double)w[c] * x[i]) + (b ? fabs(b[c]) : 0)));
}

static void bound_layernorm(const Graph *g, const Node *n, const float *x, const float *sx, float *s) {
    const Tensor *t = ir_tensor(g, n->in[0]);
    bool affine = ir_attr_bool(n, "affine");
    const float *w = affine ? ir_weight(g, n, "weight")->data : NULL, *b = affine ? ir_weight(g, n, "bias")->data : NULL;
    double eps = ir_attr_float(n, "eps");
    int64_t N = t->shape[0], C = t->shape[1], inner = ir_numel(t) / (N * C);
    double rk = sqrt((double)C);
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = nn * C * inner + i;
            double m = 0, v = 0, ms = 0, mx = 0, mzs = 0;
            bool finite = true;
            for (int64_t c = 0; c < C; c++) finite &= isfinite(x[base + c * inner]) != 0;
            for (int64_t c = 0; c < C; c++) m += x[base + c * inner];
            m /= (double)C;
            for (int64_t c = 0; c < C; c++) {
                double d = x[base + c * inner] - m;
                v += d * d;
                ms += sx[base + c * inner];
                mx += fabs(x[base + c * inner]);
            }
            double sd = sqrt(v / (double)C + eps);
            ms /= (double)C, mx /= (double)C;
            for (int64_t c = 0; c < C; c++) mzs += fabs(x[base + c * inner] - m) / sd * sx[base + c * inner];
            mzs /= (double)C;
            for (int64_t c = 0; c < C; c++) {
                int64_t at = base + c * inner;
                if (!finite) {
                    s[at] = 0;
                    continue;
                }
                double z = (x[at] - m) / sd, gw = affine ? fabs(w[c]) : 1;
                double sz = (sx[at] + ms + fabs(z) * mzs) / sd +
                            U32 * ((rk + 4) * (fabs(x[at]) + mx) / sd + (rk + 6) * fabs(z));
                s[at] = (float)(gw * sz + 2 * U32 * (gw * fabs(z) + (affine ? fabs(b[c]) : 0)));
            }
        }
}

/* the pools' window size, an upper bound for adaptive_avgpool's bins */
static int64_t pool_window(const Graph *g, const Node *n) {
    const Tensor *ti = ir_tensor(g, n->in[0]), *to = ir_tensor(g, n->out);
    if (n->op == OP_AVGPOOL2D) {
        int64_t k[2];
        ir_attr_pair(n, "kernel", k);
        return k[0] * k[1];
    }
    return (ti->shape[2] / to->shape[2] + 2) * (ti->shape[3] / to->shape[3] + 2);
}

/* σ of node n's output from its inputs' values x and bounds sx, and its value y */
static void bound_node(const Graph *g, const Node *n, const float *const *x, const float *const *sx, const float *y,
                       float *s, bool dbl) {
    int64_t cnt = ir_numel(ir_tensor(g, n->out));
    switch (n->op) {
    case OP_CONV2D: bound_conv2d(g, n, x[0], sx[0], s, dbl); break;
    case OP_CONV_TRANSPOSE2D: bound_conv_transpose2d(g, n, x[0], sx[0], s, dbl); break;
    case OP_LINEAR: bound_linear(g, n, x[0], sx[0], s, dbl); break;
    case OP_BATCHNORM: bound_batchnorm(g, n, x[0], sx[0], s); break;
    case OP_SCALE: bound_scale(g, n, x[0], sx[0], s); break;
    case OP_LAYERNORM: bound_layernorm(g, n, x[0], sx[0], s); break;
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV: bound_binary(g, n, x, sx, y, s); break;
    case OP_SOFTMAX: bound_softmax(g, n, x[0], sx[0], y, s, dbl); break;
    case OP_MAXPOOL2D: interp_node(g, n, sx, s); break; /* the largest σ of the window */
    case OP_AVGPOOL2D:
    case OP_GLOBAL_AVGPOOL:
    case OP_ADAPTIVE_AVGPOOL:
    case OP_UPSAMPLE: { /* linear with weights ≥ 0 summing to 1: σ averages; plus the sum's rounding */
        interp_node(g, n, sx, s);
        bool sums = n->op != OP_UPSAMPLE || !strcmp(ir_attr_str(n, "mode"), "bilinear");
        if (!sums) break;
        int64_t ni = ir_numel(ir_tensor(g, n->in[0]));
        double k = n->op == OP_GLOBAL_AVGPOOL ? (double)(ni / cnt) : n->op == OP_UPSAMPLE ? 4 : (double)pool_window(g, n);
        float *ax = xmalloc((size_t)ni * sizeof *ax), *m = xmalloc((size_t)cnt * sizeof *m);
        for (int64_t i = 0; i < ni; i++) ax[i] = isfinite(x[0][i]) ? fabsf(x[0][i]) : 0;
        interp_node(g, n, (const float *const *)&ax, m);
        for (int64_t i = 0; i < cnt; i++) s[i] += (float)(U32 * (sqrt(k) + 2) * m[i]);
        free(ax);
        free(m);
        break;
    }
    case OP_PAD: { /* pad(σ) − pad(0): σ inside, 0 in constant padding */
        int64_t ni = ir_numel(ir_tensor(g, n->in[0]));
        float *z = xcalloc((size_t)ni, sizeof *z), *p = xmalloc((size_t)cnt * sizeof *p);
        interp_node(g, n, sx, s);
        interp_node(g, n, (const float *const *)&z, p);
        for (int64_t i = 0; i < cnt; i++) s[i] -= p[i];
        free(z);
        free(p);
        break;
    }
    case OP_CONCAT:
    case OP_SLICE:
    case OP_CHANNEL_SHUFFLE:
    case OP_FLATTEN:
    case OP_DROPOUT: interp_node(g, n, sx, s); break;
    default:
        if (op_info(n->op)->flags & OPF_ACTIVATION) bound_activation(g, n, x[0], sx[0], y, s, dbl);
        else NETC_ASSERT(!"difftest: an op without an error bound");
    }
}

/* σ (malloc'ed, one array per graph output) of graph g on inputs `in`: the interpreter, node by
 * node, with the bound beside it. After the passes a node's fused epilogue is bounded step by
 * step like the nodes it replaced (an activation, a residual add), so that the bound of the
 * optimised graph sees its own magnitudes: split3x3's factors |U|·|V·x| exceed |W|·|x| where the
 * rank-one terms cancel, and the error of the intermediate with them. */
static float **error_bounds(const Graph *g, const float *const *in, bool dbl, float ***values) {
    int nt = g->tensors.len, max_in = 1;
    float **val = xcalloc((size_t)nt, sizeof *val), **sig = xcalloc((size_t)nt, sizeof *sig);
    for (int i = 0; i < g->ninputs; i++) {
        int64_t cnt = ir_numel(ir_tensor(g, g->inputs[i]));
        val[g->inputs[i]] = xmalloc((size_t)cnt * sizeof(float));
        memcpy(val[g->inputs[i]], in[i], (size_t)cnt * sizeof(float));
        sig[g->inputs[i]] = xcalloc((size_t)cnt, sizeof(float));
    }
    for (int i = 0; i < g->nodes.len; i++) max_in = ir_node(g, i)->nin > max_in ? ir_node(g, i)->nin : max_in;
    const float **x = xmalloc((size_t)max_in * sizeof *x), **sx = xmalloc((size_t)max_in * sizeof *sx);
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        for (int k = 0; k < n->nin; k++) x[k] = val[n->in[k]], sx[k] = sig[n->in[k]];
        int64_t cnt = ir_numel(ir_tensor(g, n->out));
        float *y = xmalloc((size_t)cnt * sizeof *y), *s = xcalloc((size_t)cnt, sizeof *s);
        interp_node(g, n, x, y);
        bound_node(g, n, x, sx, y, s, dbl);
        for (int k = 0; k < n->nepi; k++) {
            const EpiOp *e = &n->epi[k];
            if (e->residual >= 0) {
                const float *r = val[e->residual], *sr = sig[e->residual];
                for (int64_t q = 0; q < cnt; q++) {
                    y[q] = (float)((double)y[q] + r[q]);
                    s[q] = (float)(s[q] + sr[q] + 2 * U32 * fabs(y[q]));
                }
            } else {
                float *y2 = xmalloc((size_t)cnt * sizeof *y2), *s2 = xcalloc((size_t)cnt, sizeof *s2);
                const float *ya = y;
                interp_node(g, e->act, &ya, y2);
                bound_activation(g, e->act, y, s, y2, s2, dbl);
                free(y), free(s);
                y = y2, s = s2;
            }
        }
        for (int64_t k = 0; k < cnt; k++) {
            if (!isfinite(y[k])) s[k] = 0;
            else if (isnan(s[k]) || s[k] < 0) s[k] = INFINITY; /* (no bound: never when the model holds) */
        }
        free(val[n->out]);
        free(sig[n->out]);
        val[n->out] = y, sig[n->out] = s;
    }
    float **out = xcalloc((size_t)g->noutputs, sizeof *out);
    for (int i = 0; i < g->noutputs; i++) {
        int64_t cnt = ir_numel(ir_tensor(g, g->outputs[i]));
        out[i] = xmalloc((size_t)cnt * sizeof **out);
        memcpy(out[i], sig[g->outputs[i]], (size_t)cnt * sizeof **out);
    }
    for (int t = 0; t < nt; t++) {
        if (!values) free(val[t]);
        free(sig[t]);
    }
    if (values) *values = val;
    else free(val);
    free(sig), free(x), free(sx);
    return out;
}

/* One output against the reference: the worst |Δ| / tolerance (INFINITY for a NaN or an infinity
 * not matched, or a finite value that became one), where, and the tolerance there (0: exact).
 * `global` is max|Δ| / max(max|ref|, 1e-2), the old whole-tensor measure, for the report.
 *
 * With `inf_split` (special inputs, and split3x3 split a layer or winograd took one: its
 * transforms mix a tile's 36 inputs, so an infinity anywhere in the tile turns its other outputs
 * into inf − inf) a NaN in `out`, or an infinity
 * against the reference's NaN or other infinity, is excused (counted in `excused`): split3x3 is
 * exact for finite values only, and ±1e30 inputs overflow to ±inf soon enough (1e30 · 1e30). An input +inf that reaches the 3×3 convolution
 * through one tap gives ±inf, but through the factors it gives Σ_r u_r·(v_r·inf), which is NaN as
 * soon as two rank-one terms have opposite signs (and a NaN of inf − inf in the full sum can
 * come out an infinity of the factorised one). */
typedef struct Cmp {
    double ratio, tol, global;
    int64_t where, excused;
} Cmp;

static Cmp compare(const float *out, const float *ref, const float *sig, int64_t n, bool inf_split) {
    Cmp r = {0, 0, 0, 0, 0};
    double mref = 0, md = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = out[i], b = ref[i], q, tol = 0;
        bool excuse = inf_split && (isnan(a) || (!isfinite(a) && !isfinite(b)));
        if (!isfinite(b)) {
            q = (isnan(b) ? isnan(a) : a == b) ? 0 : INFINITY;
        } else if (!isfinite(a)) {
            q = INFINITY;
        } else {
            tol = ATOL + SAFETY * sig[i];
            q = isinf(tol) ? 0 : fabs(a - b) / tol;
            md = fmax(md, fabs(a - b));
            mref = fmax(mref, fabs(b));
        }
        if (isinf(q) && excuse) q = 0, r.excused++;
        if (q > r.ratio) r.ratio = q, r.where = i, r.tol = tol;
    }
    r.global = md / fmax(mref, 1e-2);
    return r;
}

static const char *index_str(const Tensor *t, int64_t flat, char *buf, size_t len) {
    int64_t idx[IR_MAX_RANK];
    for (int a = t->rank - 1; a >= 0; a--) idx[a] = flat % t->shape[a], flat /= t->shape[a];
    return ir_dims_str(t->rank, idx, buf, len);
}

/* "at [0, 3, 1, 2]: got 0, expected nan (exact)" / "... expected 0.25 (tolerance 3.1e-07, |Δ|/tol 4.2)" */
static const char *mismatch_str(const Tensor *t, const Cmp *m, const float *out, const float *ref, char *buf, size_t cap) {
    char ib[128];
    int k = snprintf(buf, cap, "at %s: got %.9g, expected %.9g", index_str(t, m->where, ib, sizeof ib), out[m->where],
                     ref[m->where]);
    if (k < 0 || (size_t)k >= cap) return buf;
    if (m->tol == 0) snprintf(buf + k, cap - (size_t)k, " (must match exactly)");
    else
        snprintf(buf + k, cap - (size_t)k, " (tolerance %.3g, |Δ|/tol %.3g; the whole tensor's max|Δ|/max|ref| is %.2g)",
                 m->tol, m->ratio, m->global);
    return buf;
}

static void count_rewrites(const Graph *g0, const Graph *g, int *rw) {
    int bn0 = 0, bn1 = 0;
    for (int i = 0; i < g0->nodes.len; i++) bn0 += !ir_node(g0, i)->dead && ir_node(g0, i)->op == OP_BATCHNORM;
    memset(rw, 0, NRW * sizeof *rw);
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        bn1 += n->op == OP_BATCHNORM;
        size_t l = strlen(n->name);
        rw[RW_SPLIT] += n->op == OP_CONV2D && l > 4 && !strcmp(n->name + l - 4, "/1x3");
        for (int k = 0; k < n->nepi; k++) {
            rw[RW_FUSE_ACT] += n->epi[k].act != NULL;
            rw[RW_FUSE_RES] += n->epi[k].residual >= 0;
        }
        rw[RW_INPLACE] += n->inplace;
        rw[RW_WINOGRAD] += n->algo == CONV_ALGO_WINOGRAD43;
        rw[RW_WINOGRAD23] += n->algo == CONV_ALGO_WINOGRAD23;
        rw[RW_FUSE_DW] += n->algo == CONV_ALGO_DW_ROWS;
        rw[RW_CONCAT] += n->op == OP_CONCAT && n->concat_elim;
    }
    for (int i = 0; i < g->tensors.len; i++) rw[RW_CONCAT_IN] += ir_tensor(g, i)->alias >= 0;
    rw[RW_FOLD] = bn0 - bn1;
}

static double max_abs(const float *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i])) m = fmax(m, fabs(x[i]));
    return m;
}

/* --inject-fault scale: of the concats' branches computed by a conv2d or a linear, the weakest
 * next to its concat (max|branch| / max|concat|, on these inputs) gets weights and bias scaled by
 * 1 + δ, δ = 5e-6 / that ratio (at most 1 %): the concat's max|Δ| / max|ref| is then 5e-6, below the 1e-5 of
 * the old whole-tensor check of the interpreter after the passes (and the 1e-4 of the compiled
 * code's), while the weak branch is off by δ of its own size. Only a per-element tolerance can
 * see it. Nothing happens without such a branch. */
static void inject_scale_fault(Graph *g, const float *const *in) {
    float **val = NULL;
    float **sig = error_bounds(g, in, true, &val);
    for (int i = 0; i < g->noutputs; i++) free(sig[i]);
    free(sig);
    Node *target = NULL;
    double best = INFINITY;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead || n->op != OP_CONCAT) continue;
        double m = max_abs(val[n->out], ir_numel(ir_tensor(g, n->out)));
        for (int k = 0; k < n->nin && m > 0; k++) {
            Node *p = NULL;
            for (int j = 0; j < g->nodes.len && !p; j++)
                if (!ir_node(g, j)->dead && ir_node(g, j)->out == n->in[k]) p = ir_node(g, j);
            if (!p || (p->op != OP_CONV2D && p->op != OP_LINEAR)) continue;
            double r = max_abs(val[n->in[k]], ir_numel(ir_tensor(g, n->in[k]))) / m;
            if (r > 0 && r < best) best = r, target = p;
        }
    }
    double delta = fmin(5e-6 / best, 1e-2);
    for (int k = 0; target && k < 2; k++) {
        Tensor *w = ir_weight(g, target, k ? "bias" : "weight");
        for (int64_t q = 0; w && q < ir_numel(w); q++) w->data[q] = (float)(w->data[q] * (1 + delta));
    }
    for (int t = 0; t < g->tensors.len; t++) free(val[t]);
    free(val);
}

/* A deliberately broken "pass", to show the tester catches one (--inject-fault). */
static void inject_fault(Graph *g, int fault) {
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->dead) continue;
        if (fault == FAULT_EPILOGUE && n->nepi > 0) {
            n->nepi--; /* "forgets" the last fused step */
            return;
        }
        if (fault == FAULT_INPLACE && (op_info(n->op)->flags & OPF_ELEMENTWISE) && n->nin == 1 && !n->inplace &&
            ir_inplace_unsafe(g, n, NULL) && !pass_is_graph_input(g, n->in[0])) {
            n->inplace = true; /* overwrites a tensor that is still read later */
            return;
        }
        if (fault == FAULT_WEIGHT && n->op == OP_CONV2D) {
            Tensor *w = ir_weight(g, n, "weight");
            w->data[ir_numel(w) / 2] += 0.5f; /* a folding mistake in one weight */
            return;
        }
    }
}

static float poison_value(uint64_t seed) { return seed & 1 ? 3e38f : 1e30f; }

/* Check one graph at every configuration: the passes (a refusal of a list is noted, not a
 * failure), the interpreter on the optimised graph, code generation, and three runs of the
 * compiled model against the reference interpreter on the unoptimised graph. */
static void check_graph(const Config *c, const char *text, size_t len, uint64_t seed, const Cfg *cfgs, int ncfg,
                        Shared *sh) {
    sh->stage = STAGE_LOAD;
    sh->cfg = -1;
    Diags d;
    diags_init(&d);
    Graph *g0 = load_graph(text, len, seed, &d);
    if (!g0) {
        sh->status = ST_DISCARD;
        snprintf(sh->kind, sizeof sh->kind, "invalid");
        diags_into(sh, &d);
        return;
    }
    for (int i = 0; i < g0->nodes.len; i++) {
        sh->nodes++;
        sh->opcount[ir_node(g0, i)->op]++;
    }
    int ni = g0->ninputs, no = g0->noutputs, special = special_kind(c->special, seed);
    float **in = xcalloc((size_t)ni, sizeof *in), **ref = xcalloc((size_t)no, sizeof *ref);
    float **out = xcalloc((size_t)no, sizeof *out), **in_run = xcalloc((size_t)ni, sizeof *in_run);
    float **out_run = xcalloc((size_t)no, sizeof *out_run);
    float **in_mem = xcalloc((size_t)ni, sizeof *in_mem), **out_mem = xcalloc((size_t)no, sizeof *out_mem);
    for (int i = 0; i < ni; i++) {
        int64_t n = ir_numel(ir_tensor(g0, g0->inputs[i]));
        in[i] = xmalloc((size_t)n * sizeof(float));
        in_mem[i] = xmalloc((size_t)(n + 1) * sizeof(float));
        fill_inputs(in[i], n, seed, i, special);
    }
    for (int i = 0; i < no; i++) {
        int64_t n = ir_numel(ir_tensor(g0, g0->outputs[i]));
        ref[i] = xmalloc((size_t)n * sizeof(float));
        out[i] = xmalloc((size_t)n * sizeof(float));
        out_mem[i] = xmalloc((size_t)(n + 1) * sizeof(float));
    }
    sh->stage = STAGE_REF;
    if (!interp_run(g0, (const float *const *)in, ref, &d)) {
        fail(sh, "interp", "the reference interpreter failed on the unoptimised graph:\n");
        diags_into(sh, &d);
        return;
    }
    sh->stage = STAGE_BOUNDS;
    const float *const *inputs = (const float *const *)in;
    float **sig0 = error_bounds(g0, inputs, false, NULL), **sig0d = error_bounds(g0, inputs, true, NULL);
    netrt_pool *pool = netrt_pool_create(2);
    char sb[128], mb[512], cn[LIST_CAP + 32];
    for (int ci = 0; ci < ncfg; ci++) {
        const Cfg *cf = &cfgs[ci];
        cfg_name(cf, cn, sizeof cn);
        sh->cfg = ci;
        sh->stage = STAGE_PASSES;
        diags_free(&d);
        diags_init(&d);
        Graph *g = load_graph(text, len, seed, &d);
        if (!g) {
            fail(sh, "reload", "the graph did not load a second time:\n");
            diags_into(sh, &d);
            return;
        }
        PassOptions po = {.opt_level = cf->level, .list = cf->list[0] ? cf->list : NULL, .split_tol = 1e-6,
                          .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT, .pass_limit = c->pass_limit, .verify = true,
                          .ndisabled = c->ndisabled, .fuse_dw_min_bytes = -1 /* every pair: the graphs are small */};
        memcpy(po.disabled, c->disabled, sizeof po.disabled);
        if (!passes_validate(&po, &d) || !passes_run(g, &po, &d, stderr)) {
            char *s = diags_to_string(&d);
            bool refused = strstr(s, "is not supported") && !strstr(s, "internal error");
            if (refused) {
                sh->refused[ci] = true;
                if (!sh->refusal[0]) snprintf(sh->refusal, sizeof sh->refusal, "%s: %s", cn, s);
                sh->refusal[strcspn(sh->refusal, "\n")] = 0;
            }
            free(s);
            if (refused) {
                ir_graph_free(g);
                continue;
            }
            fail(sh, "pass-error", "%s: the passes failed:\n", cn);
            diags_into(sh, &d);
            return;
        }
        if (c->fault == FAULT_SCALE && cfg_has_passes(cf)) inject_scale_fault(g, inputs);
        else if (c->fault && cfg_has_passes(cf)) inject_fault(g, c->fault);
        /* half the graphs run what the pass chose as F(4,3) by F(2,3) instead, as the pass does
           where F(4,3) exceeds the tolerance: F(2,3)'s kernel and bound on every shape the pass
           takes (the graphs' channel counts rarely reach the 64 of the pass's own F(2,3) choice) */
        if (hash_str(seed, "winograd f23") % 2 == 0)
            for (int i = 0; i < g->nodes.len; i++)
                if (ir_node(g, i)->algo == CONV_ALGO_WINOGRAD43) ir_node(g, i)->algo = CONV_ALGO_WINOGRAD23;
        count_rewrites(g0, g, sh->rw[ci]);
        bool inf_split = special != SP_NONE && (sh->rw[ci][RW_SPLIT] > 0 || sh->rw[ci][RW_WINOGRAD] > 0 ||
                                                sh->rw[ci][RW_WINOGRAD23] > 0);
        /* the tolerance: the larger of the two graphs' bounds (each bounds an implementation of its
           graph against the exact result; the reference's own error is far below its bound), with
           double sums for the interpreter after the passes */
        sh->stage = STAGE_BOUNDS;
        float **sig = error_bounds(g, inputs, false, NULL), **sigd = error_bounds(g, inputs, true, NULL);
        for (int i = 0; i < no; i++)
            for (int64_t k = 0; k < ir_numel(ir_tensor(g0, g0->outputs[i])); k++) {
                sig[i][k] = fmaxf(sig[i][k], sig0[i][k]);
                sigd[i][k] = fmaxf(sigd[i][k], sig0d[i][k]);
            }

        sh->stage = STAGE_INTERP_AFTER;
        if (!interp_run(g, inputs, out, &d)) {
            fail(sh, "interp-after", "%s: the interpreter failed on the optimised graph:\n", cn);
            diags_into(sh, &d);
            return;
        }
        for (int i = 0; i < no; i++) {
            const Tensor *t = ir_tensor(g0, g0->outputs[i]);
            Cmp m = compare(out[i], ref[i], sigd[i], ir_numel(t), inf_split);
            sh->excused += m.excused;
            sh->err_passes[ci] = fmax(sh->err_passes[ci], m.ratio);
            if (m.ratio > 1) {
                fail(sh, "passes", "%s: the interpreter after the passes differs from before: output '%s' %s %s", cn,
                     g0->output_names[i], ir_shape_str(t, sb, sizeof sb),
                     mismatch_str(t, &m, out[i], ref[i], mb, sizeof mb));
                return;
            }
        }

        sh->stage = STAGE_CODEGEN;
        char so[256];
        snprintf(so, sizeof so, "%s/s%llu-c%d.so", c->tmpdir, (unsigned long long)seed, ci);
        CodegenOptions co = {.emit = EMIT_SO, .out = so, .cpu = g_cpu, .opt_level = cf->level};
        if (!codegen_emit(g, &co, &d)) {
            fail(sh, "codegen", "%s: code generation failed:\n", cn);
            diags_into(sh, &d);
            return;
        }
        sh->stage = STAGE_OPEN;
        char err[512];
        netrt_model *m = netrt_open(so, err, sizeof err);
        unlink(so);
        if (!m) {
            fail(sh, "load", "%s: %s", cn, err);
            return;
        }
        bool shapes_ok = netrt_num_inputs(m) == ni && netrt_num_outputs(m) == no;
        for (int i = 0; shapes_ok && i < ni; i++)
            shapes_ok = (int64_t)netrt_tensor_count(netrt_input(m, i)) == ir_numel(ir_tensor(g0, g0->inputs[i]));
        for (int i = 0; shapes_ok && i < no; i++)
            shapes_ok = (int64_t)netrt_tensor_count(netrt_output(m, i)) == ir_numel(ir_tensor(g0, g0->outputs[i]));
        if (!shapes_ok) {
            fail(sh, "descriptor", "%s: the model's descriptor does not match the graph's inputs and outputs", cn);
            return;
        }
        void *ws = netrt_alloc_workspace(m);
        size_t wsize = (size_t)netrt_desc(m)->workspace_size;
        float poison = poison_value(seed);
        /* Nothing may read memory it did not write: run 0 starts from a workspace of NaN, run 1
           (two threads, caller buffers only 4-byte aligned, as the runtime promises nothing more)
           from the workspace run 0 left, run 2 from one of a large finite value, which a relu
           or a max cannot turn into a plausible number. Output buffers start as NaN, then as the
           large value: every element must be written. */
        for (int run = 0; run < NRUNS; run++) {
            sh->stage = STAGE_RUN + run;
            int off = run == 1;
            if (run == 0) memset(ws, 0xff, wsize);
            if (run == 2)
                for (size_t k = 0; k + sizeof poison <= wsize; k += sizeof poison)
                    memcpy((char *)ws + k, &poison, sizeof poison);
            for (int i = 0; i < ni; i++) {
                int64_t n = ir_numel(ir_tensor(g0, g0->inputs[i]));
                in_run[i] = in_mem[i] + off;
                memcpy(in_run[i], in[i], (size_t)n * sizeof(float));
            }
            for (int i = 0; i < no; i++) {
                int64_t n = ir_numel(ir_tensor(g0, g0->outputs[i]));
                out_run[i] = out_mem[i] + off;
                for (int64_t k = 0; k < n; k++) out_run[i][k] = run == 2 ? poison : NAN;
            }
            char rn[96];
            snprintf(rn, sizeof rn, run == 2 ? "%s %g" : "%s", run_names[run], poison);
            netrt_status st = netrt_run(m, (const float *const *)in_run, out_run, ws, run == 1 ? pool : NULL);
            if (st != NETRT_OK) {
                fail(sh, "run", "%s (%s): netrt_run: %s", cn, rn, netrt_status_str(st));
                return;
            }
            for (int i = 0; i < ni; i++) {
                const Tensor *t = ir_tensor(g0, g0->inputs[i]);
                if (memcmp(in_run[i], in[i], (size_t)ir_numel(t) * sizeof(float))) {
                    fail(sh, "input-overwritten", "%s (%s): the compiled model wrote into its input '%s'", cn, rn,
                         t->name);
                    return;
                }
            }
            for (int i = 0; i < no; i++) {
                const Tensor *t = ir_tensor(g0, g0->outputs[i]);
                Cmp e = compare(out_run[i], ref[i], sig[i], ir_numel(t), inf_split);
                sh->excused += e.excused;
                sh->err[ci] = fmax(sh->err[ci], e.ratio);
                if (e.ratio > 1) {
                    fail(sh, "mismatch", "%s (%s): compiled output '%s' %s differs from the reference %s", cn, rn,
                         g0->output_names[i], ir_shape_str(t, sb, sizeof sb),
                         mismatch_str(t, &e, out_run[i], ref[i], mb, sizeof mb));
                    return;
                }
            }
        }
        sh->stage = STAGE_DONE;
        for (int i = 0; i < no; i++) free(sig[i]), free(sigd[i]);
        free(sig), free(sigd);
        netrt_free_workspace(ws);
        netrt_close(m);
        ir_graph_free(g);
        sh->done[ci] = true;
    }
    netrt_pool_destroy(pool);
    for (int i = 0; i < ni; i++) free(in[i]), free(in_mem[i]);
    for (int i = 0; i < no; i++) free(ref[i]), free(out[i]), free(out_mem[i]), free(sig0[i]), free(sig0d[i]);
    free(in), free(ref), free(out), free(in_run), free(out_run), free(in_mem), free(out_mem), free(sig0), free(sig0d);
    ir_graph_free(g0);
    diags_free(&d);
    sh->status = ST_PASS;
}

/* Fork a child that checks `text` at `cfgs`; the result lands in *sh. */
static pid_t spawn_check(const Config *c, const char *text, size_t len, uint64_t seed, const Cfg *cfgs, int ncfg,
                         Shared *sh) {
    memset(sh, 0, sizeof *sh);
    sh->status = -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("netc-difftest: fork");
        exit(2);
    }
    if (pid == 0) {
        /* the child's stderr (an assertion's message, a sanitizer's report) goes to a file the
           parent appends to the failure */
        char path[256];
        snprintf(path, sizeof path, "%s/s%llu.stderr", c->tmpdir, (unsigned long long)seed);
        FILE *e = fopen(path, "w");
        if (e) {
            dup2(fileno(e), 2);
            fclose(e);
        }
        alarm((unsigned)c->timeout);
        check_graph(c, text, len, seed, cfgs, ncfg, sh);
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    return pid;
}

/* After the child ended: turn a crash, a timeout or a silent exit into a failure. */
static void finish_check(const Config *c, Shared *sh, uint64_t seed, const Cfg *cfgs, int wstatus) {
    for (int i = 0; i < MAX_CFGS; i++) {
        char so[256];
        snprintf(so, sizeof so, "%s/s%llu-c%d.so", c->tmpdir, (unsigned long long)seed, i);
        unlink(so);
    }
    char path[256], tail[1024] = "";
    snprintf(path, sizeof path, "%s/s%llu.stderr", c->tmpdir, (unsigned long long)seed);
    FILE *e = fopen(path, "r");
    if (e) {
        fseek(e, 0, SEEK_END);
        long size = ftell(e);
        fseek(e, size > (long)sizeof tail - 1 ? size - (long)sizeof tail + 1 : 0, SEEK_SET);
        size_t n = fread(tail, 1, sizeof tail - 1, e);
        tail[n] = 0;
        fclose(e);
        unlink(path);
    }
    if (sh->status >= 0 && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
        if (sh->status == ST_FAIL && tail[0]) {
            size_t l = strlen(sh->msg);
            snprintf(sh->msg + l, sizeof sh->msg - l, "\n  stderr: %s", tail);
        }
        return;
    }
    char where[LIST_CAP + 32] = "", cn[LIST_CAP + 32];
    if (sh->cfg >= 0) snprintf(where, sizeof where, " at %s", cfg_name(&cfgs[sh->cfg], cn, sizeof cn));
    if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        fail(sh, sig == SIGALRM ? "timeout" : "crash", "%s during %s%s%s", sig == SIGALRM ? "timed out" : strsignal(sig),
             stage_names[sh->stage], where, sig == SIGALRM ? "" : " (the child process died)");
    } else {
        fail(sh, "exit", "the check exited with status %d during %s%s", WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1,
             stage_names[sh->stage], where);
    }
    if (tail[0]) {
        size_t l = strlen(sh->msg);
        snprintf(sh->msg + l, sizeof sh->msg - l, "\n  stderr: %s", tail);
    }
}

static void run_check(const Config *c, const GGraph *G, const Cfg *cfgs, int ncfg, Shared *sh) {
    size_t len;
    char *text = render(G, &len);
    pid_t pid = spawn_check(c, text, len, G->seed, cfgs, ncfg, sh);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    finish_check(c, sh, G->seed, cfgs, ws);
    free(text);
}

/* ---- minimising a failing graph ----------------------------------------------------------- */

/* A trial checks only the failing configuration (index 0 then), or none for a failure before. */
static bool same_failure(const Shared *a, const Shared *b) {
    return b->status == ST_FAIL && !strcmp(a->kind, b->kind) && (a->cfg >= 0) == (b->cfg >= 0) &&
           (strcmp(a->kind, "crash") || a->stage == b->stage);
}

/* Delete op j: its readers read instead one of its inputs of the same shape (or the latest
 * earlier tensor of that shape); an output it was is dropped if no such tensor exists. */
static bool delete_op(GGraph *G, int j) {
    GOp *o = &G->ops[j];
    if (!o->alive) return false;
    int v = G->ninputs + j, repl = -1;
    for (int k = 0; k < o->nin && repl < 0; k++)
        if (shape_eq(value_shape(G, o->in[k]), &o->shape)) repl = o->in[k];
    for (int u = v - 1; u >= 0 && repl < 0; u--)
        if (value_alive(G, u) && shape_eq(value_shape(G, u), &o->shape)) repl = u;
    for (int k = j + 1; k < G->nops; k++) {
        GOp *q = &G->ops[k];
        if (!q->alive) continue;
        for (int i = 0; i < q->nin; i++) {
            if (q->in[i] != v) continue;
            if (repl < 0) return false;
            q->in[i] = repl;
        }
    }
    int n = 0;
    for (int i = 0; i < G->noutputs; i++) {
        int w = G->outputs[i];
        if (w == v) w = repl >= G->ninputs ? repl : -1;
        for (int k = 0; k < n && w >= 0; k++)
            if (G->outputs[k] == w) w = -1;
        if (w >= 0) G->outputs[n++] = w;
    }
    if (!n) return false;
    G->noutputs = n;
    o->alive = false;
    return true;
}

/* Remove graph input i when nothing reads it (values after it shift down by one). */
static bool delete_input(GGraph *G, int i) {
    if (G->ninputs < 2 || value_readers(G, i)) return false;
    for (int k = i; k + 1 < G->ninputs; k++) G->input[k] = G->input[k + 1];
    G->ninputs--;
    for (int j = 0; j < G->nops; j++)
        for (int k = 0; k < G->ops[j].nin; k++)
            if (G->ops[j].in[k] > i) G->ops[j].in[k]--;
    for (int k = 0; k < G->noutputs; k++)
        if (G->outputs[k] > i) G->outputs[k]--;
    return true;
}

/* Batch 2 -> 1 everywhere (no op of the generator depends on N). */
static bool shrink_batch(GGraph *G) {
    if (G->input[0].d[0] == 1) return false;
    for (int i = 0; i < G->ninputs; i++) G->input[i].d[0] = 1;
    for (int j = 0; j < G->nops; j++) G->ops[j].shape.d[0] = 1;
    return true;
}

/* Every op's shape again, from the front end, after an input's shape or a channel count changed;
 * false when the graph is no longer valid (a residual add of two shapes, a slice past the end). */
static bool reshape(GGraph *G) {
    size_t len;
    char *text = render_text(G, &len, true);
    Diags d;
    diags_init(&d);
    FrontendOptions fo = {.quiet = true, .no_weights = true};
    Graph *g = frontend_load_text("difftest.net", text, len, &fo, &d);
    free(text);
    bool ok = g != NULL;
    for (int j = 0; ok && j < G->nops; j++) {
        if (!G->ops[j].alive) continue;
        char name[16];
        snprintf(name, sizeof name, "t%d", j);
        const Tensor *t = NULL;
        for (int i = 0; i < g->tensors.len && !t; i++)
            if (!strcmp(ir_tensor(g, i)->name, name)) t = ir_tensor(g, i);
        ok = t && t->rank <= 4;
        if (!ok) break;
        G->ops[j].shape.rank = t->rank;
        memcpy(G->ops[j].shape.d, t->shape, (size_t)t->rank * sizeof *t->shape);
    }
    if (g) ir_graph_free(g);
    diags_free(&d);
    return ok;
}

/* Halve input i's H and W (what 0), H (1), W (2) or C (3); i < 0: H and W of every input. */
static bool shrink_input(GGraph *G, int i, int what) {
    static const int axes[4][2] = {{2, 3}, {2, -1}, {3, -1}, {1, -1}};
    bool any = false;
    for (int k = i < 0 ? 0 : i; k < (i < 0 ? G->ninputs : i + 1); k++)
        for (int a = 0; a < 2; a++) {
            int ax = axes[what][a];
            if (ax < 0 || G->input[k].d[ax] < 2) continue;
            G->input[k].d[ax] /= 2;
            any = true;
        }
    return any && reshape(G);
}

/* Halve op j's output channel count (conv2d, conv_transpose2d, linear, cbr). */
static bool shrink_channels(GGraph *G, int j) {
    GOp *o = &G->ops[j];
    if (!o->alive || !o->ch_len || o->ch < 2) return false;
    char args[sizeof o->args];
    int64_t ch = o->ch / 2;
    snprintf(args, sizeof args, ", %lld%s", (long long)ch, o->args + 2 + o->ch_len);
    memcpy(o->args, args, sizeof args);
    o->ch = ch;
    o->ch_len = snprintf(NULL, 0, "%lld", (long long)ch);
    return reshape(G);
}

typedef struct Minimiser {
    const Config *c;
    Cfg cfg;       /* the failing configuration (the pass list may shrink too) */
    Shared *trial; /* a trial's report (shared memory) */
    int tries;
} Minimiser;

/* Does `cand` (with configuration cf) still fail as *sh did? Then it becomes the graph. */
static bool try_graph(Minimiser *mz, GGraph *G, const GGraph *cand, const Cfg *cf, Shared *sh) {
    mz->tries++;
    run_check(mz->c, cand, cf, sh->cfg >= 0 ? 1 : 0, mz->trial);
    if (!same_failure(sh, mz->trial)) return false;
    *G = *cand;
    *sh = *mz->trial;
    mz->cfg = *cf;
    return true;
}

/* The pass list without entry k */
static bool list_without(const char *list, int k, char *out, size_t cap) {
    int at = 0;
    out[0] = 0;
    bool dropped = false;
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (at++ == k) dropped = true;
        else app(out, cap, "%s%.*s", out[0] ? "," : "", (int)l, p);
        p += l + (p[l] == ',');
    }
    return dropped && out[0];
}

/* Fewer passes: drop one entry of the list at a time while the failure persists. An -O level's
 * failure becomes its level's list first (kept only when a shorter list still fails). */
static bool shrink_passes(Minimiser *mz, GGraph *G, Shared *sh) {
    if (sh->cfg < 0 || !cfg_has_passes(&mz->cfg)) return false;
    bool shrunk = false, again = true;
    while (again) {
        again = false;
        char cur[LIST_CAP];
        snprintf(cur, sizeof cur, "%s", mz->cfg.list[0] ? mz->cfg.list : pass_level_list(mz->cfg.level));
        for (int k = 0; !again; k++) {
            Cfg cand = {.level = mz->cfg.level};
            if (!list_without(cur, k, cand.list, sizeof cand.list)) break; /* past the end, or one pass left */
            if (try_graph(mz, G, G, &cand, sh)) {
                shrunk = again = true;
                if (mz->c->verbose) printf("  minimise: --passes=%s\n", cand.list);
            }
        }
    }
    return shrunk;
}

static void minimise(const Config *c, GGraph *G, Shared *sh, Cfg *cfg) {
    Minimiser mz = {c, *cfg, mmap(NULL, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0), 0};
    enum { MAX_TRIES = 600 };
    shrink_passes(&mz, G, sh);
    for (bool changed = true; changed && mz.tries < MAX_TRIES;) {
        changed = false;
        for (int j = G->nops - 1; j >= 0; j--) {
            GGraph cand = *G;
            if (delete_op(&cand, j) && try_graph(&mz, G, &cand, &mz.cfg, sh)) {
                changed = true;
                if (c->verbose) printf("  minimise: deleted t%d, %d ops left\n", j, alive_ops(G));
            }
        }
        for (int i = G->noutputs - 1; i >= 0 && G->noutputs > 1; i--) {
            GGraph cand = *G;
            memmove(&cand.outputs[i], &cand.outputs[i + 1], (size_t)(cand.noutputs - i - 1) * sizeof *cand.outputs);
            cand.noutputs--;
            changed |= try_graph(&mz, G, &cand, &mz.cfg, sh);
        }
        for (int i = G->ninputs - 1; i >= 0; i--) {
            GGraph cand = *G;
            changed |= delete_input(&cand, i) && try_graph(&mz, G, &cand, &mz.cfg, sh);
        }
        GGraph cand = *G;
        changed |= shrink_batch(&cand) && try_graph(&mz, G, &cand, &mz.cfg, sh);
        /* smaller tensors: halve the inputs' H and W (all at once, then one by one), H, W or C */
        for (int what = 0; what < 4; what++)
            for (int i = -1; i < G->ninputs; i++) {
                if (i < 0 && (what || G->ninputs < 2)) continue;
                cand = *G;
                if (shrink_input(&cand, i, what) && try_graph(&mz, G, &cand, &mz.cfg, sh)) {
                    changed = true;
                    const Shape *x = &G->input[i < 0 ? 0 : i];
                    if (c->verbose)
                        printf("  minimise: input%s %d now [%lld, %lld, %lld, %lld]\n", i < 0 ? "s" : "", i < 0 ? 0 : i,
                               (long long)x->d[0], (long long)x->d[1], (long long)x->d[2], (long long)x->d[3]);
                }
            }
        for (int j = G->nops - 1; j >= 0; j--) {
            cand = *G;
            if (shrink_channels(&cand, j) && try_graph(&mz, G, &cand, &mz.cfg, sh)) {
                changed = true;
                if (c->verbose) printf("  minimise: t%d has %lld channels\n", j, (long long)G->ops[j].ch);
            }
        }
        changed |= shrink_passes(&mz, G, sh);
    }
    if (c->verbose) printf("  minimise: %d trials\n", mz.tries);
    *cfg = mz.cfg;
    munmap(mz.trial, sizeof(Shared));
}
/* ---- writing a failure out ---------------------------------------------------------------- */

/* safetensors: 8-byte little-endian header length, JSON header (padded with spaces to a multiple
 * of 8), then the F32 data in header order. */
static bool write_safetensors(const char *path, const Graph *g) {
    char *hdr = NULL;
    size_t hlen = 0;
    FILE *h = open_memstream(&hdr, &hlen);
    fputc('{', h);
    uint64_t off = 0;
    bool first = true;
    for (int i = 0; i < g->tensors.len; i++) {
        const Tensor *t = ir_tensor(g, i);
        if (t->kind != TK_WEIGHT || !t->data) continue;
        uint64_t bytes = (uint64_t)ir_numel(t) * 4;
        fprintf(h, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[", first ? "" : ",", t->name);
        for (int a = 0; a < t->rank; a++) fprintf(h, "%s%lld", a ? "," : "", (long long)t->shape[a]);
        fprintf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
        first = false;
    }
    fputc('}', h);
    while ((ftell(h) % 8) != 0) fputc(' ', h);
    fclose(h);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return false;
    }
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    fwrite(len8, 1, 8, f);
    fwrite(hdr, 1, hlen, f);
    for (int i = 0; i < g->tensors.len; i++) {
        const Tensor *t = ir_tensor(g, i);
        if (t->kind == TK_WEIGHT && t->data) fwrite(t->data, 4, (size_t)ir_numel(t), f);
    }
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    free(hdr);
    return ok;
}

static void report_failure(const Config *c, GGraph *G, Shared *sh, const Cfg *cfg, int ops_before) {
    size_t len;
    char *text = render(G, &len);
    char base[1024], path[1200];
    snprintf(base, sizeof base, "%s/difftest-fail-%llu", c->out_dir, (unsigned long long)G->seed);
    snprintf(path, sizeof path, "%s.net", base);
    FILE *f = fopen(path, "w");
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
    } else {
        fprintf(stderr, "netc-difftest: cannot write %s: %s\n", path, strerror(errno));
    }
    Diags d;
    diags_init(&d);
    Graph *g = load_graph(text, len, G->seed, &d);
    char ins[1024] = "", outs_ref[1024] = "", outs_so[1024] = "";
    int special = special_kind(c->special, G->seed);
    if (g) {
        snprintf(path, sizeof path, "%s.safetensors", base);
        if (!write_safetensors(path, g)) fprintf(stderr, "netc-difftest: cannot write %s\n", path);
        for (int i = 0; i < g->ninputs; i++) {
            const Tensor *t = ir_tensor(g, g->inputs[i]);
            float *x = xmalloc((size_t)ir_numel(t) * sizeof *x);
            fill_inputs(x, ir_numel(t), G->seed, i, special);
            char err[256];
            snprintf(path, sizeof path, "%s.%s.npy", base, t->name);
            if (netrt_npy_write(path, x, t->rank, t->shape, err, sizeof err)) fprintf(stderr, "netc-difftest: %s\n", err);
            app(ins, sizeof ins, " --input %s=%s", t->name, path);
            free(x);
        }
        for (int i = 0; i < g->noutputs; i++) {
            app(outs_ref, sizeof outs_ref, " --output %s=%s.%s.ref.npy", g->output_names[i], base, g->output_names[i]);
            app(outs_so, sizeof outs_so, " --output %s=%s.%s.out.npy", g->output_names[i], base, g->output_names[i]);
        }
        ir_graph_free(g);
    }
    diags_free(&d);
    bool has_cfg = sh->cfg >= 0;
    char cn[LIST_CAP + 32] = "-O2", flags[LIST_CAP + 512] = "", recheck[LIST_CAP + 64];
    if (has_cfg) cfg_name(cfg, cn, sizeof cn);
    app(flags, sizeof flags, " %s", cn);
    for (int i = 0; i < c->ndisabled; i++) app(flags, sizeof flags, " --disable-pass=%s", c->disabled[i]);
    if (c->pass_limit >= 0) app(flags, sizeof flags, " --pass-limit=%lld", (long long)c->pass_limit);
    if (has_cfg && cfg->list[0]) snprintf(recheck, sizeof recheck, "--opt-levels 0 --passes %s", cfg->list);
    else snprintf(recheck, sizeof recheck, "--opt-levels %d", has_cfg ? cfg->level : 0);
    printf("FAIL seed %llu [%s]: %s\n", (unsigned long long)G->seed, sh->kind, sh->msg);
    if (has_cfg) printf("  configuration: %s\n", cn);
    if (special) printf("  inputs: uniform in [-1, 1] with a few %s\n", special_names[special]);
    if (c->minimise)
        printf("  minimised from %d to %d ops; ", ops_before, alive_ops(G));
    else
        printf("  not minimised (%d ops); ", ops_before);
    printf("wrote %s.net, %s.safetensors and the inputs as .npy\n", base, base);
    printf("  reproduce (reference, then with the passes%s):\n",
           !strcmp(sh->kind, "passes") || !strcmp(sh->kind, "pass-error") ? "" : ", compiled");
    printf("    netc run %s.net --weights %s.safetensors%s%s\n", base, base, ins, outs_ref);
    if (!strcmp(sh->kind, "passes") || !strcmp(sh->kind, "pass-error"))
        printf("    netc run %s.net --weights %s.safetensors%s%s\n", base, base, flags, ins);
    else
        printf("    netc %s.net%s --weights %s.safetensors -o %s.so && netrun %s.so%s%s%s\n", base, flags, base, base, base,
               ins, outs_so, !strcmp(sh->kind, "mismatch") && strstr(sh->msg, "2 threads") ? " --threads 2" : " --threads 1");
    if (!strcmp(sh->kind, "mismatch") && strstr(sh->msg, "poisoned"))
        printf("    (netrun does not poison the workspace: the recheck below does)\n");
    printf("  recheck: netc-difftest --file %s.net --seed %llu %s --pass-orders 0 --special %d\n", base,
           (unsigned long long)G->seed, recheck, special ? 1 : 0);
    printf("  --- %s.net ---\n%s  ---\n", base, text);
    free(text);
}
/* ---- the driver --------------------------------------------------------------------------- */

static const char usage[] =
    "usage: netc-difftest [--count N] [--seed S] [--out DIR] [--opt-levels 0,2,3] [--pass-orders N]\n"
    "                     [--passes LIST]... [--list-level L] [--special FRACTION] [-v] [--jobs J] [--max-ops N]\n"
    "                     [--exclude OP,...] [--pass-limit N] [--keep-going] [--no-minimise]\n"
    "                     [--inject-fault epilogue|inplace|weight|scale] [--timeout SEC] [--dump]\n"
    "                     [--disable-pass NAME]... [--cpu NAME]\n"
    "       netc-difftest --file MODEL.net [--seed S] [same options] (check one file)\n"
    "Generates N random .net graphs (graph i has seed S+i) and checks each at every -O level, at each\n"
    "--passes list and at N random pass lists (default 2: a permutation of every pass, then 1-7 passes\n"
    "drawn with repetition; their code at -O of --list-level, default 0), comparing the optimised\n"
    "graph in the interpreter and the compiled model with the reference interpreter on the\n"
    "unoptimised graph, element by element against an error bound. A pass list the pass manager\n"
    "refuses (\"is not supported\") is counted, not a failure.\n"
    "--special: the fraction of graphs (default 0.25) whose inputs hold a few NaN, ±inf or ±1e30.\n"
    "Exit 0: all passed; 1: a failure (minimised and written to DIR); 2: usage. With --inject-fault\n"
    "the passes are deliberately broken and the exit status is 0 only when the tester caught it.\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool parse_fraction(const char *s, double *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || *end || !*s || !(x >= 0 && x <= 1)) return false;
    *v = x;
    return true;
}

static bool parse_u64(const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || !*s || *s == '-') return false;
    *v = x;
    return true;
}

static int parse_args(int argc, char **argv, Config *c) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        const char *eq = strchr(a, '=');
        char flag[64];
        snprintf(flag, sizeof flag, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
        bool takes = !strcmp(flag, "--count") || !strcmp(flag, "--seed") || !strcmp(flag, "--out") ||
                     !strcmp(flag, "--opt-levels") || !strcmp(flag, "--jobs") || !strcmp(flag, "--max-ops") ||
                     !strcmp(flag, "--exclude") || !strcmp(flag, "--pass-limit") || !strcmp(flag, "--inject-fault") ||
                     !strcmp(flag, "--timeout") || !strcmp(flag, "--file") || !strcmp(flag, "--disable-pass") ||
                     !strcmp(flag, "--passes") || !strcmp(flag, "--pass-orders") || !strcmp(flag, "--special") ||
                     !strcmp(flag, "--list-level") || !strcmp(flag, "--cpu");
        if (takes) {
            if (eq) v = eq + 1;
            else if (i + 1 < argc) v = argv[++i];
            else return fprintf(stderr, "netc-difftest: %s needs a value\n%s", flag, usage), 2;
        }
        uint64_t n;
        if (!strcmp(flag, "--count") || !strcmp(flag, "--jobs") || !strcmp(flag, "--max-ops") ||
            !strcmp(flag, "--timeout") || !strcmp(flag, "--pass-limit") || !strcmp(flag, "--seed") ||
            !strcmp(flag, "--pass-orders") || !strcmp(flag, "--list-level")) {
            if (!parse_u64(v, &n)) return fprintf(stderr, "netc-difftest: %s needs a non-negative integer, got '%s'\n", flag, v), 2;
            if (!strcmp(flag, "--count")) c->count = (int)n;
            else if (!strcmp(flag, "--jobs")) c->jobs = n ? (int)n : 1;
            else if (!strcmp(flag, "--max-ops")) c->max_ops = n < 1 ? 1 : n > 60 ? 60 : (int)n;
            else if (!strcmp(flag, "--timeout")) c->timeout = n ? (int)n : 1;
            else if (!strcmp(flag, "--pass-limit")) c->pass_limit = (int64_t)n;
            else if (!strcmp(flag, "--pass-orders")) c->pass_orders = n > MAX_ORDERS ? MAX_ORDERS : (int)n;
            else if (!strcmp(flag, "--list-level")) c->list_level = n > 3 ? 3 : (int)n;
            else c->seed = n;
        } else if (!strcmp(flag, "--out")) {
            c->out_dir = v;
        } else if (!strcmp(flag, "--cpu")) {
            c->cpu = g_cpu = v;
        } else if (!strcmp(flag, "--file")) {
            c->file = v;
        } else if (!strcmp(flag, "--passes")) {
            if (c->nlists == MAX_LISTS) return fprintf(stderr, "netc-difftest: at most %d --passes\n", MAX_LISTS), 2;
            if (!*v || strlen(v) >= LIST_CAP)
                return fprintf(stderr, "netc-difftest: --passes: a list of 1 to %d characters\n", LIST_CAP - 1), 2;
            c->lists[c->nlists++] = v;
        } else if (!strcmp(flag, "--special")) {
            if (!parse_fraction(v, &c->special))
                return fprintf(stderr, "netc-difftest: --special needs a fraction in [0, 1], got '%s'\n", v), 2;
        } else if (!strcmp(flag, "--disable-pass")) {
            if (c->ndisabled == 16) return fprintf(stderr, "netc-difftest: too many --disable-pass\n"), 2;
            c->disabled[c->ndisabled++] = v;
        } else if (!strcmp(flag, "--opt-levels")) {
            c->nlevels = 0;
            for (const char *p = v; *p; p++) {
                if (*p == ',') continue;
                if (*p < '0' || *p > '3' || c->nlevels == MAX_LEVELS)
                    return fprintf(stderr, "netc-difftest: --opt-levels takes levels 0-3, e.g. 0,2,3\n"), 2;
                c->levels[c->nlevels++] = *p - '0';
            }
            if (!c->nlevels) return fprintf(stderr, "netc-difftest: --opt-levels is empty\n"), 2;
        } else if (!strcmp(flag, "--exclude")) {
            for (const char *p = v; *p;) {
                const char *e = strchr(p, ',');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                char name[64];
                snprintf(name, sizeof name, "%.*s", (int)l, p);
                OpKind k = op_lookup(name);
                if (k == OP_COUNT) return fprintf(stderr, "netc-difftest: --exclude: unknown op '%s'\n", name), 2;
                c->excluded[k] = true;
                p += l + (e ? 1 : 0);
            }
        } else if (!strcmp(flag, "--inject-fault")) {
            if (!strcmp(v, "epilogue")) c->fault = FAULT_EPILOGUE;
            else if (!strcmp(v, "inplace")) c->fault = FAULT_INPLACE;
            else if (!strcmp(v, "weight")) c->fault = FAULT_WEIGHT;
            else if (!strcmp(v, "scale")) c->fault = FAULT_SCALE;
            else
                return fprintf(stderr, "netc-difftest: --inject-fault: epilogue, inplace, weight or scale, got '%s'\n", v), 2;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            c->verbose = true;
        } else if (!strcmp(a, "--keep-going")) {
            c->keep_going = true;
        } else if (!strcmp(a, "--no-minimise")) {
            c->minimise = false;
        } else if (!strcmp(a, "--dump")) {
            c->dump = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
        } else {
            return fprintf(stderr, "netc-difftest: unknown argument '%s'\n%s", a, usage), 2;
        }
    }
    return 0;
}

/* With --inject-fault, a failure counts as the fault caught when it is the check the fault must
 * trip: an epilogue step or weights gone wrong change the interpreter's result after the passes;
 * an unsafe in-place flag only shows in the compiled code (a mismatch, or the code generator
 * refusing it). A failure without passes (-O0: no fault) is some other bug. */
static bool fault_caught(const Config *c, const Shared *sh, const Cfg *cf) {
    if (sh->cfg < 0 || !cfg_has_passes(cf)) return false;
    if (c->fault == FAULT_INPLACE) return true;
    return !strcmp(sh->kind, "passes");
}

typedef struct Slot {
    pid_t pid;
    GGraph G;
    Cfg cfgs[MAX_CFGS];
    int ncfg;
    char *text;
    size_t len;
    Shared *sh;
} Slot;

typedef struct Failure {
    GGraph G;
    Shared sh;
    Cfg cfg; /* the failing configuration (when sh.cfg >= 0) */
} Failure;

static void remove_tmpdir(const char *dir);

/* --file: the same checks on a given .net file (weights: the seed's random init with the same
 * planted low-rank layers; inputs as for generated graphs). */
static int check_file(Config *c) {
    FILE *f = fopen(c->file, "rb");
    if (!f) return fprintf(stderr, "netc-difftest: cannot open %s: %s\n", c->file, strerror(errno)), 2;
    char *text = NULL;
    size_t cap = 0, len = 0, got;
    char buf[65536];
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (len + got + 1 > cap) text = realloc(text, cap = 2 * (len + got + 1));
        memcpy(text + len, buf, got);
        len += got;
    }
    fclose(f);
    if (!text) return fprintf(stderr, "netc-difftest: %s is empty\n", c->file), 2;
    text[len] = 0;
    Shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    Cfg cfgs[MAX_CFGS];
    int ncfg = graph_cfgs(c, c->seed, cfgs);
    pid_t pid = spawn_check(c, text, len, c->seed, cfgs, ncfg, sh);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    finish_check(c, sh, c->seed, cfgs, ws);
    free(text);
    remove_tmpdir(c->tmpdir);
    if (sh->status == ST_PASS) {
        printf("%s: ok", c->file);
        char cn[LIST_CAP + 32];
        for (int i = 0; i < ncfg; i++)
            printf(sh->refused[i] ? ", %s refused" : ", %s |Δ|/tol %.2g", cfg_name(&cfgs[i], cn, sizeof cn), sh->err[i]);
        printf("\n");
        if (sh->refusal[0]) printf("  refused: %s\n", sh->refusal);
        return 0;
    }
    printf("%s: %s [%s] %s\n", c->file, sh->status == ST_DISCARD ? "invalid" : "FAIL", sh->kind, sh->msg);
    return sh->status == ST_DISCARD ? 2 : 1;
}

static void remove_tmpdir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

int main(int argc, char **argv) {
    static Config c = {.count = 200, .seed = 1, .out_dir = ".", .levels = {0, 2, 3}, .nlevels = 3, .pass_orders = 2,
                       .special = 0.25, .minimise = true, .jobs = 2, .max_ops = 25, .timeout = 300, .pass_limit = -1};
    int st = parse_args(argc, argv, &c);
    if (st) return st;
    /* names must be known; a list the pass manager refuses ("is not supported") is counted later */
    for (int i = -1; i < c.nlists; i++) {
        PassOptions vo = {.list = i < 0 ? NULL : c.lists[i], .split_tol = 1e-6,
                          .winograd_tol = PASS_WINOGRAD_TOL_DEFAULT, .ndisabled = c.ndisabled};
        memcpy(vo.disabled, c.disabled, sizeof vo.disabled);
        Diags vd;
        diags_init(&vd);
        bool ok = passes_validate(&vo, &vd);
        char *msg = diags_to_string(&vd);
        ok |= strstr(msg, "is not supported") != NULL;
        free(msg);
        if (!ok) {
            diags_print(&vd, stderr);
            diags_free(&vd);
            return 2;
        }
        diags_free(&vd);
    }
    openblas_set_num_threads(1);
    /* mkdtemp's template: the prefix and six 'X' that it replaces */
    size_t plen = (size_t)snprintf(c.tmpdir, sizeof c.tmpdir, "/tmp/netc-difftest-");
    memset(c.tmpdir + plen, 'X', 6);
    c.tmpdir[plen + 6] = 0;
    if (mkdir(c.out_dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "netc-difftest: cannot create %s: %s\n", c.out_dir, strerror(errno));
        return 2;
    }
    if (!mkdtemp(c.tmpdir)) {
        perror("netc-difftest: mkdtemp");
        return 2;
    }
    if (c.file) return check_file(&c);
    double t0 = now_s();
    Slot *slots = xcalloc((size_t)c.jobs, sizeof *slots);
    Shared *shm = mmap(NULL, (size_t)c.jobs * sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        perror("netc-difftest: mmap");
        remove_tmpdir(c.tmpdir);
        return 2;
    }
    for (int k = 0; k < c.jobs; k++) slots[k].sh = &shm[k];
    enum { MAX_FAILURES = 32, MAX_REFUSALS = 4 };
    Failure *failures = xcalloc(MAX_FAILURES, sizeof *failures);
    int nfail = 0, caught = 0, ndiscard = 0, npass = 0, ntested = 0, inflight = 0, next = 0;
    /* statistics: row i < nlevels is -O levels[i], row MAX_LEVELS every pass list */
    long long opcount[OP_COUNT] = {0}, rw[MAX_LEVELS + 1][NRW] = {{0}}, nodes = 0, nlists = 0, nrefused = 0;
    long long nspecial[NSPECIAL] = {0}, excused = 0;
    double worst[MAX_LEVELS + 1] = {0}, worst_passes[MAX_LEVELS + 1] = {0};
    char refusals[MAX_REFUSALS][256];
    int nrefusals = 0;
    bool stop = false;
    while ((next < c.count && !stop) || inflight) {
        while (!stop && next < c.count && inflight < c.jobs) {
            Slot *s = NULL;
            for (int k = 0; k < c.jobs && !s; k++)
                if (!slots[k].pid) s = &slots[k];
            if (!s) break;
            gen_graph(&s->G, c.seed + (uint64_t)next++, c.excluded, c.max_ops);
            s->ncfg = graph_cfgs(&c, s->G.seed, s->cfgs);
            s->text = render(&s->G, &s->len);
            if (c.dump) printf("%s\n", s->text);
            s->pid = spawn_check(&c, s->text, s->len, s->G.seed, s->cfgs, s->ncfg, s->sh);
            inflight++;
        }
        int ws;
        pid_t pid = waitpid(-1, &ws, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            perror("netc-difftest: waitpid");
            remove_tmpdir(c.tmpdir);
            return 2;
        }
        Slot *s = NULL;
        for (int k = 0; k < c.jobs && !s; k++)
            if (slots[k].pid == pid) s = &slots[k];
        if (!s) continue;
        s->pid = 0;
        inflight--;
        Shared *sh = s->sh;
        finish_check(&c, sh, s->G.seed, s->cfgs, ws);
        if (sh->status == ST_DISCARD) {
            /* rare, and a sign of a generator bug or a front-end regression: always said */
            ndiscard++;
            printf("seed %llu: discarded (%s): %s\n", (unsigned long long)s->G.seed, sh->kind, sh->msg);
        } else {
            ntested++;
            nodes += sh->nodes;
            nspecial[special_kind(c.special, s->G.seed)]++;
            excused += sh->excused;
            for (int k = 0; k < OP_COUNT; k++) opcount[k] += sh->opcount[k];
            int lists_done = 0, lists_refused = 0;
            for (int i = 0; i < s->ncfg; i++) {
                int row = i < c.nlevels ? i : MAX_LEVELS;
                if (sh->done[i])
                    for (int k = 0; k < NRW; k++) rw[row][k] += sh->rw[i][k];
                if (sh->status == ST_PASS) {
                    worst[row] = fmax(worst[row], sh->err[i]);
                    worst_passes[row] = fmax(worst_passes[row], sh->err_passes[i]);
                }
                if (i >= c.nlevels) lists_done += sh->done[i], lists_refused += sh->refused[i];
            }
            nlists += lists_done + lists_refused;
            nrefused += lists_refused;
            bool seen = !sh->refusal[0];
            for (int k = 0; k < nrefusals && !seen; k++) seen = !strcmp(refusals[k], sh->refusal);
            if (!seen && nrefusals < MAX_REFUSALS) snprintf(refusals[nrefusals++], sizeof *refusals, "%s", sh->refusal);
            if (sh->status == ST_PASS) {
                npass++;
                if (c.verbose) {
                    double w = 0, wp = 0;
                    for (int i = 0; i < s->ncfg; i++) w = fmax(w, sh->err[i]), wp = fmax(wp, sh->err_passes[i]);
                    printf("seed %llu: ok, %d ops, %d nodes, inputs %s; worst |Δ|/tol compiled %.2g, interpreter after "
                           "passes %.2g; %d pass lists, %d refused\n",
                           (unsigned long long)s->G.seed, alive_ops(&s->G), sh->nodes,
                           special_names[special_kind(c.special, s->G.seed)], w, wp, lists_done + lists_refused,
                           lists_refused);
                }
            } else {
                printf("seed %llu: FAIL [%s] %s\n", (unsigned long long)s->G.seed, sh->kind, sh->msg);
                Cfg cf = sh->cfg >= 0 ? s->cfgs[sh->cfg] : (Cfg){0};
                if (nfail < MAX_FAILURES) failures[nfail] = (Failure){s->G, *sh, cf};
                nfail++;
                caught += c.fault && fault_caught(&c, sh, &cf);
                if (!c.keep_going) stop = true;
            }
        }
        fflush(stdout);
        free(s->text);
        s->text = NULL;
    }
    double elapsed = now_s() - t0;

    printf("\nnetc-difftest: %d graphs (seeds %llu..%llu), %d tested, %d passed, %d failed, %d discarded, %.1f s\n", next,
           (unsigned long long)c.seed, (unsigned long long)(c.seed + (uint64_t)(next ? next - 1 : 0)), ntested, npass, nfail,
           ndiscard, elapsed);
    printf("inputs with special values:");
    for (int k = 1; k < NSPECIAL; k++) printf("%s %s %lld", k > 1 ? "," : "", special_names[k], nspecial[k]);
    printf(" (of %d); NaN/inf elements excused after split3x3 or winograd on special inputs: %lld\nops covered (%lld lowered nodes):",
           ntested, excused, nodes);
    for (int k = 0; k < OP_COUNT; k++)
        if (opcount[k]) printf(" %s %lld", op_info((OpKind)k)->name, opcount[k]);
    printf("\nnot covered:");
    int none = 1;
    for (int k = 0; k < OP_COUNT; k++)
        if (!opcount[k]) printf(" %s", op_info((OpKind)k)->name), none = 0;
    printf("%s\n", none ? " -" : "");
    for (int i = 0; i <= c.nlevels; i++) {
        int row = i < c.nlevels ? i : MAX_LEVELS;
        if (i < c.nlevels) printf("-O%d:", c.levels[i]);
        else if (nlists) printf("pass lists: %lld checked, %lld refused;", nlists, nrefused);
        else break;
        printf(" worst |Δ|/tol compiled %.2g, interpreter after passes %.2g", worst[row], worst_passes[row]);
        if (i == c.nlevels || c.levels[i] > 0) {
            printf("; rewrites:");
            for (int k = 0; k < NRW; k++) printf("%s %s %lld", k ? "," : "", rw_names[k], rw[row][k]);
        }
        printf("\n");
    }
    for (int k = 0; k < nrefusals; k++) printf("  refused: %s\n", refusals[k]);
    fflush(stdout);

    int kept = nfail < MAX_FAILURES ? nfail : MAX_FAILURES;
    for (int i = 0; i < kept; i++) {
        Failure *f = &failures[i];
        int before = alive_ops(&f->G);
        printf("\n");
        if (c.minimise) minimise(&c, &f->G, &f->sh, &f->cfg);
        report_failure(&c, &f->G, &f->sh, &f->cfg, before);
    }
    remove_tmpdir(c.tmpdir);
    free(failures);
    free(slots);
    munmap(shm, (size_t)c.jobs * sizeof *shm);
    if (c.fault) {
        printf("%s\n", caught ? "inject-fault: the broken pass was caught" : "inject-fault: the broken pass was NOT caught");
        return caught ? 0 : 1;
    }
    return nfail ? 1 : 0;
}
