/* loader.c — the netrt loader: dlopen a compiled model, check its descriptor, allocate
 * workspaces, validate and forward netrt_run calls. No global state: a handle per model. */
#include "netrt.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sanity bounds for a descriptor: far above any real model, low enough that a corrupt count is
 * caught before it is used as a loop bound or an allocation size. */
#define MAX_TENSORS 65536
#define MIN_ALIGN 64

struct netrt_model {
    void *handle; /* NULL for netrt_open_desc */
    const netrt_model_desc *desc;
    const netrt_variant *variant; /* the one netrt_run calls */
};

/* The layout generated code builds (cg_module.c builds the same fields in this order). */
_Static_assert(offsetof(netrt_model_desc, name) == 8 && offsetof(netrt_model_desc, ninputs) == 16 &&
                   offsetof(netrt_model_desc, inputs) == 24 && offsetof(netrt_model_desc, workspace_size) == 40 &&
                   offsetof(netrt_model_desc, arch) == 56 && offsetof(netrt_model_desc, nvariants) == 64 &&
                   offsetof(netrt_model_desc, variants) == 72 && offsetof(netrt_model_desc, nprofile) == 80 &&
                   offsetof(netrt_model_desc, profile) == 88 && sizeof(netrt_model_desc) == 96,
               "netrt_model_desc layout");
/* An ABI 2 descriptor ends before the profile table. */
#define DESC_SIZE_V2 offsetof(netrt_model_desc, nprofile)
_Static_assert(offsetof(netrt_node_info, op) == 8 && offsetof(netrt_node_info, kind) == 16 &&
                   offsetof(netrt_node_info, fused) == 24 && offsetof(netrt_node_info, flops) == 32 &&
                   offsetof(netrt_node_info, rank) == 40 && offsetof(netrt_node_info, shape) == 48 &&
                   sizeof(netrt_node_info) == 48 + 8 * NETRT_MAX_RANK,
               "netrt_node_info layout");
_Static_assert(offsetof(netrt_variant, features) == 8 && offsetof(netrt_variant, required) == 16 &&
                   offsetof(netrt_variant, run) == 24 && sizeof(netrt_variant) == 32,
               "netrt_variant layout");
_Static_assert(offsetof(netrt_tensor_info, shape) == 16 && sizeof(netrt_tensor_info) == 16 + 8 * NETRT_MAX_RANK,
               "netrt_tensor_info layout");

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool check_tensors(const char *what, const char *who, int32_t n, const netrt_tensor_info *t, char *err,
                          size_t errlen) {
    if (n < 0 || n > MAX_TENSORS) {
        seterr(err, errlen, "%s: malformed model descriptor: %d %ss", who, n, what);
        return false;
    }
    if (n > 0 && !t) {
        seterr(err, errlen, "%s: malformed model descriptor: %d %ss but no %s table", who, n, what, what);
        return false;
    }
    for (int32_t i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0]) {
            seterr(err, errlen, "%s: malformed model descriptor: %s %d has no name", who, what, i);
            return false;
        }
        if (t[i].rank < 0 || t[i].rank > NETRT_MAX_RANK) {
            seterr(err, errlen, "%s: malformed model descriptor: %s '%s' has rank %d (the runtime allows 0 to %d)",
                   who, what, t[i].name, t[i].rank, NETRT_MAX_RANK);
            return false;
        }
        /* every dimension >= 1 (the language's rule), and the byte size must fit a size_t */
        size_t count = 1;
        for (int32_t r = 0; r < t[i].rank; r++) {
            int64_t d = t[i].shape[r];
            if (d < 1 || (uint64_t)d > SIZE_MAX / sizeof(float) / count) {
                seterr(err, errlen, "%s: malformed model descriptor: %s '%s' has dimension %d = %lld", who, what,
                       t[i].name, r, (long long)d);
                return false;
            }
            count *= (size_t)d;
        }
        for (int32_t j = 0; j < i; j++)
            if (!strcmp(t[i].name, t[j].name)) {
                seterr(err, errlen, "%s: malformed model descriptor: two %ss named '%s'", who, what, t[i].name);
                return false;
            }
    }
    return true;
}

/* Everything netrt_run and netrun rely on, checked once at open. */
/* Does the descriptor have the ABI 3 profile table fields? */
static bool has_profile(const netrt_model_desc *d) {
    return d->abi_version >= 3 && d->desc_size >= sizeof(netrt_model_desc);
}

static bool check_profile(const netrt_model_desc *d, const char *who, char *err, size_t errlen) {
    if (d->nprofile < 0 || d->nprofile > MAX_TENSORS || (d->nprofile > 0 && !d->profile)) {
        seterr(err, errlen, "%s: malformed model descriptor: %d profile entries", who, d->nprofile);
        return false;
    }
    for (int32_t i = 0; i < d->nprofile; i++) {
        const netrt_node_info *e = &d->profile[i];
        if (!e->name || !e->op || !e->kind || !e->fused || e->rank < 0 || e->rank > NETRT_MAX_RANK) {
            seterr(err, errlen, "%s: malformed model descriptor: profile entry %d", who, i);
            return false;
        }
    }
    return true;
}

static bool check_desc(const netrt_model_desc *d, const char *who, char *err, size_t errlen) {
    if (d->abi_version < NETRT_ABI_VERSION_MIN || d->abi_version > NETRT_ABI_VERSION) {
        seterr(err, errlen,
               "%s was built for netrt ABI version %u, this runtime has version %d (recompile the model with a "
               "matching netc)",
               who, (unsigned)d->abi_version, NETRT_ABI_VERSION);
        return false;
    }
    /* A larger descriptor is a newer compiler that appended fields within the same ABI; an ABI 2
     * one ends before the profile table. */
    size_t need = d->abi_version >= 3 ? sizeof(netrt_model_desc) : DESC_SIZE_V2;
    if (d->desc_size < need) {
        seterr(err, errlen, "%s: malformed model descriptor: desc_size %u, expected at least %zu", who,
               (unsigned)d->desc_size, need);
        return false;
    }
    if (has_profile(d) && !check_profile(d, who, err, errlen)) return false;
    if (!d->name || !d->name[0]) {
        seterr(err, errlen, "%s: malformed model descriptor: no model name", who);
        return false;
    }
    if (d->nvariants < 1 || d->nvariants > 64 || !d->variants) {
        seterr(err, errlen, "%s: malformed model descriptor: %d variants", who, d->nvariants);
        return false;
    }
    for (int32_t i = 0; i < d->nvariants; i++)
        if (!d->variants[i].run || !d->variants[i].cpu || !d->variants[i].features) {
            seterr(err, errlen, "%s: malformed model descriptor: variant %d has no entry point or names", who, i);
            return false;
        }
    if (!d->arch || strcmp(d->arch, netrt_arch())) {
        seterr(err, errlen, "%s was compiled for %s; this machine is %s (rebuild with netc --target=...)", who,
               d->arch ? d->arch : "an unknown architecture", netrt_arch());
        return false;
    }
    if (d->noutputs < 1) {
        seterr(err, errlen, "%s: malformed model descriptor: %d outputs (a model has at least one)", who,
               d->noutputs);
        return false;
    }
    if (!check_tensors("input", who, d->ninputs, d->inputs, err, errlen) ||
        !check_tensors("output", who, d->noutputs, d->outputs, err, errlen))
        return false;
    uint64_t a = d->workspace_align;
    if (a != 0 && (a & (a - 1))) {
        seterr(err, errlen, "%s: malformed model descriptor: workspace alignment %llu is not a power of two", who,
               (unsigned long long)a);
        return false;
    }
    if (a > (1u << 20) || d->workspace_size > SIZE_MAX - (1u << 20)) {
        seterr(err, errlen, "%s: malformed model descriptor: workspace of %llu bytes aligned to %llu", who,
               (unsigned long long)d->workspace_size, (unsigned long long)a);
        return false;
    }
    return true;
}

/* "avx512f, avx512bw" */
static void list_str(uint64_t mask, char *buf, size_t len) {
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < 64; i++) {
        const char *name = netrt_cpu_feature_name(i);
        if (mask >> i & 1 && n < len)
            n += (size_t)(name ? snprintf(buf + n, len - n, "%s%s", n ? ", " : "", name)
                               : snprintf(buf + n, len - n, "%sfeature #%d", n ? ", " : "", i));
    }
}

/* The first variant (they come best first) whose features this CPU has; NULL with a message
 * naming what the best-placed variant lacks, what the CPU has, and what to rebuild with. */
static const netrt_variant *pick_variant(const netrt_model_desc *d, const char *who, char *err, size_t errlen) {
    uint64_t have = netrt_cpu_features();
    for (int32_t i = 0; i < d->nvariants; i++)
        if ((d->variants[i].required & ~have) == 0) return &d->variants[i];
    /* the variant needing the fewest features the CPU lacks */
    const netrt_variant *v = &d->variants[0];
    for (int32_t i = 1; i < d->nvariants; i++)
        if (__builtin_popcountll(d->variants[i].required & ~have) < __builtin_popcountll(v->required & ~have))
            v = &d->variants[i];
    char need[640], got[640];
    list_str(v->required & ~have, need, sizeof need);
    /* what the CPU has, of the features that set the vector ISA */
    uint64_t shown = 0;
    static const char *const headline[] = {"sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq",
                                           "avx512vl", NULL};
    for (int k = 0; headline[k]; k++) shown |= 1ull << netrt_cpu_feature_bit(headline[k]);
    list_str(have & shown, got, sizeof got);
    int level = netrt_cpu_level(have);
    char fix[96] = "";
    if (level >= 2) snprintf(fix, sizeof fix, ": rebuild with --cpu=x86-64-v%d (or --cpu=native on this machine)", level);
    else if (level == 1) snprintf(fix, sizeof fix, ": rebuild with --cpu=x86-64");
    seterr(err, errlen, "%s needs %s (compiled for --cpu=%s); this CPU has %s%s", who, need, v->cpu,
           got[0] ? got : "none of avx, avx2, avx512f", fix);
    return NULL;
}

static netrt_model *wrap(void *handle, const netrt_model_desc *desc, char *err, size_t errlen) {
    netrt_model *m = malloc(sizeof *m);
    if (!m) {
        seterr(err, errlen, "out of memory");
        if (handle) dlclose(handle);
        return NULL;
    }
    m->handle = handle;
    m->desc = desc;
    m->variant = NULL;
    return m;
}

netrt_model *netrt_open(const char *path, char *err, size_t errlen) {
    if (!path || !*path) {
        seterr(err, errlen, "no model path given");
        return NULL;
    }
    /* dlopen searches the library path for a name without '/': "model.so" would not find the
     * file in the working directory, which is what a command-line user means. */
    char *local = NULL;
    if (!strchr(path, '/')) {
        size_t n = strlen(path);
        local = malloc(n + 3);
        if (!local) {
            seterr(err, errlen, "out of memory");
            return NULL;
        }
        memcpy(local, "./", 2);
        memcpy(local + 2, path, n + 1);
    }
    /* RTLD_LOCAL: two models export the same descriptor symbol; neither may shadow the other. */
    dlerror();
    void *h = dlopen(local ? local : path, RTLD_NOW | RTLD_LOCAL);
    free(local);
    if (!h) {
        const char *e = dlerror();
        seterr(err, errlen, "%s", e ? e : "dlopen failed");
        return NULL;
    }
    char who[512];
    snprintf(who, sizeof who, "'%s'", path);
    dlerror();
    const netrt_model_desc *d = dlsym(h, NETRT_DESCRIPTOR_SYMBOL);
    if (!d || dlerror()) {
        seterr(err, errlen, "%s is not a netc model (no " NETRT_DESCRIPTOR_SYMBOL " symbol)", who);
        dlclose(h);
        return NULL;
    }
    const netrt_variant *v = check_desc(d, who, err, errlen) ? pick_variant(d, who, err, errlen) : NULL;
    if (!v) {
        dlclose(h);
        return NULL;
    }
    netrt_model *m = wrap(h, d, err, errlen);
    if (m) m->variant = v;
    return m;
}

netrt_model *netrt_open_desc(const netrt_model_desc *desc, char *err, size_t errlen) {
    if (!desc) {
        seterr(err, errlen, "no model descriptor given");
        return NULL;
    }
    char who[300];
    /* the name is checked by check_desc; before that it may be anything */
    if (desc->abi_version >= NETRT_ABI_VERSION_MIN && desc->abi_version <= NETRT_ABI_VERSION && desc->name)
        snprintf(who, sizeof who, "model '%.256s'", desc->name);
    else
        snprintf(who, sizeof who, "the model descriptor");
    const netrt_variant *v = check_desc(desc, who, err, errlen) ? pick_variant(desc, who, err, errlen) : NULL;
    if (!v) return NULL;
    netrt_model *m = wrap(NULL, desc, err, errlen);
    if (m) m->variant = v;
    return m;
}

void netrt_close(netrt_model *m) {
    if (!m) return;
    if (m->handle) dlclose(m->handle);
    free(m);
}

const netrt_model_desc *netrt_desc(const netrt_model *m) { return m ? m->desc : NULL; }
const netrt_variant *netrt_variant_selected(const netrt_model *m) { return m ? m->variant : NULL; }
int netrt_profile_nodes(const netrt_model *m, const netrt_node_info **nodes) {
    int n = m && has_profile(m->desc) ? m->desc->nprofile : 0;
    if (nodes) *nodes = n ? m->desc->profile : NULL;
    return n;
}
int netrt_num_inputs(const netrt_model *m) { return m ? m->desc->ninputs : 0; }
int netrt_num_outputs(const netrt_model *m) { return m ? m->desc->noutputs : 0; }

const netrt_tensor_info *netrt_input(const netrt_model *m, int i) {
    return m && i >= 0 && i < m->desc->ninputs ? &m->desc->inputs[i] : NULL;
}

const netrt_tensor_info *netrt_output(const netrt_model *m, int i) {
    return m && i >= 0 && i < m->desc->noutputs ? &m->desc->outputs[i] : NULL;
}

size_t netrt_tensor_count(const netrt_tensor_info *t) {
    if (!t) return 0;
    size_t n = 1;
    for (int32_t r = 0; r < t->rank; r++) n *= (size_t)t->shape[r];
    return n;
}

static size_t ws_align(const netrt_model_desc *d) {
    return d->workspace_align > MIN_ALIGN ? (size_t)d->workspace_align : MIN_ALIGN;
}

/* aligned_alloc wants a size that is a multiple of the alignment; a workspace of 0 bytes still
 * gets a real block, so callers need no special case. */
void *netrt_alloc_workspace(const netrt_model *m) {
    if (!m) return NULL;
    size_t a = ws_align(m->desc);
    size_t size = (size_t)m->desc->workspace_size;
    size = size == 0 ? a : (size + a - 1) / a * a; /* no overflow: check_desc bounded both */
    return aligned_alloc(a, size);
}

void netrt_free_workspace(void *ws) { free(ws); }

static bool overlaps(const void *p, size_t np, const void *q, size_t nq) {
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)q;
    return a < b + nq && b < a + np;
}

/* The checks are O(inputs + outputs): negligible next to an inference, and they turn a caller's
 * mistake into a status instead of a corrupt run. */
netrt_status netrt_run(const netrt_model *m, const float *const *inputs, float *const *outputs, void *workspace,
                       netrt_pool *pool) {
    if (!m) return NETRT_ERR_ARG;
    const netrt_model_desc *d = m->desc;
    if ((d->ninputs > 0 && !inputs) || !outputs || !workspace) return NETRT_ERR_ARG;
    if ((uintptr_t)workspace % ws_align(d) != 0) return NETRT_ERR_ARG;
    size_t wsize = (size_t)d->workspace_size;
    for (int32_t i = 0; i < d->ninputs; i++) {
        if (!inputs[i]) return NETRT_ERR_ARG;
        if (overlaps(inputs[i], netrt_tensor_count(&d->inputs[i]) * sizeof(float), workspace, wsize))
            return NETRT_ERR_ARG;
    }
    for (int32_t i = 0; i < d->noutputs; i++) {
        if (!outputs[i]) return NETRT_ERR_ARG;
        size_t bytes = netrt_tensor_count(&d->outputs[i]) * sizeof(float);
        if (overlaps(outputs[i], bytes, workspace, wsize)) return NETRT_ERR_ARG;
        for (int32_t j = 0; j < d->ninputs; j++)
            if (overlaps(outputs[i], bytes, inputs[j], netrt_tensor_count(&d->inputs[j]) * sizeof(float)))
                return NETRT_ERR_ARG;
        for (int32_t j = 0; j < i; j++)
            if (overlaps(outputs[i], bytes, outputs[j], netrt_tensor_count(&d->outputs[j]) * sizeof(float)))
                return NETRT_ERR_ARG;
    }
    return m->variant->run(inputs, outputs, workspace, pool) == 0 ? NETRT_OK : NETRT_ERR_RUN;
}

const char *netrt_status_str(netrt_status s) {
    switch (s) {
    case NETRT_OK: return "ok";
    case NETRT_ERR_OPEN: return "cannot open the model file";
    case NETRT_ERR_NOT_MODEL: return "not a netc model";
    case NETRT_ERR_ABI: return "model ABI version mismatch";
    case NETRT_ERR_ARG: return "bad argument (NULL, misaligned or overlapping buffer)";
    case NETRT_ERR_NOMEM: return "out of memory";
    case NETRT_ERR_RUN: return "the model's entry point reported an error";
    case NETRT_ERR_CPU: return "the CPU lacks features the model needs";
    }
    return "unknown status";
}
