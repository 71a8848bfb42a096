/* C interface of the CUDA backend's own kernels (src/backend/cuda/k_*.cu, one op family per file).
 *
 * Every launcher enqueues its work on `stream` and returns the launch status (cudaSuccess, or the error of
 * the launch); it never synchronizes, allocates or frees, so that every launcher can be captured into a
 * CUDA graph. A launcher given zero elements enqueues nothing and returns cudaSuccess. Pointers are device
 * pointers. Element types: F32 = float, F16 = IEEE half stored as 16 bits; "float types" means F32 or F16,
 * and math on F16 is done in float. Activation codes are the values of ri__act (graph/ir.h): 0 none,
 * 1 relu, 2 clip(a, b), 3 leaky relu(a), 4 sigmoid, 5 hard sigmoid(a, b), 6 hard swish. */
#ifndef RI_BACKEND_CUDA_KERNELS_H
#define RI_BACKEND_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "runinfer/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RI__CU_MAX_DIMS 12

/* An index space of `rank` dims walked in row-major order, and the element strides of up to three
 * tensors along each dim: st[0] is the destination, st[1] and st[2] the sources. A stride of 0 repeats
 * (broadcasts) an element. rank 0 is a single element. */
typedef struct {
  int rank;
  int64_t dims[RI__CU_MAX_DIMS];
  int64_t st[3][RI__CU_MAX_DIMS];
} ri__cu_walk;

/* 1 when the kernels converted to programmatic dependent launch (ri_cu_launch, cu_common.cuh) launch with
 * the attribute on the current device: RI_CUDA_PDL=1 (read once; default 0), compute capability 9.0 or
 * more, and kernels built for sm_90 or later (cuda_pdl.cu). Never fails: any doubt gives 0. */
int ri__cu_pdl_on(void);

/* Unary op codes beyond the activations. */
#define RI__CU_UNARY_EXP 100

/* y[i] = f(x[i]) for i < n, float types, y may equal x. op: an activation code or RI__CU_UNARY_EXP. */
cudaError_t ri__cu_unary(cudaStream_t s, ri_dtype dt, const void *x, void *y, int64_t n, int op, float a,
                         float b);

/* Binary ops: 0 add, 1 sub, 2 mul, 3 div. */
#define RI__CU_ADD 0
#define RI__CU_SUB 1
#define RI__CU_MUL 2
#define RI__CU_DIV 3
/* y[w.st[0]] = act(a[w.st[1]] op b[w.st[2]]) over the walk, dt F32, F16, INT32 or INT64 (integers wrap,
 * integer division by zero gives 0; act must be 0 for integers). y may equal a or b when it is walked
 * with the same strides. */
cudaError_t ri__cu_binary(cudaStream_t s, ri_dtype dt, int op, const ri__cu_walk *w, const void *a,
                          const void *b, void *y, int act, float act_a, float act_b);

/* dst[w.st[0]] = convert(src[w.st[1]]) over the walk. st and dt are equal (any element size 1, 2, 4 or 8),
 * or F32 -> F16, or F16 -> F32. dst and src must not overlap. */
cudaError_t ri__cu_copy(cudaStream_t s, const ri__cu_walk *w, const void *src, ri_dtype st, void *dst,
                        ri_dtype dt);

/* The padded cuBLASLt form's scatter (k_scatter_cols.cu): for each of n_rows rows r of the dense half
 * buffer src (ld_src halves per row), its first `cols` halves go to dst + (r / rows_per_img) * img_stride +
 * (r % rows_per_img) * ldy as half, or as float32 when dst_f32 (exact), after the activation act (an
 * ri__act code, none .. hard swish, with its parameters act_a, act_b) applied in float to the widened value
 * (then rounded once for a half dst). cols <= ld_src; src and dst must not overlap. */
cudaError_t ri__cu_scatter_cols(cudaStream_t s, const void *src, int64_t ld_src, int64_t n_rows,
                                int64_t rows_per_img, int64_t cols, void *dst, int dst_f32, int64_t ldy,
                                int64_t img_stride, int act, float act_a, float act_b);

/* y[i] = (yt) x[i] for i < n with the conversion rules of the CPU reference Cast
 * (src/backend/cpu/ref/cast.c). Types: float32, float16, float64, bool and the 8..64-bit integers. */
cudaError_t ri__cu_cast(cudaStream_t s, const void *x, ri_dtype xt, void *y, ri_dtype yt, int64_t n);

/* y[i] = (x[i] - mean[i % channels]) * scale[i % channels] in float, rounded once to yt (F32 or F16), for
 * i < n; channels 1 .. RI__CU_U8NORM_MAX_CHANNELS (k_u8norm.cu). */
#define RI__CU_U8NORM_MAX_CHANNELS 4
typedef struct {
  float mean[RI__CU_U8NORM_MAX_CHANNELS], scale[RI__CU_U8NORM_MAX_CHANNELS];
} ri__cu_u8norm_coef;
cudaError_t ri__cu_u8_normalize(cudaStream_t s, const uint8_t *x, int64_t n, int channels,
                                const ri__cu_u8norm_coef *k, void *y, ri_dtype yt);

/* y[i] = value (converted to dt) for i < n; dt any type of size 1, 2, 4 or 8. */
cudaError_t ri__cu_fill(cudaStream_t s, void *y, ri_dtype dt, int64_t n, double value);

/* Padding and cropping: the output is the walk's index space (dims, destination strides st[0]). Along
 * dim d, output coordinate o maps to q = o - out_off[d]; when 0 <= q < in_len[d] the element is read at
 * input coordinate in_off[d] + q (input strides st[1]); otherwise mode 0 (constant) writes `value`, mode 1
 * (reflect) mirrors q into [0, in_len) without repeating the ends, mode 2 (edge) clamps q to it. */
typedef struct {
  ri__cu_walk w;
  int64_t out_off[RI__CU_MAX_DIMS];
  int64_t in_off[RI__CU_MAX_DIMS];
  int64_t in_len[RI__CU_MAX_DIMS];
  int mode;
} ri__cu_pad_args;
cudaError_t ri__cu_pad(cudaStream_t s, const ri__cu_pad_args *p, const void *x, void *y, ri_dtype dt,
                       double value);

/* Per-channel affine + activation on float types: y[i] = act(x[i] * scale[c] + shift[c]) with
 * c = (i / inner) % channels; scale and/or shift may be NULL (1 and 0). scale and shift are float32.
 * y may equal x. */
cudaError_t ri__cu_channel_affine(cudaStream_t s, ri_dtype dt, const void *x, void *y, int64_t n,
                                  int64_t channels, int64_t inner, const float *scale, const float *shift,
                                  int act, float act_a, float act_b);

/* Global average pool of float types: x is [N, C, HW] (nhwc = 0) or [N, HW, C] (nhwc = 1); y is [N, C]. */
cudaError_t ri__cu_global_avg_pool(cudaStream_t s, ri_dtype dt, const void *x, void *y, int64_t n, int64_t c,
                                   int64_t hw, int nhwc);

/* Max / average pooling of float types over 2-D windows, NCHW or NHWC. Pads are the resolved pads; the
 * output size is given (ceil_mode is already applied to it). Average divisors: count_include_pad = 0 counts
 * the taps inside the input, 1 the taps inside the padded input [-pad, in + pad_end). A max window with no
 * tap inside the input gives -inf. */
typedef struct {
  int64_t n, c, ih, iw, oh, ow;
  int64_t kh, kw, sh, sw, dh, dw;
  int64_t pad_t, pad_l, pad_b, pad_r;
  int is_max, count_include_pad, nhwc;
} ri__cu_pool_args;
cudaError_t ri__cu_pool2d(cudaStream_t s, ri_dtype dt, const ri__cu_pool_args *p, const void *x, void *y);

/* Softmax of float types over `len` elements spaced `inner` apart, for outer * inner rows; math in float
 * with the maximum subtracted. */
cudaError_t ri__cu_softmax(cudaStream_t s, ri_dtype dt, const void *x, void *y, int64_t outer, int64_t len,
                           int64_t inner);

/* Resize of the last two axes of a row-major [outer, ih, iw] float tensor to [outer, oh, ow] from per-axis
 * source tables (built on the host with the graph's coordinate rules): output row oy reads input rows
 * th[oy].i0 and th[oy].i1 blended with weight th[oy].w on i1 (linear), or row th[oy].i0 (nearest); columns
 * likewise from tw. */
typedef struct {
  int32_t i0, i1;
  float w;
} ri__cu_resize_tap;
typedef struct {
  int64_t outer, ih, iw, oh, ow;
  int linear;
} ri__cu_resize_args;
cudaError_t ri__cu_resize(cudaStream_t s, ri_dtype dt, const ri__cu_resize_args *p,
                          const ri__cu_resize_tap *th, const ri__cu_resize_tap *tw, const void *x, void *y);

/* Gather along one axis of a row-major tensor viewed as [outer, axis_dim, inner]: y[o, j, i] =
 * x[o, idx[j], i] for j < n_idx; negative indices count from the end; an index outside
 * [-axis_dim, axis_dim) gives zeros (ONNX leaves it undefined). idx is INT32 or INT64. */
cudaError_t ri__cu_gather(cudaStream_t s, const void *x, size_t elem_size, const void *idx, ri_dtype it,
                          void *y, int64_t outer, int64_t axis_dim, int64_t n_idx, int64_t inner);

/* QuantizeLinear: y = saturate(rint(x / scale[c]) + zp[c]) (round half to even; NaN gives zp), and
 * DequantizeLinear: y = (x - zp[c]) * scale[c], with c = (i / inner) % channels. x/y float types F32/F16,
 * scale F32 or F16, quantized types UINT8, INT8, UINT16, INT16 (and INT32 for dequantize input); zp may be
 * NULL (0) and has the quantized type. */
cudaError_t ri__cu_quantize(cudaStream_t s, const void *x, ri_dtype xt, const void *scale, ri_dtype st,
                            const void *zp, void *y, ri_dtype yt, int64_t n, int64_t channels, int64_t inner);
cudaError_t ri__cu_dequantize(cudaStream_t s, const void *x, ri_dtype xt, const void *scale, ri_dtype st,
                              const void *zp, void *y, ri_dtype yt, int64_t n, int64_t channels,
                              int64_t inner);

/* Depthwise 2-D convolution (one filter per channel, any kernel size up to 7x7) of float types with bias
 * and activation fused. NCHW: x [N, C, ih, iw], y [N, C, oh, ow], w [C, kh, kw]; NHWC: x [N, ih, iw, C],
 * y [N, oh, ow, C], w [kh, kw, C]. Weights are of the data type dt, bias float32 (may be NULL). */
typedef struct {
  int64_t n, c, ih, iw, oh, ow;
  int kh, kw, sh, sw, dh, dw, pad_t, pad_l;
  int nhwc;
  int act;
  float act_a, act_b;
} ri__cu_dwconv_args;
cudaError_t ri__cu_dwconv(cudaStream_t s, ri_dtype dt, const ri__cu_dwconv_args *p, const void *x,
                          const void *w, const float *bias, void *y);
/* Kernel variants of NHWC 3x3 depthwise convolutions whose channels fill 16-byte vectors (k_dwconv.cu):
 * 0 is what ri__cu_dwconv runs, 1 .. RI__CU_DW_SMEM_FIRST - 1 compute blocks of output pixels per thread,
 * RI__CU_DW_SMEM_FIRST .. RI__CU_DW_VARIANTS - 1 (half, C % 16 == 0 only; k_dwconv_smem.cu) stage the input
 * tile of a block in shared memory (from RI__CU_DW_PIPE_FIRST on: persistent blocks that copy the next tiles
 * while computing one). Every variant gives the same bits. ri__cu_dwconv_variants: how many
 * variants the convolution has (1 when only variant 0 runs it; RI__CU_DW_SMEM_FIRST when the shared-memory
 * ones do not apply); ri__cu_dwconv_v runs variant `variant` (variant 0 where the variant does not apply,
 * e.g. to unaligned pointers or a channel count that is not a multiple of 16). */
#define RI__CU_DW_SMEM_FIRST 4
#define RI__CU_DW_PIPE_FIRST 6
#define RI__CU_DW_VARIANTS   8
int ri__cu_dwconv_variants(ri_dtype dt, const ri__cu_dwconv_args *p);
cudaError_t ri__cu_dwconv_v(cudaStream_t s, ri_dtype dt, const ri__cu_dwconv_args *p, int variant,
                            const void *x, const void *w, const float *bias, void *y);
/* k_dwconv_smem.cu, called by k_dwconv.cu once the half vector path applies: 1 when the shared-memory
 * variants take the convolution (C % 16 == 0, its grid within the limits); launch of variant `variant`
 * (RI__CU_DW_SMEM_FIRST .. RI__CU_DW_VARIANTS - 1) of such a convolution. */
int ri__cu_dwconv_smem_ok(const ri__cu_dwconv_args *p);
void ri__cu_dwconv_smem(cudaStream_t s, const ri__cu_dwconv_args *p, int variant, const void *x,
                        const void *w, const float *b, void *y);
/* Depthwise 3x3 in half arithmetic (k_dwconv_h2.cu; half-accumulation engines): NHWC half x [n, ih, iw, c],
 * w [3, 3, c] half, bias float [c] or NULL, y [n, oh, ow, c] half; each output is half(bias) then the 9
 * taps in the order ky, kx, each one __hfma2 (half rounding per tap), then the activation (none, ReLU,
 * clip) in half. Not the bits of ri__cu_dwconv. ri__cu_dwconv_h2_supported: 1 when it takes the
 * convolution (3x3, dilation 1, equal strides 1 or 2, c % 8 == 0, int32 offsets, activation none / ReLU /
 * clip). rx: output pixels per thread along x, 0 for the default, else 2, 4, 8 (stride 1) or 1, 2, 4
 * (stride 2), all the same bits; cudaErrorInvalidValue for another rx, an unsupported convolution or
 * x, w, y not 16-byte aligned. */
int ri__cu_dwconv_h2_supported(const ri__cu_dwconv_args *p);
cudaError_t ri__cu_dwconv_h2(cudaStream_t s, const ri__cu_dwconv_args *p, int rx, const void *x,
                             const void *w, const float *bias, void *y);

/* Convolution as an implicit GEMM on the tensor cores (k_convgemm.cu), half data, float accumulation.
 * x is NHWC [n, ih, iw, c] half. w holds m_out rows of ldw halves: row j is output channel j's [kh, kw, c]
 * weights (k = kh * kw * c of them), then zeros up to ldw, a multiple of 8 (ldw = k when c is a multiple
 * of 8, which takes the fast 16-byte path). bias is float32 [m_out] or NULL; res is half or NULL.
 * Output pixel m = (b, oy, ox), row-major over [n, oh, ow], and channel j < m_out get the value
 *     act(sum + bias[j] + res[m * ldr + j]), computed in float,
 * stored (half, or float32 when y_f32) at element
 *     (m / rows_per_img) * y_img_stride + (m % rows_per_img) * ldy + y_off + j
 * of y. A dense NHWC output has rows_per_img = oh * ow, ldy = m_out, y_img_stride = rows_per_img * m_out,
 * y_off = 0; other values write into a slice of a larger tensor. pad_t / pad_l are the top / left pads; the
 * input is zero outside [0, ih) x [0, iw). w, y, bias and res must be 16-byte aligned, and x too when
 * c % 8 == 0; y must not overlap x, w or (except exactly, element for element) res. */
typedef struct {
  int n, ih, iw, c, oh, ow, m_out, k, ldw;
  int kh, kw, sh, sw, dh, dw, pad_t, pad_l;
  int64_t rows_per_img, y_img_stride, ldy, y_off, ldr;
  int act;
  float act_a, act_b;
  int y_f32; /* y is float32 (the half result widened) instead of half */
} ri__cu_convgemm_args;
/* Split-K resources of a stream (sk may be NULL: no split): a float workspace of ws_bytes (16-byte
 * aligned) and n_counters ints that are 0 before a launch and are 0 again after it. sms: the device's
 * multiprocessor count. Launches that share them must be ordered (one stream). */
typedef struct {
  void *ws;
  size_t ws_bytes;
  int *counters;
  int n_counters;
  int sms;
} ri__cu_splitk;
/* The split-K resources every context allocates (cuda_backend.c); K segmentations are planned for them. */
#define RI__CU_SPLITK_WS_BYTES ((size_t)16 << 20)
#define RI__CU_SPLITK_COUNTERS 4096
/* 1 when ri__cu_convgemm runs these arguments (layout and size limits; the pointers are not looked at). */
int ri__cu_convgemm_supported(const ri__cu_convgemm_args *p);
cudaError_t ri__cu_convgemm(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                            const float *bias, const void *res, void *y, const ri__cu_splitk *sk);
/* How one launch runs (a tactic). The result depends on seg_ktiles only: K is summed in segments of
 * seg_ktiles 32-deep steps (0, or at least the number of steps: one segment), each from zero, and the
 * segments' sums are added in order; neither the tile shape nor where the segments run changes a bit.
 * bm x bn: 128x64, 64x64, 128x32 or 64x32, or 0x0 for the heuristic choice; split: 1 runs the segments in
 * separate blocks when sk's resources allow, 0 in one block, -1 in separate blocks when the tiles alone
 * fill less than the device. pw: 1 runs the pointwise kernel instead (ri__cu_pwconv, below; bm, bn and split
 * are ignored): only for a geometry it supports and one K segment, where its results are bit-identical. */
typedef struct {
  int bm, bn, seg_ktiles, split;
  int pw;
} ri__cu_convgemm_tactic;
int ri__cu_convgemm_tactic_valid(const ri__cu_convgemm_tactic *t);
/* The segment length (K steps; 0 for one segment) that the heuristics give p's geometry on a device with
 * sk->sms multiprocessors and sk's workspace: the split that fills the device. */
int ri__cu_convgemm_default_seg(const ri__cu_convgemm_args *p, const ri__cu_splitk *sk);
/* ri__cu_convgemm with a tactic (t NULL: the heuristic tile, and the segments that
 * ri__cu_convgemm_default_seg gives this very geometry, so that results then depend on the batch). */
cudaError_t ri__cu_convgemm_tac(cudaStream_t s, const ri__cu_convgemm_args *p,
                                const ri__cu_convgemm_tactic *t, const void *x, const void *w,
                                const float *bias, const void *res, void *y, const ri__cu_splitk *sk);

/* Pointwise convolution for few channels (k_pwconv.cu): the arguments and results of ri__cu_convgemm for a
 * 1x1, stride 1, unpadded convolution with c % 8 == 0, k = c <= 160 and m_out <= ri__cu_pwconv_max_n(),
 * half output, or (the deep form) m_out <= 64 and k = c <= 1280, half or float32 output; persistent blocks
 * keep the weights (m_out <= 160) or a slab of them (the wide form, m_out > 160) in shared memory.
 * Bit-identical to ri__cu_convgemm with one K segment. Same alignment rules, and x must be 16-byte aligned.
 */
#define RI__CU_PW_WIDE_MAX_N 1280
/* The widest m_out supported: RI__CU_PW_WIDE_MAX_N, or less with RI_CUDA_PW_MAXN=N (read once per process:
 * 160 gives back the limit of the first two forms; before/after comparisons). */
int ri__cu_pwconv_max_n(void);
int ri__cu_pwconv_supported(const ri__cu_convgemm_args *p);
cudaError_t ri__cu_pwconv(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                          const float *bias, const void *res, void *y);
/* The same in a given form (all give the same bits): 0 the first (k_pwconv.cu: lane stores, residual read
 * in the epilogue); 1 .. 4 the second (k_pwconv_bulk.cu): 1 bulk-copy stores of dense outputs, evict-first
 * for outputs larger than the L2; 2 lane stores, evict-first likewise; 3 bulk-copy stores, default cache
 * policy; 4 lane stores, default policy. Where no plan of the second form fits, the first runs.
 * ri__cu_pwconv runs ri__cu_pwconv_default_variant(): RI_CUDA_PW2 (0 .. 4; default 1). */
#define RI__CU_PW_VARIANTS 5
int ri__cu_pwconv_default_variant(void);
cudaError_t ri__cu_pwconv_v(cudaStream_t s, const ri__cu_convgemm_args *p, int variant, const void *x,
                            const void *w, const float *bias, const void *res, void *y);
/* The second form alone (arguments checked by ri__cu_pwconv_v; variant 1 .. 4): cudaErrorInvalidValue when
 * no plan fits the device. _describe writes the plan it would launch (warps, blocks per multiprocessor,
 * stages, stores, registers, shared memory) into buf, for benchmarks; it launches nothing. */
cudaError_t ri__cu_pwconv_bulk(cudaStream_t s, const ri__cu_convgemm_args *p, int variant, const void *x,
                               const void *w, const float *bias, const void *res, void *y);
cudaError_t ri__cu_pwconv_bulk_describe(const ri__cu_convgemm_args *p, int variant, int has_res, char *buf,
                                        size_t n);
/* The wide form (k_pwconv_wide.cu; arguments checked by ri__cu_pwconv_v, which runs it for every variant
 * where m_out > 160): the output channels in slabs of up to 192 per block, a warp's A fragments in registers
 * and the slab's columns in chunks of 64; variants 1 and 2 store evict-first when the output is larger than
 * the L2. cudaErrorInvalidValue when no plan fits. _describe writes its plan into buf (benchmarks). */
cudaError_t ri__cu_pwconv_wide(cudaStream_t s, const ri__cu_convgemm_args *p, int variant, const void *x,
                               const void *w, const float *bias, const void *res, void *y);
cudaError_t ri__cu_pwconv_wide_describe(const ri__cu_convgemm_args *p, int variant, char *buf, size_t n);
/* The deep form (k_pwconv_deep.cu; arguments checked by ri__cu_pwconv_v, which runs it for every variant
 * where K > 160 or the output is float32): m_out <= 64 and K <= 1280, the weights in shared memory, each
 * warp's 16-row tiles streamed in K chunks of 64 through a cp.async ring. ri__cu_pwconv_deep_supported: 1
 * when the form takes p's sizes (the geometry is ri__cu_pwconv_supported's to check), 0 for all under
 * RI_CUDA_PW_DEEP=0 (ri__cu_pwconv_deep_enabled; read once per process). cudaErrorInvalidValue when no plan
 * fits the device. _describe writes its plan into buf (benchmarks); it launches nothing. */
int ri__cu_pwconv_deep_enabled(void);
int ri__cu_pwconv_deep_supported(const ri__cu_convgemm_args *p);
cudaError_t ri__cu_pwconv_deep(cudaStream_t s, const ri__cu_convgemm_args *p, const void *x, const void *w,
                               const float *bias, const void *res, void *y);
cudaError_t ri__cu_pwconv_deep_describe(const ri__cu_convgemm_args *p, char *buf, size_t n);
/* Benchmarks only, process-wide: restricts the second form's plans to `warps` per block (8 or 4), `stages`
 * and `nbuf` staging tiles (bulk stores); 0 leaves a choice free, (0, 0, 0) restores the planner. A plan
 * that does not fit runs the first form. */
void ri__cu_pwconv_bulk_force(int warps, int stages, int nbuf);

/* The pointwise convolution on Hopper's warpgroup tensor-core instructions (k_pwgemm_wg.cu, sm_90a; a tactic
 * of fp16 1x1 convolutions, cuda_tactics.h). The arguments and results of ri__cu_convgemm with one K
 * segment for a 1x1, stride 1, unpadded convolution with c = k, k % 8 == 0 and ldw a multiple of 8 (>= k; the
 * weights zero from k to ldw); other sums than ri__cu_convgemm's in the last bits (another instruction), the
 * same for every M. x, w, y, bias and res 16-byte aligned. Tiles bm x bn: bm 64 or 128 (0: 128 when that
 * still gives two tiles per multiprocessor of a 132-multiprocessor device), bn 64 or 128; stages: 3 or 4
 * pipeline buffers (0: 4, or 3 for 128 x 128). Neither the tile nor the stages change a bit
 * (test_cuda_wggemm, on an H200). cudaErrorInvalidValue for other arguments; cudaErrorNotSupported on a
 * device other than compute capability 9.0 or where the kernel has no sm_90 binary (built without
 * architecture 90). ri__cu_pwgemm_wg: the heuristic bm and the default stages. ri__cu_pwgemm_wg_available: 1
 * when every tile and stage count runs on the current device (built for sm_90a, compute capability 9.0, its
 * shared memory granted); it prepares them, so that later launches (in a graph capture too) find them ready.
 */
int ri__cu_pwgemm_wg_supported(const ri__cu_convgemm_args *p);
int ri__cu_pwgemm_wg_available(void);
cudaError_t ri__cu_pwgemm_wg_tile(cudaStream_t s, const ri__cu_convgemm_args *p, int bm, int bn, int stages,
                                  const void *x, const void *w, const float *bias, const void *res, void *y);
cudaError_t ri__cu_pwgemm_wg(cudaStream_t s, const ri__cu_convgemm_args *p, int bn, const void *x,
                             const void *w, const float *bias, const void *res, void *y);

/* The same convolution in fp32 on the CUDA cores (k_convgemm_f32.cu): x float NHWC [n, ih, iw, c], bias
 * and res float32, y float32 at the element given above (y_f32 is ignored); the sum of each output runs
 * over k in increasing order with fmaf. w holds k rows of ldw floats: row (ky * kw + kx) * c + ci is the
 * weights of every output channel, zeros from m_out to ldw (ldw = m_out rounded up to a multiple of 4).
 * x must be 16-byte aligned when c % 4 == 0 (the fast path); w, y and res 16-byte aligned. Tactics as
 * above with seg_ktiles counted in 16-deep steps and tiles 128x128, 128x64, 64x64 or 128x32 (ids 0..3 of
 * ri__cu_convgemm_f32_tile); split K uses sk->ws only (not its counters) and a second kernel. */
int ri__cu_convgemm_f32_supported(const ri__cu_convgemm_args *p);
int ri__cu_convgemm_f32_tactic_valid(const ri__cu_convgemm_tactic *t);
void ri__cu_convgemm_f32_tile(int id, int *bm, int *bn);
int ri__cu_convgemm_f32_default_seg(const ri__cu_convgemm_args *p, const ri__cu_splitk *sk);
cudaError_t ri__cu_convgemm_f32_tac(cudaStream_t s, const ri__cu_convgemm_args *p,
                                    const ri__cu_convgemm_tactic *t, const void *x, const void *w,
                                    const float *bias, const void *res, void *y, const ri__cu_splitk *sk);
/* Pointwise convolution in fp32 for few channels (k_pwconv_f32.cu): the arguments and results of
 * ri__cu_convgemm_f32_tac for a 1x1, stride 1, unpadded convolution with c % 4 == 0, k = c <= 160 and
 * k * ldw <= 8192; persistent blocks keep the weights in shared memory. Bit-identical to the tiled kernel
 * with the same segment length (seg_ktiles 16-deep steps, 0: one segment). x, w and y 16-byte aligned.
 * ri__cu_convgemm_f32_tac runs it for a tactic with pw set. */
int ri__cu_pwconv_f32_supported(const ri__cu_convgemm_args *p);
/* The same convolution on the tensor cores with 3xTF32 (k_convgemm_tf32.cu): the arguments, weights,
 * alignment rules, segments and split K of ri__cu_convgemm_f32_tac (seg_ktiles in 16-deep steps, pw not
 * allowed), each product summed as three TF32 multiplies with fp32 accumulation (about fp32 accuracy; the
 * bits differ from the FFMA kernel's, and depend on seg_ktiles only). Tiles 128x128, 128x64, 64x64 or 128x32
 * (ids 0..3 of ri__cu_convgemm_tf32_tile). Needs sm_80 or later. */
int ri__cu_convgemm_tf32_supported(const ri__cu_convgemm_args *p);
int ri__cu_convgemm_tf32_tactic_valid(const ri__cu_convgemm_tactic *t);
void ri__cu_convgemm_tf32_tile(int id, int *bm, int *bn);
cudaError_t ri__cu_convgemm_tf32_tac(cudaStream_t s, const ri__cu_convgemm_args *p,
                                     const ri__cu_convgemm_tactic *t, const void *x, const void *w,
                                     const float *bias, const void *res, void *y, const ri__cu_splitk *sk);
cudaError_t ri__cu_pwconv_f32(cudaStream_t s, const ri__cu_convgemm_args *p, int seg_ktiles, const float *x,
                              const float *w, const float *bias, const float *res, float *y);

/* Direct convolution for few input channels (k_stemconv.cu). y is NHWC [n, oh, ow, m], half (float32 when
 * y_f32) with
 *     y[b, oy, ox, j] = act(bias[j] + sum over ky, kx, ci of x(b, ci, iy, ix) * w[kk * m + j]),
 *     kk = (ky * kw + kx) * c + ci, iy = oy * sh - pad_t + ky * dh, ix = ox * sw - pad_l + kx * dw,
 * x being zero outside the input and read at element b * xs_n + ci * xs_c + iy * xs_h + ix * xs_w, float32
 * or half (NCHW and NHWC are both strides). w and bias are float32 (bias may be NULL);
 * k = kh * kw * c <= RI__CU_STEM_MAX_K; y is 16-byte aligned. */
#define RI__CU_STEM_MAX_K 128
typedef struct {
  int n, c, ih, iw, oh, ow, m, k;
  int kh, kw, sh, sw, dh, dw, pad_t, pad_l;
  int64_t xs_n, xs_c, xs_h, xs_w;
  int act;
  float act_a, act_b;
  int y_f32;
} ri__cu_stemconv_args;
int ri__cu_stemconv_supported(const ri__cu_stemconv_args *p);
cudaError_t ri__cu_stemconv(cudaStream_t s, const ri__cu_stemconv_args *p, const void *x, ri_dtype xt,
                            const float *w, const float *bias, void *y);
/* Kernel variants of the direct convolution (k_stemconv.cu) for 3x3 kernels over 3 input channels
 * (k = 27) and at most 32 output channels, the RGB stem: 0 is what ri__cu_stemconv runs; 1 takes the
 * weights as a kernel parameter (constant bank operands of the FMAs), one pixel of all channels per
 * thread; 2 splits a pixel's channels over 8 threads of 4 channels with the weights in registers (m % 4 ==
 * 0). Variants 0 .. RI__CU_STEM_EXACT - 1 give the same bits. 3 (k_stemconv_tc.cu, half output only) runs
 * the products on tensor cores with the input and weights split into half pairs: about as accurate, other
 * last bits, so a node must run it for every batch or for none (batch invariance). 4 (k_stemconv_tcp.cu)
 * is variant 3's arithmetic (its bits) with a deeper load pipeline; it applies where 3 does.
 * ri__cu_stemconv_variants: one past the highest variant that applies (1: only variant 0);
 * ri__cu_stemconv_variant_applies: whether variant v does; ri__cu_stemconv_v runs one (variant 0 where it
 * does not apply), hw holding the weights and bias as ri__cu_stem_host_weights lays them out on the host
 * (variant 1 only; NULL runs variant 0 instead). */
#define RI__CU_STEM_VARIANTS 5
#define RI__CU_STEM_EXACT    3
#define RI__CU_STEM_VK       27
#define RI__CU_STEM_VM       32
typedef struct {
  float w[RI__CU_STEM_VK * RI__CU_STEM_VM]; /* [kk][32], zero beyond m */
  float b[RI__CU_STEM_VM];                  /* zero beyond m and without bias */
} ri__cu_stem_host_weights;
int ri__cu_stemconv_variants(const ri__cu_stemconv_args *p);
int ri__cu_stemconv_variant_applies(const ri__cu_stemconv_args *p, int v);
cudaError_t ri__cu_stemconv_v(cudaStream_t s, const ri__cu_stemconv_args *p, int variant, const void *x,
                              ri_dtype xt, const float *w, const float *bias,
                              const ri__cu_stem_host_weights *hw, void *y);
/* Variant 3 alone (k_stemconv_tc.cu): whether it applies, and a launch (cudaErrorInvalidValue where not). */
int ri__cu_stemconv_tc_applies(const ri__cu_stemconv_args *p);
cudaError_t ri__cu_stemconv_tc(cudaStream_t s, const ri__cu_stemconv_args *p, const void *x, ri_dtype xt,
                               const float *w, const float *bias, void *y);
/* Variant 4 alone (k_stemconv_tcp.cu): whether it applies, and a launch (cudaErrorInvalidValue where not). */
int ri__cu_stemconv_tcp_applies(const ri__cu_stemconv_args *p);
cudaError_t ri__cu_stemconv_tcp(cudaStream_t s, const ri__cu_stemconv_args *p, const void *x, ri_dtype xt,
                                const float *w, const float *bias, void *y);

#ifdef __cplusplus
}
#endif
#endif
