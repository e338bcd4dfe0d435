// CUDA kernels of relu_sum on raw pointers. The per-element arithmetic is
// relu_sum_math.h's (the CPU kernels run the same functions); this file only
// decides who computes which (input, unit) pair and in what order.
//
// Compiled twice: by nvcc for the GPU, and by the host compiler against the
// test-only emulator (tests/cuda/cuda_emu/cuda_emulator.h), which supplies
// threadIdx, __syncthreads, __shfl_down_sync and the shared memory, so the
// tests run exactly this code on the CPU.
//
// Three kernels:
//   per_input_kernel      y (forward) or dx: each thread owns kItems inputs in
//                         registers and sums over all units of their channel,
//                         which are staged through shared memory tile by tile.
//   param_grad_kernel     dm, db, da: each block stages chunks of (x, grad) in
//                         shared memory, each thread owns units and sums over
//                         the chunk's inputs of its channel in order; one
//                         partial sum per block slot and unit, written to a
//                         [slots, G, C·K] buffer (G = number of gradients
//                         asked for).
//   reduce_blocks_kernel  sums that buffer over slots: one warp per column,
//                         a fixed-shape shuffle tree.
// With per-channel (C, K) units the first two walk x one of three ways, a
// compile-time switch (channel_layout.h): one channel (shared units are the
// case C = 1), by channel (long runs: every block works on one channel and
// stages its K units, whatever C is), or by columns (short runs: a block
// takes a tile of 32 columns of x's rows, each lane its own column's channel,
// and stages K units of each lane's channel).
// Every sum is taken in an order fixed by the shapes alone, so results are
// bitwise reproducible; there are no atomics.
//
// __launch_bounds__(threads, 1): with the block size alone, ptxas capped
// these kernels' registers and spilled the float64 variants; asking for just
// one resident block lets it keep every value in registers, which still
// leaves room for two blocks per SM. The per-channel per_input_kernel takes
// more (one block per SM), hence its own instantiations (channel_layout.h).
// The register counts: docs/cuda.md.
#pragma once

#include <cstdint>
#include <type_traits>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "../relu_sum_math.h"
#include "../units.h"
#include "channel_layout.h"
#include "device_api.h"

namespace relu_ext::cuda {

// float16/bfloat16/float32 accumulate in float32, float64 in float64
// (docs/contract.md, "Precision").
template <class T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};
template <class T>
using acc_t = typename AccOf<T>::type;

// Loads one element widened to the accumulation type (c10::Half and
// c10::BFloat16 convert through their own __host__ __device__ operators).
template <class T>
__device__ __forceinline__ acc_t<T> load_acc(global_ptr<const T> p, int64_t i) {
  return static_cast<acc_t<T>>(p[i]);
}

// Unit parameters (units.h) are in the accumulation type: the launcher
// converts them, K values, not N. Kernels read them as DeviceUnits
// (device_api.h), bounds-checked under the emulator.
using relu_ext::Units;

// What per_input_kernel sums over the units for each input: relu_sum's
// forward, its dx, or step_sum (weights w in the units' `a`).
enum class Pass { kForward, kGradX, kStep };

// Forward (y), dx or step_sum; all are sums over units per input, so they share the
// tiling: registers hold a thread's kItems inputs and their sums, shared
// memory holds kTileK units at a time. Runs (and one channel): every thread of
// the block has the block's channel and reads the same unit at a time (a
// broadcast, no bank conflicts); each load and store of a warp is coalesced
// (within a run of `inner` inputs per channel). Columns: each lane has its own
// channel; the tile holds kTileK units of each of the 32 lanes' channels, laid
// out [k][lane] (each thread stages its own lane's, and a warp reads 32
// consecutive words: no bank conflicts), and a warp's loads and stores are
// consecutive inputs of a row. Either way every input sums its channel's units
// in unit order with the same arithmetic, so the walks agree bit for bit.
// With kItems independent sums per unit the FMA pipeline stays full, which is
// what puts this loop near the FMA peak.
template <class T, bool HasA, Pass P, Walk kWalk, int kThreads, int kItems, int kTileK>
__global__ void __launch_bounds__(kThreads, 1)
    per_input_kernel(global_ptr<const T> RELU_EXT_RESTRICT x,
                     global_ptr<const T> RELU_EXT_RESTRICT grad,
                     global_ptr<T> RELU_EXT_RESTRICT out,
                     const RELU_EXT_GRID_CONSTANT ChannelLayout layout,
                     DeviceUnits<acc_t<T>> all_units) {
  using A = acc_t<T>;
  constexpr bool kColumns = kWalk == Walk::kColumns;
  constexpr bool kPerChannel = kWalk != Walk::kOneChannel;
  static_assert(!kColumns || kThreads % kWarpSize == 0);
  // Copies of each staged unit: one per lane by columns, [k][lane].
  constexpr int kLanes = kColumns ? kWarpSize : 1;
  RELU_EXT_DYNAMIC_SHARED(A, tile);  // kTileK·kLanes m's, then b's, then a's
  A* const tile_m = tile;
  A* const tile_b = tile + kTileK * kLanes;
  A* const tile_a = tile + 2 * kTileK * kLanes;

  // Columns: a lane stages its own channel's units, from tile row
  // threadIdx.x / 32 on.
  const int lane = kColumns ? static_cast<int>(threadIdx.x % kWarpSize) : 0;
  const int stage_first = kColumns ? static_cast<int>(threadIdx.x / kWarpSize) : threadIdx.x;
  constexpr int kStageStep = kThreads / kLanes;

  // The thread's inputs: by channel, kItems positions of the block's channel,
  // `step` apart from `first` on (the block's are kThreads·kItems consecutive
  // positions), those below n; by columns, kItems rows of the lane's column
  // (ColumnWalk), `step` apart from `first`, those below n (none for an
  // inactive lane). Either way a warp's loads and stores are coalesced.
  int64_t channel, n, first, step;
  if constexpr (kColumns) {
    const ColumnLane me = column_lane(layout);
    channel = me.column / layout.inner;
    n = me.active ? layout.rows : 0;
    step = static_cast<int64_t>(kThreads / kWarpSize) * layout.tile_rows;
    first = column_slice(layout) * (kItems * step) +
            static_cast<int64_t>(threadIdx.x / kWarpSize) * layout.tile_rows + me.row;
  } else {
    channel = block_channel<kPerChannel>(layout);
    n = layout.positions;  // inputs of the block's channel
    step = kThreads;
    first = block_slice<kPerChannel>(layout) * (kThreads * kItems) + threadIdx.x;
  }
  const DeviceUnits<A> u = channel_units<kPerChannel>(all_units, channel);
  using Inputs =
      std::conditional_t<kColumns, ColumnWalk<kThreads>, ChannelWalk<kThreads, kPerChannel>>;
  A xv[kItems], gv[kItems], sum[kItems];
  Inputs walk(layout, channel, first);
#pragma unroll
  for (int r = 0; r < kItems; ++r, walk.next()) {
    const int64_t i = first + static_cast<int64_t>(r) * step;
    // Inputs past the end compute on zeros and are never stored.
    xv[r] = i < n ? load_acc(x, walk.index()) : A(0);
    if constexpr (P == Pass::kGradX) gv[r] = i < n ? load_acc(grad, walk.index()) : A(0);
    sum[r] = A(0);
  }

  for (int64_t k0 = 0; k0 < u.count; k0 += kTileK) {
    const int tile_len = static_cast<int>(u.count - k0 < kTileK ? u.count - k0 : kTileK);
    __syncthreads();  // every thread is done reading the previous tile
    for (int j = stage_first; j < tile_len; j += kStageStep) {
      tile_m[j * kLanes + lane] = u.m[k0 + j];
      tile_b[j * kLanes + lane] = u.b[k0 + j];
      if constexpr (HasA) tile_a[j * kLanes + lane] = u.a[k0 + j];
    }
    __syncthreads();  // the tile is complete before anyone reads it
    for (int j = 0; j < tile_len; ++j) {
      const A m = tile_m[j * kLanes + lane], b = tile_b[j * kLanes + lane];
      const A a = HasA ? tile_a[j * kLanes + lane] : A(0);
#pragma unroll
      for (int r = 0; r < kItems; ++r) {
        if constexpr (P == Pass::kForward) {
          accumulate_forward<HasA>(sum[r], xv[r], m, b, a);
        } else if constexpr (P == Pass::kStep) {
          accumulate_step(sum[r], xv[r], m, b, a);
        } else {
          A unused;
          accumulate_backward<HasA, Need{true, false, false, false}>(
              xv[r], gv[r], m, b, a, sum[r], unused, unused, unused);
        }
      }
    }
  }

  // Walked again rather than kept: the walk's state would hold registers
  // through the sums.
  walk = Inputs(layout, channel, first);
#pragma unroll
  for (int r = 0; r < kItems; ++r, walk.next()) {
    const int64_t i = first + static_cast<int64_t>(r) * step;
    if (i < n) out[walk.index()] = static_cast<T>(sum[r]);
  }
}

// Shared memory of per_input_kernel: one tile of m, b and (with HasA) a, each
// of tile_k units times `lanes` copies (32 by columns, else 1).
template <class A>
constexpr int per_input_shared_bytes(int tile_k, int lanes, bool has_a) {
  return (has_a ? 3 : 2) * tile_k * lanes * static_cast<int>(sizeof(A));
}

// The gradients a param_grad_kernel computes, as bits (1: dm, 2: db, 4: da).
// Kernels take them as an unsigned template argument: nvcc's host-side launch
// stubs cannot spell a class-type template argument such as Need.
constexpr unsigned kGradM = 1, kGradB = 2, kGradA = 4;
constexpr Need param_need(unsigned bits) {
  return Need{false, (bits & kGradM) != 0, (bits & kGradB) != 0, (bits & kGradA) != 0};
}

// Which rows of the partial-sum buffer hold dm, db, da: only the gradients
// asked for get a row, in that order.
template <Need need>
struct GradRows {
  static constexpr int m = 0;
  static constexpr int b = need.m ? 1 : 0;
  static constexpr int a = b + (need.b ? 1 : 0);
  static constexpr int count = a + (need.a ? 1 : 0);
};

// dm, db, da (those in kGrads), as per-slot partial sums in a [slots, G, C·K]
// buffer (G: the gradients asked for; GradRows), each entry written by one
// thread, which reduce_blocks_kernel then sums over the slots. The launcher
// gives every block slot at least one chunk.
//
// Runs (kColumns = false): a channel's inputs are shared out among S block
// slots (S = gridDim.x / C); slot s takes the chunks s, s + S, ... of kChunk
// positions of its channel (block_channel, block_slice), and each of its
// threads sums, for units threadIdx.x, threadIdx.x + kThreads, ..., over the
// chunk's inputs in order, then over its chunks in order. The result is the
// slot's row partial[s][GradRows][channel·K, (channel + 1)·K).
//
// Columns (kColumns = true, column_lane): a block takes a column tile and is
// slot s = column_slice of S (S = gridDim.x / tiles); a chunk is kChunk / 32
// of its warps' row groups (32·tile_rows rows), staged [row group][lane], and
// slot s takes the chunks s, s + S, ... Lane l of warp w sums, for units
// w, w + kThreads / 32, ... of its column's channel, over its rows of the
// chunk in order, then over its chunks in order. The slots of the sum are
// then (s, the lane's row in its warp, column % inner): partial row
// (s·tile_rows + row)·inner + column % inner, S·tile_rows·inner rows in all,
// each entry written by one lane.
template <class T, bool HasA, unsigned kGrads, bool kColumns, int kThreads, int kChunk>
__global__ void __launch_bounds__(kThreads, 1)
    param_grad_kernel(global_ptr<const T> RELU_EXT_RESTRICT x,
                      global_ptr<const T> RELU_EXT_RESTRICT grad,
                      const RELU_EXT_GRID_CONSTANT ChannelLayout layout,
                      DeviceUnits<acc_t<T>> all_units,
                      global_ptr<acc_t<T>> RELU_EXT_RESTRICT partial) {
  using A = acc_t<T>;
  constexpr Need need = param_need(kGrads);
  using Rows = GradRows<need>;
  __shared__ A chunk_x[kChunk];
  __shared__ A chunk_g[kChunk];
  // Columns: lane l's inputs are chunk_x[g·32 + l] for row groups g < len.
  constexpr int kLanes = kColumns ? kWarpSize : 1;
  constexpr int kWarps = kThreads / kWarpSize, kGroups = kChunk / kWarpSize;
  static_assert(!kColumns || (kThreads % kWarpSize == 0 && kChunk % kWarpSize == 0));
  const int lane = kColumns ? static_cast<int>(threadIdx.x % kWarpSize) : 0;
  const int warp = static_cast<int>(threadIdx.x / kWarpSize);

  // The thread's channel and slot, and where the slot's chunks end: n
  // positions of the channel in chunks of kChunk, or n rows in chunks of
  // kGroups row groups (span).
  int64_t channel, slot, slots, n, span, out_row;
  ColumnLane me{};
  if constexpr (kColumns) {
    me = column_lane(layout);
    channel = me.column / layout.inner;
    slot = column_slice(layout);
    slots = gridDim.x / static_cast<unsigned>(layout.tiles);
    n = layout.rows;
    span = static_cast<int64_t>(kGroups) * layout.tile_rows;
    out_row = (slot * layout.tile_rows + me.row) * layout.inner +
              (me.column - channel * layout.inner);
  } else {
    channel = block_channel(layout);
    slot = block_slice(layout);
    slots = slices_per_channel(layout);
    n = layout.positions;  // inputs of the block's channel
    span = kChunk;
    out_row = slot;
  }
  const DeviceUnits<A> u = channel_units(all_units, channel);
  const int64_t row_len = layout.channels * u.count;  // C·K
  const global_ptr<A> out = partial + out_row * Rows::count * row_len + channel * u.count;
  // Units of the thread: every kThreads-th from threadIdx.x, or every
  // kWarps-th from the warp's (none for an inactive lane, which has no slot).
  const int64_t first_unit = kColumns ? (me.active ? warp : u.count) : threadIdx.x;
  constexpr int kUnitStep = kColumns ? kWarps : kThreads;

  bool first_chunk = true;
  for (int64_t c = slot; c * span < n; c += slots) {
    const int64_t begin = c * span;
    int len;
    if constexpr (kColumns) {
      // The lane's rows of the chunk: begin + me.row + g·tile_rows < n.
      const int64_t row0 = begin + me.row;
      const int64_t left =
          me.active && row0 < n ? (n - row0 + layout.tile_rows - 1) / layout.tile_rows : 0;
      len = static_cast<int>(left < kGroups ? left : kGroups);
    } else {
      len = static_cast<int>(n - begin < kChunk ? n - begin : kChunk);
    }
    __syncthreads();  // every thread is done with the previous chunk
    if constexpr (kColumns) {
      for (int g = warp; g < len; g += kWarps) {
        const int64_t row = begin + me.row + static_cast<int64_t>(g) * layout.tile_rows;
        chunk_x[g * kWarpSize + lane] = load_acc(x, row * layout.width + me.column);
        chunk_g[g * kWarpSize + lane] = load_acc(grad, row * layout.width + me.column);
      }
    } else {
      ChannelWalk<kThreads> walk(layout, channel, begin + threadIdx.x);
      for (int i = threadIdx.x; i < len; i += kThreads, walk.next()) {
        chunk_x[i] = load_acc(x, walk.index());
        chunk_g[i] = load_acc(grad, walk.index());
      }
    }
    __syncthreads();  // the chunk is complete before anyone reads it
    for (int64_t k = first_unit; k < u.count; k += kUnitStep) {
      const A m = u.m[k], b = u.b[k];
      const A a = HasA ? u.a[k] : A(0);
      A dm = A(0), db = A(0), da = A(0), unused;
      for (int i = 0; i < len; ++i)
        accumulate_backward<HasA, need>(chunk_x[i * kLanes + lane], chunk_g[i * kLanes + lane],
                                        m, b, a, unused, dm, db, da);
      if (first_chunk) {
        if constexpr (need.m) out[Rows::m * row_len + k] = dm;
        if constexpr (need.b) out[Rows::b * row_len + k] = db;
        if constexpr (need.a) out[Rows::a * row_len + k] = da;
      } else {
        if constexpr (need.m) out[Rows::m * row_len + k] += dm;
        if constexpr (need.b) out[Rows::b * row_len + k] += db;
        if constexpr (need.a) out[Rows::a * row_len + k] += da;
      }
    }
    first_chunk = false;
  }
}

// total[col] = Σ_block partial[block][col] for col < cols: warp threadIdx.y
// of the block takes one column; its lanes sum the blocks lane, lane + 32, ...
// and a shuffle tree adds the 32 lane sums, always in the same shape.
template <class A, int kWarps>
__global__ void __launch_bounds__(32 * kWarps)
    reduce_blocks_kernel(global_ptr<const A> RELU_EXT_RESTRICT partial, int64_t blocks,
                         int64_t cols, global_ptr<A> RELU_EXT_RESTRICT total) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.y;
  if (col >= cols) return;  // the whole warp leaves together
  A s = A(0);
  for (int64_t blk = threadIdx.x; blk < blocks; blk += 32) s += partial[blk * cols + col];
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    s += __shfl_down_sync(0xffffffffu, s, offset);
  if (threadIdx.x == 0) total[col] = s;
}

}  // namespace relu_ext::cuda
