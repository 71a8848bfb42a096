/* CPU kernel interface. A kernel computes one node: outputs are preallocated (out[i].data points to
 * numel * dtype-size bytes with out[i].shape set); inputs are dense row-major. Kernels must apply n->act to
 * their output when the op supports fused activations (Conv, Gemm, MatMul, Add, Sub, Mul, Div), must not
 * keep pointers after returning, and report errors through x->err naming the node. */
#ifndef RI_BACKEND_CPU_KERNEL_H
#define RI_BACKEND_CPU_KERNEL_H

#include "core/pool.h"
#include "graph/ir.h"

typedef struct ri__exec {
  ri__pool *pool; /* may be NULL (single thread) */
  ri__err *err;
  /* Scratch memory of at least scratch_size bytes, 64-byte aligned, shared by all kernels of a run. A
   * kernel needing more allocates its own with ri__malloc and frees it before returning. */
  void *scratch;
  size_t scratch_size;
  int node_index;         /* index of the node being run in the graph */
  const void *fast_state; /* fast-path per-engine state (cpu_fast.h), NULL for reference runs */
  void *fast_ctx;         /* fast-path per-context state, NULL for reference runs */
  /* The whole run, for fast kernels that execute several nodes at once (cpu_fast.h); NULL/0 elsewhere. */
  const ri__tensor *vals; /* per graph value: dtype and shape of this run, data of constants/host values */
  void *arena;            /* activation arena: value v lives at arena + g->values[v].mem_offset */
  int batch;              /* batch size of this run */
} ri__exec;

typedef ri_status (*ri__kernel_fn)(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x);

/* Plain-C reference kernels: the oracle for every other backend. Straightforward loops, float32 math
 * (float64 where an op is defined on it), exact ONNX semantics. */
#define RI__REF_DECL_(name)                                                                                  \
  ri_status ri__ref_##name(const ri__node *n, const ri__tensor *in, ri__tensor *out, ri__exec *x);
RI__OP_LIST(RI__REF_DECL_)
#undef RI__REF_DECL_

/* Reference kernel for an op (never NULL for op < RI__OP_COUNT). */
ri__kernel_fn ri__ref_kernel(ri__op op);

#endif
