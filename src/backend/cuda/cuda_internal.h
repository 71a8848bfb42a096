/* CUDA backend internals: the per-engine state (prepared once, read-only afterwards), the per-context state
 * (stream, handles, device memory, caches), and the interface each op implementation provides.
 *
 * Device data types. Every value has a device element type vdt[v]: its graph dtype, except that float32
 * values are float16 on the device when the engine is built for fp16 (activations, constants and
 * host-computed values alike). Graph inputs and outputs keep their graph dtype at the API; run() converts.
 *
 * Layouts. A value's layout vlayout[v] is CU_LAYOUT_ROW (dense row-major in its logical ONNX shape, i.e.
 * NCHW for images) or CU_LAYOUT_NHWC (rank 4 only: logical [N, C, H, W] stored as [N, H, W, C]). NHWC is
 * used where rank-4 convolutions run NHWC (cu_state.nhwc: fp16 engines, and fp32 engines unless
 * RI_CUDA_F32_LAYOUT=nchw), for the backend's own convolution kernels. Graph semantics stay NCHW:
 * each node input has a wanted layout (want[k]); when the value's layout differs, run() converts it into
 * per-context scratch before the node runs. Ops that read through strides accept any layout.
 *
 * Memory. Activations live at mem_off[v] in one device arena per context, sized for the engine's maximum
 * batch in device bytes (cuda_memplan.c), together with the device staging of converted graph inputs and
 * outputs. Constants that device code reads are uploaded once per engine into one allocation (dconst);
 * conv weights are uploaded in the form their implementation wants. Host-computed values (shape subgraphs)
 * that a device node reads are copied to a per-context device area before each run. */
#ifndef RI_BACKEND_CUDA_CUDA_INTERNAL_H
#define RI_BACKEND_CUDA_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "backend/backend.h"
#include "backend/cuda/kernels.h"

enum { CU_LAYOUT_ROW = 0, CU_LAYOUT_NHWC = 1 };
/* Wanted layout of a node input: as stored, row-major, or NHWC. */
enum { CU_WANT_ANY = 0, CU_WANT_ROW = 1, CU_WANT_NHWC = 2 };

/* Alignment of every block in device allocations and scratch (cuBLASLt and cuDNN like 256). */
#define CU_ALIGN 256

typedef struct cu_state cu_state;
typedef struct cu_ctx cu_ctx;

/* A node operand as a kernel sees it: graph type/shape for this batch, device pointer, device type and
 * layout (after any conversion). */
typedef struct {
  const ri__tensor *t; /* vals entry: graph dtype, shape, host data when known (constants, host values) */
  void *p;             /* device pointer, NULL for an absent optional input */
  ri_dtype dt;         /* device element type */
  int layout;          /* CU_LAYOUT_* of p */
  int v;               /* value index, -1 when absent */
} cu_arg;

/* One op implementation. prep runs once per engine: it checks what the node needs (dtypes, constant
 * inputs, attributes) and fails with RI_ERR_UNSUPPORTED naming the node otherwise, uploads weights through
 * ri__cu_blob_add, marks the inputs it reads on the device (ri__cu_use_input) and sets node->name and
 * node->op_scratch. ctx_init / ctx_free (optional) manage per-context data in c->node_ctx[ni]. run
 * enqueues the node's work on c->stream for this batch: it must not synchronize or allocate device
 * memory (it may be captured into a CUDA graph), except in ctx-lazy setup that happens before capture
 * (see cu_ctx.capturing). */
typedef struct cu_op_impl {
  ri_status (*prep)(cu_state *st, int ni, ri__err *err);
  ri_status (*ctx_init)(cu_ctx *c, int ni, ri__err *err);
  void (*ctx_free)(cu_ctx *c, int ni);
  ri_status (*run)(cu_ctx *c, int ni, const cu_arg *in, const cu_arg *out, void *scratch, ri__err *err);
} cu_op_impl;

/* Most values a node's access() hook (cu_node) may list as read, and as written. */
#define CU_MAX_ACCESS 8

/* Where a tensor-core convolution (k_convgemm.cu) writes, and what its epilogue adds: by default its own
 * output, dense NHWC, with its own activation. The fusion pass (cuda_fuse.c) may redirect it into the
 * output of a following Add (adding the Add's other input, res_v, before the Add's activation) or into a
 * slice of a Concat's row-major output (SSD heads: Conv -> Transpose(0,2,3,1) -> Reshape -> Concat). */
typedef struct {
  int out_v; /* value written */
  int res_v; /* value added before the activation, -1 none */
  int act;   /* activation code (ri__act) applied last */
  float act_a, act_b;
  int64_t y_off, ldy; /* elements before the first channel of a pixel's row; between pixels */
  int64_t img_stride; /* elements between images; 0: dense (output pixels per image * ldy) */
  int out_f32;        /* out_v is float32 on the device (a graph output written directly) */
} cu_conv_out;

typedef struct {
  const cu_op_impl *impl;
  const char *name; /* implementation name for ri_engine_describe_json (static string) */
  int skip;         /* the node's work is done by another node (fusion): run() skips it */
  int fusable;      /* a tensor-core convolution whose output can be redirected (co below) */
  cu_conv_out co;
  unsigned char *want; /* per input: CU_WANT_*; NULL = all CU_WANT_ANY */
  int64_t cvt_bytes;   /* scratch bytes for converted inputs at the maximum batch */
  int64_t op_scratch;  /* scratch bytes the op itself needs at the maximum batch */
  void *aux;           /* op-specific prepared data: plain memory, ri__free'd at release */
  /* Set by a fusion that gives the node another implementation doing other nodes' work: the values the
   * node really reads and writes (at most CU_MAX_ACCESS each, lists ended by -1). The memory re-plan after
   * fusion (ri__cu_replan_memory) needs it; without it a node reads its graph inputs and writes its graph
   * outputs (a fusable convolution: its inputs and co.res_v, and co.out_v). */
  void (*access)(const cu_state *st, int ni, int *reads, int *writes);
  int side; /* runs on the context's side stream, concurrently with the nodes after it (cuda_branches.c) */
} cu_node;

struct cu_state {
  const ri__graph *g;
  ri__backend_cfg cfg;
  int fp16;
  int nhwc;          /* rank-4 convolutions run NHWC on the own kernels (cuda_layout.c decides) */
  char dev_name[24]; /* "cuda:N" */
  ri_dtype *vdt;
  unsigned char *vlayout;
  unsigned char *dev_use; /* per value: read by device code (constants and host values get uploaded) */
  int64_t *const_off;     /* per value: byte offset in dconst, -1 when not there */
  int64_t *host_off;      /* per value: byte offset in the host-value area, -1 when not there */
  int64_t *host_cap;      /* per value: bytes reserved there */
  int64_t host_bytes;
  int64_t *reloc_off; /* per value: byte offset in the context's relocation area (cuda_fuse.c), -1 when the
                         value lives in the arena */
  int64_t reloc_bytes;
  cu_node *nodes;
  /* Constant blob: built on the host during prepare (blob, blob_len), then uploaded to dconst. */
  unsigned char *blob;
  size_t blob_len, blob_cap;
  void *dconst;
  int64_t dconst_bytes;  /* bytes of dconst */
  int64_t scratch_bytes; /* per-context scratch: max over nodes of aligned cvt_bytes + op_scratch */
  int64_t io_bytes;      /* pinned host staging for graph inputs and outputs */
  int64_t *io_off;       /* n_inputs + n_outputs offsets into the pinned staging */
  int64_t *io_nbytes;    /* n_inputs + n_outputs: bytes at the maximum batch in the graph dtype */
  /* Device memory plan (cuda_memplan.c): per value, offset and size in the arena (-1 / 0 when not there);
   * per graph input and output, the arena offset of its device staging (-1: none, it is copied straight
   * to or from its value); the arena's bytes. */
  int64_t *mem_off, *mem_size, *dio_off;
  int64_t arena_bytes;
  int uses_cudnn, uses_cublas;
  int uses_gemm; /* a tensor-core convolution (k_convgemm.cu) runs: contexts get split-K resources */
  int n_side;    /* nodes with cu_node.side set: contexts get a side stream (cuda_branches.c) */
};

/* A captured CUDA graph for one batch size. */
typedef struct {
  int batch;
  cudaGraphExec_t exec;
} cu_graph_entry;

#define CU_MAX_GRAPHS 64

struct cu_ctx {
  cu_state *st;
  cudaStream_t stream;
  cudnnHandle_t cudnn;
  cublasLtHandle_t lt;
  void *arena;
  void *scratch;
  void *ws; /* cuDNN workspace */
  size_t ws_bytes;
  size_t ws_need; /* the most workspace an algorithm chosen so far needs (at most ws_bytes) */
  void *lt_ws;    /* cuBLASLt workspace */
  size_t lt_ws_bytes;
  void *pin_io;              /* input/output staging on the host (pinned); on the device it is in the arena */
  int64_t dev_bytes;         /* device bytes this context allocated (dev_alloc), arena included */
  void *pin_host, *dev_host; /* host-value uploads */
  void *reloc;               /* values moved out of the arena by the fusion pass (st->reloc_off) */
  ri__cu_splitk splitk;      /* workspace and counters of split-K convolutions (ws NULL: none) */
  void **node_ctx;           /* per node, owned by the op (ctx_free) */
  cu_arg *in_args, *out_args;
  int max_io;
  /* CUDA graphs (RI_CUDA_GRAPHS=0 disables). */
  int graphs_on;
  int capturing; /* 1 while the stream captures: ops must not do lazy setup that synchronizes */
  cu_graph_entry graphs[CU_MAX_GRAPHS];
  int n_graphs;
  unsigned char *ran; /* bit b: batch b has run eagerly once (a graph is captured on its second run) */
  /* Device timing of the compute part of the last run (RI_CUDA_TIMING=1 or ri__cuda_set_timing). */
  int timing;
  cudaEvent_t ev0, ev1;      /* around the compute part */
  cudaEvent_t ev_in, ev_out; /* start of the run; after the outputs' device-to-host copies are enqueued */
  float last_compute_ms;
  float last_h2d_ms, last_d2h_ms;
  double last_enqueue_ms; /* host time of the graph launch or the eager enqueue */
  int last_was_graph;
  /* Per-node profiling (ri__cuda_context_set_profile): runs eagerly with events between nodes. */
  struct cu_profile *prof;
  struct cu_staging *staging; /* host copies of inputs and outputs (cuda_staging.c) */
  /* Side stream of the nodes with cu_node.side (st->n_side > 0): its own scratch and split-K resources,
   * since its nodes run while the main stream's use theirs; forked per node, joined after the last. */
  cudaStream_t side_stream;
  cudaEvent_t ev_fork, ev_join;
  void *side_scratch;
  ri__cu_splitk side_splitk;
  void *side_lt_ws; /* lt_ws_bytes of cuBLASLt workspace (a side node on a cuBLASLt tactic) */
};

/* ---- errors (cuda_util.c) ---- */
/* Record a failed CUDA runtime / cuDNN / cuBLASLt call: "<function> failed: <error text> (<code>) in node
 * 'X' (Op) on cuda:N" (or "while <what>" when ni < 0). `call` may be the stringified call expression;
 * only the function name before '(' is kept. Returns RI_ERR_NO_MEMORY for an allocation failure
 * (cudaErrorMemoryAllocation, CUDNN_STATUS_ALLOC_FAILED, CUBLAS_STATUS_ALLOC_FAILED; the runtime's last
 * error is then cleared, so that later launch checks do not see it), RI_ERR_DEVICE otherwise. */
ri_status ri__cu_fail_rt(ri__err *err, cudaError_t e, const char *call, const cu_state *st, int ni,
                         const char *what);
/* Record a failed allocation of `bytes` bytes for `what` ("the activation arena"), adding the device's
 * free and total memory to the message: "cudaMalloc failed: cudaErrorMemoryAllocation: out of memory (2)
 * while allocating N bytes for the activation arena (F MiB of T MiB free) on cuda:0". The status is that
 * of ri__cu_fail_rt. */
ri_status ri__cu_fail_alloc(ri__err *err, cudaError_t e, const char *call, const cu_state *st, int64_t bytes,
                            const char *what);
/* Under memory pressure cuDNN and cuBLASLt report a failed handle creation with other codes than their
 * ALLOC_FAILED (cuDNN: CUDNN_STATUS_INTERNAL_ERROR or CUDNN_STATUS_NOT_INITIALIZED). Given the status of
 * such a failure as recorded in err: when it is RI_ERR_DEVICE and the device has less than CU_LOW_MEMORY
 * bytes free, the error becomes RI_ERR_NO_MEMORY with "out of device memory on cuda:N (F MiB of T MiB
 * free): " before the library's message. Returns the resulting status. */
#define CU_LOW_MEMORY ((size_t)512 << 20)
ri_status ri__cu_low_memory(ri__err *err, ri_status status, const cu_state *st);
ri_status ri__cu_fail_dnn(ri__err *err, cudnnStatus_t e, const char *call, const cu_state *st, int ni,
                          const char *what);
ri_status ri__cu_fail_lt(ri__err *err, cublasStatus_t e, const char *call, const cu_state *st, int ni,
                         const char *what);
/* RI_ERR_UNSUPPORTED "node 'X' (op Y) ... <reason>" for prepare-time refusals. */
ri_status ri__cu_unsupported(ri__err *err, const cu_state *st, int ni, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Checks for use inside functions with `err`, `st` (cu_state *) and `ni` (node index or -1) in scope. */
#define CU_RT(call)                                                                                          \
  do {                                                                                                       \
    cudaError_t cu_e_ = (call);                                                                              \
    if (cu_e_ != cudaSuccess) return ri__cu_fail_rt(err, cu_e_, #call, st, ni, NULL);                        \
  } while (0)
#define CU_DNN(call)                                                                                         \
  do {                                                                                                       \
    cudnnStatus_t cu_e_ = (call);                                                                            \
    if (cu_e_ != CUDNN_STATUS_SUCCESS) return ri__cu_fail_dnn(err, cu_e_, #call, st, ni, NULL);              \
  } while (0)
#define CU_LT(call)                                                                                          \
  do {                                                                                                       \
    cublasStatus_t cu_e_ = (call);                                                                           \
    if (cu_e_ != CUBLAS_STATUS_SUCCESS) return ri__cu_fail_lt(err, cu_e_, #call, st, ni, NULL);              \
  } while (0)

/* ---- prepare helpers (cuda_util.c) ---- */
/* Appends n bytes (data, or zeros when data is NULL) to the constant blob at a CU_ALIGN boundary and
 * stores their offset in *off. */
ri_status ri__cu_blob_add(cu_state *st, const void *data, size_t n, int64_t *off, ri__err *err);
/* Marks input k of node ni as read by device code (a constant or host value then gets a device copy). */
void ri__cu_use_input(cu_state *st, int ni, int k);
/* Sets the wanted layout of input k of node ni (allocating the want array on first use). */
ri_status ri__cu_want(cu_state *st, int ni, int k, int want, ri__err *err);
/* Host copy of a float32 constant value's data as the device type dt (F32 or F16), new buffer (ri__free). */
void *ri__cu_const_as(const ri__value *v, ri_dtype dt, size_t *nbytes);
/* Device pointer of a constant uploaded to dconst. */
void *ri__cu_const_ptr(const cu_state *st, int64_t off);
/* The graph value behind input k of node ni, or -1. */
int ri__cu_in(const cu_state *st, int ni, int k);
/* True when input k of node ni is present and a constant. */
int ri__cu_in_const(const cu_state *st, int ni, int k);

/* ---- layouts and walks (cuda_util.c) ---- */
/* Element strides of each logical axis of a tensor of shape s stored in layout (NHWC needs rank 4). */
void ri__cu_strides(const ri__shape *s, int layout, int64_t st[RI__MAX_RANK]);
/* Logical axes in storage order, outermost first. */
void ri__cu_storage_order(int rank, int layout, int order[RI__MAX_RANK]);
/* Drops dims of size 1 and merges neighbouring dims that are contiguous in all nt tensors. */
void ri__cu_walk_simplify(ri__cu_walk *w, int nt);
/* A copy walk over the logical shape s from a tensor with strides src_st (+ src_off elements) into a
 * tensor with strides dst_st: dims in the destination's storage order (dst_layout), simplified. */
void ri__cu_copy_walk(const ri__shape *s, const int64_t src_st[RI__MAX_RANK],
                      const int64_t dst_st[RI__MAX_RANK], int dst_layout, ri__cu_walk *w);
/* Copies logical tensor `src` (type sdt, layout sl, shape s) into dst (type ddt, layout dl) on the stream:
 * a device memcpy when types and layouts match, else a copy kernel (types equal, or F32 <-> F16). */
ri_status ri__cu_convert(cu_ctx *c, int ni, const ri__shape *s, const void *src, ri_dtype sdt, int sl,
                         void *dst, ri_dtype ddt, int dl, ri__err *err);

/* Device address of value v in context c (arena slot, constant, or host-value copy), or NULL when it has
 * none (a constant no device code reads). */
void *ri__cu_value_ptr(const cu_ctx *c, int v);

/* ---- op implementations (cuda_op_*.c) ---- */
/* 1 when Conv node ni runs on the direct kernel for few input channels (NHWC engines; cuda_op_conv.c): its
 * input may then stay in any layout and in float32 (cuda_layout.c keeps such an image input as given). */
int ri__cu_conv_is_stem(const cu_state *st, int ni);
/* The implementation of op, or NULL when the CUDA backend has none (cuda_ops.c). */
const cu_op_impl *ri__cu_op_impl(ri__op op);
/* Implementations, by family. */
const cu_op_impl *ri__cu_impl_conv(void);      /* cuda_op_conv.c */
const cu_op_impl *ri__cu_impl_batchnorm(void); /* cuda_op_conv.c */
const cu_op_impl *ri__cu_impl_gemm(void);      /* cuda_op_gemm.c */
const cu_op_impl *ri__cu_impl_matmul(void);    /* cuda_op_gemm.c */
const cu_op_impl *ri__cu_impl_unary(void);     /* cuda_op_eltwise.c */
const cu_op_impl *ri__cu_impl_binary(void);
const cu_op_impl *ri__cu_impl_cast(void);
const cu_op_impl *ri__cu_impl_qdq(void);
const cu_op_impl *ri__cu_impl_reshape(void); /* cuda_op_move.c */
const cu_op_impl *ri__cu_impl_transpose(void);
const cu_op_impl *ri__cu_impl_concat(void);
const cu_op_impl *ri__cu_impl_slice(void);
const cu_op_impl *ri__cu_impl_gather(void);
const cu_op_impl *ri__cu_impl_tile(void);
const cu_op_impl *ri__cu_impl_pad(void);
const cu_op_impl *ri__cu_impl_shape(void);
const cu_op_impl *ri__cu_impl_constant(void);
const cu_op_impl *ri__cu_impl_gap(void); /* cuda_op_misc.c */
const cu_op_impl *ri__cu_impl_pool(void);
const cu_op_impl *ri__cu_impl_softmax(void);
const cu_op_impl *ri__cu_impl_resize(void);

/* Fusion pass (cuda_fuse.c), after every op's prep: Conv + Add (residual) where the activation arena's
 * plan shows that writing the Add's output early is safe, and SSD head chains into a Concat (and a
 * Sigmoid after it), whose output moves to the relocation area when the plan does not allow it and is
 * written as float32 when it is a graph output read by no node. Sets cu_node.skip and .co,
 * st->reloc_off / reloc_bytes and st->vdt of such outputs; RI_CUDA_FUSE=0 turns it off. */
ri_status ri__cu_fuse(cu_state *st, ri__err *err);
/* Safety helpers of the fusion pass (cuda_fuse.c): 1 when values a and b have overlapping arena blocks;
 * 1 when no node in [from, to) that still runs reads or writes a value overlapping v (other than v). */
int ri__cu_overlaps(const cu_state *st, int a, int b);
int ri__cu_window_clear(const cu_state *st, int from, int to, int v);
/* Inverted-residual blocks fused into one kernel (cuda_irblock.c), run by ri__cu_fuse after the residual
 * fusion: uses[v] counts the reads of value v (plus one for a graph output), reader[v] is its last
 * reader. By default only in engines of maximum batch 1; RI_CUDA_IRBLOCK=1 / 0 force it on / off. */
ri_status ri__cu_fuse_irblock(cu_state *st, const int *uses, const int *reader, ri__err *err);
/* Expansion 1x1 -> depthwise 3x3 pairs fused into one kernel (cuda_expdw.c), run by ri__cu_fuse right after
 * ri__cu_fuse_irblock with the same use counts and last readers. By default in fp16 engines of maximum batch
 * above 1 for expansions of at most 32 input channels; RI_CUDA_EXPDW=0 never, =all every eligible pair. */
ri_status ri__cu_fuse_expdw(cu_state *st, const int *uses, const int *reader, ri__err *err);
/* The tactic code a fused node keeps for the engine file: RI__CU_TAC_DWH for a depthwise node fused with its
 * projection alone (dwproj) on the half-arithmetic depthwise stage, which must stay on it when loaded; 0
 * for every other node (an expansion's fused depthwise node keeps its own code: it is still a Conv node). */
int32_t ri__cu_expdw_tactic(const cu_state *st, int ni);
/* The input normalisation of device preprocessing as one kernel (cuda_fuse_input.c), called by ri__cu_fuse
 * with the same use counts and last readers. */
ri_status ri__cu_fuse_input(cu_state *st, const int *uses, const int *reader, ri__err *err);

/* Device memory plan (cuda_memplan.c), after the ops' prep and before the fusion pass: fills st->mem_off,
 * mem_size, dio_off and arena_bytes from the graph plan's lifetimes and the device sizes. */
ri_status ri__cu_plan_memory(cu_state *st, ri__err *err);
/* The device memory plan again after the fusion pass (cuda_memplan.c), from what the nodes that still run
 * really read and write: values no running node touches get no bytes, values a fused node writes early
 * live from that write, and the fusion pass's relocations are undone. Keeps the first plan when a running
 * node's implementation was replaced without a cu_node.access hook. RI_CUDA_MEMPLAN=prefusion skips it. */
ri_status ri__cu_replan_memory(cu_state *st, ri__err *err);
/* What running node k reads and writes on the device (lists ended by -1, at most CU_MAX_ACCESS each); 0
 * when that is not known (an implementation replaced without an access hook). cuda_memplan.c. */
int ri__cu_node_access(const cu_state *st, int k, int *rd, int *wr);
/* Concurrent branches (cuda_branches.c), from the memory re-plan: marks cu_node.side on the convolutions
 * on the own GEMM kernels whose results no running node reads (SSD heads writing into the outputs), when
 * the policy allows (RI_CUDA_BRANCHES=0 never, =1 always, default engines of maximum batch at most
 * CU_BRANCHES_AUTO_MAX_BATCH); sets st->n_side. The re-plan keeps what they read alive to the end. */
#define CU_BRANCHES_AUTO_MAX_BATCH 32
void ri__cu_mark_branches(cu_state *st);
/* Enqueues node ni on the side stream when it is a side node and the context has one (*open set once
 * something was forked), else on the main stream; ri__cu_join_branches makes the main stream wait for
 * the side stream's work. run(c, ni) is the caller's node runner. */
ri_status ri__cu_run_maybe_side(cu_ctx *c, int ni, int *open,
                                ri_status (*run)(cu_ctx *c, int ni, void *arg, ri__err *err), void *arg,
                                ri__err *err);
ri_status ri__cu_join_branches(cu_ctx *c, int open, ri__err *err);
/* Side-stream resources of a context (none when st->n_side is 0); free releases what create made. */
ri_status ri__cu_branches_create(cu_ctx *c, ri__err *err);
void ri__cu_branches_free(cu_ctx *c);

/* 1 when graph input/output value v passes between the API and the arena without conversion. */
int ri__cu_io_direct(const cu_state *st, int v);

/* Layout and device dtype assignment (cuda_layout.c): fills st->vdt, st->vlayout and the nodes' want
 * arrays and cvt_bytes. Runs before the ops' prep. */
ri_status ri__cu_assign_layouts(cu_state *st, ri__err *err);

/* Per-node profiling (cuda_profile.c). mark(k) records the event before node k (k = n_nodes: after the
 * last node; k = -1: before the input conversions; k = -2: after the output conversions); collect adds the
 * elapsed times of the synchronized run to the totals. */
ri_status ri__cu_profile_create(cu_ctx *c, ri__err *err);
void ri__cu_profile_destroy(cu_ctx *c);
ri_status ri__cu_profile_mark(cu_ctx *c, int k, ri__err *err);
ri_status ri__cu_profile_collect(cu_ctx *c, ri__err *err);

/* Input/output staging (cuda_staging.c). stage_in copies n bytes from the caller's src through pinned
 * memory pin to device memory dev, enqueueing the transfers. stage_out enqueues the transfer of n bytes
 * from dev to pin and remembers that they go on to dst; stage_out_finish waits for each transfer in turn,
 * copies it to its destination, and synchronizes the stream (errors name the batch). stage_out_reset
 * forgets pending outputs (at the start of a run). */
ri_status ri__cu_staging_create(cu_ctx *c, ri__err *err);
void ri__cu_staging_destroy(cu_ctx *c);
ri_status ri__cu_stage_in(cu_ctx *c, const void *src, void *pin, void *dev, size_t n, ri__err *err);
/* An integer setting from the environment: dflt when unset, malformed or outside [lo, hi]. */
long ri__cu_env_long(const char *name, long dflt, long lo, long hi);
/* The same for an input given as `count` items of `per` bytes each (ri_context_run_items). */
ri_status ri__cu_stage_in_items(cu_ctx *c, const void *const *items, int count, size_t per, void *pin,
                                void *dev, ri__err *err);
void ri__cu_stage_out_reset(cu_ctx *c);
ri_status ri__cu_stage_out(cu_ctx *c, const void *dev, void *pin, void *dst, size_t n, ri__err *err);
ri_status ri__cu_stage_out_finish(cu_ctx *c, int batch, ri__err *err);

/* CUDA graphs (cuda_graph.c). */
cudaGraphExec_t ri__cu_graph_find(cu_ctx *c, int batch);
/* Stores exec for batch (evicting the oldest entry when full); takes ownership. */
void ri__cu_graph_put(cu_ctx *c, int batch, cudaGraphExec_t exec);
void ri__cu_graph_clear(cu_ctx *c);

/* The element size of a device type. */
static inline size_t ri__cu_esize(ri_dtype dt) { return ri_dtype_size(dt); }

#endif
