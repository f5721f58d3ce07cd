/* diag.c — collecting diagnostics and printing them with the source line and a caret. */
#include "diag.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void diags_init(Diags *d) { memset(d, 0, sizeof *d); }

void diags_free(Diags *d) {
    for (int i = 0; i < d->len; i++) free(d->items[i].msg);
    free(d->items);
    free(d->owned_text);
    memset(d, 0, sizeof *d);
}

void diags_set_source(Diags *d, const char *file, const char *text, size_t len) {
    d->src_file = file;
    d->src_text = text;
    d->src_len = len;
}

/* Errors after this many are counted but not stored: a fuzzer's megabyte of garbage must not
 * produce a megabyte of messages. */
enum { DIAG_MAX_STORED = 200 };

void diag_add(Diags *d, DiagLevel lv, SrcLoc loc, const char *fmt, va_list ap) {
    if (lv == DIAG_ERROR) d->nerrors++;
    if (lv == DIAG_WARNING) d->nwarnings++;
    if (d->len >= DIAG_MAX_STORED) return;
    if (d->len == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->items = xrealloc(d->items, (size_t)d->cap * sizeof *d->items);
    }
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *msg = xmalloc((size_t)n + 1);
    vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    d->items[d->len++] = (Diag){lv, loc, msg};
}

#define DIAG_FN(fn, lv)                                                                        \
    void fn(Diags *d, SrcLoc loc, const char *fmt, ...) {                                      \
        va_list ap;                                                                            \
        va_start(ap, fmt);                                                                     \
        diag_add(d, lv, loc, fmt, ap);                                                         \
        va_end(ap);                                                                            \
    }
DIAG_FN(diag_error, DIAG_ERROR)
DIAG_FN(diag_warning, DIAG_WARNING)
DIAG_FN(diag_note, DIAG_NOTE)

static const char *level_name(DiagLevel lv) {
    return lv == DIAG_ERROR ? "error" : lv == DIAG_WARNING ? "warning" : "note";
}

/* Find line `line` (1-based) of the source; returns its start and length. */
static bool source_line(const Diags *d, int line, const char **start, size_t *len) {
    if (!d->src_text || line < 1) return false;
    const char *p = d->src_text, *end = d->src_text + d->src_len;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return false;
        p = nl + 1;
    }
    const char *e = memchr(p, '\n', (size_t)(end - p));
    if (!e) e = end;
    if (e > p && e[-1] == '\r') e--;
    *start = p;
    *len = (size_t)(e - p);
    return true;
}

static void print_one(const Diags *d, const Diag *g, FILE *out) {
    if (g->loc.file && g->loc.line > 0)
        fprintf(out, "%s:%d:%d: %s: %s\n", g->loc.file, g->loc.line, g->loc.col, level_name(g->level),
                g->msg);
    else if (g->loc.file)
        fprintf(out, "%s: %s: %s\n", g->loc.file, level_name(g->level), g->msg);
    else
        fprintf(out, "netc: %s: %s\n", level_name(g->level), g->msg);
    const char *s;
    size_t n;
    if (!g->loc.file || !d->src_file || strcmp(g->loc.file, d->src_file) != 0 ||
        !source_line(d, g->loc.line, &s, &n))
        return;
    /* Show the line with control characters made visible as spaces so the caret lines up. */
    fputs("  ", out);
    for (size_t i = 0; i < n && i < 400; i++)
        fputc((unsigned char)s[i] < 32 || s[i] == 127 ? ' ' : s[i], out);
    fputs("\n  ", out);
    for (int i = 1; i < g->loc.col && i < 400; i++) fputc(' ', out);
    fputs("^\n", out);
}

void diags_print(const Diags *d, FILE *out) {
    for (int i = 0; i < d->len; i++) print_one(d, &d->items[i], out);
    if (d->nerrors + d->nwarnings > d->len)
        fprintf(out, "netc: note: %d more diagnostics not shown\n", d->nerrors + d->nwarnings - d->len);
}

char *diags_to_string(const Diags *d) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return xstrdup("");
    diags_print(d, f);
    fclose(f);
    return buf;
}
