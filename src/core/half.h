/* IEEE 754 binary16 ("half") conversions, bit-exact and independent of the host's floating-point
 * environment. Halves travel as their 16-bit patterns (uint16_t). */
#ifndef RI_CORE_HALF_H
#define RI_CORE_HALF_H

#include <stdint.h>

/* Exact: every half (normal, subnormal, zero, inf) maps to the float of the same value; a NaN maps to a NaN
 * of the same sign whose top 10 mantissa bits are the half's mantissa. */
float ri__half_to_float(uint16_t h);

/* Rounds to the nearest half, ties to even, including into and out of the subnormal range; magnitudes of
 * 65520 and above become infinity; a NaN stays a NaN (sign and top mantissa bits kept, never turned into
 * an infinity). ri__float_to_half(ri__half_to_float(h)) == h for every one of the 65536 patterns. */
uint16_t ri__float_to_half(float f);

#endif
