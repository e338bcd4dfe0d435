// Where the CUDA kernels find the inputs of one channel. Per-channel x is
// (outer, C, inner) (checks.h); channel c's inputs are x[o, c, i]. The kernels
// walk x one of three ways, chosen by the launcher and compiled in (Walk):
//
//   kOneChannel  shared 1-D units, or C = 1: positions are indices, no channel
//                arithmetic at all (its registers would cost the shared case
//                occupancy).
//   kRuns        long runs (inner >= 32): every block works on one channel and
//                numbers its inputs by position p = o·inner + i, in x's order;
//                it stages that channel's units alone and every thread of it
//                reads the same unit at a time, as with shared units. A warp's
//                32 consecutive positions lie in at most two runs: coalesced.
//   kColumns     short runs (inner < 32: channels innermost, inner = 1, for an
//                MLP's (B, C) or a transformer's (B, T, C)): x is `rows` = outer
//                rows of `width` = C·inner inputs, and a warp's lanes run along
//                a row, so its loads are consecutive inputs, each lane with its
//                own column's channel (see ColumnLane). Walking such x by
//                channel (kRuns) would put a warp's 32 loads C·inner apart.
//
// The helpers below take kOneChannel without any channel arithmetic when told
// so at compile time (kPerChannel = false), and otherwise on a branch that goes
// the same way in every thread of the grid.
#pragma once

#include <climits>
#include <cstdint>

#include "../units.h"

namespace relu_ext::cuda {

enum class Walk { kOneChannel, kRuns, kColumns };

// Lanes of a warp: the column walk's tile width.
constexpr int kWarpSize = 32;

struct ChannelLayout {
  int64_t channels;   // C (1 for shared units)
  int64_t inner;      // consecutive inputs of one channel (all of x when C = 1)
  int64_t positions;  // inputs per channel: outer·inner (N when C = 1)
  // Read by the column walk alone (zero otherwise):
  int64_t rows;       // outer
  int64_t width;      // inputs per row: C·inner
  int32_t tile_width; // columns per tile: min(width, 32)
  int32_t tile_rows;  // rows a warp takes at a time: 32 / tile_width
  int32_t tiles;      // tiles per row: ceil(width / tile_width)
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
// Layout::of_channel in relu_sum_cpu.cpp).
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

// The column walk (Walk::kColumns). Block j takes column tile j % tiles (so
// blocks running at the same time read neighbouring tiles of the same rows)
// and its slice j / tiles of the rows. Lane l of a warp takes column
// tile·TW + l % TW of the warp's row l / TW (TW = tile_width; a warp takes
// tile_rows rows at a time, one when width >= 32): a warp's loads are then
// tile_rows·TW consecutive inputs of x. Each lane's channel is its column's,
// column / inner; lanes past tile_rows·TW or past the row's end are inactive.
struct ColumnLane {
  int64_t column;  // clamped into the row, so that an inactive lane's channel exists
  int row;         // which of the warp's tile_rows rows
  bool active;
};
__device__ __forceinline__ int64_t column_tile(const ChannelLayout& l) {
  return blockIdx.x % static_cast<unsigned>(l.tiles);
}
__device__ __forceinline__ int64_t column_slice(const ChannelLayout& l) {
  return blockIdx.x / static_cast<unsigned>(l.tiles);
}
__device__ __forceinline__ ColumnLane column_lane(const ChannelLayout& l) {
  const int lane = static_cast<int>(threadIdx.x % kWarpSize);
  const int64_t column = column_tile(l) * l.tile_width + lane % l.tile_width;
  const bool active = lane < l.tile_rows * l.tile_width && column < l.width;
  return {column < l.width ? column : l.width - 1, lane / l.tile_width, active};
}

// The indices in x of the lane's column (column_lane) in rows r, r + step,
// r + 2·step, ... (step = kThreads / 32 · tile_rows: the block's warps take
// consecutive row groups); ChannelWalk's interface, for per_input_kernel.
template <int kThreads>
class ColumnWalk {
 public:
  __device__ __forceinline__ ColumnWalk(const ChannelLayout& l, int64_t /*channel*/, int64_t row)
      : index_(row * l.width + column_lane(l).column),
        step_(static_cast<int64_t>(kThreads / kWarpSize) * l.tile_rows * l.width) {}
  __device__ __forceinline__ int64_t index() const { return index_; }
  __device__ __forceinline__ void next() { index_ += step_; }

 private:
  int64_t index_, step_;
};

}  // namespace relu_ext::cuda
