/* frontend.h — the front end as one call: read, parse, lower, verify, bind weights. */
#ifndef NETC_FRONTEND_H
#define NETC_FRONTEND_H

#include <stdint.h>

#include "diag.h"
#include "ir/ir.h"

typedef struct FrontendOptions {
    const char *weights_path; /* NULL: seeded random init, with a note on stderr */
    uint64_t seed;            /* for the random init */
    bool quiet;               /* no note about random weights */
    bool no_weights;          /* leave weights unbound (parse, lower, verify and shapes only) */
    struct Times *times;      /* --time-passes: parse, lower, verify, weights; NULL: none */
} FrontendOptions;

/* NULL when any error was reported in d (d also carries the source for caret printing). */
Graph *frontend_load(const char *path, const FrontendOptions *o, Diags *d);
Graph *frontend_load_text(const char *file, const char *text, size_t len, const FrontendOptions *o,
                          Diags *d);

#endif
