// The real CUDA launchers and kernels of relu_sum_linear,
// csrc/cuda/relu_sum_linear_cuda.cu, compiled by the host compiler against
// the emulator, as relu_sum_cuda_emulated.cpp does for relu_sum: they register
// as the CPU kernels of relu_ext_emu::relu_sum_linear* (schemas:
// emulated_ops.py). A translation unit of its own: the two launchers' files
// each have their own anonymous-namespace helpers.
//
// The torch headers come first, before the emulator defines the CUDA
// keywords (__device__, __shared__, ...) that those headers must not see.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/core/Device.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include "cuda_emulator.h"

#include "../../../csrc/cuda/relu_sum_linear_cuda.cu"
