/* The XNNPACK fast path of the CPU backend: what the planner decides at prepare time and what a context
 * holds at run time.
 *
 * Execution model. The CPU backend still runs the graph node by node; a node the planner accepts gets the
 * kernel ri__xnn_kernel instead of its reference kernel. XNNPACK's NHWC operators (operator API, one
 * xnn_operator per node per context) do the work. Operators, unlike the 2022 subgraph runtimes, take the
 * batch size and spatial size at setup, so one operator serves every batch size and packs its weights once
 * per context.
 *
 * Layouts. The graph is NCHW. A 4-D activation is "layout-agnostic" when its C or H*W is 1 (NCHW and NHWC
 * bytes coincide); such values, and values of other ranks, are always stored plainly in their arena slot.
 * Every other 4-D value produced by a node that outputs NHWC (Conv, pooling, and elementwise nodes in NHWC
 * mode) has layout NHWC. Where the data lives (xv_place):
 *  - NHWC value read only by NHWC readers: its own arena slot holds the NHWC bytes (the memory plan reserves
 *    it for the value's whole lifetime; nothing else reads it);
 *  - NHWC value also read as NCHW (by a reference kernel, a plain fast node or as a graph output): the
 *    producer writes NHWC into a shadow block, then converts it into the arena slot as NCHW;
 *  - NCHW value (graph input, reference output) read as NHWC: its first NHWC reader converts the arena
 *    data into a shadow block, and later NHWC readers reuse it.
 * Shadow blocks live in one per-context buffer; the planner places them by their node-index lifetimes so
 * that blocks whose lifetimes intersect never overlap.
 *
 * Transpose(0,2,3,1) of an NHWC value is a copy of its NHWC bytes (the SSD heads' Conv -> Transpose ->
 * Reshape pattern pays one memcpy, no conversion), and Transpose(0,3,1,2) of a plain 4-D value yields an
 * NHWC value by a copy of the input bytes. */
#ifndef RI_BACKEND_CPU_XNN_INTERNAL_H
#define RI_BACKEND_CPU_XNN_INTERNAL_H

#include <pthreadpool.h>
#include <stdatomic.h>
#include <xnnpack.h>

#include "backend/backend.h"
#include "backend/cpu/kernel.h"

typedef enum {
  XK_NONE = 0,     /* reference kernel */
  XK_CONV,         /* Conv 2-D, any group count */
  XK_MAXPOOL,
  XK_AVGPOOL,
  XK_GAP,          /* GlobalAveragePool: NHWC in, [N, C] bytes out */
  XK_FC,           /* Gemm / MatMul with a constant 2-D B */
  XK_BINARY,       /* Add, Sub, Mul, Div */
  XK_UNARY,        /* Relu, Clip, Sigmoid, HardSwish, LeakyRelu */
  XK_SOFTMAX,      /* Softmax over the last axis */
  XK_COPY_OUT,     /* Transpose(0,2,3,1) of an NHWC value: copy of its bytes */
  XK_COPY_IN       /* Transpose(0,3,1,2) of a plain 4-D value: its bytes become an NHWC value */
} xk_kind;

typedef enum { XB_ADD = 0, XB_SUB, XB_MUL, XB_DIV } xb_op;
typedef enum { XU_CLAMP = 0, XU_SIGMOID, XU_HARDSWISH, XU_LEAKY } xu_op;

/* The plan of one node. Geometry is the one seen at prepare time (max batch); the run checks that the
 * non-batch dims it gets are the same. */
typedef struct {
  xk_kind kind;
  const char *impl;     /* implementation name reported by the backend */
  int in_nhwc;          /* rank-4, non-agnostic activation inputs are read as NHWC */
  int out_nhwc;         /* the output has layout NHWC */
  float out_min, out_max; /* activation XNNPACK fuses as a clamp (-inf/+inf when none) */
  ri__act post;         /* activation run as a second, in-place operator (sigmoid, hardswish, leaky) */
  float post_a;
  /* Conv / pools: pads in ONNX order (top, left, bottom, right), after ceil_mode adjustment. */
  uint32_t pads[4], kh, kw, sh, sw, dh, dw;
  uint32_t groups;
  size_t cin_g, cout_g;
  int64_t in_c, in_h, in_w; /* input channels and spatial size */
  int64_t out_h, out_w;
  /* Binary: one input may be a constant, read from the planner's copy below. */
  xb_op bop;
  int const_in;         /* 0 or 1: that input is a constant read from cdata, -1: both are activations */
  float *cdata;         /* the constant, owned (NHWC-permuted in NHWC mode), NULL when const_in < 0 */
  int crank;
  size_t cshape[XNN_MAX_TENSOR_DIMS];
  /* Unary */
  xu_op uop;
  float ua, ub;
  /* FC: y[rows, n] = x[rows, k] * B' + bias */
  size_t fc_k, fc_n;
  int fc_b;             /* value index of B (constant) */
  int fc_b_kn;          /* B is stored [k, n] (must be transposed to XNNPACK's [n, k]) */
  int fc_c;             /* value index of the bias constant or -1 */
  float fc_alpha, fc_beta;
  /* Softmax */
  size_t sm_channels;
} xk_node;

/* Placement of one value's data (see the file comment). */
typedef struct {
  int nhwc;             /* layout NHWC (produced by a node with out_nhwc) */
  int nhwc_in_arena;    /* the arena slot holds NHWC bytes; no NCHW copy exists */
  int64_t shadow_off;   /* >= 0: NHWC copy in the shadow buffer at this byte offset */
  int64_t shadow_bytes; /* its size at the maximum batch */
  int shadow_first, shadow_last; /* node-index lifetime of the shadow block */
  int to_nhwc_at;       /* node whose kernel fills the shadow from the NCHW arena data, or -1 */
  int to_nchw;          /* the producer converts its NHWC result into the arena slot as NCHW */
  int nhwc_readers, nchw_readers; /* counts of reads in each layout (planner bookkeeping) */
} xv_place;

typedef struct xnn_ctx xnn_ctx;

typedef struct {
  const ri__graph *g;
  int threads;
  xk_node *nodes;   /* per graph node */
  xv_place *vals;   /* per graph value */
  int64_t shadow_size;
  int n_fast;
  _Atomic(xnn_ctx *) spare; /* a context made at prepare (it proved the operators), for the first taker */
} xnn_state;

struct xnn_ctx {
  const xnn_state *st;
  pthreadpool_t tp;         /* NULL with one thread */
  xnn_operator_t *op;       /* per node: main operator, NULL for copies and reference nodes */
  xnn_operator_t *post;     /* per node: in-place post activation, or NULL */
  void *shadow;             /* shadow_size bytes, 64-byte aligned */
};

/* ---- xnn_init.c ---- */
/* Initializes XNNPACK once per process with an allocator that goes through ri__malloc. RI_ERR_UNSUPPORTED
 * when the CPU lacks what XNNPACK needs. */
ri_status ri__xnn_init(ri__err *err);
const char *ri__xnn_status_name(enum xnn_status s);
/* Records an XNNPACK failure of `what` for node n: RI_ERR_NO_MEMORY for xnn_status_out_of_memory,
 * RI_ERR_INTERNAL otherwise; the message names the node, its op and the status. */
ri_status ri__xnn_fail(const ri__node *n, const char *what, enum xnn_status s, ri__err *err);

/* ---- xnn_transpose.c ---- */
/* dst[b][j][i] = src[b][i][j] for `batch` row-major matrices of rows x cols floats; src and dst must not
 * overlap. Runs on tp when it is not NULL. NCHW -> NHWC is rows = C, cols = H*W; NHWC -> NCHW the reverse. */
void ri__xnn_transpose(pthreadpool_t tp, const float *src, float *dst, size_t batch, size_t rows, size_t cols);

/* ---- xnn_plan.c ---- */
/* Whether a 4-D shape's NCHW and NHWC bytes coincide (C == 1 or H * W == 1). */
int ri__xnn_agnostic(const ri__shape *s);
/* Fills st->nodes and st->vals for graph g: classifies each node (deny[i] set: keep the reference kernel),
 * decides layouts and places the shadow blocks. st->g must be set; nodes/vals must be zeroed arrays. */
ri_status ri__xnn_plan(xnn_state *st, const unsigned char *deny, ri__err *err);
/* Frees what a plan owns inside st->nodes (constant copies), leaving the arrays. */
void ri__xnn_plan_clear(xnn_state *st);

/* ---- xnn_ops.c ---- */
/* Creates node ni's operators in c (packs its weights). RI_ERR_NO_MEMORY when memory ran out, RI_ERR_INTERNAL
 * when XNNPACK refused the parameters. */
ri_status ri__xnn_ops_create(xnn_ctx *c, int ni, ri__err *err);
/* Runs node ni's operators. in/out are the node's tensors as the backend passes them (NCHW shapes of this
 * run); inp[k] and outp are where the data actually is (NHWC storage, shadow or arena), resolved by the
 * kernel. */
ri_status ri__xnn_ops_run(xnn_ctx *c, int ni, const ri__tensor *in, const float *const *inp,
                          const ri__tensor *out, float *outp, ri__err *err);

/* ---- xnn_fast.c ---- */
ri_status ri__xnn_kernel(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x);

#endif
