// The CPU kernels built for AVX2 with FMA and F16C (float16 conversions).
#include "../kernel_table.h"

#if defined(__x86_64__) && !defined(RELU_EXT_NO_ISA_DISPATCH)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#define RELU_EXT_CPU_ISA avx2
#define RELU_EXT_ISA_NAME "avx2"
#define RELU_EXT_VEC_BYTES 32
#include "../relu_sum_kernels.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const relu_ext::cpu::KernelTable* relu_ext::cpu::avx2_kernels() {
  return &avx2::kTable;
}
#else
const relu_ext::cpu::KernelTable* relu_ext::cpu::avx2_kernels() {
  return nullptr;
}
#endif
