// CUDA kernels of relu_sum_linear (dense algorithm) on raw pointers:
//     y[n, o] = bias[o] + Σ_i Σ_k a[o, i, k]·relu(m[i, k]·x[n, i] + b[i, k])
// x (N, I), m and b (I, K), a (O, I, K) contiguous; j = i·K + k numbers the
// I·K hinges, so a is an (O, I·K) matrix. The per-element arithmetic is
// relu_sum_math.h's (preact, relu, relu_backward); this file only decides who
// computes which term and in what order.
//
// Every kernel is blocked like a matrix product: kThreads = kSide² threads,
// thread (tx, ty) = (threadIdx.x % kSide, threadIdx.x / kSide) owns a
// kMicro × kMicro micro-tile of a kTile × kTile output tile, rows
// ty + kSide·r and columns tx + kSide·c (strided, so that a warp's shared
// loads are kSide consecutive words and one broadcast: no bank conflicts);
// the contraction is staged kStep at a time through shared memory. Hinge
// values relu(m·x + b) are made while staging and live only in shared
// memory: nothing of size N·I·K (or N·I·O) is ever allocated.
//
//   linear_forward_kernel  y: block = (n tile, o tile), contracts over j.
//   linear_grad_t_kernel   dx, dm, db: block = (input i, slot s); for each of
//                          the slot's n tiles and each tile of i's units k,
//                          u[n, k] = Σ_o g[n, o]·a[o, i, k] (contracted over o),
//                          t = relu_backward(u, m·x + b); dx[n, i] = Σ_k t·m
//                          (within the block), dm, db: Σ_n t·x, Σ_n t per slot,
//                          into a [slots, G, I·K] buffer.
//   linear_grad_a_kernel   da: block = (o tile × j tile, slot s); contracts
//                          g (N, O) with the hinges (N, I·K) over the slot's
//                          n chunks, into a [slots, O·I·K] buffer.
// The slot buffers are summed over slots by reduce_blocks_kernel
// (relu_sum_kernels.cuh). Every sum is taken in an order fixed by the shapes
// alone (never by the device or timing), so results are bitwise reproducible;
// there are no atomics.
//
// Padding: entries of a staged tile past N, O or I·K are exact zeros, and a
// padded product is 0·0 (never 0·Inf), so padding adds +0 and never a NaN.
#pragma once

#include <cstdint>

#include "../relu_sum_math.h"
#include "device_api.h"
#include "relu_sum_kernels.cuh"  // acc_t, load_acc, reduce_blocks_kernel

namespace relu_ext::cuda {

// The sizes of one call: x (n, inputs), units per input, a (outputs, inputs, units).
struct LinearShape {
  int64_t n, inputs, units, outputs;
  __host__ __device__ int64_t hinges() const { return inputs * units; }  // I·K
};

// The gradients linear_grad_t_kernel computes, as bits (a template argument:
// nvcc's launch stubs cannot spell a class-type one).
constexpr unsigned kLinearGradX = 1, kLinearGradM = 2, kLinearGradB = 4;

template <unsigned kGrads>
struct LinearGradRows {  // rows of the [slots, G, I·K] buffer: dm then db, those asked for
  static constexpr int m = 0;
  static constexpr int b = (kGrads & kLinearGradM) ? 1 : 0;
  static constexpr int count = b + ((kGrads & kLinearGradB) ? 1 : 0);
};

// y: block b takes output tile (n tile b / o_tiles, o tile b % o_tiles) (blocks
// running together share an n tile: its x stays in L2). Per step of kStep
// hinges j, the block stages h[n][j] (made from x, m, b) and a[o][j], then
// thread (tx, ty) adds a·h into its micro-tile. y[n, o] is Σ_j a·h in j order
// from +0, then + bias[o], as the reference's einsum and + bias.
template <class T, int kThreads, int kSide, int kTile, int kStep>
__global__ void __launch_bounds__(kThreads, 1)
    linear_forward_kernel(global_ptr<const T> RELU_EXT_RESTRICT x,
                          global_ptr<const acc_t<T>> RELU_EXT_RESTRICT m,
                          global_ptr<const acc_t<T>> RELU_EXT_RESTRICT b,
                          global_ptr<const acc_t<T>> RELU_EXT_RESTRICT a,
                          global_ptr<const acc_t<T>> RELU_EXT_RESTRICT bias,
                          const LinearShape s, global_ptr<T> RELU_EXT_RESTRICT y) {
  using A = acc_t<T>;
  constexpr int kMicro = kTile / kSide;
  static_assert(kSide * kSide == kThreads && kMicro * kSide == kTile);
  // [j][n] and [j][o]; rows padded by one so that the staging stores, a
  // column each, fall in distinct banks.
  __shared__ A tile_h[kStep][kTile + 1];
  __shared__ A tile_a[kStep][kTile + 1];
  const int tx = threadIdx.x % kSide, ty = threadIdx.x / kSide;
  const int64_t o_tiles = (s.outputs + kTile - 1) / kTile;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x / o_tiles) * kTile;
  const int64_t o0 = static_cast<int64_t>(blockIdx.x % o_tiles) * kTile;
  const int64_t width = s.hinges();

  A acc[kMicro][kMicro];
#pragma unroll
  for (int r = 0; r < kMicro; ++r)
#pragma unroll
    for (int c = 0; c < kMicro; ++c) acc[r][c] = A(0);

  for (int64_t j0 = 0; j0 < width; j0 += kStep) {
    __syncthreads();  // every thread is done reading the previous hinge step
    // Entry e: hinge j0 + e % kStep of row e / kStep. Consecutive threads
    // read consecutive j of a (coalesced) and of m, b.
    for (int e = threadIdx.x; e < kStep * kTile; e += kThreads) {
      const int jj = e % kStep, row = e / kStep;
      const int64_t j = j0 + jj, n = n0 + row, o = o0 + row;
      A h = A(0), w = A(0);
      if (j < width) {
        const int64_t i = j / s.units;
        if (n < s.n) h = relu(preact(load_acc(x, n * s.inputs + i), m[j], b[j]));
        if (o < s.outputs) w = a[o * width + j];
      }
      tile_h[jj][row] = h;
      tile_a[jj][row] = w;
    }
    __syncthreads();  // the hinge step is complete before anyone reads it
#pragma unroll
    for (int jj = 0; jj < kStep; ++jj) {
      A hv[kMicro], av[kMicro];
#pragma unroll
      for (int r = 0; r < kMicro; ++r) hv[r] = tile_h[jj][ty + kSide * r];
#pragma unroll
      for (int c = 0; c < kMicro; ++c) av[c] = tile_a[jj][tx + kSide * c];
#pragma unroll
      for (int r = 0; r < kMicro; ++r)
#pragma unroll
        for (int c = 0; c < kMicro; ++c) acc[r][c] += av[c] * hv[r];  // as accumulate_forward
    }
  }

#pragma unroll
  for (int r = 0; r < kMicro; ++r) {
    const int64_t n = n0 + ty + kSide * r;
    if (n >= s.n) continue;
#pragma unroll
    for (int c = 0; c < kMicro; ++c) {
      const int64_t o = o0 + tx + kSide * c;
      if (o < s.outputs)
        y[n * s.outputs + o] = static_cast<T>(bias ? acc[r][c] + bias[o] : acc[r][c]);
    }
  }
}

// dx, dm, db (those in kGrads). Block b is input i = b % I, slot b / I of
// S = gridDim.x / I; the slot takes the n tiles (kTile rows) s, s + S, ...
// For each n tile and each tile of kTile units k of input i:
//   u[n][k] = Σ_o g[n, o]·a[o, i, k], o in order, staged kStep outputs at a time;
//   t = relu_backward(u, preact(x[n, i], m[i, k], b[i, k]))   (0 past N or K);
//   dx: each thread sums t·m over its kMicro units (c order), a width-kSide
//       shuffle tree sums the kSide threads of its row, and lane tx = 0 adds
//       that to the row's sum over unit tiles (in order); stored per n tile.
//   dm, db: each thread sums t·x, t over its kMicro rows (r order), then
//       thread kk < kTile sums column kk over ty in order and writes (the
//       slot's first n tile) or adds it to the slot's row of partial,
//       [slots, LinearGradRows, I·K]: each entry is one thread's.
template <class T, unsigned kGrads, int kThreads, int kSide, int kTile, int kStep>
__global__ void __launch_bounds__(kThreads, 1)
    linear_grad_t_kernel(global_ptr<const T> RELU_EXT_RESTRICT x,
                         global_ptr<const T> RELU_EXT_RESTRICT grad,
                         global_ptr<const acc_t<T>> RELU_EXT_RESTRICT m,
                         global_ptr<const acc_t<T>> RELU_EXT_RESTRICT b,
                         global_ptr<const acc_t<T>> RELU_EXT_RESTRICT a, const LinearShape s,
                         global_ptr<T> RELU_EXT_RESTRICT dx,
                         global_ptr<acc_t<T>> RELU_EXT_RESTRICT partial) {
  using A = acc_t<T>;
  using Rows = LinearGradRows<kGrads>;
  constexpr bool kX = (kGrads & kLinearGradX) != 0, kM = (kGrads & kLinearGradM) != 0,
                 kB = (kGrads & kLinearGradB) != 0;
  constexpr int kMicro = kTile / kSide;
  static_assert(kSide * kSide == kThreads && kMicro * kSide == kTile && kSide <= 32 &&
                32 % kSide == 0);
  __shared__ A tile_g[kStep][kTile + 1];  // g[n][o] as [o][n]
  __shared__ A tile_a[kStep][kTile + 1];  // a[o][i][k] as [o][k]
  // Per-thread column sums over its rows, [ty][k], for dm and db.
  __shared__ A sums_m[kM ? kSide : 1][kTile];
  __shared__ A sums_b[kB ? kSide : 1][kTile];
  const int tx = threadIdx.x % kSide, ty = threadIdx.x / kSide;
  const int64_t i = blockIdx.x % static_cast<uint64_t>(s.inputs);
  const int64_t slot = blockIdx.x / static_cast<uint64_t>(s.inputs);
  const int64_t slots = gridDim.x / static_cast<uint64_t>(s.inputs);
  const int64_t width = s.hinges();
  // The slot's columns of input i (no buffer when only dx is asked for).
  const global_ptr<A> out =
      Rows::count ? partial + slot * Rows::count * width + i * s.units : partial;

  for (int64_t tile = slot; tile * kTile < s.n; tile += slots) {
    const int64_t n0 = tile * kTile;
    A xv[kMicro], dxv[kMicro];
#pragma unroll
    for (int r = 0; r < kMicro; ++r) {
      const int64_t n = n0 + ty + kSide * r;
      xv[r] = n < s.n ? load_acc(x, n * s.inputs + i) : A(0);
      dxv[r] = A(0);
    }
    for (int64_t k0 = 0; k0 < s.units; k0 += kTile) {
      A u[kMicro][kMicro];
#pragma unroll
      for (int r = 0; r < kMicro; ++r)
#pragma unroll
        for (int c = 0; c < kMicro; ++c) u[r][c] = A(0);
      for (int64_t q0 = 0; q0 < s.outputs; q0 += kStep) {
        __syncthreads();  // every thread is done reading the previous output step
        for (int e = threadIdx.x; e < kStep * kTile; e += kThreads) {
          // g: output q0 + e % kStep of row e / kStep (consecutive o, coalesced);
          // a: unit k0 + e % kTile of output q0 + e / kTile (consecutive k).
          const int qg = e % kStep, row = e / kStep;
          const int64_t n = n0 + row, og = q0 + qg;
          tile_g[qg][row] = n < s.n && og < s.outputs ? load_acc(grad, n * s.outputs + og) : A(0);
          const int kk = e % kTile, qa = e / kTile;
          const int64_t k = k0 + kk, oa = q0 + qa;
          tile_a[qa][kk] = k < s.units && oa < s.outputs ? a[oa * width + i * s.units + k] : A(0);
        }
        __syncthreads();  // the output step is complete before anyone reads it
#pragma unroll
        for (int q = 0; q < kStep; ++q) {
          A gv[kMicro], av[kMicro];
#pragma unroll
          for (int r = 0; r < kMicro; ++r) gv[r] = tile_g[q][ty + kSide * r];
#pragma unroll
          for (int c = 0; c < kMicro; ++c) av[c] = tile_a[q][tx + kSide * c];
#pragma unroll
          for (int r = 0; r < kMicro; ++r)
#pragma unroll
            for (int c = 0; c < kMicro; ++c) u[r][c] += gv[r] * av[c];
        }
      }

      // t and its sums. Past N or K, t is 0 and so are x and m: adds +0.
      A col_m[kMicro], col_b[kMicro], row_x[kMicro];
#pragma unroll
      for (int r = 0; r < kMicro; ++r) row_x[r] = A(0);
#pragma unroll
      for (int c = 0; c < kMicro; ++c) {
        col_m[c] = A(0);
        col_b[c] = A(0);
        const int64_t k = k0 + tx + kSide * c;
        const bool unit = k < s.units;
        const A mk = unit ? m[i * s.units + k] : A(0), bk = unit ? b[i * s.units + k] : A(0);
#pragma unroll
        for (int r = 0; r < kMicro; ++r) {
          const bool valid = unit && n0 + ty + kSide * r < s.n;
          const A t = valid ? relu_backward(u[r][c], preact(xv[r], mk, bk)) : A(0);
          if constexpr (kX) row_x[r] += t * mk;
          if constexpr (kM) col_m[c] += t * xv[r];
          if constexpr (kB) col_b[c] += t;
        }
      }
      if constexpr (kX) {
        // The kSide threads of a row are kSide consecutive lanes of one warp.
#pragma unroll
        for (int r = 0; r < kMicro; ++r) {
          A v = row_x[r];
#pragma unroll
          for (int offset = kSide / 2; offset > 0; offset /= 2)
            v += __shfl_down_sync(0xffffffffu, v, offset, kSide);
          dxv[r] += v;  // meaningful in lane tx = 0
        }
      }
      if constexpr (kM || kB) {
        __syncthreads();  // every thread is done reading the previous unit tile's sums
#pragma unroll
        for (int c = 0; c < kMicro; ++c) {
          if constexpr (kM) sums_m[ty][tx + kSide * c] = col_m[c];
          if constexpr (kB) sums_b[ty][tx + kSide * c] = col_b[c];
        }
        __syncthreads();  // the sums are complete before anyone reads them
        const int64_t k = k0 + threadIdx.x;
        if (threadIdx.x < kTile && k < s.units) {
          A sm = A(0), sb = A(0);
          for (int row = 0; row < kSide; ++row) {
            if constexpr (kM) sm += sums_m[row][threadIdx.x];
            if constexpr (kB) sb += sums_b[row][threadIdx.x];
          }
          if (tile == slot) {
            if constexpr (kM) out[Rows::m * width + k] = sm;
            if constexpr (kB) out[Rows::b * width + k] = sb;
          } else {
            if constexpr (kM) out[Rows::m * width + k] += sm;
            if constexpr (kB) out[Rows::b * width + k] += sb;
          }
        }
      }
    }
    if constexpr (kX) {
      if (tx == 0) {
#pragma unroll
        for (int r = 0; r < kMicro; ++r) {
          const int64_t n = n0 + ty + kSide * r;
          if (n < s.n) dx[n * s.inputs + i] = static_cast<T>(dxv[r]);
        }
      }
    }
  }
}

// da: block b is tile b % tiles of the (O, I·K) output, o tile t / j_tiles
// and j tile t % j_tiles (tiles = o_tiles·j_tiles), and slot b / tiles of
// S = gridDim.x / tiles; the slot takes the chunks of kStep rows s, s + S, ...
// and stages g[n][o] and the hinges h[n][j] of each; thread (tx, ty) adds
// g·h over the chunk's rows in order into its micro-tile (rows o, columns j),
// chunk after chunk, and writes it to the slot's row of partial [slots, O·I·K].
template <class T, int kThreads, int kSide, int kTile, int kStep>
__global__ void __launch_bounds__(kThreads, 1)
    linear_grad_a_kernel(global_ptr<const T> RELU_EXT_RESTRICT x,
                         global_ptr<const T> RELU_EXT_RESTRICT grad,
                         global_ptr<const acc_t<T>> RELU_EXT_RESTRICT m,
                         global_ptr<const acc_t<T>> RELU_EXT_RESTRICT b, const LinearShape s,
                         global_ptr<acc_t<T>> RELU_EXT_RESTRICT partial) {
  using A = acc_t<T>;
  constexpr int kMicro = kTile / kSide;
  static_assert(kSide * kSide == kThreads && kMicro * kSide == kTile);
  __shared__ A tile_g[kStep][kTile + 1];  // g[n][o], [n][o]
  __shared__ A tile_h[kStep][kTile + 1];  // h[n][j], [n][j]
  const int tx = threadIdx.x % kSide, ty = threadIdx.x / kSide;
  const int64_t width = s.hinges();
  const int64_t j_tiles = (width + kTile - 1) / kTile;
  const int64_t tiles = (s.outputs + kTile - 1) / kTile * j_tiles;
  const int64_t tile = blockIdx.x % static_cast<uint64_t>(tiles);
  const int64_t slot = blockIdx.x / static_cast<uint64_t>(tiles);
  const int64_t slots = gridDim.x / static_cast<uint64_t>(tiles);
  const int64_t o0 = tile / j_tiles * kTile, j0 = tile % j_tiles * kTile;

  A acc[kMicro][kMicro];
#pragma unroll
  for (int r = 0; r < kMicro; ++r)
#pragma unroll
    for (int c = 0; c < kMicro; ++c) acc[r][c] = A(0);

  for (int64_t chunk = slot; chunk * kStep < s.n; chunk += slots) {
    const int64_t n0 = chunk * kStep;
    __syncthreads();  // every thread is done reading the previous chunk
    // Entry e: column e % kTile of row e / kTile: consecutive o of g and j of
    // m, b (coalesced).
    for (int e = threadIdx.x; e < kStep * kTile; e += kThreads) {
      const int col = e % kTile, row = e / kTile;
      const int64_t n = n0 + row, o = o0 + col, j = j0 + col;
      tile_g[row][col] = n < s.n && o < s.outputs ? load_acc(grad, n * s.outputs + o) : A(0);
      tile_h[row][col] = n < s.n && j < width
                             ? relu(preact(load_acc(x, n * s.inputs + j / s.units), m[j], b[j]))
                             : A(0);
    }
    __syncthreads();  // the chunk is complete before anyone reads it
#pragma unroll
    for (int q = 0; q < kStep; ++q) {
      A gv[kMicro], hv[kMicro];
#pragma unroll
      for (int r = 0; r < kMicro; ++r) gv[r] = tile_g[q][ty + kSide * r];
#pragma unroll
      for (int c = 0; c < kMicro; ++c) hv[c] = tile_h[q][tx + kSide * c];
#pragma unroll
      for (int r = 0; r < kMicro; ++r)
#pragma unroll
        for (int c = 0; c < kMicro; ++c) acc[r][c] += gv[r] * hv[c];  // as accumulate_backward
    }
  }

  const global_ptr<A> out = partial + slot * s.outputs * width;
#pragma unroll
  for (int r = 0; r < kMicro; ++r) {
    const int64_t o = o0 + ty + kSide * r;
    if (o >= s.outputs) continue;
#pragma unroll
    for (int c = 0; c < kMicro; ++c) {
      const int64_t j = j0 + tx + kSide * c;
      if (j < width) out[o * width + j] = acc[r][c];
    }
  }
}

}  // namespace relu_ext::cuda
