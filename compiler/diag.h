/* diag.h — diagnostics: errors, warnings and notes with file:line:col, collected, then printed
 * with the source line and a caret. The library never exits; only netc's main decides. */
#ifndef NETC_DIAG_H
#define NETC_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct SrcLoc {
    const char *file; /* NULL: no location (a command-line or file-level problem) */
    int line, col;    /* 1-based; 0 when unknown */
} SrcLoc;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag {
    DiagLevel level;
    SrcLoc loc;
    char *msg;
} Diag;

typedef struct Diags {
    Diag *items;
    int len, cap;
    int nerrors, nwarnings;
    /* source text of the file being compiled, to print the offending line */
    const char *src_file;
    const char *src_text;
    size_t src_len;
    char *owned_text; /* freed by diags_free (the file text frontend_load read) */
} Diags;

void diags_init(Diags *d);
void diags_free(Diags *d);
void diags_set_source(Diags *d, const char *file, const char *text, size_t len);

void diag_error(Diags *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diags *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diags *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_add(Diags *d, DiagLevel lv, SrcLoc loc, const char *fmt, va_list ap);

/* "file:line:col: error: msg" (or "file: error: msg", or "netc: error: msg") followed, when the
 * location has a line in the source set above, by the source line and a caret line. */
void diags_print(const Diags *d, FILE *out);
/* The same text in a malloc'ed string (tests compare it). */
char *diags_to_string(const Diags *d);

#endif
