/* Host device fingerprint: "cpu:<arch>:<features>", the ISA extensions that CPU kernels may be chosen for.
 * An engine records the fingerprint it was built for and refuses to load where it differs
 * (ri__rie_check_compat), because tactics picked at build time may use instructions the host lacks. */
#include "engine/rie_format.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define RI_FP_X86 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#define RI_FP_ARM64 1
#endif

static char g_fp[256];
static pthread_once_t g_fp_once = PTHREAD_ONCE_INIT;

static void append(char *buf, size_t cap, int *first, const char *name) {
  size_t len = strlen(buf);
  snprintf(buf + len, cap - len, "%s%s", *first ? "" : ",", name);
  *first = 0;
}

#ifdef RI_FP_X86
/* XCR0: which register states the OS saves on context switch. AVX needs bits 1-2 (SSE, AVX); AVX-512
 * also needs bits 5-7 (opmask, upper ZMM halves, ZMM16-31). A feature the OS does not save is unusable. */
static uint64_t xcr0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t)hi << 32 | lo;
}

static void detect_x86(char *buf, size_t cap) {
  unsigned a, b, c, d;
  unsigned c1 = 0, d1 = 0, b7 = 0, c7 = 0, d7 = 0, a71 = 0;
  unsigned max = __get_cpuid_max(0, NULL);
  if (max >= 1 && __get_cpuid(1, &a, &b, &c, &d)) {
    c1 = c;
    d1 = d;
  }
  if (max >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    b7 = b;
    c7 = c;
    d7 = d;
    __cpuid_count(7, 1, a, b, c, d);
    a71 = a;
  }
  (void)d1;
  (void)d7;
  int os_avx = 0, os_avx512 = 0;
  if (c1 & (1u << 27)) { /* OSXSAVE */
    uint64_t x = xcr0();
    os_avx = (x & 0x6) == 0x6;
    os_avx512 = os_avx && (x & 0xE0) == 0xE0;
  }
  int first = 1;
  if (c1 & (1u << 19)) append(buf, cap, &first, "sse4_1");
  if (c1 & (1u << 20)) append(buf, cap, &first, "sse4_2");
  if (os_avx && (c1 & (1u << 28))) append(buf, cap, &first, "avx");
  if (os_avx && (b7 & (1u << 5))) append(buf, cap, &first, "avx2");
  if (os_avx && (c1 & (1u << 12))) append(buf, cap, &first, "fma");
  if (os_avx && (c1 & (1u << 29))) append(buf, cap, &first, "f16c");
  if (os_avx && (a71 & (1u << 4))) append(buf, cap, &first, "avxvnni");
  if (os_avx512 && (b7 & (1u << 16))) append(buf, cap, &first, "avx512f");
  if (os_avx512 && (b7 & (1u << 17))) append(buf, cap, &first, "avx512dq");
  if (os_avx512 && (b7 & (1u << 30))) append(buf, cap, &first, "avx512bw");
  if (os_avx512 && (b7 & (1u << 31))) append(buf, cap, &first, "avx512vl");
  if (os_avx512 && (c7 & (1u << 11))) append(buf, cap, &first, "avx512vnni");
  if (os_avx512 && (a71 & (1u << 5))) append(buf, cap, &first, "avx512bf16");
  if (os_avx512 && (d7 & (1u << 23))) append(buf, cap, &first, "avx512fp16");
}
#endif

#ifdef RI_FP_ARM64
/* Linux arm64 HWCAP bits (stable kernel ABI). */
static void detect_arm64(char *buf, size_t cap) {
  unsigned long hw = getauxval(AT_HWCAP);
  int first = 1;
  if (hw & (1ul << 1)) append(buf, cap, &first, "asimd");
  if (hw & (1ul << 9)) append(buf, cap, &first, "fphp");
  if (hw & (1ul << 10)) append(buf, cap, &first, "asimdhp");
  if (hw & (1ul << 20)) append(buf, cap, &first, "asimddp");
  if (hw & (1ul << 22)) append(buf, cap, &first, "sve");
}
#endif

static void fp_init(void) {
  const char *arch =
#if defined(__x86_64__)
      "x86_64";
#elif defined(__i386__)
      "x86";
#elif defined(__aarch64__)
      "aarch64";
#elif defined(__arm__)
      "arm";
#elif defined(__riscv)
      "riscv";
#else
      "unknown";
#endif
  char feats[200] = "";
#if defined(RI_FP_X86)
  detect_x86(feats, sizeof feats);
#elif defined(RI_FP_ARM64)
  detect_arm64(feats, sizeof feats);
#endif
  snprintf(g_fp, sizeof g_fp, "cpu:%s:%s", arch, feats);
}

const char *ri__rie_host_fingerprint(void) {
  pthread_once(&g_fp_once, fp_init);
  return g_fp;
}
