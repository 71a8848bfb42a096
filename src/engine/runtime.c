/* ri_runtime_t: loading engine files. */
#include <string.h>

#include "core/alloc.h"
#include "engine/engine_impl.h"

ri_status ri_runtime_create(ri_runtime_t **out) {
  if (!out) return RI_ERR_INVALID_ARG;
  *out = ri__calloc(1, sizeof **out);
  return *out ? RI_OK : RI_ERR_NO_MEMORY;
}

void ri_runtime_destroy(ri_runtime_t *rt) { ri__free(rt); }

const char *ri_runtime_last_error(const ri_runtime_t *rt) { return rt ? rt->err.msg : ""; }

ri_status ri_runtime_set_threads(ri_runtime_t *rt, int threads) {
  if (!rt) return RI_ERR_INVALID_ARG;
  ri__err_clear(&rt->err);
  if (threads < 0 || threads > 1024)
    return ri__err_set(&rt->err, RI_ERR_INVALID_ARG, "thread count %d is outside 0..1024", threads);
  rt->threads = threads;
  return RI_OK;
}

static ri_status finish(ri_runtime_t *rt, ri__rie_content *c, const char *source, ri_engine_t **out) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  ri_status s = RI_OK; /* fuzzing: let inputs past the device check to reach engine creation */
#else
  ri_status s = ri__rie_check_compat(c, ri__rie_host_fingerprint(), &rt->err);
#endif
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
