/* runinfer: element types and tensor descriptions used by the public API. */
#ifndef RUNINFER_TYPES_H
#define RUNINFER_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "runinfer/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types. The numbers are ONNX's TensorProto.DataType codes so that model files map directly. */
typedef enum {
  RI_DTYPE_UNDEFINED = 0,
  RI_DTYPE_FLOAT32 = 1,
  RI_DTYPE_UINT8 = 2,
  RI_DTYPE_INT8 = 3,
  RI_DTYPE_UINT16 = 4,
  RI_DTYPE_INT16 = 5,
  RI_DTYPE_INT32 = 6,
  RI_DTYPE_INT64 = 7,
  RI_DTYPE_BOOL = 9,
  RI_DTYPE_FLOAT16 = 10,
  RI_DTYPE_FLOAT64 = 11,
  RI_DTYPE_UINT32 = 12,
  RI_DTYPE_UINT64 = 13
} ri_dtype;

/* Size in bytes of one element, or 0 for RI_DTYPE_UNDEFINED and codes runinfer does not support. */
RI_API size_t ri_dtype_size(ri_dtype dtype);

/* Lower-case name ("float32", "uint8", ...), or "undefined" for unsupported codes. Static string. */
RI_API const char *ri_dtype_name(ri_dtype dtype);

/* Precision an engine is built for. */
typedef enum { RI_PRECISION_FP32 = 0, RI_PRECISION_FP16 = 1, RI_PRECISION_INT8 = 2 } ri_precision;

#define RI_MAX_RANK 8

/* Description of one engine input or output. The batch axis (axis 0) is reported as -1 in dims when the
 * engine accepts any batch size from 1 to its maximum; other dims are fixed. name points into the
 * engine and lives as long as the engine. */
typedef struct {
  const char *name;
  ri_dtype dtype;
  int rank;
  int64_t dims[RI_MAX_RANK];
} ri_tensor_info;

#ifdef __cplusplus
}
#endif
#endif
