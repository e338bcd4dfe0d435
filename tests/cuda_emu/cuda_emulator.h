// A test-only emulation of the CUDA execution model, so the host compiler can
// build relu_ext's CUDA kernels and launchers unchanged and the tests can run
// them on CPU tensors. Include it after any torch header and before the CUDA
// source (it defines the CUDA keywords away).
//
// Model:
//   - every CUDA thread of a block is a host thread; threadIdx, blockIdx,
//     blockDim and gridDim are thread_local; the blocks of a launch run one
//     after another (the same host threads serve each block in turn),
//     and launches are serialised, so a function-local `static` is exactly one
//     block's shared memory (__shared__ is `static`);
//   - the threads of a block start together (a latch), so they interleave as
//     freely as the host scheduler lets them: a missing barrier shows up as a
//     wrong result here and as a data race under ThreadSanitizer;
//   - __syncthreads() is a barrier that counts a thread that has returned as
//     arrived (as the hardware does), fails when threads of one block wait at
//     different __syncthreads() (divergence), and fails after a timeout naming
//     the file and line instead of hanging;
//   - warp shuffles go through a per-warp exchange: every lane in the mask
//     writes its value, all wait, each reads its source lane, all wait again;
//     width, mask and out-of-range semantics as the CUDA Programming Guide
//     states them, and a lane reading from a lane outside the mask is an error;
//   - dynamic shared memory (RELU_EXT_DYNAMIC_SHARED) is fresh per block and
//     filled with 0xFF bytes, a NaN in float and double, so reading a slot no
//     thread wrote poisons the result; static __shared__ arrays cannot be
//     poisoned so (they keep the previous block's values), which is one
//     reason the tests also run under ThreadSanitizer;
//   - atomics are std::atomic_ref operations.
// Any failure in a kernel thread ends the launch with a std::runtime_error
// (a RuntimeError in Python) that names the block and the first failure.
#pragma once

#define RELU_EXT_CUDA_EMULATOR 1

#include <algorithm>
#include <atomic>
#include <barrier>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __syncthreads() ::relu_ext_emu::syncthreads(__FILE__, __LINE__)
#define __shfl_sync(...) ::relu_ext_emu::shfl_sync(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::relu_ext_emu::shfl_up_sync(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ::relu_ext_emu::shfl_down_sync(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::relu_ext_emu::shfl_xor_sync(__FILE__, __LINE__, __VA_ARGS__)

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
inline thread_local dim3 threadIdx{0, 0, 0};
inline thread_local dim3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;

template <class T>
T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value);
}
template <class T>
T atomicExch(T* address, T value) {
  return std::atomic_ref<T>(*address).exchange(value);
}
template <class T>
T atomicCAS(T* address, T expected, T desired) {
  std::atomic_ref<T>(*address).compare_exchange_strong(expected, desired);
  return expected;  // the old value, whether or not it was replaced
}

namespace relu_ext_emu {

struct Stream {};

// Seconds a barrier or shuffle waits for the other threads before failing.
inline std::atomic<double> barrier_timeout_seconds{10.0};

inline std::string where(const char* file, int line) {
  const char* slash = std::strrchr(file, '/');
  return std::string(slash ? slash + 1 : file) + ":" + std::to_string(line);
}

// The state one block's threads share: the barrier, the warps' exchanges,
// dynamic shared memory, and the first failure (after which every wait of
// the block fails at once instead of waiting for threads that will not come).
class Block {
 public:
  Block(dim3 index, int threads, size_t shared_bytes)
      : index_(index),
        threads_(threads),
        warps_((threads + warpSize - 1) / warpSize),
        shared_(shared_bytes ? new std::max_align_t[(shared_bytes + sizeof(std::max_align_t) - 1) /
                                                    sizeof(std::max_align_t)]
                             : nullptr) {
    if (shared_bytes) std::memset(shared_.get(), 0xFF, shared_bytes);
  }

  void* dynamic_shared() { return shared_.get(); }

  void syncthreads(const char* file, int line) {
    std::unique_lock lock(mutex_);
    throw_if_failed();
    if (arrived_ == 0) {
      phase_at_ = where(file, line);
    } else if (phase_at_ != where(file, line)) {
      fail("__syncthreads() at " + where(file, line) + " and at " + phase_at_ +
           " in the same phase: the block's threads diverged");
    }
    ++arrived_;
    const uint64_t phase = phase_;
    release_if_complete();
    wait(lock, [&] { return phase_ != phase; }, [&] {
      return "__syncthreads() at " + where(file, line) + " timed out after " + seconds() +
             ": " + std::to_string(arrived_) + " of " + std::to_string(threads_) +
             " threads arrived, " + std::to_string(returned_) +
             " returned; the others never reached this barrier";
    });
  }

  void thread_returned() {
    std::lock_guard lock(mutex_);
    ++returned_;
    release_if_complete();
  }

  // One shuffle of a warp: lanes in `mask` publish `value` and each gets the
  // value of lane source(lane) (its own value where source returns -1).
  template <class T, class Source>
  T shuffle(const char* op, const char* file, int line, unsigned mask, T value, Source source) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(uint64_t));
    const int linear = linear_thread_index();
    const int lane = linear % warpSize;
    Warp& warp = warps_[linear / warpSize];
    const std::string at = std::string(op) + "() at " + where(file, line);
    std::unique_lock lock(mutex_);
    throw_if_failed();
    if (!(mask >> lane & 1u))
      fail(at + ": called by lane " + std::to_string(lane) + ", which is not in its mask " +
           hex(mask));
    std::memcpy(&warp.slots[lane], &value, sizeof(T));
    warp_barrier(lock, warp, mask, at);  // every lane has published
    const int src = source(lane);
    if (src >= 0 && !(mask >> src & 1u))
      fail(at + ": lane " + std::to_string(lane) + " reads lane " + std::to_string(src) +
           ", which is not in the mask " + hex(mask));
    T result = value;
    if (src >= 0) std::memcpy(&result, &warp.slots[src], sizeof(T));
    warp_barrier(lock, warp, mask, at);  // every lane has read
    return result;
  }

  void record_failure(const std::string& message) {
    std::lock_guard lock(mutex_);
    if (failure_.empty()) failure_ = message;
    condition_.notify_all();
  }
  // Read once every thread has returned from the block.
  const std::string& failure() const { return failure_; }

 private:
  struct Warp {
    uint64_t slots[warpSize] = {};
    int arrived = 0;
    uint64_t phase = 0;
    unsigned mask = 0;
    std::string at;
  };

  static int linear_thread_index() {
    return static_cast<int>(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
  }
  static std::string hex(unsigned v) {
    char s[16];
    std::snprintf(s, sizeof s, "0x%08x", v);
    return s;
  }
  static std::string seconds() {
    char s[32];
    std::snprintf(s, sizeof s, "%g s", barrier_timeout_seconds.load());
    return s;
  }

  [[noreturn]] void fail(const std::string& message) {
    if (failure_.empty()) failure_ = message;
    condition_.notify_all();
    throw std::runtime_error(message);
  }
  void throw_if_failed() {
    if (!failure_.empty()) throw std::runtime_error("aborted after: " + failure_);
  }

  template <class Done, class TimeoutMessage>
  void wait(std::unique_lock<std::mutex>& lock, Done done, TimeoutMessage timeout_message) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration<double>(barrier_timeout_seconds.load());
    while (!done()) {
      throw_if_failed();
      if (condition_.wait_until(lock, deadline) == std::cv_status::timeout && !done())
        fail(timeout_message());
    }
  }

  void release_if_complete() {
    if (arrived_ > 0 && arrived_ + returned_ == threads_) {
      arrived_ = 0;
      ++phase_;
      condition_.notify_all();
    }
  }

  void warp_barrier(std::unique_lock<std::mutex>& lock, Warp& warp, unsigned mask,
                    const std::string& at) {
    if (warp.arrived == 0) {
      warp.mask = mask;
      warp.at = at;
    } else if (warp.mask != mask || warp.at != at) {
      fail(at + " with mask " + hex(mask) + " met " + warp.at + " with mask " + hex(warp.mask) +
           ": the warp's lanes diverged");
    }
    const uint64_t phase = warp.phase;
    if (++warp.arrived == std::popcount(mask)) {
      warp.arrived = 0;
      ++warp.phase;
      condition_.notify_all();
    }
    wait(lock, [&] { return warp.phase != phase; }, [&] {
      return at + " timed out after " + seconds() + ": " + std::to_string(warp.arrived) +
             " of the " + std::to_string(std::popcount(mask)) + " lanes in mask " + hex(mask) +
             " arrived";
    });
  }

  const dim3 index_;
  const int threads_;
  std::vector<Warp> warps_;
  std::unique_ptr<std::max_align_t[]> shared_;
  std::mutex mutex_;
  std::condition_variable condition_;
  int arrived_ = 0, returned_ = 0;
  uint64_t phase_ = 0;
  std::string phase_at_;
  std::string failure_;
};

inline thread_local Block* current_block = nullptr;

inline Block& block() {
  if (!current_block) throw std::logic_error("CUDA device function called outside a kernel launch");
  return *current_block;
}

inline void syncthreads(const char* file, int line) { block().syncthreads(file, line); }
inline void* dynamic_shared_memory() { return block().dynamic_shared(); }

inline void check_width(const char* op, const char* file, int line, int width) {
  if (width < 1 || width > warpSize || !std::has_single_bit(static_cast<unsigned>(width)))
    throw std::runtime_error(std::string(op) + "() at " + where(file, line) +
                             ": width must be a power of two in [1, 32], got " +
                             std::to_string(width));
}

// __shfl_sync: lane srcLane of the caller's width-wide segment.
template <class T>
T shfl_sync(const char* file, int line, unsigned mask, T var, int src_lane, int width = warpSize) {
  check_width("__shfl_sync", file, line, width);
  return block().shuffle("__shfl_sync", file, line, mask, var, [&](int lane) {
    return lane / width * width + ((src_lane % width) + width) % width;
  });
}
// __shfl_up_sync: lane - delta, or the caller's own value if that is before
// the start of its segment.
template <class T>
T shfl_up_sync(const char* file, int line, unsigned mask, T var, unsigned delta,
               int width = warpSize) {
  check_width("__shfl_up_sync", file, line, width);
  return block().shuffle("__shfl_up_sync", file, line, mask, var, [&](int lane) {
    return lane % width >= static_cast<int>(delta) ? lane - static_cast<int>(delta) : -1;
  });
}
// __shfl_down_sync: lane + delta, or the caller's own value if that is past
// the end of its segment.
template <class T>
T shfl_down_sync(const char* file, int line, unsigned mask, T var, unsigned delta,
                 int width = warpSize) {
  check_width("__shfl_down_sync", file, line, width);
  return block().shuffle("__shfl_down_sync", file, line, mask, var, [&](int lane) {
    return lane % width + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : -1;
  });
}
// __shfl_xor_sync: lane ^ lane_mask; a lane of a later segment (or past the
// warp) gives the caller's own value, an earlier segment is readable.
template <class T>
T shfl_xor_sync(const char* file, int line, unsigned mask, T var, int lane_mask,
                int width = warpSize) {
  check_width("__shfl_xor_sync", file, line, width);
  return block().shuffle("__shfl_xor_sync", file, line, mask, var, [&](int lane) {
    const int src = lane ^ lane_mask;
    return src < (lane / width + 1) * width && src < warpSize ? src : -1;
  });
}

inline std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}

// kernel<<<grid, block, shared_bytes>>>(args...), synchronously: the blocks
// in order x, then y, then z. One host thread per CUDA thread of a block runs
// every block of the launch in turn (creating threads per block cost more
// than the kernels); a block starts only when all threads have returned from
// the previous one, with fresh block state.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block_dim, size_t shared_bytes,
            Args&&... args) {
  const int64_t threads = int64_t{block_dim.x} * block_dim.y * block_dim.z;
  if (threads < 1 || threads > 1024 || grid.x < 1 || grid.y < 1 || grid.z < 1 ||
      grid.y > 65535 || grid.z > 65535)
    throw std::runtime_error("invalid kernel launch configuration (CUDA would fail it too)");
  const std::tuple<Params...> params(std::forward<Args>(args)...);
  const int64_t blocks = int64_t{grid.x} * grid.y * grid.z;
  auto block_index = [&](int64_t b) {
    return dim3(b % grid.x, b / grid.x % grid.y, b / (int64_t{grid.x} * grid.y));
  };

  std::lock_guard serial(launch_mutex());
  int64_t current = 0;
  auto state = std::make_unique<Block>(block_index(0), static_cast<int>(threads), shared_bytes);
  std::string failure;  // "in block (...): ...", set at the first failed block
  // Runs once all threads are done with a block: check it, set up the next.
  auto next_block = [&]() noexcept {
    if (failure.empty() && !state->failure().empty()) {
      const dim3 b = block_index(current);
      failure = "in block (" + std::to_string(b.x) + ", " + std::to_string(b.y) + ", " +
                std::to_string(b.z) + "): " + state->failure();
    }
    ++current;
    if (failure.empty() && current < blocks)
      state = std::make_unique<Block>(block_index(current), static_cast<int>(threads),
                                      shared_bytes);
  };
  std::barrier boundary(threads, next_block);
  std::latch start(threads);

  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int64_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      threadIdx = dim3(t % block_dim.x, t / block_dim.x % block_dim.y,
                       t / (int64_t{block_dim.x} * block_dim.y));
      blockDim = block_dim;
      gridDim = grid;
      start.arrive_and_wait();  // all threads exist before any runs
      // current and failure change only in next_block, while every thread
      // waits at the boundary.
      while (failure.empty() && current < blocks) {
        blockIdx = block_index(current);
        current_block = state.get();
        try {
          std::apply(kernel, params);
        } catch (const std::exception& e) {
          state->record_failure(e.what());
        }
        state->thread_returned();
        current_block = nullptr;
        boundary.arrive_and_wait();
      }
    });
  }
  for (auto& w : workers) w.join();
  if (!failure.empty()) throw std::runtime_error("emulated CUDA kernel failed " + failure);
}

}  // namespace relu_ext_emu
