/* npy.c — NumPy .npy reading (versions 1.0-3.0) and atomic writing of little-endian float32 C-order arrays; libc only, no globals. */
#include "npy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void shape_str(int rank, const int64_t *shape, char *buf, size_t len) {
    size_t k = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < rank && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < len) snprintf(buf + k, len - k, rank == 1 ? ",)" : ")");
}

/* ---- the header: a Python dict literal as numpy's repr writes it, e.g.
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * A small recursive-descent reader of exactly that subset: strings, True/False, tuples of
 * non-negative integers (Python 2 files may write 3L). */

typedef struct Hdr {
    const char *p, *end;
    char *err;
    size_t errlen;
} Hdr;

static void skip_ws(Hdr *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')) h->p++;
}

static bool accept(Hdr *h, char c) {
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return true;
    }
    return false;
}

/* a quoted string without escapes (numpy's keys and dtype strings have none) */
static bool read_str(Hdr *h, char *out, size_t outlen) {
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return false;
    char q = *h->p++;
    size_t k = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || *h->p == '\n') return false;
        if (k + 1 < outlen) out[k++] = *h->p;
        h->p++;
    }
    if (h->p >= h->end) return false;
    h->p++;
    out[k] = 0;
    return true;
}

static bool read_word(Hdr *h, const char *w) {
    skip_ws(h);
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n) != 0) return false;
    const char *after = h->p + n;
    if (after < h->end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
                           (*after >= '0' && *after <= '9') || *after == '_'))
        return false;
    h->p = after;
    return true;
}

/* "(2, 3)", "(5,)", "()"; each dimension below 2^62 so products are checked without overflow
 * of the parse itself */
static bool read_shape(Hdr *h, int *rank, int64_t *shape) {
    if (!accept(h, '(')) {
        seterr(h->err, h->errlen, "header: 'shape' is not a tuple");
        return false;
    }
    *rank = 0;
    for (;;) {
        if (accept(h, ')')) return true;
        skip_ws(h);
        if (h->p >= h->end || *h->p < '0' || *h->p > '9') {
            seterr(h->err, h->errlen, "header: 'shape' must be a tuple of non-negative integers");
            return false;
        }
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            if (v > ((int64_t)1 << 62) / 10) {
                seterr(h->err, h->errlen, "header: a dimension of 'shape' is too large");
                return false;
            }
            v = v * 10 + (*h->p++ - '0');
        }
        if (h->p < h->end && *h->p == 'L') h->p++;
        if (*rank == NETRT_NPY_MAX_RANK) {
            seterr(h->err, h->errlen, "array has more than %d dimensions", NETRT_NPY_MAX_RANK);
            return false;
        }
        shape[(*rank)++] = v;
        if (accept(h, ')')) return true;
        if (!accept(h, ',')) {
            seterr(h->err, h->errlen, "header: malformed 'shape' tuple");
            return false;
        }
    }
}

static bool parse_header(const char *text, size_t len, netrt_npy *out, char *err, size_t errlen) {
    Hdr h = {text, text + len, err, errlen};
    bool have_descr = false, have_fortran = false, have_shape = false;
    if (!accept(&h, '{')) {
        seterr(err, errlen, "header is not a Python dict literal");
        return false;
    }
    while (!accept(&h, '}')) {
        char key[32], val[40];
        if (!read_str(&h, key, sizeof key) || !accept(&h, ':')) {
            seterr(err, errlen, "header is not a Python dict literal (expected 'key': value)");
            return false;
        }
        if (strcmp(key, "descr") == 0 && !have_descr) {
            have_descr = true;
            skip_ws(&h);
            if (h.p < h.end && *h.p == '[') {
                seterr(err, errlen, "structured dtypes are not supported: netc needs little-endian float32 ('<f4')");
                return false;
            }
            if (!read_str(&h, val, sizeof val)) {
                seterr(err, errlen, "header: 'descr' is not a string");
                return false;
            }
            if (strcmp(val, "<f4") != 0) {
                seterr(err, errlen, "dtype '%s' is not supported: netc needs little-endian float32 ('<f4')", val);
                return false;
            }
        } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
            have_fortran = true;
            if (read_word(&h, "True")) {
                seterr(err, errlen, "Fortran-order arrays are not supported: save a C-order array (np.ascontiguousarray)");
                return false;
            }
            if (!read_word(&h, "False")) {
                seterr(err, errlen, "header: 'fortran_order' is not True or False");
                return false;
            }
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            have_shape = true;
            if (!read_shape(&h, &out->rank, out->shape)) return false;
        } else {
            seterr(err, errlen, "header: unexpected or repeated key '%s'", key);
            return false;
        }
        if (!accept(&h, ',')) {
            if (accept(&h, '}')) break;
            seterr(err, errlen, "header is not a Python dict literal (expected ',' or '}')");
            return false;
        }
    }
    skip_ws(&h);
    if (h.p != h.end) {
        seterr(err, errlen, "header: unexpected text after the dict");
        return false;
    }
    if (!have_descr || !have_fortran || !have_shape) {
        seterr(err, errlen, "header lacks '%s'", !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
        return false;
    }
    return true;
}

int netrt_npy_parse(const void *buf, size_t len, netrt_npy *out, char *err, size_t errlen) {
    const unsigned char *b = buf;
    memset(out, 0, sizeof *out);
    if (len < NPY_MAGIC_LEN || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        seterr(err, errlen, "not a .npy file (bad magic)");
        return -1;
    }
    if (len < 10) {
        seterr(err, errlen, "truncated .npy file (%zu bytes)", len);
        return -1;
    }
    int major = b[6], minor = b[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0) {
        seterr(err, errlen, "unsupported .npy format version %d.%d (netc reads 1.0, 2.0 and 3.0)", major, minor);
        return -1;
    }
    /* 1.0 has a 2-byte header length; 2.0 widened it to 4; 3.0 only makes the header UTF-8 */
    size_t start = major == 1 ? 10 : 12;
    if (len < start) {
        seterr(err, errlen, "truncated .npy file (%zu bytes)", len);
        return -1;
    }
    size_t hlen = major == 1 ? (size_t)b[8] | (size_t)b[9] << 8
                             : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    if (hlen > len - start) {
        seterr(err, errlen, "truncated .npy header (%zu bytes announced, %zu present)", hlen, len - start);
        return -1;
    }
    if (!parse_header((const char *)b + start, hlen, out, err, errlen)) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    size_t count = 1;
    bool overflow = false;
    for (int i = 0; i < out->rank; i++)
        if (__builtin_mul_overflow(count, (size_t)out->shape[i], &count)) overflow = true;
    for (int i = 0; i < out->rank; i++)
        if (out->shape[i] == 0) overflow = false, count = 0;
    if (overflow) count = SIZE_MAX; /* caught as too large below */
    size_t bytes, have = len - start - hlen;
    char s[200];
    shape_str(out->rank, out->shape, s, sizeof s);
    if (__builtin_mul_overflow(count, sizeof(float), &bytes)) {
        seterr(err, errlen, "shape %s is too large", s);
        memset(out, 0, sizeof *out);
        return -1;
    }
    if (bytes != have) {
        if (have < bytes)
            seterr(err, errlen, "truncated data: shape %s needs %zu bytes of float32, the file has %zu", s, bytes,
                   have);
        else
            seterr(err, errlen, "%zu unexpected bytes after the data of shape %s", have - bytes, s);
        memset(out, 0, sizeof *out);
        return -1;
    }
    out->count = count;
    out->data = malloc(bytes ? bytes : 1);
    if (!out->data) {
        seterr(err, errlen, "out of memory reading %zu bytes", bytes);
        memset(out, 0, sizeof *out);
        return -1;
    }
    const unsigned char *p = b + start + hlen;
    for (size_t i = 0; i < count; i++, p += 4) {
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&out->data[i], &u, 4);
    }
    return 0;
}

int netrt_npy_read(const char *path, netrt_npy *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* read by chunks rather than by file size, so pipes and /dev/stdin work too */
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        if (len == cap) {
            unsigned char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb, cap *= 2;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0) break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (!buf || rerr) {
        seterr(err, errlen, "%s: %s", path, buf ? "read error" : "out of memory");
        free(buf);
        return -1;
    }
    char msg[400];
    int rc = netrt_npy_parse(buf, len, out, msg, sizeof msg);
    free(buf);
    if (rc != 0) seterr(err, errlen, "%s: %s", path, msg);
    return rc;
}

int netrt_npy_write(const char *path, const float *data, int rank, const int64_t *shape, char *err,
                    size_t errlen) {
    if (rank < 0 || rank > NETRT_NPY_MAX_RANK) {
        seterr(err, errlen, "%s: rank %d is out of range (0..%d)", path, rank, NETRT_NPY_MAX_RANK);
        return -1;
    }
    size_t count = 1;
    for (int i = 0; i < rank; i++)
        if (shape[i] < 0 || __builtin_mul_overflow(count, (size_t)shape[i], &count)) {
            seterr(err, errlen, "%s: invalid shape", path);
            return -1;
        }

    char dims[300], hdr[512];
    shape_str(rank, shape, dims, sizeof dims);
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", dims);
    /* pad with spaces and a final newline so the data starts 64-byte aligned, as numpy does */
    size_t hl = (size_t)n + 1, pre = 10;
    size_t total = (pre + hl + 63) / 64 * 64;
    hl = total - pre;
    memset(hdr + n, ' ', hl - (size_t)n - 1);
    hdr[hl - 1] = '\n';
    unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff),
                              (unsigned char)(hl >> 8)};

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        seterr(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memcpy(tmp, path, plen);
    /* mkstemp's template: the name, ".tmp.", then six 'X' it replaces */
    memcpy(tmp + plen, ".tmp.", 5);
    memset(tmp + plen + 5, 'X', 6);
    tmp[plen + 11] = 0;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        seterr(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    fchmod(fd, 0644); /* mkstemp's 0600 would make outputs unreadable to others */
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        seterr(err, errlen, "%s: cannot write: %s", path, strerror(e));
        return -1;
    }
    bool ok = fwrite(head, 1, sizeof head, f) == sizeof head && fwrite(hdr, 1, hl, f) == hl;
    unsigned char chunk[4096];
    for (size_t i = 0; ok && i < count;) {
        size_t m = 0;
        for (; m < sizeof chunk / 4 && i < count; m++, i++) {
            uint32_t u;
            memcpy(&u, &data[i], 4);
            chunk[4 * m] = (unsigned char)u, chunk[4 * m + 1] = (unsigned char)(u >> 8);
            chunk[4 * m + 2] = (unsigned char)(u >> 16), chunk[4 * m + 3] = (unsigned char)(u >> 24);
        }
        ok = fwrite(chunk, 4, m, f) == m;
    }
    int e = ok ? 0 : errno;
    if (fflush(f) != 0 && ok) ok = false, e = errno;
    if (fclose(f) != 0 && ok) ok = false, e = errno;
    if (ok && rename(tmp, path) != 0) ok = false, e = errno;
    if (!ok) {
        unlink(tmp);
        seterr(err, errlen, "%s: cannot write: %s", path, strerror(e ? e : EIO));
    }
    free(tmp);
    return ok ? 0 : -1;
}

void netrt_npy_free(netrt_npy *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}
