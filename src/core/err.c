#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ri_status ri__err_set(ri__err *err, ri_status status, const char *fmt, ...) {
  if (!err) return status;
  err->status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return status;
}

ri_status ri__err_prefix(ri__err *err, const char *fmt, ...) {
  if (!err) return RI_ERR_INTERNAL;
  char prefix[RI__ERR_MSG_MAX];
  char old[RI__ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  size_t pl = strlen(prefix), cap = sizeof err->msg - 1;
  if (pl > cap) pl = cap;
  memcpy(err->msg, prefix, pl);
  size_t off = pl;
  for (const char *s = ": "; *s && off < cap; s++)
    err->msg[off++] = *s;
  for (const char *s = old; *s && off < cap; s++)
    err->msg[off++] = *s;
  err->msg[off] = 0;
  return err->status;
}

void ri__err_clear(ri__err *err) {
  if (!err) return;
  err->status = RI_OK;
  err->msg[0] = 0;
}
