/* frontend.c — read, parse, lower, verify and bind weights: the one call every tool uses. */
#include "frontend.h"

#include <stdlib.h>

#include "ast.h"
#include "timing.h"
#include "lower/lower.h"
#include "weights/weights.h"

Graph *frontend_load_text(const char *file, const char *text, size_t len, const FrontendOptions *o,
                          Diags *d) {
    Arena ast_arena = {0};
    Ast ast = {0};
    diags_set_source(d, file, text, len);
    Graph *g = NULL;
    Times *tt = o ? o->times : NULL;
    double t0 = times_now();
    bool parsed = ast_parse(&ast_arena, d, file, text, len, &ast);
    double t1 = times_now();
    times_add(tt, "front", "parse", t1 - t0);
    if (parsed) g = lower_ast(&ast, file, d);
    arena_free(&ast_arena);
    times_add(tt, "front", "lower", times_now() - t1);
    if (!g) return NULL;
    t0 = times_now();
    bool verified = ir_verify(g, d, false);
    times_add(tt, "front", "verify and shapes", times_now() - t0);
    if (!verified) goto fail;
    /* refuse, with a message, what could only end in running out of memory */
    int64_t weights = 0;
    for (int i = 0; i < g->tensors.len; i++)
        if (ir_tensor(g, i)->kind == TK_WEIGHT) weights += ir_numel(ir_tensor(g, i));
    if (weights > ((int64_t)1 << 31)) {
        diag_error(d, (SrcLoc){.file = file}, "the model has %lld weights (%.1f GiB): more than netc handles (2^31)",
                   (long long)weights, (double)weights * 4 / 1073741824.0);
        goto fail;
    }
    if (o && o->no_weights) return g;
    t0 = times_now();
    if (o && o->weights_path) {
        if (!weights_load(g, o->weights_path, d)) goto fail;
    } else {
        weights_random_init(g, o ? o->seed : 0);
        if (!(o && o->quiet))
            diag_note(d, (SrcLoc){0}, "no --weights given: using seeded random weights (seed %llu)",
                      (unsigned long long)(o ? o->seed : 0));
    }
    times_add(tt, "front", "weights", times_now() - t0);
    if (!ir_verify(g, d, true)) goto fail;
    return g;
fail:
    ir_graph_free(g);
    return NULL;
}

Graph *frontend_load(const char *path, const FrontendOptions *o, Diags *d) {
    size_t len;
    const char *err;
    char *text = util_read_file(path, &len, &err);
    if (!text) {
        diag_error(d, (SrcLoc){.file = path}, "cannot read the model: %s", err);
        return NULL;
    }
    /* the diagnostics keep pointing into the text to print source lines: they own it now */
    free(d->owned_text);
    d->owned_text = text;
    return frontend_load_text(path, text, len, o, d);
}
