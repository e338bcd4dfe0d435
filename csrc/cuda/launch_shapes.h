// Launch shapes of the CUDA kernels, one definition for both builds: nvcc's
// for the GPU and the host compiler's against the test-only emulator
// (tests/cuda/cuda_emu), so the emulator runs exactly the tiling, tails and
// reduction tree the GPU runs.
#pragma once

namespace relu_ext::cuda {

// per_input_kernel (forward, dx, step_sum): kThreads threads per block, each
// holding kItems inputs in registers; units staged kTileK at a time through
// shared memory.
constexpr int kThreads = 256, kItems = 8, kTileK = 256;
// per_input_kernel by columns (short runs): kColumnTileK units of each of a
// warp's 32 lanes' channels per tile ([k][lane]: 32·kColumnTileK values each
// of m, b, a: 12 KiB in float32, 24 KiB in float64).
constexpr int kColumnTileK = 32;
// param_grad_kernel (dm, db, da): kThreads threads per block, inputs staged
// kChunk at a time; at most kMaxBlocks blocks (each a row of partial sums),
// so the grid is fixed by n alone and every sum has one order.
constexpr int kChunk = 1024, kMaxBlocks = 512;
// reduce_blocks_kernel: kReduceWarps warps per block, one column each.
constexpr int kReduceWarps = 8;

// relu_sum_linear (relu_sum_linear_kernels.cuh): kLinearThreads threads per
// block, a kLinearSide × kLinearSide grid of them, each computing a
// (kLinearTile / kLinearSide)² micro-tile of a kLinearTile × kLinearTile
// output tile; the contraction is staged kLinearStep at a time through shared
// memory. Backward block slots share kMaxBlocks as param_grad_kernel's do.
constexpr int kLinearThreads = 256, kLinearSide = 16, kLinearTile = 64, kLinearStep = 16;

}  // namespace relu_ext::cuda
