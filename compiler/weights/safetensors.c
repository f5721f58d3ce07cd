/* safetensors.c — the safetensors reader: header validation (before any tensor byte is touched) and dtype conversion. */
#include "weights.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A header larger than this is not a weights file anyone wrote on purpose; refusing it early
 * keeps a corrupt length from making cJSON chew through a huge buffer. */
#define ST_MAX_HEADER (100u * 1024u * 1024u)

typedef struct DtypeInfo {
    const char *name;
    StDtype dtype;
    size_t size;
} DtypeInfo;

/* Every dtype of the safetensors specification. The ones netc cannot use still parse (so a
 * file with an int64 counter is readable) and weights_load names them when a layer needs one. */
static const DtypeInfo st_dtypes[] = {
    {"F32", ST_F32, 4},      {"F16", ST_F16, 2},       {"BF16", ST_BF16, 2},    {"F64", ST_F64, 8},
    {"I64", ST_OTHER, 8},    {"I32", ST_OTHER, 4},     {"I16", ST_OTHER, 2},    {"I8", ST_OTHER, 1},
    {"U64", ST_OTHER, 8},    {"U32", ST_OTHER, 4},     {"U16", ST_OTHER, 2},    {"U8", ST_OTHER, 1},
    {"BOOL", ST_OTHER, 1},   {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
};

static const DtypeInfo *dtype_lookup(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return &st_dtypes[i];
    return NULL;
}

static size_t dtype_size(StDtype d) {
    switch (d) {
    case ST_F32: return 4;
    case ST_F16:
    case ST_BF16: return 2;
    case ST_F64: return 8;
    case ST_OTHER: break;
    }
    return 0;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "[3, 3]" for messages */
static const char *dims_str(int rank, const int64_t *shape, char *buf, size_t len) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, len - k, "[");
    for (int i = 0; i < rank && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
    return buf;
}

/* JSON numbers are doubles: accept only exact non-negative integers below 2^53, where every
 * integer is representable, so "3.5", "-1" and "1e300" are refused rather than truncated. */
static bool json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || floor(v) != v) return false;
    *out = (uint64_t)v;
    return true;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

static int cmp_by_begin(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Validate one header entry into t (t->name already set). */
static bool parse_entry(const cJSON *e, size_t data_len, StTensor *t, char *err, size_t errlen) {
    const char *nm = t->name;
    if (!cJSON_IsObject(e)) {
        seterr(err, errlen, "tensor '%s': entry is not a JSON object", nm);
        return false;
    }
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!jd || !js || !jo) {
        seterr(err, errlen, "tensor '%s': missing \"%s\"", nm, !jd ? "dtype" : !js ? "shape" : "data_offsets");
        return false;
    }
    if (!cJSON_IsString(jd)) {
        seterr(err, errlen, "tensor '%s': \"dtype\" is not a string", nm);
        return false;
    }
    const DtypeInfo *di = dtype_lookup(jd->valuestring);
    if (!di) {
        seterr(err, errlen, "tensor '%s': unknown dtype '%.32s' (safetensors dtypes: F32, F16, BF16, F64, I64, ...)",
               nm, jd->valuestring);
        return false;
    }
    t->dtype = di->dtype;
    t->dtype_name = di->name;

    if (!cJSON_IsArray(js)) {
        seterr(err, errlen, "tensor '%s': \"shape\" is not an array", nm);
        return false;
    }
    int rank = cJSON_GetArraySize(js);
    if (rank > IR_MAX_RANK) {
        seterr(err, errlen, "tensor '%s': rank %d exceeds the maximum of %d", nm, rank, IR_MAX_RANK);
        return false;
    }
    t->rank = rank;
    uint64_t bytes = di->size;
    bool overflow = false;
    int i = 0;
    for (const cJSON *d = js->child; d; d = d->next, i++) {
        uint64_t v;
        if (!json_uint(d, &v)) {
            seterr(err, errlen, "tensor '%s': shape entry %d is not a non-negative integer", nm, i);
            return false;
        }
        t->shape[i] = (int64_t)v;
        if (__builtin_mul_overflow(bytes, v, &bytes)) overflow = true;
    }
    /* a zero dimension makes the product 0 whatever overflowed before it */
    for (i = 0; i < rank; i++)
        if (t->shape[i] == 0) overflow = false, bytes = 0;
    char sb[160];
    if (overflow) {
        seterr(err, errlen, "tensor '%s': shape %s of %s is too large (its byte size overflows)", nm,
               dims_str(rank, t->shape, sb, sizeof sb), di->name);
        return false;
    }

    uint64_t b, en;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, &b) ||
        !json_uint(jo->child->next, &en)) {
        seterr(err, errlen, "tensor '%s': \"data_offsets\" must be [begin, end], two non-negative integers", nm);
        return false;
    }
    if (b > en) {
        seterr(err, errlen, "tensor '%s': data_offsets [%llu, %llu] end before they begin", nm,
               (unsigned long long)b, (unsigned long long)en);
        return false;
    }
    if (en > data_len) {
        seterr(err, errlen, "tensor '%s': data_offsets [%llu, %llu] run past the end of the data (%zu bytes)", nm,
               (unsigned long long)b, (unsigned long long)en, data_len);
        return false;
    }
    if (en - b != bytes) {
        seterr(err, errlen, "tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, shape %s of %s needs %llu", nm,
               (unsigned long long)b, (unsigned long long)en, (unsigned long long)(en - b),
               dims_str(rank, t->shape, sb, sizeof sb), di->name, (unsigned long long)bytes);
        return false;
    }
    t->begin = (size_t)b;
    t->end = (size_t)en;
    return true;
}

static bool parse_metadata(const cJSON *m, char *err, size_t errlen) {
    if (!cJSON_IsObject(m)) {
        seterr(err, errlen, "\"__metadata__\" is not a JSON object");
        return false;
    }
    for (const cJSON *c = m->child; c; c = c->next)
        if (!cJSON_IsString(c)) {
            seterr(err, errlen, "\"__metadata__\" entry '%s' is not a string", c->string);
            return false;
        }
    return true;
}

/* Sorted by name (so st_find can bisect and duplicates sit side by side), then checked for
 * overlap in offset order. Tensors of zero bytes occupy nothing and overlap nothing. */
static bool check_layout(StFile *f, char *err, size_t errlen) {
    qsort(f->tensors, (size_t)f->ntensors, sizeof(StTensor), cmp_by_name);
    for (int i = 1; i < f->ntensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            seterr(err, errlen, "duplicate tensor '%s' in the header", f->tensors[i].name);
            return false;
        }
    StTensor **by = xmalloc(sizeof(StTensor *) * (size_t)(f->ntensors ? f->ntensors : 1));
    int n = 0;
    for (int i = 0; i < f->ntensors; i++)
        if (f->tensors[i].end > f->tensors[i].begin) by[n++] = &f->tensors[i];
    qsort(by, (size_t)n, sizeof *by, cmp_by_begin);
    bool ok = true;
    for (int i = 1; i < n && ok; i++)
        if (by[i]->begin < by[i - 1]->end) {
            seterr(err, errlen, "tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap", by[i - 1]->name,
                   by[i - 1]->begin, by[i - 1]->end, by[i]->name, by[i]->begin, by[i]->end);
            ok = false;
        }
    free(by);
    return ok;
}

bool st_parse(const uint8_t *buf, size_t len, StFile *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len < 8) {
        seterr(err, errlen, "file is too short to be safetensors (%zu bytes; the header length alone takes 8)", len);
        return false;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > len - 8) {
        seterr(err, errlen, "header length %llu is larger than the rest of the file (%zu bytes): not a safetensors file, or truncated",
               (unsigned long long)n, len - 8);
        return false;
    }
    if (n > ST_MAX_HEADER) {
        seterr(err, errlen, "header length %llu is implausibly large (over %u bytes)", (unsigned long long)n,
               ST_MAX_HEADER);
        return false;
    }
    const char *hdr = (const char *)buf + 8;
    if (n == 0 || memchr(hdr, 0, (size_t)n)) {
        seterr(err, errlen, n == 0 ? "header is empty" : "header contains a NUL byte: not a safetensors file");
        return false;
    }
    /* cJSON needs a terminated string; terminated, it also refuses trailing garbage (the
     * spaces safetensors pads the header with are skipped as whitespace). */
    char *text = xmalloc((size_t)n + 1);
    memcpy(text, hdr, (size_t)n);
    text[n] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, true);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        char near[24] = {0};
        size_t k = 0;
        for (size_t i = at; i < n && k < 16; i++) {
            unsigned char c = (unsigned char)text[i];
            near[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        if (at >= n)
            seterr(err, errlen, "header is not valid JSON (it ends in the middle of a value)");
        else
            seterr(err, errlen, "header is not valid JSON (at byte %zu: '%s')", at, near);
        free(text);
        return false;
    }
    free(text);
    if (!cJSON_IsObject(root)) {
        seterr(err, errlen, "header is not a JSON object");
        cJSON_Delete(root);
        return false;
    }
    out->data = buf + 8 + n;
    out->data_len = len - 8 - (size_t)n;
    int cap = cJSON_GetArraySize(root);
    out->tensors = xcalloc((size_t)(cap ? cap : 1), sizeof(StTensor));
    bool ok = true;
    for (const cJSON *e = root->child; e && ok; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            ok = parse_metadata(e, err, errlen);
            continue;
        }
        StTensor *t = &out->tensors[out->ntensors++];
        t->name = xstrdup(e->string);
        ok = parse_entry(e, out->data_len, t, err, errlen);
    }
    cJSON_Delete(root);
    if (ok) ok = check_layout(out, err, errlen);
    if (!ok) st_free(out);
    return ok;
}

void st_free(StFile *f) {
    if (!f) return;
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}

const StTensor *st_find(const StFile *f, const char *name) {
    int lo = 0, hi = f->ntensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[mid].name, name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

static float bits_to_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* IEEE half to single, exactly: every half (subnormals, infinities, NaN payloads) is a float. */
static float half_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | man << 13);
    if (exp != 0) return bits_to_f32(sign | (exp + 112) << 23 | man << 13);
    if (man == 0) return bits_to_f32(sign);
    /* subnormal half: man * 2^-24, normal as a float; renormalise the mantissa */
    int e = -1;
    do {
        man <<= 1;
        e++;
    } while (!(man & 0x400));
    return bits_to_f32(sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13);
}

void st_to_f32(const StFile *f, const StTensor *t, float *dst) {
    NETC_ASSERT(t->dtype != ST_OTHER);
    const uint8_t *p = f->data + t->begin;
    size_t sz = dtype_size(t->dtype), n = (t->end - t->begin) / sz;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (t->dtype == ST_F32) { /* the file's byte order is the host's */
        memcpy(dst, p, n * 4);
        return;
    }
#endif
    /* bytes assembled explicitly: the data is little-endian and need not be aligned */
    for (size_t i = 0; i < n; i++, p += sz) {
        switch (t->dtype) {
        case ST_F32: dst[i] = bits_to_f32((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24); break;
        case ST_F16: dst[i] = half_to_f32((uint16_t)(p[0] | p[1] << 8)); break;
        case ST_BF16: dst[i] = bits_to_f32((uint32_t)p[0] << 16 | (uint32_t)p[1] << 24); break;
        case ST_F64: {
            uint64_t u = 0;
            for (int k = 7; k >= 0; k--) u = u << 8 | p[k];
            double d;
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
            break;
        }
        case ST_OTHER: break;
        }
    }
}
