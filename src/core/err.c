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
  snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
  return err->status;
}

void ri__err_clear(ri__err *err) {
  if (!err) return;
  err->status = RI_OK;
  err->msg[0] = 0;
}
