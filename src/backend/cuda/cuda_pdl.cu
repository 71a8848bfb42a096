/* Whether the kernels converted to programmatic dependent launch (PDL) launch with the attribute
 * cudaLaunchAttributeProgrammaticStreamSerialization (ri_cu_launch, cu_common.cuh).
 *
 * With the attribute, a kernel may be scheduled while its predecessor in the stream is still running (once
 * every block of the predecessor has executed griddepcontrol.launch_dependents, or exited); its own
 * griddepcontrol.wait then holds it until the predecessor has completed and its memory is visible. Every
 * converted kernel waits before its first global memory access, so the memory order is the one of plain
 * stream order; what changes is that its blocks are placed, and its launch latency paid, while the
 * predecessor drains. In a CUDA graph captured from the stream the same launch becomes a programmatic edge.
 *
 * Three conditions, all required:
 *  - RI_CUDA_PDL=1 in the environment (read once per process; anything else, or unset, is off). Off by
 *    default: slower on the H200 in the A/B of 2026-11-27 (docs/decisions.md).
 *  - The current device has compute capability 9.0 or more (PDL exists from Hopper on).
 *  - The kernels run sm_90 code (cudaFuncGetAttributes' ptxVersion of a probe kernel of this library, built
 *    with the same architectures as every kernel, is 90 or more): ri_cu_pdl_wait compiles to nothing below
 *    sm_90, and a kernel launched with the attribute but without the wait could read its predecessor's
 *    output before it is written (a build for sm_80 only, JIT-compiled on an H100, would be such a case).
 *
 * The answer is kept per device (devices 0..63; others are off). It is first asked at an eager launch: the
 * first run at a batch size is never captured (cuda_backend.c), so the queries never run during a capture.
 * A failing query gives "off" and its error is cleared, so that PDL never fails a run. */
#include <atomic>
#include <stdlib.h>

#include "backend/cuda/cu_common.cuh"

namespace {

constexpr int MAX_DEVICES = 64;

/* Never launched: its attributes tell which code of this library the device runs. */
__global__ void pdl_probe_kernel() { ri_cu_pdl_wait(); }

/* Per device: 0 not asked yet, 1 off, 2 on. */
std::atomic<int> g_state[MAX_DEVICES];

bool env_on() {
  static const bool on = [] {
    const char *e = getenv("RI_CUDA_PDL");
    return e && e[0] == '1' && e[1] == '\0';
  }();
  return on;
}

bool device_supports(int dev) {
  int major = 0;
  cudaFuncAttributes fa;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaFuncGetAttributes(&fa, pdl_probe_kernel) != cudaSuccess) {
    (void)cudaGetLastError(); /* a failed query only turns PDL off */
    return false;
  }
  return major >= 9 && fa.ptxVersion >= 90;
}

} // namespace

extern "C" int ri__cu_pdl_on(void) {
  if (!env_on()) return 0;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  if (dev < 0 || dev >= MAX_DEVICES) return 0;
  int st = g_state[dev].load(std::memory_order_relaxed);
  if (st == 0) {
    st = device_supports(dev) ? 2 : 1;
    g_state[dev].store(st, std::memory_order_relaxed);
  }
  return st == 2;
}
