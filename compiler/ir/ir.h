/* ir.h — the graph IR: nodes over tensors, one op table (ops.def), attribute values, the builder
 * used by lowering and tests, shape inference, the verifier and the text printer. */
#ifndef NETC_IR_H
#define NETC_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../diag.h"
#include "../util.h"

#define IR_MAX_RANK 8
#define IR_MAX_WEIGHTS 4
#define IR_MAX_ATTRS 12

enum {
    OPF_WEIGHTS = 1 << 0,    /* has weight tensors: must be the whole right-hand side */
    OPF_ELEMENTWISE = 1 << 1, /* output shape == (broadcast) input shape, element by element */
    OPF_ACTIVATION = 1 << 2, /* an activation of the language (fusable into an epilogue) */
    OPF_BINARY = 1 << 3,     /* add/sub/mul/div with [N,C,1,1] broadcast from either side */
};

typedef enum {
#define OP(E, id, in, at, w, shape, fl) OP_##E,
#include "../ops.def"
#undef OP
    OP_COUNT
} OpKind;

/* A value of the language: constants during lowering, and node attributes. */
typedef enum { VAL_NONE, VAL_INT, VAL_FLOAT, VAL_BOOL, VAL_STR, VAL_LIST, VAL_TENSOR } ValKind;
typedef struct Value {
    ValKind kind;
    int64_t i;
    double f;
    bool b;
    const char *s;
    int n;               /* VAL_LIST */
    struct Value *items; /* VAL_LIST */
    int tensor;          /* VAL_TENSOR: tensor id */
} Value;

typedef enum { AT_INT, AT_FLOAT, AT_BOOL, AT_STR, AT_PAIR, AT_INTS } AttrType;

typedef struct AttrSpec {
    const char *name;
    AttrType type;
    bool required;
    Value def; /* VAL_NONE: no default */
} AttrSpec;

typedef struct OpInfo {
    const char *name;
    int min_inputs, max_inputs; /* max -1: unbounded */
    const char *input_names[2];
    int nattrs;
    AttrSpec attrs[IR_MAX_ATTRS];
    int nweights;
    const char *weight_names[IR_MAX_WEIGHTS];
    unsigned flags;
} OpInfo;

const OpInfo *op_info(OpKind k);
/* OP_COUNT when unknown */
OpKind op_lookup(const char *name);
/* index of the attribute in the op's table, -1 if it has none of that name */
int op_attr_index(OpKind k, const char *name);
const char *attr_type_name(AttrType t);

typedef enum { TK_INPUT, TK_VALUE, TK_WEIGHT } TensorKind;

typedef struct Tensor {
    int id;
    const char *name; /* inputs: as declared; values: binding path; weights: state_dict name */
    TensorKind kind;
    int rank;
    int64_t shape[IR_MAX_RANK];
    float *data;  /* weights: the bound values (heap, owned by the graph), else NULL */
    int producer; /* node id, -1 for inputs and weights */
    SrcLoc loc;
    /* concat elimination: this tensor is stored as a slice of tensor `alias` (its concat's
       output), starting at `alias_offset` along the concat axis `alias_axis`; -1 when not */
    int alias;
    int alias_axis;
    int64_t alias_offset;
} Tensor;

/* The chain of def calls that produced a node, innermost first: errors add a note per call. */
typedef struct CallSite {
    SrcLoc loc;
    const char *def_name;
    const struct CallSite *parent;
} CallSite;

/* One step of a fused epilogue, applied to the producer's result while it is in registers:
 * an absorbed activation node (its attributes and prelu weight), or a residual add of another
 * tensor of the same shape. Steps apply in order. */
#define IR_MAX_EPI 6
typedef struct EpiOp {
    const struct Node *act; /* an activation (dead node, kept for its attributes), or NULL */
    int residual;           /* tensor id added to the result, or -1 */
} EpiOp;

typedef struct Node {
    int id;
    OpKind op;
    const char *name; /* binding path; weights are named name.weight, ... */
    SrcLoc loc;
    const CallSite *calls;
    int nin;
    int *in;   /* tensor ids */
    int out;   /* tensor id */
    Value attrs[IR_MAX_ATTRS]; /* by op_info(op)->attrs index; VAL_NONE = not set */
    int w[IR_MAX_WEIGHTS];     /* by op_info(op)->weight_names index; -1 = absent */
    bool dead;
    /* set by the passes */
    int nepi;
    EpiOp epi[IR_MAX_EPI];
    bool inplace;     /* the output reuses the storage of in[0] (an elementwise op) */
    bool concat_elim; /* concat: the inputs were written straight into their slices */
    int algo;         /* conv2d: CONV_ALGO_* (the winograd and fuse-dw passes) */
} Node;

/* How a conv2d is computed (Node.algo). The interpreter always computes directly.
 * CONV_ALGO_DW_IN_CONSUMER: a depthwise conv whose output is never stored: its only reader, the
 * next node (CONV_ALGO_DW_ROWS, a 1×1 conv), computes it one output row at a time into a buffer
 * of one row and consumes the row at once (fuse-dw). */
enum {
    CONV_ALGO_DIRECT = 0,
    CONV_ALGO_WINOGRAD43 = 1, /* F(4×4, 3×3): 6×6 input tiles */
    CONV_ALGO_DW_IN_CONSUMER = 2,
    CONV_ALGO_DW_ROWS = 3,
    CONV_ALGO_WINOGRAD23 = 4 /* F(2×2, 3×3): 4×4 input tiles */
};

/* The output tile side m of a conv2d marked for Winograd F(m,3): 4, 2, or 0 (not Winograd). */
static inline int ir_winograd_m(const Node *n) {
    return n->algo == CONV_ALGO_WINOGRAD43 ? 4 : n->algo == CONV_ALGO_WINOGRAD23 ? 2 : 0;
}

typedef struct Graph {
    Arena arena;      /* names, attribute lists, node input arrays */
    const char *name; /* the model's name (C identifier) */
    PtrVec tensors;   /* Tensor*, indexed by id */
    PtrVec nodes;     /* Node*, in a topological order (the schedule) */
    PtrVec removed;   /* Node*, dead nodes dropped by ir_compact (fused activations stay
                         reachable from epilogues) */
    int ninputs, noutputs;
    int *inputs;  /* tensor ids */
    int *outputs; /* tensor ids */
    const char **output_names;
    SrcLoc *output_locs;
} Graph;

Graph *ir_graph_new(const char *name);
void ir_graph_free(Graph *g);

static inline Tensor *ir_tensor(const Graph *g, int id) { return (Tensor *)g->tensors.items[id]; }
static inline Node *ir_node(const Graph *g, int i) { return (Node *)g->nodes.items[i]; }
int64_t ir_numel(const Tensor *t);
bool ir_same_shape(const Tensor *a, const Tensor *b);

/* A new tensor (id = its index); producer -1; the name is copied into the graph's arena. */
int ir_new_tensor(Graph *g, const char *name, TensorKind k, int rank, const int64_t *shape, SrcLoc loc);
int ir_add_input(Graph *g, const char *name, int rank, const int64_t *shape, SrcLoc loc);
/* A node with attributes at their defaults, an output tensor (shape unknown until
 * ir_infer_node) named `name`, and no weight tensors yet. */
Node *ir_add_node(Graph *g, OpKind op, const char *name, const int *inputs, int nin, SrcLoc loc);
void ir_add_output(Graph *g, int tensor, const char *name, SrcLoc loc);

/* Set an attribute (name must exist for the op: asserted). Values are stored normalised:
 * AT_PAIR as a 2-list of ints, AT_FLOAT as VAL_FLOAT. */
void ir_set_attr(Graph *g, Node *n, const char *name, Value v);
void ir_set_int(Graph *g, Node *n, const char *name, int64_t v);
void ir_set_float(Graph *g, Node *n, const char *name, double v);
void ir_set_bool(Graph *g, Node *n, const char *name, bool v);
void ir_set_str(Graph *g, Node *n, const char *name, const char *v);
void ir_set_pair(Graph *g, Node *n, const char *name, int64_t a, int64_t b);
void ir_set_ints(Graph *g, Node *n, const char *name, const int64_t *v, int count);

/* Attribute access (the name must exist for the op: asserted). */
const Value *ir_attr(const Node *n, const char *name);
bool ir_attr_set(const Node *n, const char *name);
int64_t ir_attr_int(const Node *n, const char *name);
double ir_attr_float(const Node *n, const char *name);
bool ir_attr_bool(const Node *n, const char *name);
const char *ir_attr_str(const Node *n, const char *name);
void ir_attr_pair(const Node *n, const char *name, int64_t out[2]);
int ir_attr_ints(const Node *n, const char *name, int64_t *out, int max); /* returns count */

/* Weight tensor of the node by parameter name, NULL when absent. */
Tensor *ir_weight(const Graph *g, const Node *n, const char *param);

/* Shape inference for one node whose inputs have shapes: checks ranks, shapes and attribute
 * values (errors name the op and both shapes, at the node's location, with call notes),
 * canonicalises derived defaults (pool stride = kernel, slice end, negative axes), sets the
 * output shape, and creates the weight tensors (named node->name + "." + param) or checks the
 * shapes of existing ones. Returns false after reporting an error. */
bool ir_infer_node(Graph *g, Node *n, Diags *d);
/* Report an error at the node with a note per def call on the way. */
void ir_node_error(Diags *d, const Node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Structure (ids in range, topological order, one producer per tensor, outputs produced,
 * every weight bound when `need_data`) and shapes (re-infers every node). */
bool ir_verify(Graph *g, Diags *d, bool need_data);

/* Would overwriting n->in[0] with n's output be unsafe? True when in[0] is a graph input or
 * output, or a later node (or epilogue) still reads it; *later (if not NULL) names that node. */
bool ir_inplace_unsafe(const Graph *g, const Node *n, const Node **later);

/* Readable text close to the .net syntax, stable across runs (diffs show what a pass did). */
void ir_print(const Graph *g, FILE *out);
/* "[1, 64, 56, 56]" into buf */
const char *ir_shape_str(const Tensor *t, char *buf, size_t len);
const char *ir_dims_str(int rank, const int64_t *shape, char *buf, size_t len);

/* Graphviz of the graph (plan may be NULL; with it, tensors sharing storage share a colour).
 * The Plan type lives in plan/plan.h. */
struct Plan;
void ir_write_dot(const Graph *g, const struct Plan *plan, FILE *out);

/* Multiply-accumulates of a node (0 for data movement), for check's summary and --stats. */
int64_t ir_node_macs(const Graph *g, const Node *n);
/* Number of weight floats of a node. */
int64_t ir_node_weight_count(const Graph *g, const Node *n);

/* May node n run as Winograd F(4,3) or F(2,3)? A conv2d with a 3×3 kernel, stride 1, dilation 1 and
 * groups 1 (any padding) on rank-4 tensors. Whether it pays is the pass's decision. */
bool ir_winograd_eligible(const Graph *g, const Node *n);

/* May the 1×1 conv p compute its input's producer row by row (fuse-dw)? Returns that producer
 * when: p is an ungrouped 1×1, stride-1, unpadded conv2d; its input is the output of a depthwise
 * conv2d (groups = input channels = output channels) that is the live node just before p in the
 * schedule, with no residual add in its epilogue; and that output is read by p alone, is no graph
 * output and no concat slice. NULL otherwise. Whether it pays is the pass's decision. */
const Node *ir_dw_rows_producer(const Graph *g, const Node *p);

/* Drop dead nodes from the schedule (kept in g->removed) and renumber; tensors no longer
 * referenced stay (harmless). */
void ir_compact(Graph *g);

#endif
