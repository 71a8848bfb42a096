/* Devices as the engine layer sees them: how many of a kind there are, and the fingerprint an engine built
 * for one records (ri__rie_check_compat compares it when the engine is loaded). */
#include <stdio.h>
#include <string.h>

#include "engine/engine_impl.h"

ri_status ri__device_fingerprint(const ri__backend_ops *be, int index, char *buf, size_t cap, ri__err *err) {
  if (be->fingerprint) return be->fingerprint(index, buf, cap, err);
  snprintf(buf, cap, "%s", ri__rie_host_fingerprint());
  return RI_OK;
}

ri_status ri_device_count(const char *kind, int *count) {
  if (!kind || !count) return RI_ERR_INVALID_ARG;
  *count = 0;
  if (strcmp(kind, "cpu") == 0) {
    *count = 1;
    return RI_OK;
  }
  if (strcmp(kind, "cuda") == 0) {
#ifdef RI_HAVE_CUDA
    *count = ri__cuda_backend.device_count ? ri__cuda_backend.device_count() : 0;
#endif
    return RI_OK;
  }
  return RI_ERR_INVALID_ARG;
}
