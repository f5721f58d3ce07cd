/* difftest.c — the random-graph differential tester: generates valid .net graphs, compiles each at
 * several -O levels and compares the generated code (serial and on a 2-thread pool) with the
 * reference interpreter run on the unoptimised graph; a failing graph is minimised and written out
 * with its weights and inputs, and the commands that reproduce it are printed.
 *
 *     netc-difftest [--count N] [--seed S] [--out DIR] [--opt-levels 0,2,3] [-v] [--jobs J]
 *                   [--max-ops N] [--exclude OP,...] [--pass-limit N] [--keep-going]
 *                   [--no-minimise] [--inject-fault epilogue|inplace|weight] [--timeout SEC]
 *                   [--dump] [--disable-pass NAME]...
 *     netc-difftest --file MODEL.net [--seed S] [--opt-levels 0,2,3]
 *
 * Graph i of a run has the seed S + i: `--seed X --count 1` reruns exactly the graph of seed X.
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

/* OpenBLAS (split3x3's SVD) starts its own threads; the children run two at a time already. */
void openblas_set_num_threads(int n);

/* Tolerances: compiled vs reference, and interpreter after vs before the passes, as
 * max|Δ| / max(max|ref|, REL_FLOOR). The brief's floor was 1e-4, but an output that is zero up to
 * rounding (the mean of a mean-centred tensor: global_avgpool(sub(x, global_avgpool(x)))) carries
 * float32 noise of ~1e-8 against it (rel.err 2e-4, a false alarm); with inputs and weights of
 * unit scale, 1e-2 keeps such outputs quiet (|Δ| must exceed 1e-6) and changes nothing for
 * outputs above 1e-2. */
#define TOL_COMPILED 1e-4
#define TOL_PASSES 1e-5
#define REL_FLOOR 1e-2

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
    bool nest; /* may be written nested inside its only reader: relu(add(a, b)) */
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
        if (oc < 0) oc = choose_channels(r, C);
        char a[200] = ", ";
        fmt_int(r, a, sizeof a, oc);
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
        return new_op(x, GK_OP, OP_CONV2D, &v, 1, &o, a);
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

static bool gen_act(Gen *x) {
    int v = pick_value(x, R2 | R4);
    return v >= 0 && gen_act_on(x, v) >= 0;
}

static bool gen_bn(Gen *x) {
    int v = pick_value(x, R2 | R4);
    return v >= 0 && gen_bn_on(x, v) >= 0;
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
        char a[200] = "";
        app(a, sizeof a, ", %lld, kernel=%lld", (long long)oc, (long long)k);
        if (st != 1) app(a, sizeof a, ", stride=%lld", (long long)st);
        if (p) app(a, sizeof a, ", pad=%lld", (long long)p);
        if (op) app(a, sizeof a, ", output_pad=%lld", (long long)op);
        if (dl != 1) app(a, sizeof a, ", dilation=%lld", (long long)dl);
        if (groups != 1) app(a, sizeof a, ", groups=%lld", (long long)groups);
        if (rng_chance(r, 0.3)) app(a, sizeof a, ", bias=false");
        Shape o = {4, {s.d[0], oc, oh, ow}};
        return new_op(x, GK_OP, OP_CONV_TRANSPOSE2D, &v, 1, &o, a) >= 0;
    }
    return false;
}

static int gen_linear_on(Gen *x, int v) {
    Shape s = *value_shape(x->G, v);
    int64_t out = rng_int(&x->r, 1, 40);
    char a[200] = "";
    app(a, sizeof a, ", %lld%s", (long long)out, rng_chance(&x->r, 0.3) ? ", bias=false" : "");
    Shape o = {2, {s.d[0], out}};
    return new_op(x, GK_OP, OP_LINEAR, &v, 1, &o, a);
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
    app(a, sizeof a, ", %lld, %lld", (long long)out, (long long)k);
    if (st == 2) app(a, sizeof a, rng_chance(r, 0.5) ? ", 2" : ", s=2");
    Shape o = {4, {s.d[0], out, (s.d[2] - 1) / st + 1, (s.d[3] - 1) / st + 1}};
    return new_op(x, GK_CBR, OP_COUNT, &v, 1, &o, a) >= 0;
}

typedef bool (*GenFn)(Gen *);
static const struct {
    GenFn fn;
    int weight;
} generators[] = {
    {gen_conv_block, 26}, {gen_act, 10},    {gen_binary, 12}, {gen_concat, 8},  {gen_pool, 7},
    {gen_gap, 4},         {gen_upsample, 4}, {gen_pad, 4},     {gen_slice, 4},   {gen_shuffle, 3},
    {gen_softmax, 3},     {gen_bn, 3},       {gen_convt, 2},   {gen_tail, 2},    {gen_linear, 2},
    {gen_def, 4},
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
    Gen x = {G, {seed * 0x2545F4914F6CDD1Dull + 0x1234567}, excluded};
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
 * call, not a def call, not a graph output) and the generator flagged it. */
static bool nested_op(const GGraph *G, int j) {
    const GOp *o = &G->ops[j];
    if (!o->alive || o->kind != GK_OP || !o->nest || (op_info(o->op)->flags & OPF_WEIGHTS)) return false;
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

static void put_call(FILE *f, const GGraph *G, int j);

static void put_value(FILE *f, const GGraph *G, int v) {
    if (v < G->ninputs) fprintf(f, "x%d", v);
    else if (nested_op(G, v - G->ninputs)) put_call(f, G, v - G->ninputs);
    else fprintf(f, "t%d", v - G->ninputs);
}

static void put_call(FILE *f, const GGraph *G, int j) {
    const GOp *o = &G->ops[j];
    fprintf(f, "%s(", o->kind == GK_CBR ? "cbr" : o->kind == GK_RES ? "res" : op_info(o->op)->name);
    for (int k = 0; k < o->nin; k++) {
        if (k) fputs(", ", f);
        put_value(f, G, o->in[k]);
    }
    fprintf(f, "%s)", o->args);
}

/* malloc'ed .net text of G */
static char *render(const GGraph *G, size_t *len) {
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
        if (!G->ops[j].alive || nested_op(G, j)) continue;
        fprintf(f, "t%d = ", j);
        put_call(f, G, j);
        fputc('\n', f);
    }
    fprintf(f, "\noutput ");
    for (int i = 0; i < G->noutputs; i++) {
        if (i) fputs(", ", f);
        put_value(f, G, G->outputs[i]);
    }
    fputc('\n', f);
    fclose(f);
    return buf;
}

/* ---- checking one graph (in a child process) --------------------------------------------- */

enum { RW_FOLD, RW_SPLIT, RW_FUSE_ACT, RW_FUSE_RES, RW_INPLACE, RW_CONCAT, RW_CONCAT_IN, NRW };
static const char *const rw_names[NRW] = {"fold-bn",  "split3x3",    "fuse-act (activations)",
                                          "fuse-act (residual adds)", "inplace", "concat-elim (concats)",
                                          "concat-elim (inputs in place)"};

enum { ST_PASS, ST_DISCARD, ST_FAIL };
enum { STAGE_LOAD, STAGE_REF, STAGE_PASSES, STAGE_INTERP_AFTER, STAGE_CODEGEN, STAGE_OPEN, STAGE_RUN, STAGE_RUN_POOL, STAGE_DONE };
static const char *const stage_names[] = {"loading",
                                          "the reference interpreter",
                                          "the passes",
                                          "the interpreter after the passes",
                                          "code generation",
                                          "loading the .so",
                                          "the compiled run (serial)",
                                          "the compiled run (2 threads)",
                                          "cleaning up"};

enum { FAULT_NONE, FAULT_EPILOGUE, FAULT_INPLACE, FAULT_WEIGHT };

typedef struct Config {
    int count;
    uint64_t seed;
    const char *out_dir;
    int levels[4], nlevels;
    bool verbose, keep_going, minimise, dump;
    int jobs, max_ops, timeout, fault;
    int64_t pass_limit;
    bool excluded[OP_COUNT];
    const char *file; /* --file: check this .net file instead of generated graphs */
    const char *disabled[16]; /* --disable-pass: hide a known bug while hunting for others */
    int ndisabled;
    char tmpdir[64];
} Config;

/* What a child reports, in memory shared with the parent: written as the check progresses, so a
 * crash still tells where it happened. */
typedef struct Shared {
    int status, stage, level;
    char kind[32];
    char msg[3072];
    int nodes; /* lowered nodes */
    int opcount[OP_COUNT];
    bool level_done[4];
    int rw[4][NRW];
    double err[4], err_passes[4];
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

static void fill_inputs(float *x, int64_t n, uint64_t seed) {
    Rng r = {seed};
    for (int64_t i = 0; i < n; i++) x[i] = (float)(2.0 * rng_unit(&r) - 1.0);
}

static uint64_t input_seed(uint64_t seed, int i) { return seed * 1000003u + 7919u * (uint64_t)(i + 1); }

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
        rw[RW_CONCAT] += n->op == OP_CONCAT && n->concat_elim;
    }
    for (int i = 0; i < g->tensors.len; i++) rw[RW_CONCAT_IN] += ir_tensor(g, i)->alias >= 0;
    rw[RW_FOLD] = bn0 - bn1;
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

/* max|out - ref| / max(max|ref|, REL_FLOOR); an infinity in ref must be matched exactly; a NaN in
 * out is an infinite error. *where: the worst index. */
static double rel_err(const float *out, const float *ref, int64_t n, int64_t *where) {
    double mref = 0, md = 0;
    *where = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(ref[i]) && fabs(ref[i]) > mref) mref = fabs(ref[i]);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(ref[i]) || !isfinite(out[i])) {
            if (out[i] == ref[i]) continue;
            *where = i;
            return INFINITY;
        }
        double dv = fabs((double)out[i] - (double)ref[i]);
        if (dv > md) md = dv, *where = i;
    }
    return md / fmax(mref, REL_FLOOR);
}

static const char *index_str(const Tensor *t, int64_t flat, char *buf, size_t len) {
    int64_t idx[IR_MAX_RANK];
    for (int a = t->rank - 1; a >= 0; a--) idx[a] = flat % t->shape[a], flat /= t->shape[a];
    return ir_dims_str(t->rank, idx, buf, len);
}

static void check_graph(const Config *c, const char *text, size_t len, uint64_t seed, const int *levels, int nlevels,
                        Shared *sh) {
    sh->stage = STAGE_LOAD;
    sh->level = -1;
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
    int ni = g0->ninputs, no = g0->noutputs;
    float **in = xcalloc((size_t)ni, sizeof *in), **ref = xcalloc((size_t)no, sizeof *ref);
    float **out = xcalloc((size_t)no, sizeof *out), **in_run = xcalloc((size_t)ni, sizeof *in_run);
    float **out_run = xcalloc((size_t)no, sizeof *out_run);
    float *in_mem[MAX_INPUTS], *out_mem[MAX_OUTPUTS];
    for (int i = 0; i < ni; i++) {
        int64_t n = ir_numel(ir_tensor(g0, g0->inputs[i]));
        in[i] = xmalloc((size_t)n * sizeof(float));
        in_mem[i] = xmalloc((size_t)(n + 1) * sizeof(float));
        fill_inputs(in[i], n, input_seed(seed, i));
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
    for (int i = 0; i < no; i++) {
        int64_t n = ir_numel(ir_tensor(g0, g0->outputs[i]));
        for (int64_t k = 0; k < n; k++)
            if (isnan(ref[i][k])) {
                sh->status = ST_DISCARD;
                snprintf(sh->kind, sizeof sh->kind, "nan");
                snprintf(sh->msg, sizeof sh->msg, "the reference output '%s' has a NaN", g0->output_names[i]);
                return;
            }
    }
    netrt_pool *pool = netrt_pool_create(2);
    char ib[128], sb[128];
    for (int li = 0; li < nlevels; li++) {
        int L = levels[li];
        sh->level = L;
        sh->stage = STAGE_PASSES;
        Graph *g = load_graph(text, len, seed, &d);
        if (!g) {
            fail(sh, "reload", "the graph did not load a second time:\n");
            diags_into(sh, &d);
            return;
        }
        PassOptions po = {.opt_level = L, .split_tol = 1e-6, .pass_limit = c->pass_limit, .verify = true,
                          .ndisabled = c->ndisabled};
        memcpy(po.disabled, c->disabled, sizeof po.disabled);
        if (!passes_run(g, &po, &d, stderr)) {
            fail(sh, "verify", "-O%d: the passes broke the graph:\n", L);
            diags_into(sh, &d);
            return;
        }
        if (c->fault && L > 0) inject_fault(g, c->fault);
        count_rewrites(g0, g, sh->rw[L]);

        sh->stage = STAGE_INTERP_AFTER;
        if (!interp_run(g, (const float *const *)in, out, &d)) {
            fail(sh, "interp-after", "-O%d: the interpreter failed on the optimised graph:\n", L);
            diags_into(sh, &d);
            return;
        }
        for (int i = 0; i < no; i++) {
            const Tensor *t = ir_tensor(g0, g0->outputs[i]);
            int64_t where;
            double e = rel_err(out[i], ref[i], ir_numel(t), &where);
            if (e > sh->err_passes[L]) sh->err_passes[L] = e;
            if (e > TOL_PASSES) {
                fail(sh, "passes",
                     "-O%d: the interpreter after the passes differs from before: output '%s' %s rel.err %.3g at %s: "
                     "%.9g, expected %.9g",
                     L, g0->output_names[i], ir_shape_str(t, sb, sizeof sb), e, index_str(t, where, ib, sizeof ib),
                     out[i][where], ref[i][where]);
                return;
            }
        }

        sh->stage = STAGE_CODEGEN;
        char so[256];
        snprintf(so, sizeof so, "%s/s%llu-O%d.so", c->tmpdir, (unsigned long long)seed, L);
        CodegenOptions co = {.emit = EMIT_SO, .out = so, .opt_level = L};
        if (!codegen_emit(g, &co, &d)) {
            fail(sh, "codegen", "-O%d: code generation failed:\n", L);
            diags_into(sh, &d);
            return;
        }
        sh->stage = STAGE_OPEN;
        char err[512];
        netrt_model *m = netrt_open(so, err, sizeof err);
        unlink(so);
        if (!m) {
            fail(sh, "load", "-O%d: %s", L, err);
            return;
        }
        bool shapes_ok = netrt_num_inputs(m) == ni && netrt_num_outputs(m) == no;
        for (int i = 0; shapes_ok && i < ni; i++)
            shapes_ok = (int64_t)netrt_tensor_count(netrt_input(m, i)) == ir_numel(ir_tensor(g0, g0->inputs[i]));
        for (int i = 0; shapes_ok && i < no; i++)
            shapes_ok = (int64_t)netrt_tensor_count(netrt_output(m, i)) == ir_numel(ir_tensor(g0, g0->outputs[i]));
        if (!shapes_ok) {
            fail(sh, "descriptor", "-O%d: the model's descriptor does not match the graph's inputs and outputs", L);
            return;
        }
        void *ws = netrt_alloc_workspace(m);
        for (int run = 0; run < 2; run++) {
            sh->stage = run ? STAGE_RUN_POOL : STAGE_RUN;
            /* the second run uses caller buffers that are only 4-byte aligned (the runtime promises
             * nothing more) and a workspace left dirty by the first */
            if (!run) memset(ws, 0xff, netrt_desc(m)->workspace_size); /* NaN: nothing may read unwritten memory */
            for (int i = 0; i < ni; i++) {
                int64_t n = ir_numel(ir_tensor(g0, g0->inputs[i]));
                in_run[i] = in_mem[i] + run;
                memcpy(in_run[i], in[i], (size_t)n * sizeof(float));
            }
            for (int i = 0; i < no; i++) {
                int64_t n = ir_numel(ir_tensor(g0, g0->outputs[i]));
                out_run[i] = out_mem[i] + run;
                for (int64_t k = 0; k < n; k++) out_run[i][k] = NAN; /* every element must be written */
            }
            netrt_status st = netrt_run(m, (const float *const *)in_run, out_run, ws, run ? pool : NULL);
            if (st != NETRT_OK) {
                fail(sh, "run", "-O%d: netrt_run: %s", L, netrt_status_str(st));
                return;
            }
            for (int i = 0; i < ni; i++) {
                const Tensor *t = ir_tensor(g0, g0->inputs[i]);
                if (memcmp(in_run[i], in[i], (size_t)ir_numel(t) * sizeof(float))) {
                    fail(sh, "input-overwritten", "-O%d (%s): the compiled model wrote into its input '%s'", L,
                         run ? "2 threads" : "serial", t->name);
                    return;
                }
            }
            for (int i = 0; i < no; i++) {
                const Tensor *t = ir_tensor(g0, g0->outputs[i]);
                int64_t where;
                double e = rel_err(out_run[i], ref[i], ir_numel(t), &where);
                if (e > sh->err[L]) sh->err[L] = e;
                if (e > TOL_COMPILED) {
                    fail(sh, "mismatch",
                         "-O%d (%s): compiled output '%s' %s differs from the reference: rel.err %.3g at %s: got "
                         "%.9g, expected %.9g",
                         L, run ? "2 threads" : "serial", g0->output_names[i], ir_shape_str(t, sb, sizeof sb), e,
                         index_str(t, where, ib, sizeof ib), out_run[i][where], ref[i][where]);
                    return;
                }
            }
        }
        sh->stage = STAGE_DONE;
        netrt_free_workspace(ws);
        netrt_close(m);
        ir_graph_free(g);
        sh->level_done[L] = true;
    }
    netrt_pool_destroy(pool);
    for (int i = 0; i < ni; i++) free(in[i]), free(in_mem[i]);
    for (int i = 0; i < no; i++) free(ref[i]), free(out[i]), free(out_mem[i]);
    free(in), free(ref), free(out), free(in_run), free(out_run);
    ir_graph_free(g0);
    diags_free(&d);
    sh->status = ST_PASS;
}

/* Fork a child that checks `text` at `levels`; the result lands in *sh. */
static pid_t spawn_check(const Config *c, const char *text, size_t len, uint64_t seed, const int *levels, int nlevels,
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
        check_graph(c, text, len, seed, levels, nlevels, sh);
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    return pid;
}

/* After the child ended: turn a crash, a timeout or a silent exit into a failure. */
static void finish_check(const Config *c, Shared *sh, uint64_t seed, int wstatus) {
    for (int i = 0; i < c->nlevels; i++) {
        char so[256];
        snprintf(so, sizeof so, "%s/s%llu-O%d.so", c->tmpdir, (unsigned long long)seed, c->levels[i]);
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
    char where[128] = "";
    if (sh->level >= 0) snprintf(where, sizeof where, " at -O%d", sh->level);
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

static void run_check(const Config *c, const GGraph *G, const int *levels, int nlevels, Shared *sh) {
    size_t len;
    char *text = render(G, &len);
    pid_t pid = spawn_check(c, text, len, G->seed, levels, nlevels, sh);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    finish_check(c, sh, G->seed, ws);
    free(text);
}

/* ---- minimising a failing graph ----------------------------------------------------------- */

static bool same_failure(const Shared *a, const Shared *b) {
    return b->status == ST_FAIL && !strcmp(a->kind, b->kind) && a->level == b->level &&
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

static void minimise(const Config *c, GGraph *G, Shared *sh) {
    int level = sh->level, levels[1] = {level};
    int nl = level >= 0 ? 1 : 0;
    Shared *trial = mmap(NULL, sizeof *trial, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int tries = 0;
    bool changed = true;
    while (changed) {
        changed = false;
        for (int j = G->nops - 1; j >= 0; j--) {
            GGraph cand = *G;
            if (!delete_op(&cand, j)) continue;
            tries++;
            run_check(c, &cand, levels, nl, trial);
            if (same_failure(sh, trial)) {
                *G = cand;
                *sh = *trial;
                changed = true;
                if (c->verbose) printf("  minimise: deleted t%d, %d ops left\n", j, alive_ops(G));
            }
        }
        for (int i = G->noutputs - 1; i >= 0 && G->noutputs > 1; i--) {
            GGraph cand = *G;
            memmove(&cand.outputs[i], &cand.outputs[i + 1], (size_t)(cand.noutputs - i - 1) * sizeof *cand.outputs);
            cand.noutputs--;
            tries++;
            run_check(c, &cand, levels, nl, trial);
            if (same_failure(sh, trial)) *G = cand, *sh = *trial, changed = true;
        }
        for (int i = G->ninputs - 1; i >= 0; i--) {
            GGraph cand = *G;
            if (!delete_input(&cand, i)) continue;
            tries++;
            run_check(c, &cand, levels, nl, trial);
            if (same_failure(sh, trial)) *G = cand, *sh = *trial, changed = true;
        }
        GGraph cand = *G;
        if (shrink_batch(&cand)) {
            tries++;
            run_check(c, &cand, levels, nl, trial);
            if (same_failure(sh, trial)) *G = cand, *sh = *trial, changed = true;
        }
    }
    if (c->verbose) printf("  minimise: %d trials\n", tries);
    munmap(trial, sizeof *trial);
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

static void report_failure(const Config *c, GGraph *G, Shared *sh, int ops_before) {
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
    if (g) {
        snprintf(path, sizeof path, "%s.safetensors", base);
        if (!write_safetensors(path, g)) fprintf(stderr, "netc-difftest: cannot write %s\n", path);
        for (int i = 0; i < g->ninputs; i++) {
            const Tensor *t = ir_tensor(g, g->inputs[i]);
            float *x = xmalloc((size_t)ir_numel(t) * sizeof *x);
            fill_inputs(x, ir_numel(t), input_seed(G->seed, i));
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
    int L = sh->level >= 0 ? sh->level : 2;
    char flags[512] = "";
    for (int i = 0; i < c->ndisabled; i++) app(flags, sizeof flags, " --disable-pass=%s", c->disabled[i]);
    if (c->pass_limit >= 0) app(flags, sizeof flags, " --pass-limit=%lld", (long long)c->pass_limit);
    printf("FAIL seed %llu [%s]: %s\n", (unsigned long long)G->seed, sh->kind, sh->msg);
    if (c->minimise)
        printf("  minimised from %d to %d ops; ", ops_before, alive_ops(G));
    else
        printf("  not minimised (%d ops); ", ops_before);
    printf("wrote %s.net, %s.safetensors and the inputs as .npy\n", base, base);
    printf("  reproduce (reference, then compiled):\n");
    printf("    netc run %s.net --weights %s.safetensors%s%s\n", base, base, ins, outs_ref);
    if (!strcmp(sh->kind, "passes") || !strcmp(sh->kind, "verify"))
        printf("    netc run %s.net --weights %s.safetensors -O%d%s%s\n", base, base, L, flags, ins);
    else
        printf("    netc %s.net -O%d%s --weights %s.safetensors -o %s.so && netrun %s.so%s%s%s\n", base, L, flags, base, base,
               base, ins, outs_so,
               !strcmp(sh->kind, "mismatch") && strstr(sh->msg, "2 threads") ? " --threads 2" : " --threads 1");
    printf("  --- %s.net ---\n%s  ---\n", base, text);
    free(text);
}

/* ---- the driver --------------------------------------------------------------------------- */

static const char usage[] =
    "usage: netc-difftest [--count N] [--seed S] [--out DIR] [--opt-levels 0,2,3] [-v] [--jobs J]\n"
    "                     [--max-ops N] [--exclude OP,...] [--pass-limit N] [--keep-going] [--no-minimise]\n"
    "                     [--inject-fault epilogue|inplace|weight] [--timeout SEC] [--dump]\n"
    "                     [--disable-pass NAME]...\n"
    "       netc-difftest --file MODEL.net [--seed S] [--opt-levels 0,2,3] (check one file)\n"
    "Generates N random .net graphs (graph i has seed S+i), compiles each at every level and compares\n"
    "the compiled model with the reference interpreter on the unoptimised graph. Exit 0: all passed;\n"
    "1: a failure (minimised and written to DIR); 2: usage. With --inject-fault the passes are\n"
    "deliberately broken and the exit status is 0 only when the tester caught it.\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
                     !strcmp(flag, "--timeout") || !strcmp(flag, "--file") || !strcmp(flag, "--disable-pass");
        if (takes) {
            if (eq) v = eq + 1;
            else if (i + 1 < argc) v = argv[++i];
            else return fprintf(stderr, "netc-difftest: %s needs a value\n%s", flag, usage), 2;
        }
        uint64_t n;
        if (!strcmp(flag, "--count") || !strcmp(flag, "--jobs") || !strcmp(flag, "--max-ops") ||
            !strcmp(flag, "--timeout") || !strcmp(flag, "--pass-limit") || !strcmp(flag, "--seed")) {
            if (!parse_u64(v, &n)) return fprintf(stderr, "netc-difftest: %s needs a non-negative integer, got '%s'\n", flag, v), 2;
            if (!strcmp(flag, "--count")) c->count = (int)n;
            else if (!strcmp(flag, "--jobs")) c->jobs = n ? (int)n : 1;
            else if (!strcmp(flag, "--max-ops")) c->max_ops = n < 1 ? 1 : n > 60 ? 60 : (int)n;
            else if (!strcmp(flag, "--timeout")) c->timeout = n ? (int)n : 1;
            else if (!strcmp(flag, "--pass-limit")) c->pass_limit = (int64_t)n;
            else c->seed = n;
        } else if (!strcmp(flag, "--out")) {
            c->out_dir = v;
        } else if (!strcmp(flag, "--file")) {
            c->file = v;
        } else if (!strcmp(flag, "--disable-pass")) {
            if (c->ndisabled == 16) return fprintf(stderr, "netc-difftest: too many --disable-pass\n"), 2;
            c->disabled[c->ndisabled++] = v;
        } else if (!strcmp(flag, "--opt-levels")) {
            c->nlevels = 0;
            for (const char *p = v; *p; p++) {
                if (*p == ',') continue;
                if (*p < '0' || *p > '3' || c->nlevels == 4)
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
            else return fprintf(stderr, "netc-difftest: --inject-fault: epilogue, inplace or weight, got '%s'\n", v), 2;
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
 * trip: an epilogue step or a weight gone wrong changes the interpreter's result after the
 * passes; an unsafe in-place flag only shows in the compiled code (a mismatch, or the code
 * generator refusing it). A failure at -O0 (no passes, no fault) is some other bug. */
static bool fault_caught(const Config *c, const Shared *sh) {
    if (sh->level <= 0) return false;
    if (c->fault == FAULT_INPLACE) return true;
    return !strcmp(sh->kind, "passes");
}

typedef struct Slot {
    pid_t pid;
    GGraph G;
    char *text;
    size_t len;
    Shared *sh;
} Slot;

typedef struct Failure {
    GGraph G;
    Shared sh;
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
    pid_t pid = spawn_check(c, text, len, c->seed, c->levels, c->nlevels, sh);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    finish_check(c, sh, c->seed, ws);
    free(text);
    remove_tmpdir(c->tmpdir);
    if (sh->status == ST_PASS) {
        printf("%s: ok", c->file);
        for (int i = 0; i < c->nlevels; i++) printf(", -O%d rel.err %.2g", c->levels[i], sh->err[c->levels[i]]);
        printf("\n");
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
    static Config c = {.count = 200, .seed = 1, .out_dir = ".", .levels = {0, 2, 3}, .nlevels = 3, .minimise = true,
                       .jobs = 2, .max_ops = 25, .timeout = 300, .pass_limit = -1};
    int st = parse_args(argc, argv, &c);
    if (st) return st;
    PassOptions vo = {.split_tol = 1e-6, .ndisabled = c.ndisabled};
    memcpy(vo.disabled, c.disabled, sizeof vo.disabled);
    Diags vd;
    diags_init(&vd);
    if (!passes_validate(&vo, &vd)) {
        diags_print(&vd, stderr);
        return 2;
    }
    diags_free(&vd);
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
    enum { MAX_FAILURES = 32 };
    Failure *failures = xcalloc(MAX_FAILURES, sizeof *failures);
    int nfail = 0, caught = 0, ndiscard = 0, npass = 0, ntested = 0, inflight = 0, next = 0;
    long long opcount[OP_COUNT] = {0}, rw[4][NRW] = {{0}}, nodes = 0;
    double worst[4] = {0}, worst_passes[4] = {0};
    bool stop = false;
    while ((next < c.count && !stop) || inflight) {
        while (!stop && next < c.count && inflight < c.jobs) {
            Slot *s = NULL;
            for (int k = 0; k < c.jobs && !s; k++)
                if (!slots[k].pid) s = &slots[k];
            if (!s) break;
            gen_graph(&s->G, c.seed + (uint64_t)next++, c.excluded, c.max_ops);
            s->text = render(&s->G, &s->len);
            if (c.dump) printf("%s\n", s->text);
            s->pid = spawn_check(&c, s->text, s->len, s->G.seed, c.levels, c.nlevels, s->sh);
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
        finish_check(&c, sh, s->G.seed, ws);
        if (sh->status == ST_DISCARD) {
            /* rare, and a sign of a generator bug or a front-end regression: always said */
            ndiscard++;
            printf("seed %llu: discarded (%s): %s\n", (unsigned long long)s->G.seed, sh->kind, sh->msg);
        } else {
            ntested++;
            nodes += sh->nodes;
            for (int k = 0; k < OP_COUNT; k++) opcount[k] += sh->opcount[k];
            for (int L = 0; L < 4; L++) {
                if (sh->level_done[L])
                    for (int k = 0; k < NRW; k++) rw[L][k] += sh->rw[L][k];
                worst[L] = fmax(worst[L], sh->status == ST_PASS ? sh->err[L] : 0);
                worst_passes[L] = fmax(worst_passes[L], sh->status == ST_PASS ? sh->err_passes[L] : 0);
            }
            if (sh->status == ST_PASS) {
                npass++;
                if (c.verbose)
                    printf("seed %llu: ok, %d ops, %d nodes; rel.err -O%d %.2g, -O%d %.2g\n", (unsigned long long)s->G.seed,
                           alive_ops(&s->G), sh->nodes, c.levels[0], sh->err[c.levels[0]],
                           c.levels[c.nlevels - 1], sh->err[c.levels[c.nlevels - 1]]);
            } else {
                printf("seed %llu: FAIL [%s] %s\n", (unsigned long long)s->G.seed, sh->kind, sh->msg);
                if (nfail < MAX_FAILURES) failures[nfail] = (Failure){s->G, *sh};
                nfail++;
                caught += c.fault && fault_caught(&c, sh);
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
    printf("ops covered (%lld lowered nodes):", nodes);
    for (int k = 0; k < OP_COUNT; k++)
        if (opcount[k]) printf(" %s %lld", op_info((OpKind)k)->name, opcount[k]);
    printf("\nnot covered:");
    int none = 1;
    for (int k = 0; k < OP_COUNT; k++)
        if (!opcount[k]) printf(" %s", op_info((OpKind)k)->name), none = 0;
    printf("%s\n", none ? " -" : "");
    for (int i = 0; i < c.nlevels; i++) {
        int L = c.levels[i];
        printf("-O%d: worst rel.err compiled %.2g, interpreter after passes %.2g", L, worst[L], worst_passes[L]);
        if (L > 0) {
            printf("; rewrites:");
            for (int k = 0; k < NRW; k++) printf("%s %s %lld", k ? "," : "", rw_names[k], rw[L][k]);
        }
        printf("\n");
    }
    fflush(stdout);

    int kept = nfail < MAX_FAILURES ? nfail : MAX_FAILURES;
    for (int i = 0; i < kept; i++) {
        Failure *f = &failures[i];
        int before = alive_ops(&f->G);
        printf("\n");
        if (c.minimise) minimise(&c, &f->G, &f->sh);
        report_failure(&c, &f->G, &f->sh, before);
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
