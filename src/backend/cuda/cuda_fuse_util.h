/* Helpers of the fusions that give a convolution a kernel of its own doing other nodes' work too
 * (cuda_irblock.c: inverted-residual blocks; cuda_expdw.c: expansion -> depthwise): which convolutions
 * qualify, and the uploads of their weights in the fused kernels' layouts. */
#ifndef RI_BACKEND_CUDA_CUDA_FUSE_UTIL_H
#define RI_BACKEND_CUDA_CUDA_FUSE_UTIL_H

#include "backend/cuda/cuda_internal.h"
#include "graph/ops/conv_params.h"

/* 1 when value v is half NHWC of rank 4 on the device. */
int ri__cu_fuse_is_half_nhwc(const cu_state *st, int v);

/* Conv node ni when it still runs on the convolution implementation with a 2-D window: on the own
 * depthwise NHWC half kernel (dw: its implementation name is exactly "dwconv_nhwc_f16", i.e. no stored
 * variant tactic; dw 2: that or "dwconv_h2_f16", the half-arithmetic kernel of half accumulation), or as a
 * tensor-core convolution whose output the fusion pass may redirect (!dw: cu_node.fusable). Its parameters,
 * or NULL. */
const ri__conv_params *ri__cu_fuse_conv(const cu_state *st, int ni, int dw);

/* 1 when Conv node ni with parameters p is 1x1, stride 1, unpadded, group 1, with a constant float weight
 * [m, c, 1, 1] of the right size. */
int ri__cu_fuse_is_pointwise(const cu_state *st, int ni, const ri__conv_params *p);

/* The float32 bias of Conv node ni when it has one of count values, else NULL (no bias, or another size or
 * type). */
const float *ri__cu_fuse_bias(const cu_state *st, int ni, int64_t count);

/* Appends rows x cols halves to the constant blob: src[r * src_ld + c] rounded to half for r < n_rows and
 * c < n_cols, zeros elsewhere; *off gets their offset. */
ri_status ri__cu_fuse_add_half(cu_state *st, const float *src, int64_t n_rows, int64_t n_cols, int64_t src_ld,
                               int64_t rows, int64_t cols, int64_t *off, ri__err *err);

/* Appends len floats: the n of src (zeros when src is NULL), then zeros. */
ri_status ri__cu_fuse_add_float(cu_state *st, const float *src, int64_t n, int64_t len, int64_t *off,
                                ri__err *err);

/* Appends the 3x3 depthwise weights of Conv node d ([ce, 1, 3, 3] floats) tap-major as floats [9][ld]
 * holding their half-rounded values (the weights of an fp16 engine, which the fused kernels' float FMAs
 * take without a conversion per tap), zero from ce to ld. */
ri_status ri__cu_fuse_add_dw_taps(cu_state *st, int d, int64_t ce, int64_t ld, int64_t *off, ri__err *err);

/* A fused node at f that reads value in_v (and the residual res, or -1) writes value out before out's
 * producer runs: out stays in its planned block when neither input overlaps it and no node still running in
 * between (nodes skip_a and skip_b, or -1, left out: they are fused away) touches a block overlapping it;
 * otherwise out moves to the relocation area, which the memory re-plan after fusion undoes. */
ri_status ri__cu_fuse_place_output(cu_state *st, int f, int in_v, int out, int res, int skip_a, int skip_b,
                                   ri__err *err);

#endif
