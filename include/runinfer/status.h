/* runinfer: status codes shared by every call of the library.
 *
 * Every fallible function returns an ri_status. RI_OK is zero; every other value is an error whose
 * detailed text (what failed, which node/input/file, the rule and the values) is kept by the handle the
 * call was made on (see the *_last_error functions of each header). Codes are never renumbered. */
#ifndef RUNINFER_STATUS_H
#define RUNINFER_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RI_MUST_USE __attribute__((warn_unused_result))
#define RI_API      __attribute__((visibility("default")))
#else
#define RI_MUST_USE
#define RI_API
#endif

/* X(name, value, description) */
#define RI_STATUS_LIST(X)                                                                                    \
  X(RI_OK, 0, "ok")                                                                                          \
  X(RI_ERR_INVALID_ARG, 1, "invalid argument")                                                               \
  X(RI_ERR_NO_MEMORY, 2, "out of memory")                                                                    \
  X(RI_ERR_IO, 3, "I/O error")                                                                               \
  X(RI_ERR_PARSE, 4, "malformed input")                                                                      \
  X(RI_ERR_UNSUPPORTED, 5, "unsupported feature")                                                            \
  X(RI_ERR_LIMIT, 6, "limit exceeded")                                                                       \
  X(RI_ERR_SHAPE, 7, "shape or type mismatch")                                                               \
  X(RI_ERR_STALE, 8, "engine built for another device or library version")                                   \
  X(RI_ERR_CHECKSUM, 9, "checksum mismatch")                                                                 \
  X(RI_ERR_DEVICE, 10, "device error")                                                                       \
  X(RI_ERR_NOT_FOUND, 11, "not found")                                                                       \
  X(RI_ERR_INTERNAL, 12, "internal error")

typedef enum {
#define RI_STATUS_ENUM_(name, value, text) name = value,
  RI_STATUS_LIST(RI_STATUS_ENUM_)
#undef RI_STATUS_ENUM_
} ri_status;

/* Returns a static, never-NULL description of a status code ("unknown status" for values outside the list).
 */
RI_API const char *ri_status_str(ri_status status);

/* Returns the library version as "MAJOR.MINOR.PATCH" (static string). */
RI_API const char *ri_version(void);

#ifdef __cplusplus
}
#endif
#endif
