/* The CUDA implementation of each op. An op listed in graph/op_list.h but absent here makes prepare fail
 * with "node 'X' (op Y) has no CUDA kernel yet". */
#include "backend/cuda/cuda_internal.h"

const cu_op_impl *ri__cu_op_impl(ri__op op) {
  switch (op) {
  case RI__OP_Conv: return ri__cu_impl_conv();
  case RI__OP_BatchNormalization: return ri__cu_impl_batchnorm();
  case RI__OP_MaxPool:
  case RI__OP_AveragePool: return ri__cu_impl_pool();
  case RI__OP_GlobalAveragePool: return ri__cu_impl_gap();
  case RI__OP_Gemm: return ri__cu_impl_gemm();
  case RI__OP_MatMul: return ri__cu_impl_matmul();
  case RI__OP_Softmax: return ri__cu_impl_softmax();
  case RI__OP_Resize: return ri__cu_impl_resize();
  case RI__OP_Pad: return ri__cu_impl_pad();
  case RI__OP_Relu:
  case RI__OP_Clip:
  case RI__OP_LeakyRelu:
  case RI__OP_HardSigmoid:
  case RI__OP_HardSwish:
  case RI__OP_Sigmoid:
  case RI__OP_Exp: return ri__cu_impl_unary();
  case RI__OP_Add:
  case RI__OP_Sub:
  case RI__OP_Mul:
  case RI__OP_Div: return ri__cu_impl_binary();
  case RI__OP_QuantizeLinear:
  case RI__OP_DequantizeLinear: return ri__cu_impl_qdq();
  case RI__OP_Cast: return ri__cu_impl_cast();
  case RI__OP_Concat: return ri__cu_impl_concat();
  case RI__OP_Reshape:
  case RI__OP_Flatten:
  case RI__OP_Squeeze:
  case RI__OP_Unsqueeze:
  case RI__OP_Identity: return ri__cu_impl_reshape();
  case RI__OP_Transpose: return ri__cu_impl_transpose();
  case RI__OP_Slice: return ri__cu_impl_slice();
  case RI__OP_Gather: return ri__cu_impl_gather();
  case RI__OP_Shape: return ri__cu_impl_shape();
  case RI__OP_Constant: return ri__cu_impl_constant();
  case RI__OP_Tile: return ri__cu_impl_tile();
  default: return NULL;
  }
}
