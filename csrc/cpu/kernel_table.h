// The interface between the CPU launchers (relu_sum_cpu.cpp, which knows
// tensors and threads) and the CPU kernels (relu_sum_kernels.h, which know
// raw pointers and SIMD). The kernels are compiled once per instruction set
// (isa/*.cpp); each build fills one KernelTable and the launcher picks the
// best one the CPU supports at run time.
//
// This header is included before a `#pragma GCC target`, so it includes only
// standard headers that the kernels need and declares no inline functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../units.h"
#if defined(__x86_64__)
#include <immintrin.h>  // max instructions for relu (relu_sum_kernels.h)
#endif

namespace relu_ext::cpu {

using relu_ext::Units;

// Which gradients relu_sum_backward computes (bit set = requested).
constexpr unsigned kGradX = 1, kGradM = 2, kGradB = 4, kGradA = 8;

// y[i] = sum_k a_k relu(m_k x[i] + b_k) for i < n. Every element goes through
// the same vector instructions whatever n is (the tail is padded), so how the
// caller splits the range never changes a bit of the result.
template <class T>
using ForwardFn = void (*)(const T* x, T* y, int64_t n, Units<T> units);

// One span of n inputs (n <= kBackwardSpan<T> elements, sized to stay in L1):
// writes dx[i] for i < n when kGradX is set, and *adds* this span's sums over
// i into dm[k], db[k], da[k] for the requested ones. The order of every sum
// depends on n only.
template <class T>
using BackwardFn = void (*)(const T* x, const T* g, T* dx, int64_t n,
                            Units<T> units, unsigned grads, T* dm, T* db, T* da);

// x, g and dx of one backward span take 3 * 8 KiB, inside a 32 KiB L1d.
template <class T>
constexpr int64_t kBackwardSpan = 8192 / sizeof(T);

// Units per column, for per-channel units with the channels innermost
// ((B, T, C) activations, channels-last images): x as `rows` rows of `width`
// contiguous elements, column j with its own K units. The vector lanes run
// along the columns, so a lane reads its column's units as part of one
// vector load and keeps its sums over rows to itself: the shared kernels'
// loops, with the units' broadcast replaced by a load. The columns come in
// blocks of the lanes L (vector_bytes / sizeof(T)), the last one padded with
// zero units, and a block's units are K vectors in a row: unit k of column
// j = β·L + l at m[(β·K + k)·L + l], and likewise b and a (`count` is K).
// Walking a row's blocks thus streams each table once.
template <class T>
using ColumnUnits = Units<T>;

// The forward and step_sum over per-column units, bitwise the same however
// the rows are split.
template <class T>
using ColumnForwardFn = void (*)(const T* x, T* y, int64_t rows, int64_t width,
                                 ColumnUnits<T> units);

// One span of rows (rows <= kColumnSpanRows): dx as BackwardFn writes it,
// and the span's sums over rows *added* into dm, db, da, which are laid out
// like the units' tables. The order of every sum depends on rows and width
// only.
template <class T>
using ColumnBackwardFn = void (*)(const T* x, const T* g, T* dx, int64_t rows, int64_t width,
                                  ColumnUnits<T> units, unsigned grads, T* dm, T* db, T* da);

// A column span is staged a cache line of columns at a time, contiguous per
// block, so that its x, g and dx take 3 × 8 KiB like a kBackwardSpan (and
// rows whose stride is a multiple of 4 KiB do not all fall into one L1 set).
constexpr int64_t kColumnSpanRows = 128;

// float16 and bfloat16 tensors as the kernels see them: their bits, read and
// written as they are. The forward's tiles widen x to float32 in registers as
// they load it and narrow y (to nearest even) as they store it; the backward
// widens a span of x and g into L1-sized buffers for the float32 kernel and
// narrows its dx. No full-size float32 copy is made, and the arithmetic, its
// order and so its result are the float32 kernels' on the widened values.
using Bits16 = uint16_t;

// The 16-bit kernels of one format: the float32 kernels' signatures and
// guarantees with 16-bit x, y, g, dx; units and sums over inputs in float32.
struct HalfKernels {
  void (*forward)(const Bits16* x, Bits16* y, int64_t n, Units<float> units);
  void (*step)(const Bits16* x, Bits16* y, int64_t n, Units<float> units);
  void (*backward)(const Bits16* x, const Bits16* g, Bits16* dx, int64_t n,
                   Units<float> units, unsigned grads, float* dm, float* db, float* da);
  void (*forward_columns)(const Bits16* x, Bits16* y, int64_t rows, int64_t width,
                          ColumnUnits<float> units);
  void (*step_columns)(const Bits16* x, Bits16* y, int64_t rows, int64_t width,
                       ColumnUnits<float> units);
  void (*backward_columns)(const Bits16* x, const Bits16* g, Bits16* dx, int64_t rows,
                           int64_t width, ColumnUnits<float> units, unsigned grads, float* dm,
                           float* db, float* da);
  // out[i] = in[i] exactly (widen), or rounded to nearest even (narrow).
  void (*widen)(const Bits16* in, float* out, int64_t n);
  void (*narrow)(const float* in, Bits16* out, int64_t n);
};

// The kernels of one compute type T (float or double).
template <class T>
struct TypedKernels {
  ForwardFn<T> forward;
  ForwardFn<T> step;  // step_sum: sum_k w_k H(m_k x + b_k), w in units.a
  BackwardFn<T> backward;
  ColumnForwardFn<T> forward_columns;
  ColumnForwardFn<T> step_columns;
  ColumnBackwardFn<T> backward_columns;
};

// relu_sum_linear's parameters as its kernels read them: m, b (I, K) and a
// transposed to (I, K, Op), outputs innermost (at[(i K + k) Op + o] = a[o, i, k]),
// each row zero-padded to Op, a multiple of kLinearPad, so that every vector
// load is whole and a padded output is a zero that is never stored.
template <class T>
struct LinearParams {
  const T* m;
  const T* b;
  const T* at;
  int64_t inputs, units, outputs, padded;  // I, K, O, Op
};

// Op is O rounded up to a multiple of this (the widest vector of either type).
template <class T>
constexpr int64_t kLinearPad = 64 / sizeof(T);

// The most samples groups_backward takes in one block.
constexpr int64_t kLinearBlockRows = 1024;

// A block's samples grouped by the cell of one input they fall in: rows
// rows[begin[u] .. begin[u + 1]) lie in cell[u], for u < count, each group in
// row order (breakpoints/cell_groups.h makes them).
struct CellGroups {
  const int32_t* cell;
  const int32_t* begin;  // count + 1
  const int32_t* rows;
  int64_t count;
};

// The kernels of relu_sum_linear (relu_sum_linear_kernels.h) for one compute
// type T. Rows of y, g and of the breakpoint tables are Op long. Every sum
// over samples runs in sample order within a call, so that a launcher that
// gives each input (or each block of samples) to one call is bitwise the same
// on any number of threads.
template <class T>
struct LinearKernels {
  // Dense: y[r, :] = sum_i sum_k at[i, k, :] relu(m x[r, i] + b) (+ bias, Op
  // long, when not null) for r < rows; x (rows, I), y (rows, Op).
  void (*dense_forward)(const T* x, int64_t rows, LinearParams<T> p, const T* bias, T* y);
  // Dense backward of input i over `rows` samples (x[r x_stride], g (rows, Op)):
  // writes dx[r dx_stride], and input i's dm, db (K) and dat (K, Op), those of
  // `grads` (kGradX, ...) that are set.
  void (*dense_backward)(const T* x, int64_t x_stride, const T* g, int64_t rows,
                         LinearParams<T> p, int64_t i, unsigned grads, T* dx,
                         int64_t dx_stride, T* dm, T* db, T* dat);
  // Input i's cell table (K+1 rows of [alpha (Op), beta (Op)]): on cell j its
  // edges are alpha + beta x. order and rising: its units in sorted order
  // (breakpoint_table.h); scratch holds (K + 2) 2 Op doubles.
  void (*cells)(LinearParams<T> p, int64_t i, const int64_t* order, const uint8_t* rising,
                double* scratch, T* cells);
  // cell[r] = the number of the k sorted events below x[r], or -1 where x[r]
  // is not finite, for r < rows.
  void (*count_cells)(const T* events, int64_t k, const T* x, int64_t rows, int32_t* cell);
  // y[r, :width] (+)= the sum over inputs s of alpha + x beta at x = x[s ldx + r],
  // alpha being row cell[s ldc + r] of input s's table (tables input_stride
  // apart, rows ldt apart) and beta the beta_at elements after it; negative
  // cells are skipped. From zero when `first`; y's rows are ldy apart.
  void (*cells_forward)(const T* tables, int64_t input_stride, int64_t ldt, int64_t beta_at,
                        const int32_t* cell, int64_t ldc, const T* x, int64_t ldx,
                        int64_t inputs, int64_t rows, int64_t width, bool first, T* y,
                        int64_t ldy);
  // A block of `rows` samples (at most kLinearBlockRows) of one input,
  // grouped by cell (CellGroups): when sums is not null, its cell rows
  // [S0, S1] (laid out as the table's: rows ldt apart, S1 beta_at past S0)
  // gain g[r] and x[r] g[r]; when dx is not null, dx[r] = g[r] . beta for
  // every r < rows (0 outside the groups). g's rows are ldg apart.
  void (*groups_backward)(const T* table, T* sums, int64_t ldt, int64_t beta_at,
                          CellGroups groups, const T* x, const T* g, int64_t ldg,
                          int64_t width, int64_t rows, T* dx);
  // Input i's dm, db (K) and dat (K, Op) from its cells' sums (those of
  // `grads` that are set); scratch holds 2 Op doubles.
  void (*unit_grads)(LinearParams<T> p, int64_t i, const int64_t* order,
                     const uint8_t* rising, const T* sums, double* scratch, unsigned grads,
                     T* dm, T* db, T* dat);
};

struct KernelTable {
  const char* isa;  // "avx512", "avx2" or "baseline"
  int vector_bytes;  // the lanes of the column kernels: vector_bytes / sizeof(T)
  TypedKernels<float> f32;
  TypedKernels<double> f64;
  HalfKernels f16;
  HalfKernels bf16;
  LinearKernels<float> linear_f32;
  LinearKernels<double> linear_f64;

  template <class T>
  const LinearKernels<T>& linear() const {
    if constexpr (sizeof(T) == 4) return linear_f32; else return linear_f64;
  }
  template <class T>
  const TypedKernels<T>& typed() const {
    if constexpr (sizeof(T) == 4) return f32; else return f64;
  }
  template <class T>
  int64_t lanes() const { return vector_bytes / static_cast<int>(sizeof(T)); }
};

// One per compiled instruction set (isa/*.cpp); nullptr where the build or
// the architecture left that instruction set out.
const KernelTable* avx512_kernels();
const KernelTable* avx2_kernels();
const KernelTable* baseline_kernels();

// The table in use: the best the CPU supports, unless overridden by
// RELU_EXT_CPU_ISA or set_isa() (isa_dispatch.cpp).
const KernelTable& kernels();
// Selects the instruction set by name ("avx512", "avx2", "baseline");
// throws if it was not compiled in or the CPU lacks it. Returns the old name.
const char* set_isa(const char* name);
// The instruction sets compiled in and supported by this CPU, best first.
int available_isas(const char* names[3]);

}  // namespace relu_ext::cpu
