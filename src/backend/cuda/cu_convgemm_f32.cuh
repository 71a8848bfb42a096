/* Device code shared by the two fp32 implicit-GEMM convolutions of fp32 engines (k_convgemm_f32.cu on the
 * CUDA cores, k_convgemm_tf32.cu on the tensor cores with 3xTF32): the output addressing of
 * ri__cu_convgemm_args, the epilogue of one element (bias, residual, activation), and split K's second
 * kernel, which adds the segments' float partials in order and runs that epilogue. Both kernels write
 * their partials in the same layout ([segment][M][m_out] floats), so one fix-up serves them, and an
 * output's epilogue is the same code whichever kernel summed it. Included only by the .cu files of this
 * directory. */
#ifndef RI_BACKEND_CUDA_CU_CONVGEMM_F32_CUH
#define RI_BACKEND_CUDA_CU_CONVGEMM_F32_CUH

#include "backend/cuda/cu_common.cuh"

namespace ri_cu_f32 {

/* Split counts beyond this are not used: the fix-up's reads grow with it. */
constexpr int MAX_SPLITS = 32;

/* bias, residual and activation of one output element, in this order. */
__device__ __forceinline__ float finish(const ri__cu_convgemm_args &p, float v, int m, int n,
                                        const float *__restrict__ bias, const float *__restrict__ res) {
  v = v + (bias ? bias[n] : 0.f);
  if (res) v = v + res[(int64_t)m * p.ldr + n];
  return ri_act(p.act, p.act_a, p.act_b, v);
}

/* Element offset of output row m (channel 0 of its slice). */
__device__ __forceinline__ int64_t out_row(const ri__cu_convgemm_args &p, int m) {
  if (p.y_img_stride == p.rows_per_img * p.ldy) return (int64_t)m * p.ldy + p.y_off;
  int img = m / (int)p.rows_per_img, rr = m - img * (int)p.rows_per_img;
  return img * p.y_img_stride + (int64_t)rr * p.ldy + p.y_off;
}

/* Split K, second part: adds the segments' partials ([s][M][m_out]) in order from zero, then the
 * epilogue (static: one copy per file that launches it). */
static __global__ void __launch_bounds__(RI_CU_THREADS)
    fixup_kernel(const ri__cu_convgemm_args p, const float *__restrict__ ws, int splits,
                 const float *__restrict__ bias, const float *__restrict__ res, float *__restrict__ y) {
  ri_cu_pdl_wait(); /* first: before any global memory access (cu_common.cuh) */
  ri_cu_pdl_trigger();
  const int64_t M = (int64_t)p.n * p.oh * p.ow, total = M * p.m_out;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int m = (int)(i / p.m_out), n = (int)(i - (int64_t)m * p.m_out);
    float t = 0.f;
    for (int s = 0; s < splits; s++)
      t = t + ws[s * total + i];
    y[out_row(p, m) + n] = finish(p, t, m, n, bias, res);
  }
}

static inline cudaError_t fixup(cudaStream_t s, const ri__cu_convgemm_args *p, const float *ws, int splits,
                                const float *bias, const float *res, float *y) {
  int64_t total = (int64_t)p->n * p->oh * p->ow * p->m_out;
  ri_cu_launch(fixup_kernel, ri_cu_blocks(total), RI_CU_THREADS, 0, s, *p, ws, splits, bias, res, y);
  return ri_cu_launched();
}

/* Whether sk's workspace holds nseg segments' partials of p. */
static inline bool split_fits(const ri__cu_convgemm_args *p, const ri__cu_splitk *sk, int nseg) {
  if (!sk || !sk->ws || nseg > MAX_SPLITS) return false;
  size_t need = (size_t)nseg * (size_t)((int64_t)p->n * p->oh * p->ow) * (size_t)p->m_out * sizeof(float);
  return need <= sk->ws_bytes;
}

} // namespace ri_cu_f32

#endif
