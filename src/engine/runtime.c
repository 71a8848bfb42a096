/* ri_runtime_t: loading engine files. */
#include <string.h>

#include "core/alloc.h"
#include "engine/engine_impl.h"

ri_status ri_runtime_create(ri_runtime_t **out) {
  if (!out) return RI_ERR_INVALID_ARG;
  *out = ri__calloc(1, sizeof **out);
  return *out ? RI_OK : RI_ERR_NO_MEMORY;
}

void ri_runtime_destroy(ri_runtime_t *rt) {
  if (!rt) return;
  ri__free(rt->device);
  ri__free(rt);
}

const char *ri_runtime_last_error(const ri_runtime_t *rt) { return rt ? rt->err.msg : ""; }

ri_status ri_runtime_set_threads(ri_runtime_t *rt, int threads) {
  if (!rt) return RI_ERR_INVALID_ARG;
  ri__err_clear(&rt->err);
  if (threads < 0 || threads > 1024)
    return ri__err_set(&rt->err, RI_ERR_INVALID_ARG, "thread count %d is outside 0..1024", threads);
  rt->threads = threads;
  return RI_OK;
}

ri_status ri_runtime_set_device(ri_runtime_t *rt, const char *device) {
  if (!rt) return RI_ERR_INVALID_ARG;
  ri__err_clear(&rt->err);
  char *d = NULL;
  if (device) {
    const ri__backend_ops *be;
    int index;
    RI__TRY(ri__parse_device(device, &be, &index, &rt->err));
    if (!(d = ri__strdup(device))) return RI__OOM(&rt->err);
  }
  ri__free(rt->device);
  rt->device = d;
  return RI_OK;
}

/* Moves engine content c onto the runtime's device, when one is set: it must be of the same kind as the
 * device the engine was built for (a CUDA engine goes to another GPU, never to the CPU). */
static ri_status retarget(ri_runtime_t *rt, ri__rie_content *c) {
  if (!rt->device) return RI_OK;
  const ri__backend_ops *want, *built;
  int wi, bi;
  RI__TRY(ri__parse_device(rt->device, &want, &wi, &rt->err));
  RI__TRY(ri__parse_device(c->device ? c->device : "cpu", &built, &bi, &rt->err));
  if (want != built)
    return ri__err_set(&rt->err, RI_ERR_INVALID_ARG,
                       "engine was built for device '%s' and cannot be loaded onto '%s' (another kind of "
                       "device: rebuild it from the ONNX model for that device)",
                       c->device ? c->device : "cpu", rt->device);
  char *d = ri__strdup(rt->device);
  if (!d) return RI__OOM(&rt->err);
  ri__free(c->device);
  c->device = d;
  return RI_OK;
}

/* Whether the engine may run on the device it names (after retarget): same library version and the
 * fingerprint of that device. */
static ri_status check_compat(ri_runtime_t *rt, const ri__rie_content *c) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  (void)rt;
  (void)c;
  return RI_OK; /* fuzzing: let inputs past the device check to reach engine creation */
#else
  const ri__backend_ops *be;
  int index;
  char fp[RI__RIE_MAX_SHORT_STRING];
  ri__err derr;
  ri__err_clear(&derr);
  ri_status s = ri__parse_device(c->device ? c->device : "cpu", &be, &index, &derr);
  if (s == RI_OK) s = ri__device_fingerprint(be, index, fp, sizeof fp, &derr);
  if (s != RI_OK) {
    /* an engine from another library version is stale whatever its device says */
    if (!c->library_version || strcmp(c->library_version, ri_version()) != 0)
      return ri__rie_check_compat(c, "", &rt->err);
    return ri__err_set(&rt->err, s, "%s", derr.msg);
  }
  return ri__rie_check_compat(c, fp, &rt->err);
#endif
}

static ri_status finish(ri_runtime_t *rt, ri__rie_content *c, const char *source, ri_engine_t **out) {
  ri_status s = retarget(rt, c);
  if (s == RI_OK) s = check_compat(rt, c);
  if (s != RI_OK) {
    ri__rie_content_free(c);
    return ri__err_prefix(&rt->err, "engine '%s'", source);
  }
  s = ri__engine_create(c, rt->threads, 1, out, &rt->err);
  if (s != RI_OK) return ri__err_prefix(&rt->err, "engine '%s'", source);
  return RI_OK;
}

ri_status ri_runtime_load(ri_runtime_t *rt, const char *path, ri_engine_t **out) {
  if (!rt || !path || !out) return RI_ERR_INVALID_ARG;
  ri__err_clear(&rt->err);
  *out = NULL;
  ri__rie_content c;
  memset(&c, 0, sizeof c);
  RI__TRY(ri__rie_read_file(path, &c, &rt->err));
  return finish(rt, &c, path, out);
}

ri_status ri_runtime_load_memory(ri_runtime_t *rt, const void *data, size_t size, ri_engine_t **out) {
  if (!rt || !data || !out) return RI_ERR_INVALID_ARG;
  ri__err_clear(&rt->err);
  *out = NULL;
  ri__rie_content c;
  memset(&c, 0, sizeof c);
  RI__TRY(ri__rie_read(data, size, &c, &rt->err));
  return finish(rt, &c, "<memory>", out);
}
