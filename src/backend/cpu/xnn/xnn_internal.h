/* The XNNPACK fast path of the CPU backend: what the planner decides at prepare time and what a context
 * holds at run time.
 *
 * Execution model. XNNPACK's NHWC operators (operator API, one xnn_operator per node) do the work.
 * Operators, unlike the 2022 subgraph runtimes, take the batch size and spatial size at setup, so one
 * operator serves every batch size. Accepted nodes are grouped into segments: maximal runs of consecutive
 * accepted nodes (in the graph's node order). The backend calls the segment's first node's kernel, which
 * runs the whole segment; the other nodes' kernels do nothing.
 *
 * Shared weights. An operator packs its own copy of the weights when it is created, and this XNNPACK
 * (Debian's 2022 snapshot) has no weights cache through which two operators could share one. So a Conv or
 * fully connected node whose weights are large (RI__XNN_SHARE_BYTES or more) gets one operator for the
 * whole engine, made at prepare (xnn_weights.c) and used by every context and lane: its setup and run
 * happen under the node's mutex, and XNNPACK keeps nothing of a setup past the run. Every other operator
 * (small weights, no weights) is made per context and per lane, so that threads meet on nothing where the
 * time goes (the early, wide layers have the smallest weights). Once every reader of a float constant is a
 * shared operator, nothing needs its float data any more, and engines that allow it (loaded ones) free it.
 *
 * Batch chunks. When every activation of a segment has the batch as its first axis, the segment runs a
 * chunk of images at a time (all its nodes for images [i, i + chunk), then the next chunk), with the chunk
 * sized so that the segment's intermediate tensors stay cache-sized. Layer-by-layer execution of a whole
 * batch at 300x300 streams every intermediate tensor through DRAM; chunks keep them in the caches.
 *
 * Layouts. The graph is NCHW. A 4-D activation is "layout-agnostic" when its C or H*W is 1 (NCHW and NHWC
 * bytes coincide); other 4-D values produced by nodes that output NHWC (Conv, pooling, elementwise nodes in
 * NHWC mode) have layout NHWC. Where data lives during a segment:
 *  - values produced and consumed inside the segment: the context's scratch buffer, one chunk at a time,
 *    at offsets planned by their node-index lifetimes;
 *  - segment outputs (read after the segment or graph outputs): their arena slot, always NCHW/plain; an
 *    NHWC producer computes into scratch and converts each chunk into the arena;
 *  - segment inputs (graph inputs, outputs of reference nodes or of earlier segments): read in place from
 *    the arena, unless they are read as NHWC (converted once for the whole batch into the staging area at
 *    the start of the segment) or their arena bytes may be overwritten by the segment's outputs (copied).
 * Transpose(0,2,3,1) of an NHWC value is a copy of its NHWC bytes, and Transpose(0,3,1,2) of a plain 4-D
 * value yields an NHWC value by a copy of its bytes. Reshape, Flatten and Concat of plain batch-first values
 * run inside segments as copies, so the SSD heads' Conv -> Transpose(0,2,3,1) -> Reshape -> Concat pattern
 * stays in the backbone's segment: the feature maps never leave NHWC, and the heads pay one memcpy each. */
#ifndef RI_BACKEND_CPU_XNN_INTERNAL_H
#define RI_BACKEND_CPU_XNN_INTERNAL_H

#include <pthread.h>
#include <pthreadpool.h>
#include <stdatomic.h>
#include <xnnpack.h>

#include "backend/backend.h"
#include "backend/cpu/kernel.h"

typedef enum {
  XK_NONE = 0, /* reference kernel */
  XK_CONV,     /* Conv 2-D, any group count */
  XK_MAXPOOL,
  XK_AVGPOOL,
  XK_GAP,      /* GlobalAveragePool: NHWC in, [N, C] bytes out */
  XK_FC,       /* Gemm / MatMul with a constant 2-D B */
  XK_BINARY,   /* Add, Sub, Mul, Div */
  XK_UNARY,    /* Relu, Clip, Sigmoid, HardSwish, LeakyRelu */
  XK_SOFTMAX,  /* Softmax over the last axis */
  XK_COPY_OUT, /* Transpose(0,2,3,1) of an NHWC value: copy of its bytes */
  XK_COPY_IN,  /* Transpose(0,3,1,2) of a plain 4-D value: its bytes become an NHWC value */
  XK_COPY,     /* Reshape, Flatten, or a Transpose that moves no bytes (layout-agnostic input): memcpy */
  XK_CONCAT,   /* Concat of plain values along an axis after the batch axis */
  XK_PAD,      /* Pad, constant mode, 4-D, constant pads (none on the batch axis) */
  XK_RESIZE    /* Resize, linear, of H and W of a 4-D map, coordinate modes XNNPACK shares */
} xk_kind;

typedef enum { XB_ADD = 0, XB_SUB, XB_MUL, XB_DIV } xb_op;
typedef enum { XU_CLAMP = 0, XU_SIGMOID, XU_HARDSWISH, XU_LEAKY } xu_op;

/* The plan of one node. Geometry is the one seen at prepare time (max batch); the run checks that the
 * non-batch dims it gets are the same. */
typedef struct {
  xk_kind kind;
  const char *impl;       /* implementation name reported by the backend */
  int in_nhwc;            /* rank-4, non-agnostic activation inputs are read as NHWC */
  int out_nhwc;           /* the output has layout NHWC */
  float out_min, out_max; /* activation XNNPACK fuses as a clamp (-inf/+inf when none) */
  ri__act post;           /* activation run as a second, in-place operator (sigmoid, hardswish, leaky) */
  int yield; /* last node of its segment: its operators let the pool's workers sleep afterwards */
  float post_a;
  /* Conv / pools: pads in ONNX order (top, left, bottom, right), after ceil_mode adjustment. */
  uint32_t pads[4], kh, kw, sh, sw, dh, dw;
  uint32_t groups;
  size_t cin_g, cout_g;
  int64_t in_c, in_h, in_w; /* input channels and spatial size */
  int64_t out_h, out_w;
  /* Binary: one input may be a constant, read from the planner's copy below. */
  xb_op bop;
  int const_in; /* 0 or 1: that input is a constant read from cdata, -1: both are activations */
  float *cdata; /* the constant, owned (NHWC-permuted in NHWC mode), NULL when const_in < 0 */
  int crank;
  size_t cshape[XNN_MAX_TENSOR_DIMS];
  /* Unary */
  xu_op uop;
  float ua, ub;
  /* FC: y[rows, n] = x[rows, k] * B' + bias */
  size_t fc_k, fc_n;
  int fc_b;    /* value index of B (constant) */
  int fc_b_kn; /* B is stored [k, n] (must be transposed to XNNPACK's [n, k]) */
  int fc_c;    /* value index of the bias constant or -1 */
  float fc_alpha, fc_beta;
  /* Softmax */
  size_t sm_channels;
  /* Concat */
  int axis; /* normalized, >= 1 */
  /* Pad: begin/end per NCHW axis, and the constant */
  size_t pad_begin[4], pad_end[4];
  float pad_value;
  /* Resize: XNNPACK flags (coordinate mode) */
  uint32_t resize_flags;
} xk_node;

/* Placement of one value's data (see the file comment). Offsets into the scratch buffer are for a chunk of
 * one batch unit; with a chunk of c units every offset and size is multiplied by c. */
typedef struct {
  int seg;            /* producing segment, or -1 (graph input, reference node, constant) */
  int nhwc;           /* layout NHWC */
  int sensitive;      /* 4-D, not layout-agnostic activation */
  int seg_output;     /* read after its segment or a graph output: its arena slot holds NCHW/plain bytes */
  int64_t unit_bytes; /* exact bytes per batch unit (one image when the segment is sliced, else the whole
                         value): the stride between units in the arena; scratch blocks round it up to 64 */
  int64_t main_off;   /* scratch offset of the data in its own layout, -1: the arena slot (plain outputs) */
  int64_t nchw_off;   /* scratch offset of an NCHW copy (NHWC value read plainly inside, not an output) */
  int64_t nhwc_off;   /* scratch offset of an NHWC copy (plain value read as NHWC inside its segment) */
  int last_in;        /* last reader inside the producing segment (planner bookkeeping) */
  int nhwc_in, plain_in; /* readers inside the producing segment by layout (planner bookkeeping) */
} xv_place;

/* A value a segment reads from outside it. */
typedef struct {
  int v;
  int nhwc;    /* read as NHWC: converted into the staging area */
  int staged;  /* copied (or converted) into the staging area at the segment's start */
  int64_t off; /* staging offset (whole batch at the maximum batch) */
  int64_t unit_bytes;
} xseg_in;

typedef struct {
  int first, last; /* node index range */
  int sliced;      /* every activation has the batch as its first axis */
  int chunk;       /* batch units per chunk (1 when not sliced: the unit is the whole batch) */
  xseg_in *ins;
  int n_ins;
  int64_t scratch_unit; /* scratch bytes for a chunk of one unit */
  int64_t stage_bytes;
} xseg;

typedef struct xnn_ctx xnn_ctx;

/* Weights of at least this many bytes make a node's operator shared (see the file comment); the
 * environment variable RI_XNN_SHARE_BYTES, read at prepare, overrides it (0 shares every weight operator,
 * tests use it on small models). */
#define RI__XNN_SHARE_BYTES ((int64_t)64 << 10)

typedef struct {
  const ri__graph *g;
  int threads;
  int max_batch;
  xk_node *nodes; /* per graph node */
  int *node_seg;  /* per graph node: its segment, or -1 */
  xv_place *vals; /* per graph value */
  xseg *segs;
  int n_segs;
  int64_t buf_size; /* per-context buffer: staging area then scratch, the largest segment's need */
  int n_fast;
  _Atomic(xnn_ctx *) spare; /* a context made at prepare (it proved the operators), for the first taker */
  /* Shared weight operators (xnn_weights.c). They outlive every plan made at prepare: once made, a node's
   * operator stays, because the float data it was packed from may be gone. */
  xnn_operator_t *wop;  /* per node: the engine's operator, or NULL when the node's operator is per context */
  pthread_mutex_t *wmu; /* per node: held across setup and run of wop[node] */
  int wmu_count;        /* initialized mutexes */
  int64_t share_bytes;  /* weights of at least this size are shared */
  int release;          /* free float constants whose every reader is a shared operator */
} xnn_state;

struct xnn_ctx {
  const xnn_state *st;
  pthreadpool_t pool;   /* owned; NULL with one thread */
  pthreadpool_t tp;     /* the pool the current segment run uses: `pool` or NULL (see xnn_fast.c) */
  double *seg_cost;     /* per segment, 2 entries: recent seconds per batch unit without / with the pool */
  long *seg_runs;       /* per segment: runs so far */
  xnn_operator_t *op;   /* per node: main operator, NULL for copies, reference nodes and shared ones */
  xnn_operator_t *post; /* per node: in-place post activation, or NULL */
  void *buf;            /* buf_size bytes, 64-byte aligned: staging area, then scratch */
  double *prof_s;       /* RI_PROFILE=1: seconds per node over all runs, else NULL */
  long prof_runs;
  struct xnn_lanes *lanes; /* batch-parallel helpers (xnn_lanes.c), made on first need, or NULL */
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
 * overlap. Runs on tp when it is not NULL, with pthreadpool flags `flags`. NCHW -> NHWC is rows = C, cols =
 * H*W; NHWC -> NCHW the reverse. */
void ri__xnn_transpose(pthreadpool_t tp, const float *src, float *dst, size_t batch, size_t rows, size_t cols,
                       uint32_t flags);

/* ---- xnn_plan.c ---- */
/* Whether a 4-D shape's NCHW and NHWC bytes coincide (C == 1 or H * W == 1). */
int ri__xnn_agnostic(const ri__shape *s);
/* Fills st->nodes, node_seg, vals and segs for graph g (shapes at st->max_batch): classifies each node
 * (deny[i] set: keep the reference kernel), decides layouts, forms segments and places every value. st->g,
 * max_batch and the zeroed per-node/per-value arrays must be set. */
ri_status ri__xnn_plan(xnn_state *st, const unsigned char *deny, ri__err *err);
/* Frees what a plan owns (constant copies, segments), leaving the per-node/per-value arrays. */
void ri__xnn_plan_clear(xnn_state *st);

/* ---- xnn_ops.c ---- */
/* Creates node ni's main operator from the graph's data (packs its weights) into *op. RI_ERR_NO_MEMORY when
 * memory ran out, RI_ERR_INTERNAL when XNNPACK refused the parameters. */
ri_status ri__xnn_op_create_main(const xnn_state *st, int ni, xnn_operator_t *op, ri__err *err);
/* Creates node ni's per-context operators in c: the main one unless the node's operator is shared, and the
 * post activation. Errors as ri__xnn_op_create_main. */
ri_status ri__xnn_ops_create(xnn_ctx *c, int ni, ri__err *err);
/* Runs node ni's operators (a shared main operator under its mutex). in/out are the node's tensors as the
 * backend passes them (NCHW shapes of this run); inp[k] and outp are where the data actually is (scratch,
 * staging area or arena), resolved by the kernel. */
ri_status ri__xnn_ops_run(xnn_ctx *c, int ni, const ri__tensor *in, const float *const *inp,
                          const ri__tensor *out, float *outp, ri__err *err);

/* ---- xnn_fast.c ---- */
/* A context: every planned node's per-context operators (see ri__xnn_ops_create), the staging/scratch
 * buffer, and a pthreadpool when threads > 1; profile: per-node times (RI_PROFILE). On an operator failure
 * *bad is that node. */
ri_status ri__xnn_ctx_new(const xnn_state *st, int threads, int profile, xnn_ctx **out, int *bad,
                          ri__err *err);
void ri__xnn_ctx_free(xnn_ctx *c);
/* Runs every node of segment s for batch units [u0, u0 + cu) on context c's operators and scratch, reading
 * staged inputs from `stage` (filled for the whole batch before). */
ri_status ri__xnn_run_chunk(xnn_ctx *c, const xseg *s, const ri__exec *x, char *stage, int u0, int cu,
                            ri__err *err);
/* Kernel of a segment's first node: runs the whole segment. */
ri_status ri__xnn_segment_kernel(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x);
/* Kernel of the other nodes of a segment: nothing (the segment ran them). */
ri_status ri__xnn_nop_kernel(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x);

/* ---- xnn_weights.c ---- */
/* Allocates the per-node shared-operator arrays and mutexes of st (st->g set) and reads the share threshold;
 * release: whether float constants may be freed once packed. ri__xnn_weights_free undoes it. */
ri_status ri__xnn_weights_init(xnn_state *st, int release, ri__err *err);
/* Whether node ni of the current plan has (or gets) a shared operator: a Conv or fully connected node whose
 * weights and bias take at least st->share_bytes. */
int ri__xnn_weights_shared(const xnn_state *st, int ni);
/* Makes the shared operator of every node of the current plan that should have one and lacks one, in node
 * order, freeing (when st->release) each float constant as soon as every reader of it has its shared
 * operator. A node whose parameters XNNPACK refuses is marked in deny and *refused set; the caller plans
 * again. Other failures (out of memory) are returned. */
ri_status ri__xnn_weights_create(xnn_state *st, unsigned char *deny, int *refused, ri__err *err);
/* Checks that every node with a shared operator is still planned as its kind (RI_ERR_INTERNAL otherwise:
 * its float data may be gone, so no reference kernel could take it). */
ri_status ri__xnn_weights_check(const xnn_state *st, ri__err *err);
void ri__xnn_weights_free(xnn_state *st);

/* ---- xnn_lanes.c ---- */
/* Runs the chunks of sliced segment s over units [0, units) on c's thread count of lanes: the caller and
 * helper threads each take the next chunk and run it on their own operators (single-threaded) and scratch,
 * so that threads meet once per segment instead of once per operator, and a thread the OS does not run
 * holds up nobody (the others take its chunks) except at a shared weight operator it holds. Helper lanes
 * are made on first use, with per-lane operators for the nodes whose weights are not shared. */
ri_status ri__xnn_lanes_run(xnn_ctx *c, const xseg *s, const ri__exec *x, char *stage, int units, int chunk,
                            ri__err *err);
void ri__xnn_lanes_free(struct xnn_lanes *l);

#endif
