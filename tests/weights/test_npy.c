/* test_npy.c — the .npy reader and writer: numpy-made files of versions 1.0-3.0, round trips, and every refusal with its message. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"
#include "testutil.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static char *tmpdir(void) {
    char tmpl[32] = "/tmp/netc-npy-";
    memset(tmpl + strlen(tmpl), 'X', 6); /* mkdtemp's template */
    char *d = mkdtemp(tmpl);
    cr_assert(d);
    return strdup(d);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* the array of make_fixtures.py: (arange(24) - 12) / 8 in shape (2, 3, 4) */
static void check_2x3x4(const char *rel) {
    netrt_npy a;
    char err[256] = "";
    cr_assert_eq(netrt_npy_read(tu_src(rel), &a, err, sizeof err), 0, "%s: %s", rel, err);
    cr_assert_eq(a.rank, 3);
    cr_assert_eq(a.shape[0], 2);
    cr_assert_eq(a.shape[1], 3);
    cr_assert_eq(a.shape[2], 4);
    cr_assert_eq(a.count, 24);
    for (int i = 0; i < 24; i++) cr_assert_eq(a.data[i], (float)(i - 12) / 8, "%s[%d] = %g", rel, i, a.data[i]);
    netrt_npy_free(&a);
    cr_assert_null(a.data);
}

Test(npy, numpy_v1) { check_2x3x4("tests/fixtures/npy/v1_2x3x4.npy"); }
Test(npy, numpy_v2) { check_2x3x4("tests/fixtures/npy/v2_2x3x4.npy"); }
Test(npy, numpy_v3) { check_2x3x4("tests/fixtures/npy/v3_2x3x4.npy"); }

Test(npy, numpy_scalar_vector_empty) {
    netrt_npy a;
    char err[256] = "";
    cr_assert_eq(netrt_npy_read(tu_src("tests/fixtures/npy/v1_scalar.npy"), &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(a.rank, 0);
    cr_assert_eq(a.count, 1);
    cr_assert_eq(a.data[0], 2.5f);
    netrt_npy_free(&a);

    cr_assert_eq(netrt_npy_read(tu_src("tests/fixtures/npy/v1_vec5.npy"), &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(a.rank, 1);
    cr_assert_eq(a.shape[0], 5);
    cr_assert_eq(a.count, 5);
    cr_assert_eq(a.data[4], 4.0f);
    netrt_npy_free(&a);

    cr_assert_eq(netrt_npy_read(tu_src("tests/fixtures/npy/v1_empty.npy"), &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(a.rank, 2);
    cr_assert_eq(a.shape[0], 0);
    cr_assert_eq(a.shape[1], 3);
    cr_assert_eq(a.count, 0);
    netrt_npy_free(&a);
}

/* the file's message, after the "PATH: " prefix netrt_npy_read adds */
static void expect_read_error(const char *rel, const char *msg) {
    netrt_npy a;
    char err[512] = "";
    const char *path = tu_src(rel);
    cr_assert_eq(netrt_npy_read(path, &a, err, sizeof err), -1, "%s was accepted", rel);
    cr_assert_null(a.data);
    char want[1024];
    snprintf(want, sizeof want, "%s: %s", path, msg);
    cr_assert_str_eq(err, want);
}

Test(npy, errors_from_numpy_files) {
    expect_read_error("tests/fixtures/npy/f8.npy",
                      "dtype '<f8' is not supported: netc needs little-endian float32 ('<f4')");
    expect_read_error("tests/fixtures/npy/be_f4.npy",
                      "dtype '>f4' is not supported: netc needs little-endian float32 ('<f4')");
    expect_read_error("tests/fixtures/npy/fortran.npy",
                      "Fortran-order arrays are not supported: save a C-order array (np.ascontiguousarray)");
    expect_read_error("tests/fixtures/npy/truncated.npy",
                      "truncated data: shape (2, 3, 4) needs 96 bytes of float32, the file has 91");
    expect_read_error("tests/fixtures/npy/trailing.npy", "4 unexpected bytes after the data of shape (2, 3, 4)");
    expect_read_error("tests/fixtures/npy/bad_magic.npy", "not a .npy file (bad magic)");
}

Test(npy, missing_file) {
    netrt_npy a;
    char err[512] = "";
    cr_assert_eq(netrt_npy_read("/nonexistent/x.npy", &a, err, sizeof err), -1);
    cr_assert_str_eq(err, "/nonexistent/x.npy: cannot open: No such file or directory");
}

/* a v1.0 image around a header text (no padding) and nbytes of data */
static size_t image(unsigned char *buf, const char *hdr, size_t nbytes, int major) {
    size_t h = strlen(hdr), k;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major, buf[7] = 0;
    if (major == 1) {
        buf[8] = (unsigned char)h, buf[9] = (unsigned char)(h >> 8);
        k = 10;
    } else {
        buf[8] = (unsigned char)h, buf[9] = (unsigned char)(h >> 8), buf[10] = buf[11] = 0;
        k = 12;
    }
    memcpy(buf + k, hdr, h);
    for (size_t i = 0; i < nbytes; i++) buf[k + h + i] = (unsigned char)(i * 37);
    return k + h + nbytes;
}

static const char *parse_err(const char *hdr, size_t nbytes, int major) {
    static char err[512];
    unsigned char buf[1024];
    size_t n = image(buf, hdr, nbytes, major);
    netrt_npy a;
    err[0] = 0;
    if (netrt_npy_parse(buf, n, &a, err, sizeof err) == 0) {
        netrt_npy_free(&a);
        return NULL;
    }
    cr_assert_null(a.data);
    return err;
}

Test(npy, header_dialects) {
    /* double quotes, key order, no trailing comma, Python 2 longs, "(5)" read as a 1-tuple */
    cr_assert_null(parse_err("{\"shape\": (2, 1), \"fortran_order\": False, \"descr\": \"<f4\"}", 8, 1));
    cr_assert_null(parse_err("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 1L), }\n", 8, 1));
    cr_assert_null(parse_err("{'descr':'<f4','fortran_order':False,'shape':(3)}", 12, 2));
    cr_assert_null(parse_err("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, 3));
}

Test(npy, header_errors) {
    cr_assert_str_eq(parse_err("{'descr': '<f4', 'fortran_order': False}", 4, 1), "header lacks 'shape'");
    cr_assert_str_eq(parse_err("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4, 1),
                     "header: unexpected or repeated key 'x'");
    cr_assert_str_eq(parse_err("{'descr': '<f4', 'descr': '<f4'}", 4, 1), "header: unexpected or repeated key 'descr'");
    cr_assert_str_eq(parse_err("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", 4, 1),
                     "header: 'fortran_order' is not True or False");
    cr_assert_str_eq(parse_err("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 4, 1),
                     "header: 'shape' must be a tuple of non-negative integers");
    cr_assert_str_eq(parse_err("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", 4, 1),
                     "array has more than 8 dimensions");
    cr_assert_str_eq(parse_err("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", 4, 1),
                     "structured dtypes are not supported: netc needs little-endian float32 ('<f4')");
    cr_assert_str_eq(parse_err("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk", 4, 1),
                     "header: unexpected text after the dict");
    cr_assert_str_eq(parse_err("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4)}", 4, 1),
                     "shape (4611686018427387904, 4) is too large");
    cr_assert_str_eq(parse_err("[1, 2]", 0, 1), "header is not a Python dict literal");

    unsigned char buf[64];
    size_t n = image(buf, "{}", 0, 4);
    netrt_npy a;
    char err[256];
    cr_assert_eq(netrt_npy_parse(buf, n, &a, err, sizeof err), -1);
    cr_assert_str_eq(err, "unsupported .npy format version 4.0 (netc reads 1.0, 2.0 and 3.0)");
    /* a header length beyond the file */
    n = image(buf, "{'descr': '<f4'}", 0, 1);
    cr_assert_eq(netrt_npy_parse(buf, n - 3, &a, err, sizeof err), -1);
    cr_assert_str_eq(err, "truncated .npy header (16 bytes announced, 13 present)");
    cr_assert_eq(netrt_npy_parse(buf, 8, &a, err, sizeof err), -1);
    cr_assert_str_eq(err, "truncated .npy file (8 bytes)");
}

static void round_trip(int rank, const int64_t *shape) {
    char *dir = tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    size_t count = 1;
    for (int i = 0; i < rank; i++) count *= (size_t)shape[i];
    float *x = malloc((count ? count : 1) * sizeof(float));
    tu_fill_random(x, count, (uint64_t)rank + 7);
    if (count > 1) x[1] = -0.0f, x[0] = INFINITY;
    char err[256] = "";
    cr_assert_eq(netrt_npy_write(path, x, rank, shape, err, sizeof err), 0, "%s", err);

    size_t len;
    char *raw = slurp(path, &len);
    cr_assert_eq((len - count * 4) % 64, 0, "header is padded to 64 bytes (file of %zu bytes)", len);
    cr_assert_eq(raw[6], 1);
    cr_assert_eq(raw[len - count * 4 - 1], '\n');
    free(raw);

    netrt_npy a;
    cr_assert_eq(netrt_npy_read(path, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(a.rank, rank);
    for (int i = 0; i < rank; i++) cr_assert_eq(a.shape[i], shape[i]);
    cr_assert_eq(a.count, count);
    cr_assert_eq(memcmp(a.data, x, count * sizeof(float)), 0);
    netrt_npy_free(&a);
    cr_assert_eq(count_entries(dir), 1, "no temporary file is left behind");
    unlink(path);
    rmdir(dir);
    free(dir);
    free(x);
}

Test(npy, round_trip_shapes) {
    int64_t s4[4] = {1, 3, 5, 7}, s1[1] = {5}, s2[2] = {0, 4}, s8[8] = {1, 2, 1, 2, 1, 2, 1, 3};
    round_trip(0, NULL);
    round_trip(1, s1);
    round_trip(2, s2);
    round_trip(4, s4);
    round_trip(8, s8);
}

Test(npy, write_replaces_and_fails_cleanly) {
    char *dir = tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/out.npy", dir);
    float one = 1, two[2] = {2, 3};
    int64_t s1 = 1, s2 = 2;
    char err[256] = "";
    cr_assert_eq(netrt_npy_write(path, &one, 1, &s1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(netrt_npy_write(path, two, 1, &s2, err, sizeof err), 0, "%s", err);
    netrt_npy a;
    cr_assert_eq(netrt_npy_read(path, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(a.count, 2);
    cr_assert_eq(a.data[1], 3.0f);
    netrt_npy_free(&a);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644);

    /* a directory that does not exist: an error, and nothing created */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/missing/out.npy", dir);
    cr_assert_eq(netrt_npy_write(bad, &one, 1, &s1, err, sizeof err), -1);
    cr_assert(strstr(err, "cannot create: No such file or directory"), "%s", err);
    /* a path that is a directory: rename fails, and the temporary file is removed */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_eq(netrt_npy_write(sub, &one, 1, &s1, err, sizeof err), -1);
    cr_assert(strstr(err, "cannot write"), "%s", err);
    cr_assert_eq(count_entries(dir), 2, "only out.npy and sub remain");
    int64_t neg = -1;
    cr_assert_eq(netrt_npy_write(path, &one, 1, &neg, err, sizeof err), -1);
    cr_assert(strstr(err, "invalid shape"), "%s", err);
    rmdir(sub);
    unlink(path);
    rmdir(dir);
    free(dir);
}
