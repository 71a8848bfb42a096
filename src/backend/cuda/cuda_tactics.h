/* Tactics of the CUDA backend: chosen by timing at engine build (cuda_tune.c), stored in the engine file in
 * each node's `tactic` field (rie_format.h), used by contexts of built and loaded engines alike.
 *
 * An implicit-GEMM convolution (k_convgemm.cu in fp16 engines, k_convgemm_f32.cu in fp32 engines) has one
 * tactic for every batch size: its K segment length (the only part that changes results, so it is one per
 * node: batch invariance) and a tile shape per batch bucket (1; 2..8; 9..64; 65 and more). Stored as a
 * non-negative int32:
 *   bit 30         1 (a CUDA GEMM tactic; other values are not ours and leave the node to the heuristics)
 *   bits 23..29    K segment length in 32-deep (fp16) or 16-deep (fp32) steps (0: one segment)
 *   bits 15..22    tile of bucket b in bits 15 + 2b .. 16 + 2b: 0 = 128x64, 1 = 64x64, 2 = 128x32, 3 = 64x32
 *                  (fp16); 0 = 128x128, 1 = 128x64, 2 = 64x64, 3 = 128x32 (fp32)
 *   bits 0..14     the timed time at batch 1, microseconds, as a half-precision float without its sign bit
 * Every bit pattern decodes to a valid tactic (a stored time that is not finite is shown as such).
 * Tile id 4 (RI__CU_TILE_PW) is the pointwise kernel (k_pwconv.cu in fp16 engines, k_pwconv_f32.cu in
 * fp32 ones), bit-identical to the tiles with one K segment; a tactic that uses it for some bucket has one
 * segment and is stored as: bits 29..30    0, bit 28 1 bits 24..27    bucket b runs the pointwise kernel when
 * bit 24 + b is set bits 15..22    tile of the other buckets, as above bits 0..14     the timed time at batch
 * 1, as above RI_CUDA_PWCONV=0 keeps the tuner from offering the pointwise kernel (for before/after
 * comparisons); RI_CUDA_PWCONV=force makes it choose the pointwise kernel wherever it applies, untimed (for
 * tests); RI_CUDA_F32_PWCONV does the same for the fp32 one.
 *
 * In fp32 engines a node runs either the FFMA kernel (k_convgemm_f32.cu, or its pointwise one) or the
 * 3xTF32 tensor-core kernel (k_convgemm_tf32.cu) for every batch: their sums differ in the last bits, so
 * one node may not mix them across buckets (batch invariance). A tactic for the 3xTF32 kernel is stored as:
 *   bits 27..30    0, bit 26 1 (no other form has these bits; graph passes' own values are below 2^26)
 *   bits 19..25    K segment length in 16-deep steps (0: one segment)
 *   bits 11..18    tile of bucket b in bits 11 + 2b .. 12 + 2b: 0 = 128x128, 1 = 128x64, 2 = 64x64,
 *                  3 = 128x32 (ids of ri__cu_convgemm_tf32_tile)
 *   bits 0..10     the timed time at batch 1 as the top 11 of the 15 bits above (4 mantissa bits fewer)
 * RI_CUDA_F32_TF32=0 keeps the tuner from offering it (for before/after comparisons); =force makes the
 * tuner choose it wherever it runs (tests); its tiles are still timed.
 *
 * In fp16 engines a 1x1 convolution that the Hopper wgmma kernel runs (k_pwgemm_wg.cu) may run it at every
 * batch (its sums differ from k_convgemm.cu's in the last bits; its tiles and stage counts give the same
 * bits, so they may differ per bucket). Stored inside the pointwise form, which never sets bit 23:
 *   bits 29..30    0, bit 28 1, bit 23 1
 *   bits 24..27    bucket b runs 4 pipeline stages when bit 24 + b is set, else 3
 *   bits 15..22    wgmma tile of bucket b in bits 15 + 2b .. 16 + 2b: 0 = 128x64, 1 = 64x64, 2 = 128x128,
 *                  3 = 64x128 (ri__cu_tac_tile with RI__CU_KIND_WG)
 *   bits 8..14     the own kernel's K segment length in 32-deep steps (0: one segment), which a context runs
 *                  at every batch (tiles from the heuristics) where the wgmma kernel is not available
 *   bits 0..7      the timed time at the maximum batch as the top 8 of a half float's 15 bits (3 mantissa
 * bits) In ri__cu_gemm_tac: wg 1, tile[b] = the tile id | RI__CU_WG_S4 for four stages, us the time at the
 * maximum batch. RI_CUDA_WG=0 keeps the tuner from offering it (before/after comparisons); =force takes it
 * wherever it applies (tests; cuBLASLt is then not tried on those nodes); default offered: taken when 10 %
 * faster than the own tactic at the maximum batch's bucket and at most 1.25x slower at every other timed
 * bucket.
 *
 * A convolution on cuDNN stores the algorithm a context chose at build (fastest that passed the batch-
 * invariance check, cuda_op_conv.c), so that every context of the engine, in any process, runs the same one
 * and none searches again:
 *   bit 30 0, bit 29 1
 *   bits 0..2      cudnnConvolutionFwdAlgo_t (0 .. 7)
 *   bits 3..4      math: 0 default, 1 tensor op, 2 tensor op allowing conversion, 3 FMA
 *   bit 5          every image alone (no algorithm passed the check)
 *   bits 8..22     cuDNN's time for it at the maximum batch, milliseconds, half float without sign
 * A stored algorithm that cuDNN refuses on the device makes that node search as before.
 *
 * An fp16 1x1 convolution on cuBLASLt (cuda_conv_lt.c) stores the index of its
 * algorithm among the heuristic's first 8 for the node's problem at the maximum batch, and the own kernel's
 * K segment length, which a context runs at every batch when the algorithm is not available there (the
 * tiles then come from the heuristics: they do not change the bits):
 *   bits 26..30    0, bit 25 1 (graph passes' own values must stay below 2^25)
 *   bits 18..24    the own kernel's K segment length in 32-deep steps (0: one segment)
 *   bits 15..17    algorithm index, 0 .. 7
 *   bits 11..14    a 4-bit tag of the algorithm's configuration (ri__cu_ltconv_algo_tag): a context whose
 *                  heuristic names another algorithm at that index falls back (unless the tags collide)
 *   bits 0..10     the timed time at the maximum batch as the top 11 of a half float's 15 bits
 * The padded form (cuda_conv_lt.h: the GEMM into a dense half buffer, then a scatter into the node's
 * misaligned output slice; the index is among the heuristic's list for that GEMM) sets bit 27 as well
 * (RI__CU_TAC_LT_PAD). Codes without it decode as before (engines built before the form existed keep their
 * meaning). Bit 27 with bit 25 is also a valid variant code (below): the two forms belong to different
 * nodes (cuBLASLt: 1x1 GEMM convolutions; variants: depthwise and stem ones), and each node decodes only its
 * own kind's forms (cuda_op_conv.c's prep); no GEMM decoder takes it.
 * RI_CUDA_LTPAD=0 keeps the tuner from offering the padded form (before/after comparisons); =force offers
 * only it on nodes whose output is misaligned (tests; the direct form is not timed there).
 * RI_CUDA_LTCONV=0 keeps the tuner from offering it (before/after comparisons); =force takes it wherever it
 * applies (tests), the fastest algorithm at the maximum batch; default offered: taken when 10 % faster than
 * the own tactic at the maximum batch's bucket and at most 1.25x slower at every other timed bucket. */
#ifndef RI_BACKEND_CUDA_TACTICS_H
#define RI_BACKEND_CUDA_TACTICS_H

#include <stdint.h>

#include "backend/cuda/cuda_conv_lt.h"
#include "backend/cuda/cuda_internal.h"

#define RI__CU_TAC_MARK    (1 << 30)
#define RI__CU_TAC_DNN     (1 << 29)
#define RI__CU_TAC_BUCKETS 4
#define RI__CU_TAC_MAX_SEG 127
#define RI__CU_TAC_PW      (1 << 28)
#define RI__CU_TILE_PW     4
#define RI__CU_TAC_TF32    (1 << 26)
#define RI__CU_TAC_LT      (1 << 25)
#define RI__CU_TAC_LT_PAD  (1 << 27) /* with RI__CU_TAC_LT: the padded form */
#define RI__CU_TAC_WG      (1 << 23) /* with RI__CU_TAC_PW: the wgmma form */
#define RI__CU_WG_S4       4         /* in a wgmma tile id: four pipeline stages (else three) */

/* Which implicit-GEMM kernel a tile id refers to. */
enum { RI__CU_KIND_F16 = 0, RI__CU_KIND_F32 = 1, RI__CU_KIND_TF32 = 2, RI__CU_KIND_WG = 3 };

typedef struct {
  int seg;                      /* K segment length, 0 .. RI__CU_TAC_MAX_SEG (wgmma: the own kernel's) */
  int tile[RI__CU_TAC_BUCKETS]; /* tile ids, 0 .. 3, or RI__CU_TILE_PW (then seg is 0); wgmma: 0 .. 7 */
  float us;                     /* timed time at batch 1 (microseconds); wgmma: at the maximum batch */
  int tf32;                     /* fp32 engines: the 3xTF32 kernel (tiles ids of its own, no pointwise) */
  int wg;                       /* fp16 engines: the wgmma kernel at every batch (tile ids of its own) */
} ri__cu_gemm_tac;

typedef struct {
  int algo, math, per_image; /* math: the 2-bit code above */
  float ms;
} ri__cu_dnn_tac;

typedef struct {
  int algo; /* 0 .. 7 */
  int tag;  /* ri__cu_ltconv_algo_tag of that algorithm, 0 .. 15 */
  int seg;  /* the own kernel's K segment length, 0 .. RI__CU_TAC_MAX_SEG */
  float us; /* timed time at the maximum batch (microseconds) */
  int pad;  /* the padded form (GEMM into a dense half buffer, then the scatter) */
} ri__cu_lt_tac;

/* The device part of the timing-cache keys of both tuners (cuda_tune.c, cuda_tune_direct.c): library
 * version, compute capability and GPU name, into buf; 0 when the device cannot be queried. */
int ri__cu_tune_fingerprint(const cu_state *st, char *buf, size_t cap);

int32_t ri__cu_tac_encode(const ri__cu_gemm_tac *t);
int32_t ri__cu_dnn_tac_encode(const ri__cu_dnn_tac *t);
/* 1 and *t when code is a cuDNN tactic, else 0. */
int ri__cu_dnn_tac_decode(int32_t code, ri__cu_dnn_tac *t);
/* 1 and *t when code is a CUDA GEMM tactic, else 0. */
int ri__cu_tac_decode(int32_t code, ri__cu_gemm_tac *t);
int32_t ri__cu_lt_tac_encode(const ri__cu_lt_tac *t);
/* 1 and *t when code is a cuBLASLt tactic, else 0. */
int ri__cu_lt_tac_decode(int32_t code, ri__cu_lt_tac *t);
/* The bucket of a batch size (0 .. RI__CU_TAC_BUCKETS - 1) and its representative batch for timing. */
int ri__cu_tac_bucket(int batch);
int ri__cu_tac_bucket_batch(int bucket);
/* Tile id <-> shape, of the half tensor-core kernel (kind RI__CU_KIND_F16), of the fp32 FFMA one
 * (RI__CU_KIND_F32: ids 0..3 of ri__cu_convgemm_f32_tile) or of the 3xTF32 one (RI__CU_KIND_TF32:
 * ri__cu_convgemm_tf32_tile); RI__CU_TILE_PW: 0 x 0, the pointwise kernel sets the tactic's pw instead.
 * RI__CU_KIND_WG: the wgmma kernel's tiles (the stage bit RI__CU_WG_S4 ignored). */
void ri__cu_tac_tile(int kind, int id, int *bm, int *bn);
/* The convolution GEMM tactic of a tile id with segment length seg, for the kernel of that kind. */
ri__cu_convgemm_tactic ri__cu_tac_launch(int kind, int id, int seg);

/* Conv side (cuda_op_conv.c). Tunable: an implicit-GEMM convolution that runs (not skipped) and has no stored
 * tactic. ri__cu_conv_tune_args: its arguments at `batch` with a dense output and no residual, weights and
 * bias. ri__cu_conv_set_tactic applies a tactic (and names the node after it); ri__cu_conv_tactic gives
 * the node's tactic code for the engine file (0 when it has none). */
int ri__cu_conv_tunable(const cu_state *st, int ni);
int ri__cu_conv_default_seg(const cu_state *st, int ni);
void ri__cu_conv_tune_args(const cu_state *st, int ni, int batch, ri__cu_convgemm_args *ga, const void **w,
                           const float **bias);
void ri__cu_conv_set_tactic(cu_state *st, int ni, const ri__cu_gemm_tac *t);
int32_t ri__cu_conv_tactic(const cu_state *st, int ni);
/* cuBLASLt side (cuda_conv_lt.c, cuda_op_conv.c): ri__cu_conv_lt_tune_args gives 1 and the node's problem
 * at `batch` as it runs (its output slice, residual and output type), the output's slice offset (elements)
 * and the weights and biases (float32, half) when the node can run on cuBLASLt, else 0;
 * ri__cu_conv_set_lt_tactic applies a cuBLASLt tactic (and names the node after it). */
int ri__cu_conv_lt_tune_args(const cu_state *st, int ni, int batch, ri__cu_ltconv_shape *s, int64_t *y_off,
                             const void **w, const float **bias_f, const void **bias_h);
void ri__cu_conv_set_lt_tactic(cu_state *st, int ni, const ri__cu_lt_tac *t);
/* wgmma side (cuda_op_conv.c): 1 and the node's arguments at `batch` as it runs (its output slice, output
 * type, activation; *res 1 when it reads a fused residual), weights and bias when fp16 node ni can run the
 * wgmma kernel on this device, else 0. ri__cu_conv_set_tactic applies a tactic with wg set. */
int ri__cu_conv_wg_tune_args(const cu_state *st, int ni, int batch, ri__cu_convgemm_args *ga, const void **w,
                             const float **bias, int *res);
/* Build: keeps the cuDNN algorithm context c chose for node ni (a cuDNN convolution) as its tactic. */
void ri__cu_conv_keep_algo(cu_ctx *c, int ni);

/* Depthwise (k_dwconv.cu) and stem (k_stemconv.cu) convolutions store their kernel variant per batch
 * bucket (cuda_tune_direct.c; every variant gives the same bits, so the buckets may differ):
 *   bits 28..30    0, bit 27 1
 *   bits 0..11     variant of bucket b in bits 3b .. 3b + 2
 *   bits 12..26    the timed time of the maximum batch's variant, microseconds, half float without sign
 * A stored variant that does not apply where the node runs is variant 0 (the same bits). */
#define RI__CU_TAC_VAR (1 << 27)
/* A depthwise node of an fp16 engine built with half accumulation (ri_builder_set_half_accumulation) that
 * runs the half-arithmetic kernel (k_dwconv_h2.cu, dwconv_h2_f16) at every batch stores exactly this code:
 * bits 27 and 28, nothing else (no variant code has bit 28; depthwise nodes decode no GEMM form). A node with
 * it runs the kernel when loaded too, whatever the environment says; where the kernel refuses the node
 * (another geometry than the file's: not expected) it runs the float variant 0. */
#define RI__CU_TAC_DWH (RI__CU_TAC_VAR | RI__CU_TAC_PW)
typedef struct {
  int var[RI__CU_TAC_BUCKETS]; /* 0 .. 7 */
  float us;
} ri__cu_var_tac;
int32_t ri__cu_var_tac_encode(const ri__cu_var_tac *t);
/* 1 and *t when code is a variant tactic, else 0. */
int ri__cu_var_tac_decode(int32_t code, ri__cu_var_tac *t);
/* Conv side (cuda_op_conv.c) of the variant tuning. ri__cu_conv_var_count: the variants of a depthwise or
 * stem node that runs and has no stored tactic (0 for any other node), *stem 1 for a stem; _bytes: its
 * input and output bytes at `batch`; _key: its geometry for the timing cache; _launch: one run of
 * variant v at `batch` from x into y on stream s; set_var_tactic applies a tactic (and names the node). */
int ri__cu_conv_var_count(const cu_state *st, int ni, int *stem);
/* How many of a node's first variants give variant 0's bits (and may differ per bucket); the variants past
 * them (the stem's tensor-core one) sum in their own order: a node runs one of them at every batch or none.
 */
int ri__cu_conv_var_exact(const cu_state *st, int ni);
void ri__cu_conv_var_bytes(const cu_state *st, int ni, int batch, size_t *xb, size_t *yb);
void ri__cu_conv_var_key(const cu_state *st, int ni, char *buf, size_t cap);
cudaError_t ri__cu_conv_var_launch(const cu_state *st, int ni, int batch, int v, cudaStream_t s,
                                   const void *x, void *y);
void ri__cu_conv_set_var_tactic(cu_state *st, int ni, const ri__cu_var_tac *t);
/* Times the variants of every depthwise and stem node (cuda_tune_direct.c), as ri__cu_tune does for the
 * GEMMs (called by it). RI_CUDA_DW_TACTICS / RI_CUDA_STEM_TACTICS: 0 keeps variant 0 (no tactic stored;
 * for before/after comparisons), N > 0 chooses variant N wherever it applies, untimed (tests).
 * RI_CUDA_DW_SMEM=0: the depthwise variants RI__CU_DW_SMEM_FIRST .. are not timed (A/B of them alone);
 * RI_CUDA_DW_PIPE=0: RI__CU_DW_PIPE_FIRST .. are not (likewise). */
ri_status ri__cu_tune_direct(cu_state *st, int level, ri__err *err);
/* 1 when the convolution adds a fused residual (cuda_fuse.c): the tuner times it with one. */
int ri__cu_conv_tune_residual(const cu_state *st, int ni);

/* Times the candidates of every tunable convolution on the engine's device (st->cfg.tune_level 1..5; 0
 * does nothing), through st->cfg.tcache when set, and applies the winners. A failure of the timing
 * itself (no memory for its buffers, a launch error) leaves the heuristics in place; only an out-of-memory
 * of the host or a cache error is returned. */
ri_status ri__cu_tune(cu_state *st, ri__err *err);

#endif
