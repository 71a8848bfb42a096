/* Resolved parameters of BatchNormalization in inference mode (ONNX opsets 11..21).
 *
 * Inputs X [N, C, ...] (rank >= 2), scale, B, input_mean, input_var, each [C]; one output
 * Y = (X - mean) / sqrt(var + epsilon) * scale + B, channel on axis 1. Training mode (training_mode = 1, or
 * the running-statistics outputs) is rejected by check(). */
#ifndef RI_GRAPH_OPS_BATCHNORM_PARAMS_H
#define RI_GRAPH_OPS_BATCHNORM_PARAMS_H

typedef struct {
  float epsilon; /* > 0 not enforced: ONNX allows any value; the default is 1e-5 */
} ri__batchnorm_params;

#endif
