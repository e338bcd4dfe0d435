// The K-level half of relu_sum_linear's breakpoint algorithm: per input i, its
// K units sorted by breakpoint (breakpoint_table.h, the same events, ties and
// float64 rules as relu_sum's) with the lookup of a sample's cell
// (interval_index.h); and which inputs have parameters (m, b or any of a's
// edges) that are not all finite, whose every term is then taken by the dense
// formula. The cell tables themselves (a row of O lines per cell) are built
// by the kernels (LinearKernels::cells), a chunk of inputs at a time.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "channel_tables.h"

namespace relu_ext::breakpoints {

template <class T>
struct LinearTables {
  std::vector<ChannelTable<T>> inputs;  // [I]: input i's sorted units and index
  std::vector<uint8_t> finite;          // [I]: 1 where m and b of input i are all finite
};

// m, b (I, K) of any floating dtype.
template <class T>
LinearTables<T> make_linear_tables(const at::Tensor& m, const at::Tensor& b);

// a[o0 : o0 + width, i, :] of a (O, I, K) as slab (K, width), outputs
// innermost, those past O zero; whether it is all finite. Blocked, so that
// both sides stream.
template <class T>
bool input_slab(const T* a, int64_t outputs, int64_t inputs, int64_t units, int64_t i,
                int64_t o0, int64_t width, T* slab);

// The inverse for input i's da: slab (K, Op) into da[:, i, :] of da (O, I, K).
template <class T>
void store_input_slab(const T* slab, int64_t outputs, int64_t inputs, int64_t units, int64_t i,
                      int64_t padded, T* da);

// The transpose of a contiguous 2-D float or double tensor, contiguous: in
// square blocks on the threads, so that both sides stream (ATen's copy of the
// transposed view took ~2 ms for 4 MiB here, a tenth of the layer's step).
at::Tensor transposed(const at::Tensor& t);

}  // namespace relu_ext::breakpoints
