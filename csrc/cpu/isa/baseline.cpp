// The CPU kernels built for the compiler's baseline target (SSE2 on x86-64,
// NEON on AArch64): 16-byte vectors, no FMA on x86-64. Always compiled; the
// fallback when no better instruction set is available or compiled in.
#include "../kernel_table.h"

#define RELU_EXT_CPU_ISA baseline
#define RELU_EXT_ISA_NAME "baseline"
#define RELU_EXT_VEC_BYTES 16
#include "../relu_sum_kernels.h"

const relu_ext::cpu::KernelTable* relu_ext::cpu::baseline_kernels() {
  return &baseline::kTable;
}
