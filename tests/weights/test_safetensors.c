/* test_safetensors.c — the safetensors reader (dtype conversion checked against PyTorch, every refusal with its
 * message), weights_load's reports on a built graph, and the seeded random initialisation. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "weights/weights.h"

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* A safetensors image: 8-byte length, the JSON text as given, then dlen data bytes (a ramp). */
static uint8_t *image(const char *json, size_t dlen, size_t *len) {
    size_t h = strlen(json);
    *len = 8 + h + dlen;
    uint8_t *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, json, h);
    for (size_t i = 0; i < dlen; i++) b[8 + h + i] = (uint8_t)i;
    return b;
}

/* st_parse's message for an image that must be refused */
static const char *refusal(const char *json, size_t dlen) {
    static char err[512];
    size_t len;
    uint8_t *b = image(json, dlen, &len);
    StFile f;
    err[0] = 0;
    bool ok = st_parse(b, len, &f, err, sizeof err);
    free(b);
    cr_assert(!ok, "accepted: %s", json);
    cr_assert_eq(f.ntensors, 0);
    cr_assert_null(f.tensors);
    return err;
}

static bool bits_equal(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- the reader */

Test(safetensors, dtypes_match_pytorch) {
    size_t len;
    uint8_t *b = slurp(tu_src("tests/fixtures/st/dtypes.safetensors"), &len);
    StFile f;
    char err[512] = "";
    cr_assert(st_parse(b, len, &f, err, sizeof err), "%s", err);
    cr_assert_eq(f.ntensors, 8);
    /* each narrow tensor next to its float32 conversion made by torch/numpy: equal bit for bit,
     * subnormals, infinities, NaN and -0 included */
    const char *pairs[][2] = {{"f16", "f16_ref"}, {"bf16", "bf16_ref"}, {"f64", "f64_ref"}};
    for (int p = 0; p < 3; p++) {
        const StTensor *t = st_find(&f, pairs[p][0]), *r = st_find(&f, pairs[p][1]);
        cr_assert(t && r);
        cr_assert_eq(r->dtype, ST_F32);
        size_t n = (r->end - r->begin) / 4;
        float *x = malloc(n * 4), *y = malloc(n * 4);
        st_to_f32(&f, t, x);
        st_to_f32(&f, r, y);
        for (size_t i = 0; i < n; i++)
            cr_assert(bits_equal(x[i], y[i]), "%s[%zu]: %a, torch says %a", pairs[p][0], i, x[i], y[i]);
        free(x);
        free(y);
    }
    /* and against known values, so the reference itself is checked */
    const StTensor *h = st_find(&f, "f16");
    cr_assert_eq(h->dtype, ST_F16);
    cr_assert_str_eq(h->dtype_name, "F16");
    float v[12];
    st_to_f32(&f, h, v);
    cr_assert_eq(v[3], 65504.0f);
    cr_assert_eq(v[4], ldexpf(1, -24));               /* smallest subnormal half */
    cr_assert_eq(v[5], ldexpf(1, -14) - ldexpf(1, -24)); /* largest subnormal half */
    cr_assert_eq(v[6], 3 * ldexpf(1, -24));
    cr_assert_eq(v[7], -ldexpf(1, -20));
    cr_assert(isinf(v[8]) && v[8] > 0);
    cr_assert(isinf(v[9]) && v[9] < 0);
    cr_assert(isnan(v[10]));
    cr_assert(v[11] == 0 && signbit(v[11]));
    const StTensor *bf = st_find(&f, "bf16");
    cr_assert_eq(bf->rank, 2);
    cr_assert_eq(bf->shape[0], 3);
    cr_assert_eq(bf->shape[1], 4);
    st_to_f32(&f, bf, v);
    cr_assert_eq(v[0], 1.0f);
    cr_assert_eq(v[1], -2.5f);
    cr_assert_eq(v[4], ldexpf(1, -133));
    cr_assert(isnan(v[10]));
    const StTensor *f32 = st_find(&f, "f32");
    st_to_f32(&f, f32, v);
    for (int i = 0; i < 6; i++) cr_assert_eq(v[i], i * 0.5f - 1);
    const StTensor *d = st_find(&f, "f64");
    st_to_f32(&f, d, v);
    cr_assert_eq(v[1], (float)(1.0 / 3));
    cr_assert(isinf(v[3]));
    cr_assert_eq(v[5], ldexpf(1, -149));
    /* an int64 counter parses, as "other" */
    const StTensor *c = st_find(&f, "bn.num_batches_tracked");
    cr_assert_eq(c->dtype, ST_OTHER);
    cr_assert_str_eq(c->dtype_name, "I64");
    cr_assert_eq(c->rank, 0);
    cr_assert_eq(c->end - c->begin, 8);
    cr_assert_null(st_find(&f, "__metadata__"));
    cr_assert_null(st_find(&f, "f17"));
    st_free(&f);
    cr_assert_eq(f.ntensors, 0);
    free(b);
}

Test(safetensors, minimal_files) {
    size_t len;
    StFile f;
    char err[512] = "";
    /* an empty header object, padding spaces, zero-sized tensors sharing an offset */
    uint8_t *b = image("{}    ", 0, &len);
    cr_assert(st_parse(b, len, &f, err, sizeof err), "%s", err);
    cr_assert_eq(f.ntensors, 0);
    st_free(&f);
    free(b);
    b = image("{\"a\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"c\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[4,4]},"
              "\"__metadata__\":{\"format\":\"pt\"}}",
              4, &len);
    cr_assert(st_parse(b, len, &f, err, sizeof err), "%s", err);
    cr_assert_eq(f.ntensors, 3);
    cr_assert_eq(f.data_len, 4);
    cr_assert_eq(st_find(&f, "a")->shape[1], 3);
    float x;
    st_to_f32(&f, st_find(&f, "b"), &x);
    uint8_t want[4] = {0, 1, 2, 3};
    float w;
    memcpy(&w, want, 4);
    cr_assert(bits_equal(x, w));
    st_free(&f);
    free(b);
}

Test(safetensors, length_errors) {
    StFile f;
    char err[512];
    uint8_t four[4] = {1, 2, 3, 4};
    cr_assert(!st_parse(four, 4, &f, err, sizeof err));
    cr_assert_str_eq(err, "file is too short to be safetensors (4 bytes; the header length alone takes 8)");

    size_t len;
    uint8_t *b = image("{}", 0, &len);
    b[0] = 3; /* header length 3 in a file with 2 bytes after the length */
    cr_assert(!st_parse(b, len, &f, err, sizeof err));
    cr_assert_str_eq(err, "header length 3 is larger than the rest of the file (2 bytes): not a safetensors file, or truncated");
    b[0] = 0;
    cr_assert(!st_parse(b, len, &f, err, sizeof err));
    cr_assert_str_eq(err, "header is empty");
    free(b);

    /* a plausible-looking but huge header: refused before cJSON sees it (calloc'ed zero pages
     * cost nothing until touched, and they are not) */
    size_t big = 100u * 1024u * 1024u + 64;
    uint8_t *z = calloc(big + 8, 1);
    for (int i = 0; i < 8; i++) z[i] = (uint8_t)((uint64_t)big >> (8 * i));
    cr_assert(!st_parse(z, big + 8, &f, err, sizeof err));
    cr_assert_str_eq(err, "header length 104857664 is implausibly large (over 104857600 bytes)");
    free(z);
}

Test(safetensors, json_errors) {
    cr_assert_str_eq(refusal("{\"a\": ", 0), "header is not valid JSON (it ends in the middle of a value)");
    cr_assert_str_eq(refusal("{\"a\": x}", 0), "header is not valid JSON (at byte 6: 'x}')");
    cr_assert_str_eq(refusal("{} trailing", 0), "header is not valid JSON (at byte 3: 'trailing')");
    cr_assert_str_eq(refusal("[1, 2]", 0), "header is not a JSON object");
    cr_assert_str_eq(refusal("{\"a\": 1}", 0), "tensor 'a': entry is not a JSON object");
    cr_assert_str_eq(refusal("{\"__metadata__\": {\"k\": 1}}", 0), "\"__metadata__\" entry 'k' is not a string");
    cr_assert_str_eq(refusal("{\"__metadata__\": []}", 0), "\"__metadata__\" is not a JSON object");

    size_t len;
    uint8_t *b = image("{\"a\"  }", 0, &len);
    b[12] = 0;
    StFile f;
    char err[256];
    cr_assert(!st_parse(b, len, &f, err, sizeof err));
    cr_assert_str_eq(err, "header contains a NUL byte: not a safetensors file");
    free(b);
}

Test(safetensors, entry_errors) {
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                     "tensor 'w': unknown dtype 'F17' (safetensors dtypes: F32, F16, BF16, F64, I64, ...)");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                     "tensor 'w': \"dtype\" is not a string");
    cr_assert_str_eq(refusal("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "tensor 'w': missing \"dtype\"");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), "tensor 'w': missing \"shape\"");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "tensor 'w': missing \"data_offsets\"");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4),
                     "tensor 'w': \"shape\" is not an array");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4),
                     "tensor 'w': shape entry 1 is not a non-negative integer");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4),
                     "tensor 'w': shape entry 0 is not a non-negative integer");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4),
                     "tensor 'w': rank 9 exceeds the maximum of 8");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4),
                     "tensor 'w': shape [4294967296, 4294967296] of F32 is too large (its byte size overflows)");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4),
                     "tensor 'w': \"data_offsets\" must be [begin, end], two non-negative integers");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4),
                     "tensor 'w': \"data_offsets\" must be [begin, end], two non-negative integers");
}

Test(safetensors, offset_errors) {
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8),
                     "tensor 'w': data_offsets [8, 4] end before they begin");
    cr_assert_str_eq(refusal("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", 8),
                     "tensor 'w': data_offsets [0, 12] run past the end of the data (8 bytes)");
    cr_assert_str_eq(refusal("{\"conv.weight\":{\"dtype\":\"F32\",\"shape\":[3,3],\"data_offsets\":[0,100]}}", 100),
                     "tensor 'conv.weight': data_offsets [0, 100] hold 100 bytes, shape [3, 3] of F32 needs 36");
    cr_assert_str_eq(refusal("{\"h\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,12]}}", 12),
                     "tensor 'h': data_offsets [0, 12] hold 12 bytes, shape [3] of BF16 needs 6");
    cr_assert_str_eq(refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                             8),
                     "tensors 'a' [0, 8] and 'b' [4, 8] overlap");
    cr_assert_str_eq(refusal("{\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[6,14]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                             16),
                     "tensors 'a' [0, 8] and 'b' [6, 14] overlap");
    cr_assert_str_eq(refusal("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                             8),
                     "duplicate tensor 'a' in the header");
}

/* ---- weights_load on a built graph: x [1, 2, 4, 4] -> conv2d c1 (3 out, 1x1) -> batchnorm bn */

static Graph *small_graph(void) {
    Graph *g = ir_graph_new("m");
    Diags d;
    diags_init(&d);
    int64_t xs[4] = {1, 2, 4, 4};
    int x = ir_add_input(g, "x", 4, xs, (SrcLoc){"m.net", 1, 1});
    Node *c = ir_add_node(g, OP_CONV2D, "c1", &x, 1, (SrcLoc){"m.net", 2, 6});
    ir_set_int(g, c, "out", 3);
    ir_set_pair(g, c, "kernel", 1, 1);
    cr_assert(ir_infer_node(g, c, &d));
    Node *bn = ir_add_node(g, OP_BATCHNORM, "bn", &c->out, 1, (SrcLoc){"m.net", 3, 6});
    cr_assert(ir_infer_node(g, bn, &d));
    ir_add_output(g, bn->out, "y", (SrcLoc){"m.net", 4, 1});
    cr_assert_eq(d.nerrors, 0);
    diags_free(&d);
    return g;
}

static Tensor *weight(Graph *g, const char *name) {
    for (int i = 0; i < g->tensors.len; i++)
        if (ir_tensor(g, i)->kind == TK_WEIGHT && strcmp(ir_tensor(g, i)->name, name) == 0) return ir_tensor(g, i);
    cr_assert_fail("no weight %s", name);
    return NULL;
}

/* Writes a file from "name:DTYPE:[dims]" specs; F32 values are base + index, F16 the value 1.5. */
static const char *write_st(const char *const *specs, int n, float base) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/netc-st-%d.safetensors", (int)getpid());
    char json[4096] = "{";
    uint8_t data[4096];
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        char name[128], dt[16], dims[64];
        cr_assert_eq(sscanf(specs[i], "%127[^:]:%15[^:]:%63s", name, dt, dims), 3);
        long numel = 1;
        for (char *p = dims + 1; *p && *p != ']';) {
            long v = strtol(p, &p, 10);
            numel *= v;
            while (*p == ',' || *p == ' ') p++;
        }
        if (strcmp(dims, "[]") == 0) numel = 1;
        size_t sz = strcmp(dt, "F16") == 0 ? 2 : strcmp(dt, "I64") == 0 ? 8 : 4;
        for (long k = 0; k < numel; k++) {
            if (sz == 4) {
                float v = base + (float)k;
                memcpy(data + off + 4 * (size_t)k, &v, 4);
            } else if (sz == 2) {
                data[off + 2 * (size_t)k] = 0x00, data[off + 2 * (size_t)k + 1] = 0x3e; /* 1.5 */
            } else {
                memset(data + off + 8 * (size_t)k, 0, 8);
            }
        }
        size_t end = off + sz * (size_t)numel;
        snprintf(json + strlen(json), sizeof json - strlen(json), "%s\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                 i ? "," : "", name, dt, dims, off, end);
        off = end;
    }
    strcat(json, "}");
    size_t len;
    uint8_t *img = image(json, 0, &len);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(img, 1, len, f);
    fwrite(data, 1, off, f);
    fclose(f);
    free(img);
    return path;
}

static const char *const good[] = {
    "c1.weight:F32:[3,2,1,1]", "c1.bias:F32:[3]",        "bn.weight:F32:[3]",
    "bn.bias:F32:[3]",         "bn.running_mean:F32:[3]", "bn.running_var:F16:[3]",
    "bn.num_batches_tracked:I64:[]",
};

Test(weights_load, binds_every_weight) {
    Graph *g = small_graph();
    const char *path = write_st(good, 7, 10);
    Diags d;
    diags_init(&d);
    cr_assert(weights_load(g, path, &d));
    cr_assert_eq(d.len, 0);
    Tensor *w = weight(g, "c1.weight");
    cr_assert_not_null(w->data);
    for (int i = 0; i < 6; i++) cr_assert_eq(w->data[i], 10.0f + (float)i);
    Tensor *var = weight(g, "bn.running_var");
    for (int i = 0; i < 3; i++) cr_assert_eq(var->data[i], 1.5f); /* F16 widened */
    cr_assert_eq(weight(g, "bn.running_mean")->data[2], 12.0f);
    diags_free(&d);
    unlink(path);
    ir_graph_free(g);
}

/* the messages of d's errors, in order, joined by '\n' */
static char *errors_of(const Diags *d) {
    static char buf[4096];
    buf[0] = 0;
    for (int i = 0; i < d->len; i++)
        if (d->items[i].level == DIAG_ERROR)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s\n", d->items[i].msg);
    return buf;
}

Test(weights_load, all_problems_reported_together) {
    Graph *g = small_graph();
    /* c1.bias missing, c1.weight of the wrong shape, a misspelt bn.bias, an extra tensor, and
     * an integer tensor where a weight is needed */
    const char *const specs[] = {
        "c1.weight:F32:[3,2,3,3]", "bn.weight:F32:[3]", "bn.bais:F32:[3]", "bn.running_mean:I64:[3]",
        "bn.running_var:F32:[3]",  "head.fc.weight:F32:[10,3]", "bn.num_batches_tracked:I64:[]",
    };
    const char *path = write_st(specs, 7, 0);
    Diags d;
    diags_init(&d);
    cr_assert(!weights_load(g, path, &d));
    cr_assert_str_eq(errors_of(&d),
                     "tensor 'c1.weight' has shape [3, 2, 3, 3], expected [3, 2, 1, 1]\n"
                     "missing tensor 'c1.bias' (expected shape [3])\n"
                     "missing tensor 'bn.bias' (expected shape [3])\n"
                     "tensor 'bn.running_mean' has dtype I64, expected F32/F16/BF16\n"
                     "unexpected tensor 'bn.bais' [3] (no layer of the model has this weight; did you mean 'bn.bias'?)\n"
                     "unexpected tensor 'head.fc.weight' [10, 3] (no layer of the model has this weight)\n");
    cr_assert_eq(d.nerrors, 6);
    for (int i = 0; i < d.len; i++) {
        const Diag *e = &d.items[i];
        if (e->level == DIAG_ERROR) {
            cr_assert_str_eq(e->loc.file, path); /* "PATH: error: ..." */
            cr_assert_eq(e->loc.line, 0);
        } else {
            /* notes point at the layer in the model source */
            cr_assert_eq(e->level, DIAG_NOTE);
            cr_assert_str_eq(e->loc.file, "m.net");
            cr_assert(e->loc.line == 2 || e->loc.line == 3, "note at line %d", e->loc.line);
        }
    }
    /* nothing is bound from a file that does not match */
    for (int i = 0; i < g->tensors.len; i++) cr_assert_null(ir_tensor(g, i)->data);
    diags_free(&d);
    unlink(path);
    ir_graph_free(g);
}

Test(weights_load, prefix_suggestion_and_file_errors) {
    Graph *g = small_graph();
    const char *const specs[] = {
        "module.c1.weight:F32:[3,2,1,1]", "c1.bias:F32:[3]", "bn.weight:F32:[3]",
        "bn.bias:F32:[3]", "bn.running_mean:F32:[3]", "bn.running_var:F32:[3]",
    };
    const char *path = write_st(specs, 6, 0);
    Diags d;
    diags_init(&d);
    cr_assert(!weights_load(g, path, &d));
    cr_assert_str_eq(errors_of(&d), "missing tensor 'c1.weight' (expected shape [3, 2, 1, 1])\n"
                                    "unexpected tensor 'module.c1.weight' [3, 2, 1, 1] (no layer of the model "
                                    "has this weight; did you mean 'c1.weight'?)\n");
    diags_free(&d);

    /* a file that is not safetensors: one error at the path */
    FILE *f = fopen(path, "wb");
    fputs("hello", f);
    fclose(f);
    diags_init(&d);
    cr_assert(!weights_load(g, path, &d));
    cr_assert_eq(d.nerrors, 1);
    cr_assert_str_eq(d.items[0].loc.file, path);
    cr_assert_str_eq(d.items[0].msg, "file is too short to be safetensors (5 bytes; the header length alone takes 8)");
    diags_free(&d);
    unlink(path);

    diags_init(&d);
    cr_assert(!weights_load(g, "/nonexistent/w.safetensors", &d));
    cr_assert_eq(d.nerrors, 1);
    cr_assert(strstr(d.items[0].msg, "cannot read weights"), "%s", d.items[0].msg);
    diags_free(&d);
    ir_graph_free(g);
}

/* ---- seeded random initialisation */

static Graph *init_graph(bool with_extra) {
    Graph *g = ir_graph_new("r");
    Diags d;
    diags_init(&d);
    int64_t xs[4] = {1, 16, 8, 8};
    int x = ir_add_input(g, "x", 4, xs, (SrcLoc){"r.net", 1, 1});
    if (with_extra) {
        /* a layer ahead of the others: must not shift their values */
        Node *e = ir_add_node(g, OP_CONV2D, "extra", &x, 1, (SrcLoc){"r.net", 2, 1});
        ir_set_int(g, e, "out", 16);
        ir_set_pair(g, e, "kernel", 1, 1);
        cr_assert(ir_infer_node(g, e, &d));
        x = e->out;
    }
    Node *c = ir_add_node(g, OP_CONV2D, "conv", &x, 1, (SrcLoc){"r.net", 3, 1});
    ir_set_int(g, c, "out", 64);
    ir_set_pair(g, c, "kernel", 3, 3);
    ir_set_pair(g, c, "pad", 1, 1);
    cr_assert(ir_infer_node(g, c, &d));
    Node *bn = ir_add_node(g, OP_BATCHNORM, "bn", &c->out, 1, (SrcLoc){"r.net", 4, 1});
    cr_assert(ir_infer_node(g, bn, &d));
    Node *pr = ir_add_node(g, OP_PRELU, "act", &bn->out, 1, (SrcLoc){"r.net", 5, 1});
    ir_set_int(g, pr, "num_parameters", 64);
    cr_assert(ir_infer_node(g, pr, &d));
    Node *gp = ir_add_node(g, OP_GLOBAL_AVGPOOL, "gap", &pr->out, 1, (SrcLoc){"r.net", 6, 1});
    cr_assert(ir_infer_node(g, gp, &d));
    Node *fl = ir_add_node(g, OP_FLATTEN, "flat", &gp->out, 1, (SrcLoc){"r.net", 7, 1});
    cr_assert(ir_infer_node(g, fl, &d));
    Node *fc = ir_add_node(g, OP_LINEAR, "fc", &fl->out, 1, (SrcLoc){"r.net", 8, 1});
    ir_set_int(g, fc, "out", 500);
    cr_assert(ir_infer_node(g, fc, &d));
    ir_add_output(g, fc->out, "y", (SrcLoc){"r.net", 9, 1});
    cr_assert_eq(d.nerrors, 0, "%s", d.len ? d.items[0].msg : "");
    diags_free(&d);
    return g;
}

static void moments(const Tensor *t, double *mean, double *sd, double *lo, double *hi) {
    size_t n = (size_t)ir_numel(t);
    double s = 0, s2 = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        s += t->data[i], s2 += (double)t->data[i] * t->data[i];
        if (t->data[i] < *lo) *lo = t->data[i];
        if (t->data[i] > *hi) *hi = t->data[i];
    }
    *mean = s / (double)n;
    *sd = sqrt(s2 / (double)n - *mean * *mean);
}

Test(random_init, distributions) {
    Graph *g = init_graph(false);
    weights_random_init(g, 42);
    double m, sd, lo, hi;
    /* He-normal: std sqrt(2 / (16 * 3 * 3)) over 9216 draws */
    moments(weight(g, "conv.weight"), &m, &sd, &lo, &hi);
    double he = sqrt(2.0 / 144);
    cr_assert(fabs(m) < 0.05 * he && fabs(sd / he - 1) < 0.05, "conv.weight mean %g sd %g, want sd %g", m, sd, he);
    moments(weight(g, "conv.bias"), &m, &sd, &lo, &hi);
    cr_assert(lo >= -0.1 / 12 && hi <= 0.1 / 12 && hi - lo > 0.1 / 12, "conv.bias in [%g, %g]", lo, hi);
    moments(weight(g, "fc.weight"), &m, &sd, &lo, &hi); /* fan_in 64 */
    cr_assert(fabs(sd / sqrt(2.0 / 64) - 1) < 0.05, "fc.weight sd %g", sd);
    moments(weight(g, "bn.weight"), &m, &sd, &lo, &hi);
    cr_assert(fabs(m - 1) < 0.05 && sd > 0.05 && sd < 0.15, "bn.weight mean %g sd %g", m, sd);
    moments(weight(g, "bn.bias"), &m, &sd, &lo, &hi);
    cr_assert(fabs(m) < 0.05 && sd > 0.05 && sd < 0.15, "bn.bias mean %g sd %g", m, sd);
    moments(weight(g, "bn.running_mean"), &m, &sd, &lo, &hi);
    cr_assert(fabs(m) < 0.05 && sd > 0.05 && sd < 0.15, "bn.running_mean mean %g sd %g", m, sd);
    moments(weight(g, "bn.running_var"), &m, &sd, &lo, &hi);
    cr_assert(lo >= 0.5 && hi <= 1.5 && hi - lo > 0.5, "bn.running_var in [%g, %g]", lo, hi);
    moments(weight(g, "act.weight"), &m, &sd, &lo, &hi);
    cr_assert(lo == 0.25 && hi == 0.25);
    ir_graph_free(g);
}

Test(random_init, deterministic_per_seed_and_name) {
    Graph *a = init_graph(false), *b = init_graph(true), *c = init_graph(false);
    /* a bound weight is left alone */
    Tensor *pre = weight(c, "fc.bias");
    pre->data = malloc(500 * sizeof(float));
    for (int i = 0; i < 500; i++) pre->data[i] = 7;
    weights_random_init(a, 5);
    weights_random_init(b, 5);
    weights_random_init(c, 6);
    const char *names[] = {"conv.weight", "conv.bias", "bn.running_var", "fc.weight"};
    for (int k = 0; k < 4; k++) {
        Tensor *ta = weight(a, names[k]), *tb = weight(b, names[k]), *tc = weight(c, names[k]);
        size_t n = (size_t)ir_numel(ta);
        cr_assert_eq(memcmp(ta->data, tb->data, n * sizeof(float)), 0, "%s depends on other layers", names[k]);
        cr_assert_neq(memcmp(ta->data, tc->data, n * sizeof(float)), 0, "%s ignores the seed", names[k]);
    }
    cr_assert_eq(pre->data[499], 7.0f);
    cr_assert_not_null(weight(b, "extra.weight")->data);
    ir_graph_free(a);
    ir_graph_free(b);
    ir_graph_free(c);
}
