/* GPU test of build-time tactic timing (issue 4, deliver 3) and its acceptance numbers.
 *
 *   test_cuda_tactics MODELS_DIR [model [max_batch]]     (default ssd_mobilenet_v2, 256)
 *
 * For fp16 and fp32: builds the model at builder level 0 (heuristics), then at the default level with a new
 * timing cache (cold), then again with that cache (warm), timing each build. Checks: the cold build wrote a
 * non-empty cache (not for fp32 with RI_CUDA_F32_LAYOUT=nchw, all cuDNN); where no layer runs on cuDNN, the
 * warm build's engine file is byte-identical to the cold one's (same timings, same choices); the
 * default-level engine names a tactic for at least one layer in its description (implicit-GEMM
 * convolutions with their time; fp32 in NCHW: cuDNN algorithms chosen at build) and, in NHWC engines, the
 * kernel variants of its depthwise layers, and an fp16 stem on a variant of its own summation order (the
 * tensor-core one) runs it in every batch bucket; the engine loaded
 * back from its file gives the built engine's outputs bit for bit at batch 1 and at the maximum batch; builds
 * take at most 60 s cold and 10 s warm (issue 4's acceptance). First, without a device, the tactic codes
 * (cuda_tactics.h): every code of the earlier forms (FFMA / half tiles, pointwise) decodes as before and
 * encodes back to itself; a 3xTF32 tactic encodes into its own form, which no other form (cuDNN,
 * depthwise / stem variants) decodes, and
 * back; a cuBLASLt tactic (bit 25) round-trips through its own form, which no other decoder takes; a wgmma
 * tactic (bits 28 and 23) encodes as cuda_tactics.h lays it out and round-trips, and no other decoder takes
 * it; with RI_CUDA_WG=force on a device that runs the wgmma kernel, the fp16 engine names wgmma layers;
 * small graph-pass values stay not ours. Prints "build <prec> level L <cold|warm>: S s"
 * lines, PASS/FAIL lines, and "N passed, M failed". */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../c/test_file.h"
#include "backend/cuda/cuda_tactics.h"
#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "gpu_result.h"
#include "runinfer/engine.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ri_status build(const char *path, ri_precision prec, int max_batch, int level, const char *cache,
                       ri_engine_t **e, double *secs, char *msg, size_t cap) {
  ri_builder_t *b = NULL;
  double t0 = now_s();
  ri_status s = ri_builder_create(&b);
  if (s == RI_OK) s = ri_builder_set_max_batch(b, max_batch);
  if (s == RI_OK) s = ri_builder_set_device(b, "cuda");
  if (s == RI_OK) s = ri_builder_set_precision(b, prec);
  if (s == RI_OK) s = ri_builder_set_builder_level(b, level);
  if (s == RI_OK) s = ri_builder_set_timing_cache(b, cache);
  if (s == RI_OK) s = ri_builder_build_onnx(b, path, e);
  *secs = now_s() - t0;
  snprintf(msg, cap, "%s", b ? ri_builder_last_error(b) : "");
  ri_builder_destroy(b);
  return s;
}

/* Runs both engines on the same pseudo-random inputs at `batch`; 1 when every output is bit-identical. */
static int same_outputs(ri_engine_t *a, ri_engine_t *b, int batch, char *msg, size_t cap) {
  ri_context_t *ca = NULL, *cb = NULL;
  int ok = ri_context_create(a, &ca) == RI_OK && ri_context_create(b, &cb) == RI_OK;
  int ni = ri_engine_num_inputs(a), no = ri_engine_num_outputs(a);
  void *in[16] = {0}, *oa[16] = {0}, *ob[16] = {0};
  size_t ob_bytes[16] = {0};
  ok = ok && ni <= 16 && no <= 16;
  uint32_t r = 12345;
  for (int i = 0; ok && i < ni; i++) {
    ri_tensor_info t;
    ok = ri_engine_input_info(a, i, &t) == RI_OK;
    size_t n = 1;
    for (int k = 0; ok && k < t.rank; k++)
      n *= (size_t)(t.dims[k] < 0 ? batch : t.dims[k]);
    in[i] = ok ? calloc(n, ri_dtype_size(t.dtype)) : NULL;
    ok = ok && in[i];
    for (size_t k = 0; ok && t.dtype == RI_DTYPE_FLOAT32 && k < n; k++) {
      r ^= r << 13, r ^= r >> 17, r ^= r << 5;
      ((float *)in[i])[k] = (float)(r >> 8) / (float)(1u << 24) * 4.f - 2.f;
    }
  }
  for (int o = 0; ok && o < no; o++) {
    ri_tensor_info t;
    ok = ri_context_output_shape(ca, batch, o, &t) == RI_OK;
    size_t n = 1;
    for (int k = 0; ok && k < t.rank; k++)
      n *= (size_t)t.dims[k];
    ob_bytes[o] = n * ri_dtype_size(t.dtype);
    oa[o] = malloc(ob_bytes[o] + 1);
    ob[o] = malloc(ob_bytes[o] + 1);
    ok = ok && oa[o] && ob[o];
  }
  ok = ok && ri_context_run(ca, batch, (const void *const *)in, oa) == RI_OK &&
       ri_context_run(cb, batch, (const void *const *)in, ob) == RI_OK;
  if (!ok)
    snprintf(msg, cap, "setup or run failed: %s / %s", ca ? ri_context_last_error(ca) : "",
             cb ? ri_context_last_error(cb) : "");
  for (int o = 0; ok && o < no; o++)
    if (memcmp(oa[o], ob[o], ob_bytes[o]) != 0) {
      snprintf(msg, cap, "output %d differs", o);
      ok = 0;
    }
  for (int i = 0; i < 16; i++) {
    free(in[i]);
    free(oa[i]);
    free(ob[i]);
  }
  ri_context_destroy(ca);
  ri_context_destroy(cb);
  return ok;
}

static void test_precision(const char *model_path, const char *model, ri_precision prec, const char *pname,
                           int max_batch) {
  char msg[2048], cache[128], rie[3][128];
  snprintf(cache, sizeof cache, "/tmp/ri_tac_%d_%s.cache", (int)getpid(), pname);
  remove(cache);
  for (int k = 0; k < 3; k++)
    snprintf(rie[k], sizeof rie[k], "/tmp/ri_tac_%d_%s_%d.rie", (int)getpid(), pname, k);
  ri_engine_t *e[3] = {NULL, NULL, NULL};
  const int levels[3] = {0, RI_BUILDER_LEVEL_DEFAULT, RI_BUILDER_LEVEL_DEFAULT};
  const char *what[3] = {"heuristics", "cold", "warm"};
  double secs[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) {
    ri_status s =
        build(model_path, prec, max_batch, levels[k], k ? cache : NULL, &e[k], &secs[k], msg, sizeof msg);
    printf("build %s %s max batch %d level %d %s: %.2f s\n", model, pname, max_batch, levels[k], what[k],
           secs[k]);
    if (s != RI_OK) {
      result(0, "%s %s build level %d %s: %s", model, pname, levels[k], what[k], msg);
      goto done;
    }
    if (ri_engine_save(e[k], rie[k]) != RI_OK) {
      result(0, "%s %s save: %s", model, pname, ri_engine_last_error(e[k]));
      goto done;
    }
  }
  unsigned char *cb = NULL, *f1 = NULL, *f2 = NULL;
  long cn = test_read_file(cache, &cb), n1 = test_read_file(rie[1], &f1), n2 = test_read_file(rie[2], &f2);
  /* fp32 engines in NCHW (RI_CUDA_F32_LAYOUT=nchw) run their convolutions on cuDNN: nothing to time */
  const char *f32_layout = getenv("RI_CUDA_F32_LAYOUT");
  int nchw = prec == RI_PRECISION_FP32 && f32_layout && strcmp(f32_layout, "nchw") == 0;
  if (!nchw) result(cn > 24, "%s %s: the cold build wrote a timing cache of %ld bytes", model, pname, cn);
  const char *json = NULL;
  int named = ri_engine_describe_json(e[1], &json) == RI_OK && strstr(json, " seg ") && strstr(json, " us\"");
  if (nchw) named = json && strstr(json, " ms at max batch");
  /* Not where cuDNN runs convolutions: cuDNN algorithms are searched again by each build (not cached), and a
   * close race between two algorithms may go either way. */
  if (json && !strstr(json, "cudnn"))
    result(n1 > 0 && n1 == n2 && memcmp(f1, f2, (size_t)n1) == 0,
           "%s %s: the warm-cache build's engine file equals the cold build's (%ld / %ld bytes)", model,
           pname, n1, n2);
  free(cb);
  free(f1);
  free(f2);
  result(named, "%s %s: layers name their tactic chosen at build in the engine description", model, pname);
  /* RI_CUDA_WG=force on a device where the wgmma kernel runs: fp16 1x1 layers run it, named so */
  const char *wg_env = getenv("RI_CUDA_WG");
  if (prec == RI_PRECISION_FP16 && wg_env && strcmp(wg_env, "force") == 0 && ri__cu_pwgemm_wg_available())
    result(json && strstr(json, "wgmma tiles ") && strstr(json, " us at max batch"),
           "%s %s: with RI_CUDA_WG=force, layers run the wgmma kernel (\"wgmma tiles ...\")", model, pname);
  /* depthwise kernel variants (NHWC engines, unless RI_CUDA_DW_TACTICS=0 keeps variant 0 untuned) */
  const char *dw_env = getenv("RI_CUDA_DW_TACTICS");
  if (!nchw && !(dw_env && strcmp(dw_env, "0") == 0))
    result(json && strstr(json, "dwconv_nhwc_") && strstr(json, " variants "),
           "%s %s: depthwise layers name their kernel variants chosen at build", model, pname);
  /* a stem that runs a variant of its own summation order (the tensor-core one) runs it in every bucket */
  const char *stem = json ? strstr(json, "stem_direct_f16 variants ") : NULL;
  if (stem) {
    int v[RI__CU_TAC_BUCKETS] = {0, 0, 0, 0}, own = 0, all = 1;
    int got = sscanf(stem, "stem_direct_f16 variants %d/%d/%d/%d", &v[0], &v[1], &v[2], &v[3]);
    for (int b = 0; b < RI__CU_TAC_BUCKETS; b++) {
      own |= v[b] >= RI__CU_STEM_EXACT;
      all &= v[b] == v[0];
    }
    result(got == RI__CU_TAC_BUCKETS && (!own || all),
           "%s %s: the stem's variants %d/%d/%d/%d (variant %d and up in every bucket or none)", model, pname,
           v[0], v[1], v[2], v[3], RI__CU_STEM_EXACT);
  }
  ri_runtime_t *rt = NULL;
  ri_engine_t *back = NULL;
  if (ri_runtime_create(&rt) != RI_OK || ri_runtime_load(rt, rie[1], &back) != RI_OK) {
    result(0, "%s %s load: %s", model, pname, rt ? ri_runtime_last_error(rt) : "");
  } else {
    const char *json2 = NULL;
    result(ri_engine_describe_json(back, &json2) == RI_OK && json &&
               strcmp(strstr(json, "\"layers\""), strstr(json2, "\"layers\"")) == 0,
           "%s %s: the loaded engine describes the same layers and tactics", model, pname);
    const int batches[2] = {1, max_batch};
    for (int k = 0; k < 2; k++)
      result(same_outputs(e[1], back, batches[k], msg, sizeof msg),
             "%s %s batch %d: the loaded engine's outputs equal the built engine's (%s)", model, pname,
             batches[k], msg);
  }
  ri_engine_destroy(back);
  ri_runtime_destroy(rt);
  result(secs[1] <= 60.0, "%s %s: default-level build %.2f s <= 60 s", model, pname, secs[1]);
  result(secs[2] <= 10.0, "%s %s: warm-cache build %.2f s <= 10 s", model, pname, secs[2]);
done:
  for (int k = 0; k < 3; k++) {
    ri_engine_destroy(e[k]);
    remove(rie[k]);
  }
  remove(cache);
}

/* The tactic code forms of cuda_tactics.h, built here from the documented bit layout. */
static void test_codes(void) {
  uint32_t r = 777;
  int old_ok = 1, tf_ok = 1, n_old = 0, n_tf = 0;
  for (int k = 0; k < 4000; k++) {
    r ^= r << 13, r ^= r >> 17, r ^= r << 5;
    int seg = (int)(r % 128), pwmask = (int)((r >> 7) % 16), tiles = (int)((r >> 11) & 0xff);
    uint16_t h = ri__float_to_half((float)((r >> 19) % 5000) / 7.f + 0.5f);
    int pwform = k % 2 && pwmask;
    /* the encoder leaves a pointwise bucket's bits 0 */
    for (int b = 0; pwform && b < RI__CU_TAC_BUCKETS; b++)
      if (pwmask >> b & 1) tiles &= ~(3 << 2 * b);
    int32_t code =
        pwform ? (1 << 28 | pwmask << 24 | tiles << 15 | h) : (1 << 30 | seg << 23 | tiles << 15 | h);
    ri__cu_gemm_tac t;
    memset(&t, 0x55, sizeof t);
    int ok = ri__cu_tac_decode(code, &t) && !t.tf32 && !t.wg && t.seg == (pwform ? 0 : seg) &&
             ri__float_to_half(t.us) == h && ri__cu_tac_encode(&t) == code;
    for (int b = 0; ok && b < RI__CU_TAC_BUCKETS; b++)
      ok = t.tile[b] == (pwform && (pwmask >> b & 1) ? RI__CU_TILE_PW : (tiles >> 2 * b) & 3);
    old_ok &= ok;
    n_old++;
    /* the same fields as a 3xTF32 tactic */
    ri__cu_gemm_tac u = {.seg = seg,
                         .tile = {tiles & 3, tiles >> 2 & 3, tiles >> 4 & 3, tiles >> 6 & 3},
                         .us = ri__half_to_float(h),
                         .tf32 = 1};
    int32_t c2 = ri__cu_tac_encode(&u);
    ri__cu_gemm_tac v;
    ri__cu_dnn_tac d;
    ri__cu_var_tac vt;
    ok = c2 >= 0 && (c2 >> 26) == 1 && ri__cu_tac_decode(c2, &v) && v.tf32 && v.seg == seg &&
         !ri__cu_dnn_tac_decode(c2, &d) && !ri__cu_var_tac_decode(c2, &vt) &&
         fabsf(v.us - u.us) <= u.us / 64.f && ri__cu_tac_encode(&v) == c2;
    /* a depthwise / stem variant tactic is not a GEMM tactic */
    ok = ok && !ri__cu_tac_decode((int32_t)(1u << 27 | (r & ((1u << 27) - 1))), &v);
    for (int b = 0; ok && b < RI__CU_TAC_BUCKETS; b++)
      ok = v.tile[b] == u.tile[b];
    tf_ok &= ok;
    n_tf++;
  }
  result(old_ok,
         "tactic codes: %d codes of the FFMA / half / pointwise forms decode as documented and encode back",
         n_old);
  result(tf_ok, "tactic codes: %d 3xTF32 tactics round-trip through their own form (time within 1/64)", n_tf);
  /* wgmma tactics: the pointwise form with bit 23, laid out as documented; no other decoder takes them */
  int wg_ok = 1, n_wg = 0;
  for (int k = 0; k < 4000; k++) {
    r ^= r << 13, r ^= r >> 17, r ^= r << 5;
    int seg = (int)(r % 128), tiles = (int)((r >> 7) & 0xff), s4 = (int)((r >> 15) & 15);
    /* the form keeps the time's top 8 bits */
    uint16_t h = ri__float_to_half((float)((r >> 19) % 5000) / 7.f + 0.5f) & 0x7f80;
    ri__cu_gemm_tac a, b;
    memset(&a, 0, sizeof a);
    a.wg = 1;
    a.seg = seg;
    a.us = ri__half_to_float(h);
    for (int q = 0; q < RI__CU_TAC_BUCKETS; q++)
      a.tile[q] = (tiles >> 2 * q & 3) | (s4 >> q & 1 ? RI__CU_WG_S4 : 0);
    int32_t code = ri__cu_tac_encode(&a);
    int32_t want = 1 << 28 | 1 << 23 | s4 << 24 | tiles << 15 | seg << 8 | h >> 7;
    memset(&b, 0x55, sizeof b);
    ri__cu_lt_tac l;
    ri__cu_dnn_tac d;
    ri__cu_var_tac vt;
    int ok = code == want && ri__cu_tac_decode(code, &b) && b.wg && !b.tf32 && b.seg == seg && b.us == a.us &&
             ri__cu_tac_encode(&b) == code && !ri__cu_lt_tac_decode(code, &l) &&
             !ri__cu_dnn_tac_decode(code, &d) && !ri__cu_var_tac_decode(code, &vt);
    for (int q = 0; ok && q < RI__CU_TAC_BUCKETS; q++)
      ok = b.tile[q] == a.tile[q];
    /* the same bits without bit 23 are a pointwise tactic (or a plain one with an empty mask) */
    ok = ok && ri__cu_tac_decode(code & ~(1 << 23), &b) && !b.wg;
    int bm = 0, bn = 0;
    ri__cu_tac_tile(RI__CU_KIND_WG, a.tile[0], &bm, &bn);
    const int shapes[4][2] = {{128, 64}, {64, 64}, {128, 128}, {64, 128}};
    ok = ok && bm == shapes[tiles & 3][0] && bn == shapes[tiles & 3][1];
    wg_ok &= ok;
    n_wg++;
  }
  result(
      wg_ok,
      "tactic codes: %d wgmma tactics encode as documented (bit 28 and 23) and round-trip; no other decoder "
      "takes them",
      n_wg);
  /* cuBLASLt tactics (bit 25): their own form, which no other decoder takes, and no other form decodes as one
   */
  int lt_ok = 1, n_lt = 0;
  for (int k = 0; k < 4000; k++) {
    r ^= r << 13, r ^= r >> 17, r ^= r << 5;
    /* the form keeps the time's top 11 bits */
    uint16_t h = ri__float_to_half((float)((r >> 19) % 5000) / 7.f + 0.5f) & 0xfff0;
    ri__cu_lt_tac a = {(int)(r & 7), (int)((r >> 10) & 15), (int)((r >> 3) % 128), ri__half_to_float(h),
                       (int)((r >> 30) & 1)},
                  b;
    int32_t code = ri__cu_lt_tac_encode(&a);
    ri__cu_gemm_tac g;
    ri__cu_dnn_tac d;
    ri__cu_var_tac vt;
    /* the padded form adds bit 27 (a variant code too: variants are decoded on other nodes only) */
    int ok = (code & ~(1 << 27)) >= (1 << 25) && (code & ~(1 << 27)) < (1 << 26) &&
             ((code >> 27) & 1) == a.pad && ri__cu_lt_tac_decode(code, &b) && b.algo == a.algo &&
             b.tag == a.tag && b.seg == a.seg && b.us == a.us && b.pad == a.pad &&
             ri__cu_lt_tac_encode(&b) == code && !ri__cu_tac_decode(code, &g) &&
             !ri__cu_dnn_tac_decode(code, &d) && (a.pad || !ri__cu_var_tac_decode(code, &vt));
    /* codes of every other form (bits 26, 28..30) are not cuBLASLt tactics; the old form (no bit 27) is
     * the direct one */
    for (int bit = 26; ok && bit <= 30; bit++)
      ok = bit == 27 || !ri__cu_lt_tac_decode((int32_t)(1u << bit | (r & ((1u << 26) - 1))), &b);
    ok = ok && (!(r & (1u << 25)) || (ri__cu_lt_tac_decode((int32_t)(r & ((1u << 26) - 1)), &b) && !b.pad));
    lt_ok &= ok;
    n_lt++;
  }
  result(lt_ok,
         "tactic codes: %d cuBLASLt tactics (direct and padded) round-trip through their own form, which no "
         "GEMM form shares",
         n_lt);
  ri__cu_gemm_tac t;
  ri__cu_lt_tac l;
  result(!ri__cu_tac_decode(1, &t) && !ri__cu_tac_decode((1 << 26) - 1, &t) && !ri__cu_lt_tac_decode(1, &l) &&
             !ri__cu_lt_tac_decode((1 << 25) - 1, &l),
         "tactic codes: graph-pass values below 2^25 are no tactic of ours (below 2^26: no GEMM tactic)");
}

int main(int argc, char **argv) {
  test_codes();
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODELS_DIR [model [max_batch]]\n", argv[0]);
    return 2;
  }
  const char *model = argc > 2 ? argv[2] : "ssd_mobilenet_v2";
  int max_batch = argc > 3 ? atoi(argv[3]) : 256;
  if (max_batch < 1 || max_batch > 65536) max_batch = 256;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.onnx", argv[1], model);
  if (access(path, R_OK) != 0) {
    printf("SKIP %s: not found\n%d passed, %d failed\n", path, g_pass, g_fail);
    return g_fail ? 1 : 0;
  }
  test_precision(path, model, RI_PRECISION_FP16, "fp16", max_batch);
  test_precision(path, model, RI_PRECISION_FP32, "fp32", max_batch);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
