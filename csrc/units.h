// The K units' parameters as every kernel (CPU and CUDA) reads them:
// contiguous arrays in the compute dtype, a null when there are no output
// weights (a_k = 1). Plain data and no includes beyond <cstdint>, so that the
// per-instruction-set CPU kernels and nvcc can both take it.
#pragma once

#include <cstdint>

namespace relu_ext {

// Ptr: how a kernel holds a pointer to T; the CUDA emulator's kernels take
// bounds-checked ones (csrc/cuda/device_api.h).
template <class T, class Ptr = const T*>
struct Units {
  Ptr m;
  Ptr b;
  Ptr a;
  int64_t count;
};

}  // namespace relu_ext
