// Where the CUDA kernels find the inputs of one channel. Per-channel x is
// (outer, C, inner) (checks.h); channel c's inputs are x[o, c, i], and the
// kernels number them by position p = o·inner + i, in x's order. Every block
// works on one channel, so it stages that channel's units alone and every
// thread of it reads the same unit at a time, as with shared units.
//
// Shared 1-D units are the case C = 1, where positions are indices. The
// helpers below take that case without any channel arithmetic when told so
// at compile time (kPerChannel = false: per_input_kernel is instantiated
// both ways, as the arithmetic's registers would cost the shared case
// occupancy), and otherwise on a branch that goes the same way in every
// thread of the grid.
#pragma once

#include <climits>
#include <cstdint>

#include "../units.h"

namespace relu_ext::cuda {

struct ChannelLayout {
  int64_t channels;   // C (1 for shared units)
  int64_t inner;      // consecutive inputs of one channel (all of x when C = 1)
  int64_t positions;  // inputs per channel: outer·inner (N when C = 1)
};

template <bool kPerChannel>
__device__ __forceinline__ bool one_channel(const ChannelLayout& l) {
  return !kPerChannel || l.channels == 1;
}

// Blocks take the channels in turn: block j works on channel j % C, and on
// its slice j / C of that channel's positions. Blocks running at the same time
// then read the same positions of neighbouring channels, which share cache
// lines when inner is small (channels innermost, x[o, c] with inner = 1).
// The launcher keeps the grid below 2^31 blocks, so C fits in 32 bits.
template <bool kPerChannel = true>
__device__ __forceinline__ int64_t block_channel(const ChannelLayout& l) {
  return one_channel<kPerChannel>(l) ? 0 : blockIdx.x % static_cast<unsigned>(l.channels);
}
template <bool kPerChannel = true>
__device__ __forceinline__ int64_t block_slice(const ChannelLayout& l) {
  return one_channel<kPerChannel>(l) ? blockIdx.x
                                     : blockIdx.x / static_cast<unsigned>(l.channels);
}
// Blocks per channel.
template <bool kPerChannel = true>
__device__ __forceinline__ int64_t slices_per_channel(const ChannelLayout& l) {
  return one_channel<kPerChannel>(l) ? gridDim.x : gridDim.x / static_cast<unsigned>(l.channels);
}

// Channel c's units, K = u.count of them, at c·K in the (C, K) arrays (CPU:
// Runs::of_channel in relu_sum_cpu.cpp).
template <bool kPerChannel = true, class T, class Ptr>
__device__ __forceinline__ Units<T, Ptr> channel_units(const Units<T, Ptr>& u, int64_t c) {
  if constexpr (!kPerChannel) {
    return u;
  } else {
    const int64_t at = c * u.count;
    return {u.m + at, u.b + at, u.a ? u.a + at : u.a, u.count};
  }
}

// The indices in x of channel c's positions p, p + kStep, p + 2·kStep, ...:
// a division to start, then additions (a position kStep further is kStep/inner
// runs and kStep%inner inputs on, plus the other channels' runs in between
// whenever the remainder passes the end of a run).
template <int kStep, bool kPerChannel = true>
class ChannelWalk {
 public:
  __device__ __forceinline__ ChannelWalk(const ChannelLayout& l, int64_t c, int64_t p) {
    if (one_channel<kPerChannel>(l)) {  // positions are indices; rem_ never reaches inner_
      index_ = p;
      step_ = kStep;
      return;
    }
    inner_ = l.inner;
    const int64_t run = p / inner_;
    rem_ = p - run * inner_;
    index_ = (run * l.channels + c) * inner_ + rem_;
    const int64_t step_runs = kStep / inner_;
    step_rem_ = kStep - step_runs * inner_;
    step_ = step_runs * l.channels * inner_ + step_rem_;
    skip_ = (l.channels - 1) * inner_;
  }
  __device__ __forceinline__ int64_t index() const { return index_; }
  __device__ __forceinline__ void next() {
    index_ += step_;
    rem_ += step_rem_;
    if (rem_ >= inner_) {
      rem_ -= inner_;
      index_ += skip_;
    }
  }

 private:
  int64_t index_, step_;
  int64_t rem_ = 0, step_rem_ = 0, inner_ = INT64_MAX, skip_ = 0;
};

}  // namespace relu_ext::cuda
