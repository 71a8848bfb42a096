/* AVX2 helpers shared by the resize kernels (resize.c, resize_ycc.c): the float -> uint8 conversion of
 * their stores and the packing of three channels of 8 columns into bytes. Include only where AVX2 kernels
 * are compiled (x86 with GCC or Clang, after <immintrin.h>); every function carries RI_AVX2 so it inlines
 * into the kernels' target("avx2,fma") functions. */
#ifndef RI_VISION_STORE_AVX2_H
#define RI_VISION_STORE_AVX2_H

#include <immintrin.h>

#define RI_AVX2 __attribute__((target("avx2,fma")))

/* Round half up and clamp to 0..255 (the portable kernels' to_u8), as int32 lanes. */
RI_AVX2 static inline __m256i ri__to_i32(__m256 y) {
  y = _mm256_add_ps(y, _mm256_set1_ps(0.5f));
  y = _mm256_min_ps(_mm256_max_ps(y, _mm256_setzero_ps()), _mm256_set1_ps(255.0f));
  return _mm256_cvttps_epi32(y);
}

/* Channels c0, c1, c2 of 8 columns as bytes: *c01 holds c0's 8 bytes then c1's, *c2 holds c2's 8 bytes in
 * its low half. (int16 [c0 x..x+3, c1 x..x+3 | c0 x+4.., c1 x+4..], [c2 | c2] -> bytes -> dwords reordered
 * so that the 128-bit halves hold [c0 x..x+7, c1 x..x+7] and [c2 x..x+7, c2 x..x+7].) */
RI_AVX2 static inline void ri__pack3_u8(__m256 c0, __m256 c1, __m256 c2, __m128i *c01, __m128i *c2out) {
  __m256i s01 = _mm256_packs_epi32(ri__to_i32(c0), ri__to_i32(c1));
  __m256i s22 = _mm256_packs_epi32(ri__to_i32(c2), ri__to_i32(c2));
  __m256i b = _mm256_packus_epi16(s01, s22);
  b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  *c01 = _mm256_castsi256_si128(b);
  *c2out = _mm256_extracti128_si256(b, 1);
}

#endif
