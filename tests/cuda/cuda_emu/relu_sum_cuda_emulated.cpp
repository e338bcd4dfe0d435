// The real CUDA launchers and kernels, csrc/cuda/relu_sum_cuda.cu, compiled
// by the host compiler against the emulator. device_api.h then registers them
// as the CPU kernels of relu_ext_emu::relu_sum and relu_ext_emu::relu_sum_backward
// (schemas: emulated_ops.py), so the tests call them on CPU tensors.
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

#include "../../../csrc/cuda/relu_sum_cuda.cu"
