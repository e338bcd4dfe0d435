// The few points where the CUDA sources touch the CUDA runtime, so that the
// same kernels and launchers also compile as host C++ against the test-only
// emulator (tests/cuda_emu/cuda_emulator.h, which defines
// RELU_EXT_CUDA_EMULATOR and is included before this project's sources):
//
//   RELU_EXT_LAUNCH(kernel, grid, block, shared_bytes, stream, args...)
//       launches and then checks the launch (C10_CUDA_KERNEL_LAUNCH_CHECK),
//       so no launch can go unchecked; `kernel` is a function (pointer) name,
//       so template arguments with commas stay outside the macro.
//   RELU_EXT_DYNAMIC_SHARED(T, name)
//       T* name pointing at the block's dynamic shared memory.
//   relu_ext::cuda::DeviceGuard, relu_ext::cuda::current_stream()
//       c10::cuda::CUDAGuard and the current stream of the guarded device.
//   RELU_EXT_CUDA_IMPL(lib)
//       TORCH_LIBRARY_IMPL(relu_ext, CUDA, lib); the emulator registers the
//       same launchers as relu_ext_emu's CPU kernels instead.
#pragma once

#if defined(RELU_EXT_CUDA_EMULATOR)

#include <c10/core/Device.h>
#include <torch/library.h>
#define RELU_EXT_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  ::relu_ext_emu::launch(kernel, grid, block, shared_bytes, __VA_ARGS__)
#define RELU_EXT_DYNAMIC_SHARED(T, name) \
  T* const name = static_cast<T*>(::relu_ext_emu::dynamic_shared_memory())
#define RELU_EXT_CUDA_IMPL(lib) TORCH_LIBRARY_IMPL(relu_ext_emu, CPU, lib)

namespace relu_ext::cuda {
struct DeviceGuard {
  explicit DeviceGuard(c10::Device) {}
};
inline ::relu_ext_emu::Stream current_stream() { return {}; }
}  // namespace relu_ext::cuda

#else

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#define RELU_EXT_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  do {                                                                 \
    kernel<<<grid, block, shared_bytes, stream>>>(__VA_ARGS__);        \
    C10_CUDA_KERNEL_LAUNCH_CHECK();                                    \
  } while (0)
// 16-byte aligned, enough for any type the kernels stage (double included).
#define RELU_EXT_DYNAMIC_SHARED(T, name)                     \
  extern __shared__ __align__(16) unsigned char relu_ext_dynamic_shared_[]; \
  T* const name = reinterpret_cast<T*>(relu_ext_dynamic_shared_)
#define RELU_EXT_CUDA_IMPL(lib) TORCH_LIBRARY_IMPL(relu_ext, CUDA, lib)

namespace relu_ext::cuda {
using DeviceGuard = c10::cuda::CUDAGuard;
inline cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }
}  // namespace relu_ext::cuda

#endif
