#include "pipeline/record.h"

#include "core/alloc.h"

void ri__record_free(ri__record *r) {
  if (!r) return;
  ri__free(r->key);
  ri__aligned_free(r->input);
  ri_image_free(r->image);
  ri__free(r->dets);
  ri__free(r->top);
  ri__free(r->error);
  ri__free(r);
}

void ri__record_fail(ri__record *r, const char *stage, const char *msg) {
  if (r->stage) return;
  r->stage = stage;
  r->error = ri__strdup(msg ? msg : "unknown error");
}
