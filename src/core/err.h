/* Internal error record: a status and a message with context. Internal functions take a ri__err* and fill
 * it when they fail; the public layer copies the text into the handle the user called. */
#ifndef RI_CORE_ERR_H
#define RI_CORE_ERR_H

#include "runinfer/status.h"

#define RI__ERR_MSG_MAX 1024

typedef struct ri__err {
  ri_status status;
  char msg[RI__ERR_MSG_MAX];
} ri__err;

/* Record an error (printf-style) and return its status. A NULL err is allowed (the text is dropped). */
ri_status ri__err_set(ri__err *err, ri_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the existing message with more context ("while building 'model.onnx': ..."). Returns the status. */
ri_status ri__err_prefix(ri__err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ri__err_clear(ri__err *err);

#define RI__TRY(expr)                                                                                        \
  do {                                                                                                       \
    ri_status ri__try_s_ = (expr);                                                                           \
    if (ri__try_s_ != RI_OK) return ri__try_s_;                                                              \
  } while (0)

#define RI__OOM(err) ri__err_set((err), RI_ERR_NO_MEMORY, "out of memory at %s:%d", __FILE__, __LINE__)

#endif
