// Kernels that test the emulator itself (tests/cuda/test_cuda_emulator.py): that it
// reports a hung or divergent barrier where it is, that a returned thread
// counts as arrived, that shuffles follow CUDA's width and mask rules, and that
// atomics are atomic, that global-memory accesses are bounds-checked. Registered as relu_ext_emu::selftest_* ops.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/stack.h>
#include <torch/library.h>

#include "cuda_emulator.h"

#include "../../../csrc/cuda/launch_shapes.h"

namespace {

// Thread 1 stays away from the barrier (sleeping, then returning) for longer
// than the timeout: the others' __syncthreads() must fail, naming this line.
__global__ void barrier_never_reached(double sleep_seconds) {
  if (threadIdx.x == 1) {
    std::this_thread::sleep_for(std::chrono::duration<double>(sleep_seconds));
    return;
  }
  __syncthreads();  // SELFTEST_BARRIER_TIMEOUT_LINE
}

// Half the block waits at one barrier, half at another.
__global__ void barrier_divergent() {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
}

// Thread 0 returns at once; the other threads' barriers must still complete
// (a returned thread counts as arrived), and the values staged before the
// barrier must be visible after it.
__global__ void barrier_with_returned_thread(int64_t* out) {
  __shared__ int64_t staged[64];
  if (threadIdx.x == 0) return;
  staged[threadIdx.x] = threadIdx.x;
  __syncthreads();
  int64_t sum = 0;
  for (int i = 1; i < 64; ++i) sum += staged[i];
  __syncthreads();
  out[threadIdx.x] = sum;
}

// Lane l of warp w holds 100·w + l; lanes in mask apply the shuffle.
__global__ void shuffle_kernel(int64_t* out, int64_t op, int64_t arg, int64_t width, uint32_t mask) {
  const int lane = threadIdx.x % 32;
  const int64_t value = 100 * (threadIdx.x / 32) + lane;
  if (!(mask >> lane & 1u)) {
    out[threadIdx.x] = -1;
    return;
  }
  const int w = static_cast<int>(width);
  switch (op) {
    case 0: out[threadIdx.x] = __shfl_sync(mask, value, static_cast<int>(arg), w); break;
    case 1: out[threadIdx.x] = __shfl_up_sync(mask, value, static_cast<unsigned>(arg), w); break;
    case 2: out[threadIdx.x] = __shfl_down_sync(mask, value, static_cast<unsigned>(arg), w); break;
    default: out[threadIdx.x] = __shfl_xor_sync(mask, value, static_cast<int>(arg), w); break;
  }
}

// Copies in[index] to out[0]: in and out are bounds-checked pointers.
__global__ void read_element(relu_ext_emu::checked_ptr<const float> in,
                             relu_ext_emu::checked_ptr<float> out, int64_t index) {
  if (threadIdx.x == 0) out[0] = in[index];
}

__global__ void atomic_add_kernel(float* total, int64_t* count, int64_t repeats) {
  for (int64_t i = 0; i < repeats; ++i) {
    atomicAdd(total, 1.0f);
    atomicAdd(count, int64_t{1});
  }
}

// The launch shapes as compiled into the emulated kernels.
std::vector<int64_t> launch_shapes() {
  using namespace relu_ext::cuda;
  return {kThreads, kItems, kTileK, kChunk, kMaxBlocks, kReduceWarps};
}

double set_barrier_timeout(double seconds) {
  return relu_ext_emu::barrier_timeout_seconds.exchange(seconds);
}

void selftest_barrier_timeout(double sleep_seconds) {
  relu_ext_emu::launch(barrier_never_reached, dim3(1), dim3(4), 0, sleep_seconds);
}

void selftest_barrier_divergent() {
  relu_ext_emu::launch(barrier_divergent, dim3(1), dim3(32), 0);
}

at::Tensor selftest_barrier_returned_thread() {
  auto out = at::empty({64}, at::kLong);
  out.fill_(0);
  relu_ext_emu::launch(barrier_with_returned_thread, dim3(1), dim3(64), 0,
                       out.mutable_data_ptr<int64_t>());
  return out;
}

at::Tensor selftest_shuffle(int64_t threads, const std::string& op, int64_t arg, int64_t width,
                            int64_t mask) {
  const int64_t code = op == "idx" ? 0 : op == "up" ? 1 : op == "down" ? 2 : op == "xor" ? 3 : -1;
  TORCH_CHECK_VALUE(code >= 0, "op must be idx, up, down or xor, but got ", op);
  auto out = at::empty({threads}, at::kLong);
  relu_ext_emu::launch(shuffle_kernel, dim3(1), dim3(static_cast<unsigned>(threads)), 0,
                       out.mutable_data_ptr<int64_t>(), code, arg, width,
                       static_cast<uint32_t>(mask));
  return out;
}

at::Tensor selftest_read_element(const at::Tensor& in, int64_t index) {
  auto out = at::empty({1}, at::kFloat);
  relu_ext_emu::launch_named(relu_ext_emu::kernel_name<read_element>(), read_element, dim3(1),
                             dim3(32), 0, in.const_data_ptr<float>(),
                             out.mutable_data_ptr<float>(), index);
  return out;
}

at::Tensor selftest_atomic_add(int64_t threads, int64_t repeats) {
  auto total = at::empty({1}, at::kFloat);
  auto count = at::empty({1}, at::kLong);
  total.fill_(0);
  count.fill_(0);
  relu_ext_emu::launch(atomic_add_kernel, dim3(2), dim3(static_cast<unsigned>(threads)), 0,
                       total.mutable_data_ptr<float>(), count.mutable_data_ptr<int64_t>(),
                       repeats);
  return at::stack({total.to(at::kLong), count}).flatten();
}

}  // namespace

TORCH_LIBRARY(relu_ext_emu, lib) {
  lib.def("launch_shapes() -> int[]", &launch_shapes);
  lib.def("set_barrier_timeout(float seconds) -> float", &set_barrier_timeout);
  lib.def("selftest_barrier_timeout(float sleep_seconds) -> ()", &selftest_barrier_timeout);
  lib.def("selftest_barrier_divergent() -> ()", &selftest_barrier_divergent);
  lib.def("selftest_barrier_returned_thread() -> Tensor", &selftest_barrier_returned_thread);
  lib.def("selftest_shuffle(int threads, str op, int arg, int width, int mask) -> Tensor",
          &selftest_shuffle);
  lib.def("selftest_read_element(Tensor input, int index) -> Tensor", &selftest_read_element);
  lib.def("selftest_atomic_add(int threads, int repeats) -> Tensor", &selftest_atomic_add);
}
