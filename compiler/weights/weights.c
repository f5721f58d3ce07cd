/* weights.c — binding a graph's weight tensors: from a safetensors file (every mismatch reported), or seeded random values. */
#include "weights.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* node owning each weight tensor, by tensor id (NULL for tensors no live node holds) */
static Node **weight_owners(const Graph *g) {
    Node **own = xcalloc((size_t)(g->tensors.len ? g->tensors.len : 1), sizeof(Node *));
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->dead) continue;
        for (int k = 0; k < IR_MAX_WEIGHTS; k++)
            if (n->w[k] >= 0 && n->w[k] < g->tensors.len) own[n->w[k]] = n;
    }
    return own;
}

static bool same_shape(const Tensor *t, const StTensor *s) {
    if (t->rank != s->rank) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->shape[i] != s->shape[i]) return false;
    return true;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A "did you mean" candidate: close in edit distance, or the same name under an extra prefix
 * (a state_dict saved from nn.DataParallel has every name under "module."). */
static int name_distance(const char *have, const char *want) {
    size_t a = strlen(have), b = strlen(want);
    if (a > b && have[a - b - 1] == '.' && strcmp(have + a - b, want) == 0) return 0;
    if (b > a && want[b - a - 1] == '.' && strcmp(want + b - a, have) == 0) return 0;
    /* two edits catch a swapped pair of letters ("bais"); longer names tolerate more */
    int limit = (int)((a < b ? a : b) / 4);
    if (limit < 2) limit = 2;
    if ((a > b ? a - b : b - a) > (size_t)limit) return -1;
    int dist = util_edit_distance(have, want);
    return dist <= limit ? dist : -1;
}

static void note_layer(Diags *d, const Tensor *t, Node *const *own) {
    if (!t->loc.file) return;
    const Node *n = own[t->id];
    if (n) diag_note(d, t->loc, "weight of this layer ('%s', %s)", n->name, op_info(n->op)->name);
    else diag_note(d, t->loc, "weight of this layer");
}

/* The file's bytes: mapped read-only when it is a regular file (no copy of 100 MB through
 * read()), else read. *mapped says which, for release_file. */
static char *map_file(const char *path, size_t *len, bool *mapped, const char **err) {
    *mapped = false;
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
            if (p != MAP_FAILED) {
                close(fd);
                *mapped = true;
                *len = (size_t)st.st_size;
                return p;
            }
        }
        close(fd);
    }
    return util_read_file(path, len, err);
}

static void release_file(char *buf, size_t len, bool mapped) {
    if (mapped) munmap(buf, len);
    else free(buf);
}

bool weights_load(Graph *g, const char *path, Diags *d) {
    SrcLoc at = {path, 0, 0};
    size_t len = 0;
    const char *rerr = NULL;
    bool mapped;
    char *buf = map_file(path, &len, &mapped, &rerr);
    if (!buf) {
        diag_error(d, at, "cannot read weights: %s", rerr ? rerr : "unknown error");
        return false;
    }
    StFile f;
    char err[512];
    if (!st_parse((const uint8_t *)buf, len, &f, err, sizeof err)) {
        diag_error(d, at, "%s", err);
        release_file(buf, len, mapped);
        return false;
    }

    int errors0 = d->nerrors;
    Node **own = weight_owners(g);
    bool *used = xcalloc((size_t)(f.ntensors ? f.ntensors : 1), sizeof(bool));
    const StTensor **match = xcalloc((size_t)(g->tensors.len ? g->tensors.len : 1), sizeof(StTensor *));
    char sa[256], sb[256];
    for (int i = 0; i < g->tensors.len; i++) {
        Tensor *t = ir_tensor(g, i);
        if (t->kind != TK_WEIGHT) continue;
        const StTensor *s = st_find(&f, t->name);
        if (!s) {
            diag_error(d, at, "missing tensor '%s' (expected shape %s)", t->name,
                       ir_dims_str(t->rank, t->shape, sa, sizeof sa));
            note_layer(d, t, own);
            continue;
        }
        used[s - f.tensors] = true;
        if (s->dtype == ST_OTHER) {
            diag_error(d, at, "tensor '%s' has dtype %s, expected F32/F16/BF16", t->name, s->dtype_name);
            note_layer(d, t, own);
            continue;
        }
        if (!same_shape(t, s)) {
            diag_error(d, at, "tensor '%s' has shape %s, expected %s", t->name,
                       ir_dims_str(s->rank, s->shape, sa, sizeof sa), ir_dims_str(t->rank, t->shape, sb, sizeof sb));
            note_layer(d, t, own);
            continue;
        }
        match[i] = s;
    }

    for (int j = 0; j < f.ntensors; j++) {
        const StTensor *s = &f.tensors[j];
        if (used[j] || ends_with(s->name, ".num_batches_tracked")) continue;
        /* suggest only weights the file lacks: naming one it has would mislead */
        const char *best = NULL;
        int bestd = -1;
        for (int i = 0; i < g->tensors.len; i++) {
            const Tensor *t = ir_tensor(g, i);
            if (t->kind != TK_WEIGHT || st_find(&f, t->name)) continue;
            int dist = name_distance(s->name, t->name);
            if (dist >= 0 && (bestd < 0 || dist < bestd)) best = t->name, bestd = dist;
        }
        ir_dims_str(s->rank, s->shape, sa, sizeof sa);
        if (best)
            diag_error(d, at, "unexpected tensor '%s' %s (no layer of the model has this weight; did you mean '%s'?)",
                       s->name, sa, best);
        else
            diag_error(d, at, "unexpected tensor '%s' %s (no layer of the model has this weight)", s->name, sa);
    }

    bool ok = d->nerrors == errors0;
    /* bind only a file that matches entirely: a half-bound graph is never observable */
    for (int i = 0; ok && i < g->tensors.len; i++) {
        if (!match[i]) continue;
        Tensor *t = ir_tensor(g, i);
        size_t n = (size_t)ir_numel(t);
        free(t->data);
        t->data = xmalloc(n ? n * sizeof(float) : sizeof(float));
        st_to_f32(&f, match[i], t->data);
    }
    free(match);
    free(used);
    free(own);
    st_free(&f);
    release_file(buf, len, mapped);
    return ok;
}

/* ---- seeded random initialisation */

typedef struct Rng {
    uint64_t s;
    bool have_spare;
    double spare;
} Rng;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) with 53 random bits */
static double rng_uniform(Rng *r) { return (double)(splitmix64(&r->s) >> 11) * 0x1.0p-53; }

/* standard normal by Box-Muller; 1 - u keeps the log's argument in (0, 1] */
static double rng_normal(Rng *r) {
    if (r->have_spare) {
        r->have_spare = false;
        return r->spare;
    }
    double u = 1.0 - rng_uniform(r), v = rng_uniform(r);
    double m = sqrt(-2.0 * log(u));
    r->spare = m * sin(2.0 * M_PI * v);
    r->have_spare = true;
    return m * cos(2.0 * M_PI * v);
}

/* Each tensor's stream is seeded by the seed and its name, so its values do not depend on
 * which other layers the model has or in which order they were created. */
static Rng rng_for(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    Rng r = {seed ^ h, false, 0};
    splitmix64(&r.s);
    return r;
}

/* fan-in of a conv/linear node from its weight's shape: [out, in/groups, kh, kw] for conv,
 * [in, out/groups, kh, kw] for conv_transpose (PyTorch's own fan-in reads dim 1 the same
 * way), [out, in] for linear */
static double node_fan_in(const Graph *g, const Node *n) {
    const Tensor *w = ir_weight(g, n, "weight");
    if (!w || w->rank < 2) return 1;
    double fan = (double)w->shape[1];
    for (int i = 2; i < w->rank; i++) fan *= (double)w->shape[i];
    return fan > 0 ? fan : 1;
}

typedef enum { INIT_HE, INIT_BIAS, INIT_BN_WEIGHT, INIT_SMALL, INIT_BN_VAR, INIT_CONST_025 } InitKind;

static InitKind init_kind(const Graph *g, const Node *n, const Tensor *t, double *fan_in) {
    *fan_in = 1;
    if (!n) return INIT_SMALL;
    const OpInfo *oi = op_info(n->op);
    const char *param = NULL;
    for (int k = 0; k < oi->nweights; k++)
        if (n->w[k] == t->id) param = oi->weight_names[k];
    if (!param) return INIT_SMALL;
    switch (n->op) {
    case OP_CONV2D:
    case OP_CONV_TRANSPOSE2D:
    case OP_LINEAR:
        *fan_in = node_fan_in(g, n);
        return strcmp(param, "weight") == 0 ? INIT_HE : INIT_BIAS;
    case OP_BATCHNORM:
        if (strcmp(param, "weight") == 0) return INIT_BN_WEIGHT;
        if (strcmp(param, "running_var") == 0) return INIT_BN_VAR;
        return INIT_SMALL;
    case OP_LAYERNORM:
    case OP_SCALE: return strcmp(param, "weight") == 0 ? INIT_BN_WEIGHT : INIT_SMALL;
    case OP_PRELU: return INIT_CONST_025;
    default: return INIT_SMALL;
    }
}

void weights_random_init(Graph *g, uint64_t seed) {
    Node **own = weight_owners(g);
    for (int i = 0; i < g->tensors.len; i++) {
        Tensor *t = ir_tensor(g, i);
        if (t->kind != TK_WEIGHT || t->data) continue;
        size_t n = (size_t)ir_numel(t);
        t->data = xmalloc(n ? n * sizeof(float) : sizeof(float));
        double fan_in;
        InitKind k = init_kind(g, own[i], t, &fan_in);
        Rng r = rng_for(seed, t->name);
        double he = sqrt(2.0 / fan_in), bias = 0.1 / sqrt(fan_in);
        for (size_t j = 0; j < n; j++) {
            double v = 0;
            switch (k) {
            case INIT_HE: v = he * rng_normal(&r); break;
            case INIT_BIAS: v = bias * (2.0 * rng_uniform(&r) - 1.0); break;
            case INIT_BN_WEIGHT: v = 1.0 + 0.1 * rng_normal(&r); break;
            case INIT_SMALL: v = 0.1 * rng_normal(&r); break;
            case INIT_BN_VAR: v = 0.5 + rng_uniform(&r); break;
            case INIT_CONST_025: v = 0.25; break;
            }
            t->data[j] = (float)v;
        }
    }
    free(own);
}
