/* The operators runinfer supports, as an X-macro: X(OnnxName). Adding an op means adding it here, giving it
 * an op definition `const ri__op_def ri__opdef_<Name>` (src/graph/ops/) and a CPU reference kernel
 * `ri__ref_<Name>` (src/backend/cpu/ref/). Order is irrelevant; enum values are not stored in files (the
 * engine file stores op names). */
#ifndef RI_GRAPH_OP_LIST_H
#define RI_GRAPH_OP_LIST_H

#define RI__OP_LIST(X)                                                                                       \
  /* convolution / pooling / dense family */                                                                 \
  X(Conv)                                                                                                    \
  X(BatchNormalization)                                                                                      \
  X(MaxPool)                                                                                                 \
  X(AveragePool)                                                                                             \
  X(GlobalAveragePool)                                                                                       \
  X(Gemm)                                                                                                    \
  X(MatMul)                                                                                                  \
  X(Softmax)                                                                                                 \
  X(Resize)                                                                                                  \
  X(Pad)                                                                                                     \
  /* elementwise */                                                                                          \
  X(Relu)                                                                                                    \
  X(Clip)                                                                                                    \
  X(LeakyRelu)                                                                                               \
  X(HardSigmoid)                                                                                             \
  X(HardSwish)                                                                                               \
  X(Sigmoid)                                                                                                 \
  X(Exp)                                                                                                     \
  X(Add)                                                                                                     \
  X(Sub)                                                                                                     \
  X(Mul)                                                                                                     \
  X(Div)                                                                                                     \
  X(QuantizeLinear)                                                                                          \
  X(DequantizeLinear)                                                                                        \
  /* integer Q/DQ groups made by the qdq_to_qlinear pass (src/graph/ops/qlinear.c) */                        \
  X(QLinearConv)                                                                                             \
  X(QLinearAdd)                                                                                              \
  X(Cast)                                                                                                    \
  /* data movement and shapes */                                                                             \
  X(Concat)                                                                                                  \
  X(Reshape)                                                                                                 \
  X(Transpose)                                                                                               \
  X(Flatten)                                                                                                 \
  X(Squeeze)                                                                                                 \
  X(Unsqueeze)                                                                                               \
  X(Slice)                                                                                                   \
  X(Gather)                                                                                                  \
  X(Shape)                                                                                                   \
  X(Constant)                                                                                                \
  X(Identity)                                                                                                \
  X(Tile)                                                                                                    \
  /* detection post-processing (src/graph/ops/nms.c) */                                                      \
  X(NonMaxSuppression)                                                                                       \
  X(EfficientNMS_TRT)

#endif
