/* CUDA backend helpers: error messages, the constant blob, layout strides and copy walks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "core/half.h"
#include "graph/op.h"

/* "cudaMemcpyAsync(a, b)" -> "cudaMemcpyAsync" into buf. */
static const char *call_name(const char *call, char *buf, size_t len) {
  size_t i = 0;
  while (call && call[i] && call[i] != '(' && i + 1 < len) {
    buf[i] = call[i];
    i++;
  }
  buf[i] = 0;
  return buf;
}

static ri_status fail(ri__err *err, ri_status status, const char *call, const char *text, long code,
                      const cu_state *st, int ni, const char *what) {
  char name[96];
  call_name(call, name, sizeof name);
  const char *dev = st ? st->dev_name : "cuda";
  if (st && ni >= 0 && ni < st->g->n_nodes) {
    const ri__node *n = &st->g->nodes[ni];
    return ri__err_set(err, status, "%s failed: %s (%ld) in node '%s' (%s) on %s", name, text, code,
                       n->name ? n->name : "?", ri__op_name(n->op), dev);
  }
  return ri__err_set(err, status, "%s failed: %s (%ld) while %s on %s", name, text, code,
                     what ? what : "running", dev);
}

/* An allocation failure of the runtime is not sticky, but it stays the runtime's "last error" until read;
 * the kernel launch checks (ri_cu_launched) read that, so it is consumed here, where it is reported. */
static ri_status oom_status(void) {
  (void)cudaGetLastError();
  return RI_ERR_NO_MEMORY;
}

ri_status ri__cu_fail_rt(ri__err *err, cudaError_t e, const char *call, const cu_state *st, int ni,
                         const char *what) {
  char text[200];
  snprintf(text, sizeof text, "%s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
  ri_status status = e == cudaErrorMemoryAllocation ? oom_status() : RI_ERR_DEVICE;
  return fail(err, status, call, text, (long)e, st, ni, what);
}

ri_status ri__cu_fail_alloc(ri__err *err, cudaError_t e, const char *call, const cu_state *st, int64_t bytes,
                            const char *what) {
  char buf[240];
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
    snprintf(buf, sizeof buf, "allocating %lld bytes for %s (%lld MiB of %lld MiB free)", (long long)bytes,
             what, (long long)(free_b >> 20), (long long)(total_b >> 20));
  else
    snprintf(buf, sizeof buf, "allocating %lld bytes for %s", (long long)bytes, what);
  return ri__cu_fail_rt(err, e, call, st, -1, buf);
}

ri_status ri__cu_low_memory(ri__err *err, ri_status status, const cu_state *st) {
  size_t free_b = 0, total_b = 0;
  if (status != RI_ERR_DEVICE || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return status;
  (void)cudaGetLastError();
  if (free_b >= CU_LOW_MEMORY) return status;
  if (err) err->status = RI_ERR_NO_MEMORY;
  ri__err_prefix(err, "out of device memory on %s (%lld MiB of %lld MiB free)", st ? st->dev_name : "cuda",
                 (long long)(free_b >> 20), (long long)(total_b >> 20));
  return RI_ERR_NO_MEMORY;
}

ri_status ri__cu_fail_dnn(ri__err *err, cudnnStatus_t e, const char *call, const cu_state *st, int ni,
                          const char *what) {
  ri_status status = e == CUDNN_STATUS_ALLOC_FAILED ? oom_status() : RI_ERR_DEVICE;
  return fail(err, status, call, cudnnGetErrorString(e), (long)e, st, ni, what);
}

static const char *lt_text(cublasStatus_t e) {
  switch (e) {
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  default: return "cuBLAS error";
  }
}

ri_status ri__cu_fail_lt(ri__err *err, cublasStatus_t e, const char *call, const cu_state *st, int ni,
                         const char *what) {
  ri_status status = e == CUBLAS_STATUS_ALLOC_FAILED ? oom_status() : RI_ERR_DEVICE;
  return fail(err, status, call, lt_text(e), (long)e, st, ni, what);
}

ri_status ri__cu_unsupported(ri__err *err, const cu_state *st, int ni, const char *fmt, ...) {
  char reason[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  const ri__node *n = &st->g->nodes[ni];
  return ri__err_set(err, RI_ERR_UNSUPPORTED, "node '%s' (op %s): %s on %s", n->name ? n->name : "?",
                     ri__op_name(n->op), reason, st->dev_name);
}

ri_status ri__cu_blob_add(cu_state *st, const void *data, size_t n, int64_t *off, ri__err *err) {
  size_t start = (st->blob_len + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN, end;
  if (!ri__add_size(start, n, &end))
    return ri__err_set(err, RI_ERR_LIMIT, "constant data exceeds the address space");
  if (end > st->blob_cap) {
    size_t cap = st->blob_cap ? st->blob_cap : 1 << 16;
    while (cap < end) {
      if (cap > SIZE_MAX / 2) return RI__OOM(err);
      cap *= 2;
    }
    unsigned char *p = ri__realloc(st->blob, cap);
    if (!p)
      return ri__err_set(err, RI_ERR_NO_MEMORY, "cannot grow the constant staging buffer to %zu bytes", cap);
    st->blob = p;
    st->blob_cap = cap;
  }
  memset(st->blob + st->blob_len, 0, start - st->blob_len);
  if (data)
    memcpy(st->blob + start, data, n);
  else
    memset(st->blob + start, 0, n);
  st->blob_len = end;
  *off = (int64_t)start;
  return RI_OK;
}

void ri__cu_use_input(cu_state *st, int ni, int k) {
  int v = ri__cu_in(st, ni, k);
  if (v >= 0) st->dev_use[v] = 1;
}

ri_status ri__cu_want(cu_state *st, int ni, int k, int want, ri__err *err) {
  cu_node *cn = &st->nodes[ni];
  const ri__node *n = &st->g->nodes[ni];
  if (k < 0 || k >= n->n_inputs) return RI_OK;
  if (!cn->want) {
    cn->want = ri__calloc((size_t)n->n_inputs, 1);
    if (!cn->want) return RI__OOM(err);
  }
  cn->want[k] = (unsigned char)want;
  return RI_OK;
}

void *ri__cu_const_as(const ri__value *v, ri_dtype dt, size_t *nbytes) {
  if (v->dtype != RI_DTYPE_FLOAT32 || dt == RI_DTYPE_FLOAT32) {
    void *p = ri__malloc(v->nbytes ? v->nbytes : 1);
    if (p && v->nbytes) memcpy(p, v->data, v->nbytes);
    *nbytes = v->nbytes;
    return p;
  }
  size_t count = v->nbytes / sizeof(float);
  uint16_t *h = ri__malloc(count ? count * sizeof(uint16_t) : 1);
  if (!h) return NULL;
  const float *f = v->data;
  for (size_t i = 0; i < count; i++)
    h[i] = ri__float_to_half(f[i]);
  *nbytes = count * sizeof(uint16_t);
  return h;
}

void *ri__cu_const_ptr(const cu_state *st, int64_t off) { return (char *)st->dconst + off; }

int ri__cu_in(const cu_state *st, int ni, int k) {
  const ri__node *n = &st->g->nodes[ni];
  return k >= 0 && k < n->n_inputs ? n->inputs[k] : -1;
}

int ri__cu_in_const(const cu_state *st, int ni, int k) {
  int v = ri__cu_in(st, ni, k);
  return v >= 0 && st->g->values[v].kind == RI__VAL_CONST;
}

void ri__cu_strides(const ri__shape *s, int layout, int64_t st[RI__MAX_RANK]) {
  for (int i = 0; i < RI__MAX_RANK; i++)
    st[i] = 0;
  if (layout == CU_LAYOUT_NHWC && s->rank == 4) {
    int64_t c = s->dims[1], h = s->dims[2], w = s->dims[3];
    st[1] = 1;
    st[3] = c;
    st[2] = w * c;
    st[0] = h * w * c;
    return;
  }
  int64_t acc = 1;
  for (int i = s->rank - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s->dims[i];
  }
}

void ri__cu_storage_order(int rank, int layout, int order[RI__MAX_RANK]) {
  if (layout == CU_LAYOUT_NHWC && rank == 4) {
    order[0] = 0, order[1] = 2, order[2] = 3, order[3] = 1;
    return;
  }
  for (int i = 0; i < rank; i++)
    order[i] = i;
}

void ri__cu_walk_simplify(ri__cu_walk *w, int nt) {
  int r = 0;
  for (int d = 0; d < w->rank; d++) {
    if (w->dims[d] == 1) continue;
    w->dims[r] = w->dims[d];
    for (int t = 0; t < nt; t++)
      w->st[t][r] = w->st[t][d];
    r++;
  }
  w->rank = r;
  if (r == 0) return;
  int out = 0;
  for (int d = 1; d < w->rank; d++) {
    int merge = 1;
    for (int t = 0; t < nt; t++)
      if (w->st[t][out] != w->st[t][d] * w->dims[d]) merge = 0;
    if (merge) {
      w->dims[out] *= w->dims[d];
      for (int t = 0; t < nt; t++)
        w->st[t][out] = w->st[t][d];
    } else {
      out++;
      w->dims[out] = w->dims[d];
      for (int t = 0; t < nt; t++)
        w->st[t][out] = w->st[t][d];
    }
  }
  w->rank = out + 1;
}

void ri__cu_copy_walk(const ri__shape *s, const int64_t src_st[RI__MAX_RANK],
                      const int64_t dst_st[RI__MAX_RANK], int dst_layout, ri__cu_walk *w) {
  int order[RI__MAX_RANK];
  ri__cu_storage_order(s->rank, dst_layout, order);
  memset(w, 0, sizeof *w);
  w->rank = s->rank;
  for (int j = 0; j < s->rank; j++) {
    int ax = order[j];
    w->dims[j] = s->dims[ax];
    w->st[0][j] = dst_st[ax];
    w->st[1][j] = src_st[ax];
  }
  ri__cu_walk_simplify(w, 2);
}

ri_status ri__cu_convert(cu_ctx *c, int ni, const ri__shape *s, const void *src, ri_dtype sdt, int sl,
                         void *dst, ri_dtype ddt, int dl, ri__err *err) {
  const cu_state *st = c->st;
  int64_t n = ri__shape_numel(s);
  if (n <= 0) return RI_OK;
  if (s->rank != 4) sl = dl = CU_LAYOUT_ROW;
  if (sdt == ddt && sl == dl) {
    if (src != dst)
      CU_RT(cudaMemcpyAsync(dst, src, (size_t)n * ri__cu_esize(sdt), cudaMemcpyDeviceToDevice, c->stream));
    return RI_OK;
  }
  int64_t ss[RI__MAX_RANK], ds[RI__MAX_RANK];
  ri__cu_strides(s, sl, ss);
  ri__cu_strides(s, dl, ds);
  ri__cu_walk w;
  ri__cu_copy_walk(s, ss, ds, dl, &w);
  CU_RT(ri__cu_copy(c->stream, &w, src, sdt, dst, ddt));
  return RI_OK;
}

long ri__cu_env_long(const char *name, long dflt, long lo, long hi) {
  const char *env = getenv(name);
  if (!env || !*env) return dflt;
  char *end;
  long v = strtol(env, &end, 10);
  return !*end && v >= lo && v <= hi ? v : dflt;
}
