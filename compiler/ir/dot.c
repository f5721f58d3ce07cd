/* dot.c — Graphviz of a graph: one box per node with its op, shape and fused epilogue; data
 * edges, residual operands (dashed), in-place nodes (bold border, "in place"), concat slices
 * (dotted edge into the concat, "slice"), and tensors sharing workspace storage drawn in the
 * same colour when a memory plan is given. */
#include <string.h>

#include "ir.h"
#include "plan/plan.h"

static void esc(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
}

static const char *palette[] = {"#fde2e4", "#e2ece9", "#dfe7fd", "#fff1e6", "#e8e8e4", "#f0efeb",
                                "#d8e2dc", "#ffe5d9", "#cddafd", "#eae4e9", "#bee1e6", "#fad2e1"};

void ir_write_dot(const Graph *g, const Plan *plan, FILE *f) {
    char shape[128];
    fprintf(f, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fillcolor=white, "
               "fontname=\"Helvetica\", fontsize=10];\n  edge [fontsize=9];\n", g->name);
    for (int i = 0; i < g->ninputs; i++) {
        const Tensor *t = ir_tensor(g, g->inputs[i]);
        fprintf(f, "  t%d [shape=ellipse, fillcolor=\"#e0f0ff\", label=\"", t->id);
        esc(f, t->name);
        fprintf(f, "\\n%s\"];\n", ir_shape_str(t, shape, sizeof shape));
    }
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = ir_node(g, i);
        if (n->dead) continue;
        const Tensor *y = ir_tensor(g, n->out);
        const char *fill = "white";
        if (plan && plan->slots[n->out].kind == PLAN_WS) fill = palette[plan->slots[n->out].root % 12];
        fprintf(f, "  n%d [fillcolor=\"%s\"%s, label=\"", n->id, fill, n->inplace ? ", penwidth=3" : "");
        esc(f, n->name);
        fprintf(f, "\\n%s", op_info(n->op)->name);
        for (int k = 0; k < n->nepi; k++)
            fprintf(f, " + %s", n->epi[k].residual >= 0 ? "residual" : op_info(n->epi[k].act->op)->name);
        fprintf(f, "\\n%s", ir_shape_str(y, shape, sizeof shape));
        if (n->inplace) fprintf(f, "\\nin place");
        if (n->concat_elim) fprintf(f, "\\ninputs written in place");
        if (ir_winograd_m(n)) fprintf(f, "\\nwinograd F(%d,3)", ir_winograd_m(n));
        if (n->algo == CONV_ALGO_DW_IN_CONSUMER) fprintf(f, "\\nrows computed by its consumer");
        if (n->algo == CONV_ALGO_DW_ROWS) fprintf(f, "\\ncomputes its input row by row");
        if (n->loc.line) fprintf(f, "\\nline %d", n->loc.line);
        fprintf(f, "\"];\n");
        for (int k = 0; k < n->nin; k++) {
            const Tensor *x = ir_tensor(g, n->in[k]);
            const char *src = x->producer >= 0 ? "n" : "t";
            int id = x->producer >= 0 ? x->producer : x->id;
            if (x->alias == n->out) fprintf(f, "  %s%d -> n%d [style=dotted, label=\"slice\"];\n", src, id, n->id);
            else if (n->inplace && k == 0) fprintf(f, "  %s%d -> n%d [style=bold, label=\"in place\"];\n", src, id, n->id);
            else fprintf(f, "  %s%d -> n%d;\n", src, id, n->id);
        }
        for (int k = 0; k < n->nepi; k++) {
            int r = n->epi[k].residual;
            if (r < 0) continue;
            const Tensor *x = ir_tensor(g, r);
            fprintf(f, "  %s%d -> n%d [style=dashed, label=\"+\"];\n", x->producer >= 0 ? "n" : "t",
                    x->producer >= 0 ? x->producer : x->id, n->id);
        }
    }
    for (int i = 0; i < g->noutputs; i++) {
        const Tensor *t = ir_tensor(g, g->outputs[i]);
        fprintf(f, "  out%d [shape=ellipse, fillcolor=\"#e0ffe0\", label=\"", i);
        esc(f, g->output_names[i]);
        fprintf(f, "\"];\n  %s%d -> out%d;\n", t->producer >= 0 ? "n" : "t", t->producer >= 0 ? t->producer : t->id, i);
    }
    fprintf(f, "}\n");
}
