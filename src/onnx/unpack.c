/* Protobuf parsing for the importer: a structural pre-scan that bounds nesting depth (protobuf-c recurses
 * once per nested message and has no depth limit of its own, so a small crafted file could exhaust the
 * stack), then protobuf-c's unpack with an allocator routed through ri__malloc. */
#include <stdint.h>

#include "core/alloc.h"
#include "onnx/import.h"
#include "onnx/internal.h"

typedef struct {
  int failed; /* an allocation returned NULL during the unpack */
} pb_alloc_state;

static void *pb_alloc(void *state, size_t size) {
  void *p = ri__malloc(size);
  if (!p && state) ((pb_alloc_state *)state)->failed = 1;
  return p;
}

static void pb_free(void *state, void *ptr) {
  (void)state;
  ri__free(ptr);
}

/* Used for freeing only: frees need no state. */
static ProtobufCAllocator g_free_allocator = {pb_alloc, pb_free, NULL};

void ri__onnx_free_message(ProtobufCMessage *msg) {
  if (msg) protobuf_c_message_free_unpacked(msg, &g_free_allocator);
}

typedef enum { SCAN_OK = 0, SCAN_MALFORMED, SCAN_TOO_DEEP } scan_result;

static int read_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *v) {
  uint64_t r = 0;
  for (int i = 0; i < 10; i++) {
    if (*pos >= n) return 0;
    uint8_t b = p[(*pos)++];
    r |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *v = r;
      return 1;
    }
  }
  return 0;
}

/* Walks the fields of one message occupying p[0, n), recursing into fields the descriptor declares as
 * messages. *bad receives the offset (relative to p) of the first malformed byte. Recursion depth is
 * bounded by RI__ONNX_MAX_DEPTH. */
static scan_result scan(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n, int depth,
                        size_t *bad) {
  if (depth > RI__ONNX_MAX_DEPTH) {
    *bad = 0;
    return SCAN_TOO_DEEP;
  }
  size_t pos = 0;
  while (pos < n) {
    size_t start = pos;
    uint64_t tag, v;
    if (!read_varint(p, n, &pos, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) {
      *bad = start;
      return SCAN_MALFORMED;
    }
    switch (tag & 7) {
    case 0: /* varint */
      if (!read_varint(p, n, &pos, &v)) {
        *bad = start;
        return SCAN_MALFORMED;
      }
      break;
    case 1: /* 64-bit */
      if (n - pos < 8) {
        *bad = start;
        return SCAN_MALFORMED;
      }
      pos += 8;
      break;
    case 5: /* 32-bit */
      if (n - pos < 4) {
        *bad = start;
        return SCAN_MALFORMED;
      }
      pos += 4;
      break;
    case 2: { /* length-delimited */
      if (!read_varint(p, n, &pos, &v) || v > n - pos) {
        *bad = start;
        return SCAN_MALFORMED;
      }
      const ProtobufCFieldDescriptor *f =
          desc ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3)) : NULL;
      if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
        size_t sub_bad = 0;
        scan_result r = scan(f->descriptor, p + pos, (size_t)v, depth + 1, &sub_bad);
        if (r != SCAN_OK) {
          *bad = pos + sub_bad;
          return r;
        }
      }
      pos += (size_t)v;
      break;
    }
    default: /* groups (3, 4) and reserved wire types */ *bad = start; return SCAN_MALFORMED;
    }
  }
  return SCAN_OK;
}

ri_status ri__onnx_unpack(const ProtobufCMessageDescriptor *desc, const void *data, size_t size,
                          const char *what, const char *kind, ProtobufCMessage **out, ri__err *err) {
  *out = NULL;
  if (!data && size) return ri__err_set(err, RI_ERR_INVALID_ARG, "%s: NULL data with size %zu", what, size);
  if (size > RI__ONNX_MAX_BYTES)
    return ri__err_set(err, RI_ERR_LIMIT, "%s: %zu bytes exceed the limit of %zu bytes for an ONNX %s", what,
                       size, RI__ONNX_MAX_BYTES, kind);
  size_t bad = 0;
  scan_result r = scan(desc, data, size, 0, &bad);
  if (r == SCAN_TOO_DEEP)
    return ri__err_set(err, RI_ERR_LIMIT,
                       "%s: not a valid ONNX %s (messages nested deeper than %d levels at byte %zu)", what,
                       kind, RI__ONNX_MAX_DEPTH, bad);
  if (r == SCAN_MALFORMED)
    return ri__err_set(err, RI_ERR_PARSE,
                       "%s: not a valid ONNX %s (protobuf parse failed: malformed or truncated field at "
                       "byte %zu of %zu)",
                       what, kind, bad, size);
  pb_alloc_state state = {0};
  ProtobufCAllocator allocator = {pb_alloc, pb_free, &state};
  ProtobufCMessage *msg = protobuf_c_message_unpack(desc, &allocator, size, data);
  if (!msg) {
    if (state.failed) return RI__OOM(err);
    return ri__err_set(err, RI_ERR_PARSE, "%s: not a valid ONNX %s (protobuf parse failed)", what, kind);
  }
  *out = msg;
  return RI_OK;
}
