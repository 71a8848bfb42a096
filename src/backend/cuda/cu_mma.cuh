/* Tensor-core building blocks shared by the own kernels (k_convgemm.cu, k_irblock.cu), sm_80 and later:
 * 16-byte asynchronous copies global -> shared, ldmatrix of four 8x8 half tiles, and the m16n8k16 half
 * multiply with float accumulation. Included only by the .cu files of this directory. */
#ifndef RI_BACKEND_CUDA_CU_MMA_CUH
#define RI_BACKEND_CUDA_CU_MMA_CUH

namespace ri_cu_mma {

__device__ __forceinline__ unsigned smem_u32(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

/* 16-byte asynchronous copy global -> shared; src_bytes 0 writes zeros. */
__device__ __forceinline__ void cp16(void *dst, const void *src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
/* Waits until at most N committed groups are still in flight. */
template <int N> __device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(unsigned &r0, unsigned &r1, unsigned &r2, unsigned &r3,
                                        const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(smem_u32(p)));
}

/* c (4 floats of an m16n8 tile) += a (m16k16, 4 registers) * b (k16n8, 2 registers). */
__device__ __forceinline__ void mma16816(float *c, const unsigned *a, unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
               "{%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

} // namespace ri_cu_mma

#endif
