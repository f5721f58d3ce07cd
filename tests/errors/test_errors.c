/* test_errors.c — the table of bad inputs: every .net file of tests/errors/ must fail to load, and the
 * diagnostics it expects in its own `#! ` comment lines must appear verbatim, with exactly as many
 * errors as it expects.
 *
 * A case file carries its expectations as comments, one diagnostic per line, `FILE` standing for
 * the file's path:
 *     #! FILE:4:12: error: syntax error, unexpected ')', expecting expression
 *     #! FILE:20:11: note: in call of 'cbr'
 * syntax_*.net cases exercise the parser, lower_*.net cases the lowering. */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"
#include "testutil.h"
#include "util.h"

typedef struct Lines {
    char **items;
    int len;
} Lines;

static void lines_push(Lines *l, char *s) {
    l->items = xrealloc(l->items, (size_t)(l->len + 1) * sizeof *l->items);
    l->items[l->len++] = s;
}

static void lines_free(Lines *l) {
    for (int i = 0; i < l->len; i++) free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* Split text into lines, without their "\n" (or "\r\n"). */
static Lines split_lines(const char *text, size_t len) {
    Lines out = {0};
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        if (n && p[n - 1] == '\r') n--;
        char *s = xmalloc(n + 1);
        memcpy(s, p, n);
        s[n] = 0;
        lines_push(&out, s);
        p = nl ? nl + 1 : end;
    }
    return out;
}

/* The `#! ` lines of a case, with a leading FILE replaced by the path. */
static Lines expectations(const char *path, const char *text, size_t len) {
    Lines all = split_lines(text, len), out = {0};
    for (int i = 0; i < all.len; i++) {
        const char *s = all.items[i];
        if (strncmp(s, "#! ", 3) != 0) continue;
        s += 3;
        char *want;
        if (!strncmp(s, "FILE", 4)) {
            want = xmalloc(strlen(path) + strlen(s + 4) + 1);
            strcpy(want, path);
            strcat(want, s + 4);
        } else {
            want = xstrdup(s);
        }
        lines_push(&out, want);
    }
    lines_free(&all);
    return out;
}

/* A diagnostic line (not one of the source or caret lines diags_print adds) that is an error. */
static bool is_error_line(const char *s) {
    return strncmp(s, "  ", 2) != 0 && strstr(s, ": error: ") != NULL;
}

/* Checks one case; returns the number of failed checks (each reported with cr_log_error). */
static int check_case(const char *path) {
    size_t len;
    const char *err;
    char *text = util_read_file(path, &len, &err);
    if (!text) {
        cr_log_error("%s: cannot read: %s", path, err);
        return 1;
    }
    Lines want = expectations(path, text, len);
    free(text);
    int failures = 0;
    if (want.len == 0) {
        cr_log_error("%s: no `#! ` expectation lines", path);
        failures++;
    }

    FrontendOptions opts = {.weights_path = NULL, .seed = 1, .quiet = true};
    Diags d;
    diags_init(&d);
    Graph *g = frontend_load(path, &opts, &d);
    char *out = diags_to_string(&d);
    Lines got = split_lines(out, strlen(out));
    if (g) {
        cr_log_error("%s: loaded without error", path);
        failures++;
        ir_graph_free(g);
    }
    int want_errors = 0, got_errors = 0;
    for (int i = 0; i < want.len; i++) {
        want_errors += is_error_line(want.items[i]);
        bool found = false;
        for (int j = 0; j < got.len && !found; j++) found = !strcmp(got.items[j], want.items[i]);
        if (!found) {
            cr_log_error("%s: expected diagnostic not reported:\n  %s", path, want.items[i]);
            failures++;
        }
    }
    for (int j = 0; j < got.len; j++) {
        got_errors += is_error_line(got.items[j]);
        /* every diagnostic about the file names it */
        if (is_error_line(got.items[j]) && strncmp(got.items[j], path, strlen(path)) != 0) {
            cr_log_error("%s: an error that does not name the file:\n  %s", path, got.items[j]);
            failures++;
        }
    }
    if (got_errors != want_errors) {
        cr_log_error("%s: %d errors reported, %d expected", path, got_errors, want_errors);
        failures++;
    }
    if (d.nerrors != got_errors) {
        cr_log_error("%s: %d errors counted, %d printed", path, d.nerrors, got_errors);
        failures++;
    }
    if (failures) cr_log_error("%s: the diagnostics were:\n%s", path, out);
    free(out);
    lines_free(&got);
    lines_free(&want);
    diags_free(&d);
    return failures;
}

/* Runs the cases whose file name starts (syntax = true) or does not start with "syntax_". */
static int run_cases(bool syntax, int *ncases) {
    glob_t gl;
    int failures = 0;
    *ncases = 0;
    if (glob(NETC_SOURCE_DIR "/tests/errors/*.net", 0, NULL, &gl) != 0) return 0;
    for (size_t i = 0; i < gl.gl_pathc; i++) {
        const char *base = strrchr(gl.gl_pathv[i], '/');
        base = base ? base + 1 : gl.gl_pathv[i];
        if ((strncmp(base, "syntax_", 7) == 0) != syntax) continue;
        ++*ncases;
        failures += check_case(gl.gl_pathv[i]);
    }
    globfree(&gl);
    return failures;
}

Test(errors, syntax_cases) {
    int n;
    int failures = run_cases(true, &n);
    cr_assert_geq(n, 15, "only %d syntax cases found", n);
    cr_assert_eq(failures, 0, "%d failed checks in the syntax cases (see the log)", failures);
}

Test(errors, other_cases) {
    int n;
    int failures = run_cases(false, &n);
    cr_assert_gt(n, 0, "no lowering cases found");
    cr_assert_eq(failures, 0, "%d failed checks in %d cases (see the log)", failures, n);
}

/* A file with nothing in it at all carries no expectations of its own. */
Test(errors, an_empty_file_is_named_in_its_error) {
    char dir[256], path[320];
    cr_assert(tu_mkdtemp(dir, sizeof dir, "netc-empty"));
    snprintf(path, sizeof path, "%s/empty.net", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fclose(f);
    FrontendOptions opts = {.seed = 1, .quiet = true};
    Diags d;
    diags_init(&d);
    Graph *g = frontend_load(path, &opts, &d);
    char *out = diags_to_string(&d);
    char want[400];
    snprintf(want, sizeof want, "%s: error: the file has no 'output' statement\n", path);
    cr_expect_null(g);
    cr_expect_str_eq(out, want);
    free(out);
    diags_free(&d);
    remove(path);
    rmdir(dir);
}

/* An internal error names the source file relative to the tree, never the build machine's path:
 * the build maps the source directory away from __FILE__ (-fmacro-prefix-map), as here. */
Test(errors, internal_errors_name_source_files_relative_to_the_tree) {
    cr_expect(__FILE__[0] != '/', "__FILE__ is %s", __FILE__);
    cr_expect(strncmp(__FILE__, "tests/errors/", 13) == 0, "__FILE__ is %s", __FILE__);
}
