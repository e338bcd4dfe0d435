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
//     writes its value, all wait, each reads its source lane (two sets of
//     slots, alternating, so the next shuffle cannot overwrite an unread one);
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

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <bit>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
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

// Waits while `word` holds `expected`, for at most `seconds`; may return
// early (a wake-up, a signal). A futex rather than a condition variable: the
// waiters of a barrier are woken without re-taking a shared mutex one after
// another, which with 256 threads a block was most of the emulator's time.
inline void futex_wait(std::atomic<uint32_t>& word, uint32_t expected, double seconds) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  timespec timeout;
  timeout.tv_sec = static_cast<time_t>(seconds);
  timeout.tv_nsec = static_cast<long>((seconds - static_cast<double>(timeout.tv_sec)) * 1e9);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, &timeout,
          nullptr, 0);
}
inline void futex_wake_all(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

// The state one block's threads share: the barrier, the warps' exchanges,
// dynamic shared memory, and the first failure (after which every wait of
// the block fails at once instead of waiting for threads that will not come).
// A barrier or warp exchange is a count under a mutex plus a phase word the
// waiters sleep on; the phase is stored with release and loaded with acquire,
// so what a thread wrote before a barrier happens-before (also for TSan) what
// the others read after it.
class Block {
 public:
  Block(dim3 index, int threads, size_t shared_bytes)
      : index_(index),
        threads_(threads),
        warp_count_((threads + warpSize - 1) / warpSize),
        warps_(new Warp[(threads + warpSize - 1) / warpSize]),
        shared_(shared_bytes ? new std::max_align_t[(shared_bytes + sizeof(std::max_align_t) - 1) /
                                                    sizeof(std::max_align_t)]
                             : nullptr) {
    if (shared_bytes) std::memset(shared_.get(), 0xFF, shared_bytes);
  }

  void* dynamic_shared() { return shared_.get(); }

  void syncthreads(const char* file, int line) {
    uint32_t phase;
    {
      std::lock_guard lock(mutex_);
      throw_if_failed_locked();
      if (arrived_ == 0) {
        phase_file_ = file;
        phase_line_ = line;
      } else if (phase_line_ != line || std::strcmp(phase_file_, file) != 0) {
        fail_locked("__syncthreads() at " + where(file, line) + " and at " +
                    where(phase_file_, phase_line_) +
                    " in the same phase: the block's threads diverged");
      }
      ++arrived_;
      phase = phase_.load(std::memory_order_relaxed);
      release_if_complete();
    }
    wait_for_change(phase_, phase, [&] {
      std::lock_guard lock(mutex_);
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
    const Site at{op, file, line};
    if (!(mask >> lane & 1u))
      fail(at.text() + ": called by lane " + std::to_string(lane) +
           ", which is not in its mask " + hex(mask));
    // The slots alternate between two sets by phase: a lane can start the
    // next shuffle only once every lane has arrived there, i.e. has read this
    // one, so one barrier a shuffle suffices.
    uint64_t* slots = nullptr;
    warp_barrier(warp, mask, at, [&](uint32_t phase) {
      slots = warp.slots[phase % 2];
      std::memcpy(&slots[lane], &value, sizeof(T));
    });
    const int src = source(lane);
    if (src >= 0 && !(mask >> src & 1u))
      fail(at.text() + ": lane " + std::to_string(lane) + " reads lane " + std::to_string(src) +
           ", which is not in the mask " + hex(mask));
    T result = value;
    if (src >= 0) std::memcpy(&result, &slots[src], sizeof(T));
    return result;
  }

  void record_failure(const std::string& message) {
    std::lock_guard lock(mutex_);
    if (failure_.empty()) failure_ = message;
    failed_.store(true, std::memory_order_release);
    wake_everyone();
  }
  // Read once every thread has returned from the block.
  const std::string& failure() const { return failure_; }

 private:
  // Where a shuffle was called: op, file, line (strings built only to report).
  struct Site {
    const char* op;
    const char* file;
    int line;
    std::string text() const { return std::string(op) + "() at " + where(file, line); }
    bool operator==(const Site& o) const {
      return line == o.line && std::strcmp(op, o.op) == 0 && std::strcmp(file, o.file) == 0;
    }
  };
  struct Warp {
    std::mutex mutex;
    uint64_t slots[2][warpSize] = {};
    int arrived = 0;
    std::atomic<uint32_t> phase{0};
    unsigned mask = 0;
    Site at{"", "", 0};
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

  void wake_everyone() {
    futex_wake_all(phase_);
    for (int w = 0; w < warp_count_; ++w) futex_wake_all(warps_[w].phase);
  }
  [[noreturn]] void fail_locked(const std::string& message) {
    if (failure_.empty()) failure_ = message;
    failed_.store(true, std::memory_order_release);
    wake_everyone();
    throw std::runtime_error(message);
  }
  [[noreturn]] void fail(const std::string& message) {
    std::lock_guard lock(mutex_);
    fail_locked(message);
  }
  void throw_if_failed_locked() {
    if (!failure_.empty()) throw std::runtime_error("aborted after: " + failure_);
  }
  void throw_if_failed() {
    if (!failed_.load(std::memory_order_acquire)) return;
    std::lock_guard lock(mutex_);
    throw_if_failed_locked();
  }

  // Sleeps until `word` leaves `phase`. Sleeps are sliced so that a failure
  // elsewhere in the block (which wakes the sleepers, but may come between a
  // waiter's check and its sleep) ends the wait within a slice.
  template <class TimeoutMessage>
  void wait_for_change(std::atomic<uint32_t>& word, uint32_t phase,
                       TimeoutMessage timeout_message) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration<double>(barrier_timeout_seconds.load());
    while (word.load(std::memory_order_acquire) == phase) {
      throw_if_failed();
      const double left =
          std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) {
        if (word.load(std::memory_order_acquire) != phase) break;
        fail(timeout_message());
      }
      futex_wait(word, phase, std::min(left, 0.05));
    }
  }

  void release_if_complete() {  // with mutex_ held
    if (arrived_ > 0 && arrived_ + returned_ == threads_) {
      arrived_ = 0;
      phase_.fetch_add(1, std::memory_order_release);
      futex_wake_all(phase_);
    }
  }

  // Lanes of `mask` meet: each runs `publish(phase)` on arrival, and none leaves
  // before all have arrived.
  template <class Publish>
  void warp_barrier(Warp& warp, unsigned mask, const Site& at, Publish publish) {
    uint32_t phase;
    {
      std::lock_guard lock(warp.mutex);
      throw_if_failed();
      if (warp.arrived == 0) {
        warp.mask = mask;
        warp.at = at;
      } else if (warp.mask != mask || !(warp.at == at)) {
        fail(at.text() + " with mask " + hex(mask) + " met " + warp.at.text() + " with mask " +
             hex(warp.mask) + ": the warp's lanes diverged");
      }
      phase = warp.phase.load(std::memory_order_relaxed);
      publish(phase);
      if (++warp.arrived == std::popcount(mask)) {
        warp.arrived = 0;
        warp.phase.fetch_add(1, std::memory_order_release);
        futex_wake_all(warp.phase);
      }
    }
    wait_for_change(warp.phase, phase, [&] {
      std::lock_guard lock(warp.mutex);
      return at.text() + " timed out after " + seconds() + ": " +
             std::to_string(warp.arrived) + " of the " + std::to_string(std::popcount(mask)) +
             " lanes in mask " + hex(mask) + " arrived";
    });
  }

  const dim3 index_;
  const int threads_;
  const int warp_count_;
  std::unique_ptr<Warp[]> warps_;
  std::unique_ptr<std::max_align_t[]> shared_;
  std::mutex mutex_;  // guards the counts, the phase's site and failure_
  int arrived_ = 0, returned_ = 0;
  std::atomic<uint32_t> phase_{0};
  const char* phase_file_ = "";
  int phase_line_ = 0;
  std::atomic<bool> failed_{false};
  std::string failure_;
};

template <class T>
class checked_ptr;
template <class T>
struct is_checked_ptr : std::false_type {};
template <class T>
struct is_checked_ptr<checked_ptr<T>> : std::true_type {};

// ------------------------------------------------ bounds-checked global memory
// Every global-memory pointer a kernel takes (device_api.h's global_ptr<T>)
// is, under the emulator, a checked_ptr: the raw pointer plus the extent of
// the allocation it points into, looked up at launch in a registry of live
// allocations (filled by tests/cuda/cuda_emu/recording_allocator.cpp for every
// CPU tensor). Each element access checks [allocation begin, end) and fails
// naming the kernel, the argument, the index and the extent.

// Live allocations: begin address -> size in bytes.
class AllocationRegistry {
 public:
  void add(const void* p, size_t bytes) {
    std::lock_guard lock(mutex_);
    live_[reinterpret_cast<uintptr_t>(p)] = bytes;
  }
  void remove(const void* p) {
    std::lock_guard lock(mutex_);
    live_.erase(reinterpret_cast<uintptr_t>(p));
  }
  // The allocation holding p, as [begin, end); {0, 0} if none does.
  std::pair<uintptr_t, uintptr_t> find(const void* p) const {
    const auto address = reinterpret_cast<uintptr_t>(p);
    std::lock_guard lock(mutex_);
    auto it = live_.upper_bound(address);
    if (it == live_.begin()) return {0, 0};
    --it;
    if (address >= it->first + it->second) return {0, 0};
    return {it->first, it->first + it->second};
  }

 private:
  mutable std::mutex mutex_;
  std::map<uintptr_t, size_t> live_;
};

inline AllocationRegistry& allocations() {
  static AllocationRegistry registry;
  return registry;
}

// The kernel a host thread is running, for messages.
inline thread_local const std::string* current_kernel = nullptr;

template <class T>
class checked_ptr {
 public:
  checked_ptr() = default;
  checked_ptr(std::nullptr_t) {}
  // `what` names the argument (kept alive by the launch).
  checked_ptr(T* p, const std::string* what) : p_(p), what_(what) {
    const auto [begin, end] = allocations().find(p);
    begin_ = begin;
    end_ = end;
  }

  T& operator[](int64_t i) const {
    const __int128 address = static_cast<__int128>(addr()) + static_cast<__int128>(i) * sizeof(T);
    if (p_ == nullptr || address < static_cast<__int128>(begin_) ||
        address + static_cast<__int128>(sizeof(T)) > static_cast<__int128>(end_))
      out_of_bounds(i);
    return p_[i];
  }
  checked_ptr operator+(int64_t d) const {
    checked_ptr q = *this;
    q.p_ = reinterpret_cast<T*>(addr() + static_cast<uintptr_t>(d) * sizeof(T));
    return q;
  }
  T* get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  uintptr_t addr() const { return reinterpret_cast<uintptr_t>(p_); }

  [[noreturn]] void out_of_bounds(int64_t i) const {
    std::string message = "out-of-bounds access in " +
                          (current_kernel ? *current_kernel : std::string("a kernel")) + ": " +
                          (what_ ? *what_ : std::string("a pointer")) + "[" + std::to_string(i) +
                          "]";
    if (p_ == nullptr) {
      message += " through a null pointer";
    } else if (begin_ == end_) {
      message += ", a pointer into no live allocation";
    } else {
      const auto first = (static_cast<int64_t>(begin_) - static_cast<int64_t>(addr())) /
                         static_cast<int64_t>(sizeof(T));
      const auto past = (static_cast<int64_t>(end_) - static_cast<int64_t>(addr())) /
                        static_cast<int64_t>(sizeof(T));
      message += ", but its allocation holds indices [" + std::to_string(first) + ", " +
                 std::to_string(past) + ") (extent " + std::to_string(past - first) +
                 " elements of " + std::to_string(sizeof(T)) + " bytes)";
    }
    throw std::out_of_range(message);
  }

  T* p_ = nullptr;
  uintptr_t begin_ = 0, end_ = 0;
  const std::string* what_ = nullptr;
};

// A kernel argument as the kernel's parameter type takes it: raw pointers
// become checked_ptrs named "argument <i>"; anything else passes as it is.
// Types holding pointers (relu_ext::Units) overload this in their namespace.
template <class Param, class Arg>
Param kernel_argument(std::type_identity<Param>, Arg&& arg, const std::string& what,
                      std::vector<std::unique_ptr<std::string>>& names) {
  if constexpr (is_checked_ptr<Param>::value && std::is_pointer_v<std::decay_t<Arg>>) {
    names.push_back(std::make_unique<std::string>(what));
    return Param(arg, names.back().get());
  } else {
    return Param(std::forward<Arg>(arg));
  }
}

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
// The name of kernel K as the compiler spells it, template arguments and all
// (the text after "K = " in __PRETTY_FUNCTION__, GCC's and Clang's format).
template <auto K>
std::string kernel_name() {
  const std::string pretty = __PRETTY_FUNCTION__;
  const auto begin = pretty.find("K = ");
  if (begin == std::string::npos) return pretty;
  const auto end = pretty.find_first_of(";]", begin);
  return pretty.substr(begin + 4, end - begin - 4);
}

template <class... Params, class... Args>
void launch_named(const std::string& name, void (*kernel)(Params...), dim3 grid, dim3 block_dim,
                  size_t shared_bytes, Args&&... args) {
  const int64_t threads = int64_t{block_dim.x} * block_dim.y * block_dim.z;
  if (threads < 1 || threads > 1024 || grid.x < 1 || grid.y < 1 || grid.z < 1 ||
      grid.y > 65535 || grid.z > 65535)
    throw std::runtime_error("invalid kernel launch configuration (CUDA would fail it too)");
  static_assert(sizeof...(Params) == sizeof...(Args), "one argument per kernel parameter");
  std::vector<std::unique_ptr<std::string>> names;  // of checked pointers, for messages
  const std::tuple<Params...> params = [&]<size_t... I>(std::index_sequence<I...>) {
    auto refs = std::forward_as_tuple(std::forward<Args>(args)...);
    return std::tuple<Params...>(kernel_argument(std::type_identity<Params>{},
                                                 std::get<I>(std::move(refs)),
                                                 "argument " + std::to_string(I), names)...);
  }(std::index_sequence_for<Params...>{});
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
        current_kernel = &name;
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
  if (!failure.empty())
    throw std::runtime_error("emulated CUDA kernel " + name + " failed " + failure);
}

template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block_dim, size_t shared_bytes,
            Args&&... args) {
  launch_named("(unnamed)", kernel, grid, block_dim, shared_bytes, std::forward<Args>(args)...);
}

}  // namespace relu_ext_emu
