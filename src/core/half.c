#include "core/half.h"

#include <string.h>

static uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

float ri__half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return bits_float(sign);
  /* Subnormal: mant * 2^-24. Shift the leading one up to the implicit-bit position (bit 10); each shift
   * lowers the exponent by one from that of 2^-14, the smallest normal. */
  uint32_t e = 113;
  while (!(mant & 0x400u)) {
    mant <<= 1;
    e--;
  }
  return bits_float(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

uint16_t ri__float_to_half(float f) {
  uint32_t x = float_bits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {
    if (ax == 0x7f800000u) return (uint16_t)(sign | 0x7c00u);
    uint32_t m = (ax >> 13) & 0x3ffu;
    if (m == 0) m = 0x200u; /* payload only in the dropped bits: keep it a NaN */
    return (uint16_t)(sign | 0x7c00u | m);
  }
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520: rounds past the largest half */
  if (ax >= 0x38800000u) {
    /* Normal half range [2^-14, 65520): rebias the exponent (127 -> 15) and round the 13 dropped bits to
     * nearest even; a carry out of the mantissa correctly bumps the exponent. */
    uint32_t r = ax - 0x38000000u + 0xfffu + ((ax >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
  }
  if (ax < 0x33000000u) return sign; /* below 2^-25 (exactly 2^-25 ties to the even zero) */
  /* Subnormal half: value = m * 2^(e - 150) with a 24-bit significand m; in units of 2^-24 that is
   * m >> (126 - e), rounded to nearest even. A result of 0x400 is the smallest normal, as it should be. */
  uint32_t e = ax >> 23;
  uint32_t m = (ax & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126u - e; /* 14 .. 24 */
  uint32_t q = m >> shift;
  uint32_t rem = m & ((1u << shift) - 1u);
  uint32_t halfway = 1u << (shift - 1u);
  if (rem > halfway || (rem == halfway && (q & 1u))) q++;
  return (uint16_t)(sign | q);
}
