#include "runinfer/status.h"
#include "runinfer/types.h"

#ifndef RI_VERSION_STRING
#define RI_VERSION_STRING "0.0.0"
#endif

const char *ri_status_str(ri_status status) {
  switch (status) {
#define RI_STATUS_CASE_(name, value, text)                                                                   \
  case name: return text;
    RI_STATUS_LIST(RI_STATUS_CASE_)
#undef RI_STATUS_CASE_
  }
  return "unknown status";
}

const char *ri_version(void) { return RI_VERSION_STRING; }

size_t ri_dtype_size(ri_dtype dtype) {
  switch (dtype) {
  case RI_DTYPE_FLOAT32:
  case RI_DTYPE_INT32:
  case RI_DTYPE_UINT32: return 4;
  case RI_DTYPE_UINT8:
  case RI_DTYPE_INT8:
  case RI_DTYPE_BOOL: return 1;
  case RI_DTYPE_UINT16:
  case RI_DTYPE_INT16:
  case RI_DTYPE_FLOAT16: return 2;
  case RI_DTYPE_INT64:
  case RI_DTYPE_FLOAT64:
  case RI_DTYPE_UINT64: return 8;
  default: return 0;
  }
}

const char *ri_dtype_name(ri_dtype dtype) {
  switch (dtype) {
  case RI_DTYPE_FLOAT32: return "float32";
  case RI_DTYPE_UINT8: return "uint8";
  case RI_DTYPE_INT8: return "int8";
  case RI_DTYPE_UINT16: return "uint16";
  case RI_DTYPE_INT16: return "int16";
  case RI_DTYPE_INT32: return "int32";
  case RI_DTYPE_INT64: return "int64";
  case RI_DTYPE_BOOL: return "bool";
  case RI_DTYPE_FLOAT16: return "float16";
  case RI_DTYPE_FLOAT64: return "float64";
  case RI_DTYPE_UINT32: return "uint32";
  case RI_DTYPE_UINT64: return "uint64";
  default: return "undefined";
  }
}
