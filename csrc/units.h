// The K units' parameters as every kernel (CPU and CUDA) reads them:
// contiguous arrays in the compute dtype, a null when there are no output
// weights (a_k = 1). Plain data and no includes beyond <cstdint>, so that the
// per-instruction-set CPU kernels and nvcc can both take it.
#pragma once

#include <cstdint>

namespace relu_ext {

template <class T>
struct Units {
  const T* m;
  const T* b;
  const T* a;
  int64_t count;
};

}  // namespace relu_ext
