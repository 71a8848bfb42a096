/* XNNPACK process-wide initialization and error reporting. XNNPACK's own allocations go through the
 * library's allocator hook (ri__malloc and friends), so allocation-failure tests reach them too. */
#include <pthread.h>

#include "backend/cpu/xnn/xnn_internal.h"
#include "core/alloc.h"
#include "graph/op.h"

static void *xa_alloc(void *ctx, size_t size) { return ri__malloc(size ? size : 1); }
static void *xa_realloc(void *ctx, void *p, size_t size) { return ri__realloc(p, size ? size : 1); }
static void xa_free(void *ctx, void *p) { ri__free(p); }
/* ri__aligned_alloc gives 64-byte alignment; XNNPACK asks for at most XNN_ALLOCATION_ALIGNMENT (<= 64). */
static void *xa_aligned_alloc(void *ctx, size_t alignment, size_t size) {
  if (alignment > 64) return NULL;
  return ri__aligned_alloc(size ? size : 1);
}
static void xa_aligned_free(void *ctx, void *p) { ri__aligned_free(p); }

static const struct xnn_allocator g_alloc = {
    .context = NULL,
    .allocate = xa_alloc,
    .reallocate = xa_realloc,
    .deallocate = xa_free,
    .aligned_allocate = xa_aligned_alloc,
    .aligned_deallocate = xa_aligned_free,
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static enum xnn_status g_init_status = xnn_status_uninitialized;

static void init_once(void) { g_init_status = xnn_initialize(&g_alloc); }

ri_status ri__xnn_init(ri__err *err) {
  pthread_once(&g_once, init_once);
  if (g_init_status == xnn_status_success) return RI_OK;
  return ri__err_set(err,
                     g_init_status == xnn_status_unsupported_hardware ? RI_ERR_UNSUPPORTED : RI_ERR_INTERNAL,
                     "XNNPACK initialization failed: %s", ri__xnn_status_name(g_init_status));
}

const char *ri__xnn_status_name(enum xnn_status s) {
  switch (s) {
  case xnn_status_success: return "xnn_status_success";
  case xnn_status_uninitialized: return "xnn_status_uninitialized";
  case xnn_status_invalid_parameter: return "xnn_status_invalid_parameter";
  case xnn_status_invalid_state: return "xnn_status_invalid_state";
  case xnn_status_unsupported_parameter: return "xnn_status_unsupported_parameter";
  case xnn_status_unsupported_hardware: return "xnn_status_unsupported_hardware";
  case xnn_status_out_of_memory: return "xnn_status_out_of_memory";
  }
  return "xnn_status_unknown";
}

ri_status ri__xnn_fail(const ri__node *n, const char *what, enum xnn_status s, ri__err *err) {
  return ri__err_set(err, s == xnn_status_out_of_memory ? RI_ERR_NO_MEMORY : RI_ERR_INTERNAL,
                     "node '%s' (%s): XNNPACK %s failed: %s (%d)", n->name ? n->name : "?",
                     ri__op_name(n->op), what, ri__xnn_status_name(s), (int)s);
}
