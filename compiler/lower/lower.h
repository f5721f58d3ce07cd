/* lower.h — AST -> graph IR: def expansion, constant arithmetic, weight naming, argument checks
 * against the op table, shape inference node by node. */
#ifndef NETC_LOWER_H
#define NETC_LOWER_H

#include "ast.h"
#include "ir/ir.h"

/* Lower a parsed file. `file` is the path (its stem names the model when there is no `net`).
 * Reports every error it can recover from; returns NULL when any error was reported. */
Graph *lower_ast(const Ast *ast, const char *file, Diags *d);

/* The default model name for a path: the stem, non-identifier characters -> '_', a leading '_'
 * if it starts with a digit. Written into buf. */
const char *lower_default_name(const char *path, char *buf, size_t len);

#endif
