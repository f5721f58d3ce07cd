/* fuzz_parse.c — libFuzzer target: the whole front end (lex, parse, lower, verify, shapes) on
 * arbitrary text. Weights stay unbound: a valid file may legitimately ask for gigabytes of them. */
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* exactly size bytes plus the terminator, so a scanner reading past len is caught */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    FrontendOptions o = {.weights_path = NULL, .seed = 1, .quiet = true, .no_weights = true};
    Diags d;
    diags_init(&d);
    Graph *g = frontend_load_text("fuzz.net", text, size, &o, &d);
    if (g && d.nerrors) abort(); /* a graph is returned only when nothing went wrong */
    if (!g && !d.nerrors) abort();
    if (g) ir_graph_free(g);
    char *s = diags_to_string(&d); /* printing must cope with any location and message */
    free(s);
    diags_free(&d);
    free(text);
    return 0;
}
