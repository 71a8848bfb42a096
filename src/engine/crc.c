#include "engine/crc.h"

#include <pthread.h>
#include <string.h>

/* Slicing-by-8 tables: k_tab[0] is the classic byte table; k_tab[k][b] is the CRC of byte b followed by k
 * zero bytes, which lets one step fold eight input bytes. Built once on first use. */
static uint32_t k_tab[8][256];
static pthread_once_t k_tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void) {
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    k_tab[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; b++)
    for (int k = 1; k < 8; k++)
      k_tab[k][b] = (k_tab[k - 1][b] >> 8) ^ k_tab[0][k_tab[k - 1][b] & 0xFF];
}

static uint32_t load_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t ri__crc32c_portable(uint32_t crc, const void *data, size_t n) {
  pthread_once(&k_tab_once, tab_init);
  const uint8_t *p = data;
  uint32_t c = ~crc;
  while (n && ((uintptr_t)p & 7)) {
    c = (c >> 8) ^ k_tab[0][(c ^ *p++) & 0xFF];
    n--;
  }
  while (n >= 8) {
    uint32_t lo = load_le32(p) ^ c, hi = load_le32(p + 4);
    c = k_tab[7][lo & 0xFF] ^ k_tab[6][(lo >> 8) & 0xFF] ^ k_tab[5][(lo >> 16) & 0xFF] ^ k_tab[4][lo >> 24] ^
        k_tab[3][hi & 0xFF] ^ k_tab[2][(hi >> 8) & 0xFF] ^ k_tab[1][(hi >> 16) & 0xFF] ^ k_tab[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--)
    c = (c >> 8) ^ k_tab[0][(c ^ *p++) & 0xFF];
  return ~c;
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define RI_CRC_HW 1
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *data, size_t n) {
  const uint8_t *p = data;
  uint32_t c = ~crc;
  while (n && ((uintptr_t)p & 7)) {
    c = __builtin_ia32_crc32qi(c, *p++);
    n--;
  }
#if defined(__x86_64__)
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c64 = __builtin_ia32_crc32di(c64, w);
    p += 8;
    n -= 8;
  }
  c = (uint32_t)c64;
#endif
  while (n >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    c = __builtin_ia32_crc32si(c, w);
    p += 4;
    n -= 4;
  }
  while (n--)
    c = __builtin_ia32_crc32qi(c, *p++);
  return ~c;
}
#endif

uint32_t ri__crc32c(uint32_t crc, const void *data, size_t n) {
#ifdef RI_CRC_HW
  if (__builtin_cpu_supports("sse4.2")) return crc_hw(crc, data, n);
#endif
  return ri__crc32c_portable(crc, data, n);
}
