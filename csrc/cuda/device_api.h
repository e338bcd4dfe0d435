// The few points where the CUDA sources touch the CUDA runtime, so that the
// same kernels and launchers also compile as host C++ against the test-only
// emulator (tests/cuda/cuda_emu/cuda_emulator.h, which defines
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
//   RELU_EXT_GRID_CONSTANT
//       __grid_constant__ on the GPU: a struct parameter the kernel reads in
//       place, where a by-value one gets a copy per thread (the layout's
//       copy cost the shared forward kernel registers: docs/cuda.md);
//       nothing under the emulator.
//   global_ptr<T>, RELU_EXT_RESTRICT
//       a kernel's pointer into global memory: on the GPU a plain T* (and
//       __restrict__), so the machine code is that of raw pointers; under the
//       emulator a bounds-checked pointer (relu_ext_emu::checked_ptr).
//   DeviceUnits<T>
//       the units' parameters (units.h) as a kernel reads them: Units<T>
//       itself on the GPU, with checked pointers under the emulator.
#pragma once

#include "../units.h"

#if defined(RELU_EXT_CUDA_EMULATOR)

#include <c10/core/Device.h>
#include <torch/library.h>
#define RELU_EXT_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)                        \
  ::relu_ext_emu::launch_named(::relu_ext_emu::kernel_name<kernel>(), kernel, grid, block, \
                               shared_bytes, __VA_ARGS__)
#define RELU_EXT_DYNAMIC_SHARED(T, name) \
  T* const name = static_cast<T*>(::relu_ext_emu::dynamic_shared_memory())
#define RELU_EXT_CUDA_IMPL(lib) TORCH_LIBRARY_IMPL(relu_ext_emu, CPU, lib)

#define RELU_EXT_GRID_CONSTANT
#define RELU_EXT_RESTRICT

namespace relu_ext {
// The launcher's Units<T> (raw pointers) as the kernel's checked DeviceUnits.
template <class T, class Arg>
Units<T, ::relu_ext_emu::checked_ptr<const T>> kernel_argument(
    std::type_identity<Units<T, ::relu_ext_emu::checked_ptr<const T>>>, Arg&& u,
    const std::string& what, std::vector<std::unique_ptr<std::string>>& names) {
  using Checked = ::relu_ext_emu::checked_ptr<const T>;
  auto checked = [&](const T* p, const char* field) {
    names.push_back(std::make_unique<std::string>(what + field));
    return Checked(p, names.back().get());
  };
  return {checked(u.m, ".m"), checked(u.b, ".b"), checked(u.a, ".a"), u.count};
}
}  // namespace relu_ext

namespace relu_ext::cuda {
struct DeviceGuard {
  explicit DeviceGuard(c10::Device) {}
};
inline ::relu_ext_emu::Stream current_stream() { return {}; }
template <class T>
using global_ptr = ::relu_ext_emu::checked_ptr<T>;
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

#define RELU_EXT_GRID_CONSTANT __grid_constant__
#define RELU_EXT_RESTRICT __restrict__

namespace relu_ext::cuda {
template <class T>
using global_ptr = T*;
using DeviceGuard = c10::cuda::CUDAGuard;
inline cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }
}  // namespace relu_ext::cuda

#endif

namespace relu_ext::cuda {
template <class T>
using DeviceUnits = Units<T, global_ptr<const T>>;
}  // namespace relu_ext::cuda
