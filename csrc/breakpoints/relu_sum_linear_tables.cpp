#include "relu_sum_linear_tables.h"

#include <algorithm>
#include <cstring>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace relu_ext::breakpoints {
namespace {

// Square blocks of the slab transposes: a block's rows and columns stay in L1.
constexpr int64_t kTile = 16;

// Whether v is NaN or ±Inf, from its bits (all exponent bits set), so that the
// check over a slab is integer work the compiler vectorises.
template <class T>
bool not_finite(T v) {
  if constexpr (sizeof(T) == 4) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    return (bits & 0x7f800000u) == 0x7f800000u;
  } else {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    return (bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
  }
}

}  // namespace

template <class T>
LinearTables<T> make_linear_tables(const at::Tensor& m, const at::Tensor& b) {
  const int64_t inputs = m.size(0), k = m.size(1);
  LinearTables<T> t;
  t.finite.assign(inputs, 1);
  if (inputs == 0) return t;
  // The breakpoints -b/m in float64, as relu_sum's tables take them.
  const auto md = m.to(at::kDouble).contiguous(), bd = b.to(at::kDouble).contiguous();
  t.inputs = make_channel_tables<T>(
      UnitParams{md.const_data_ptr<double>(), bd.const_data_ptr<double>(), nullptr,
                 inputs * k},
      inputs);
  const double* mp = md.const_data_ptr<double>();
  const double* bp = bd.const_data_ptr<double>();
  for (int64_t i = 0; i < inputs; ++i)
    for (int64_t j = i * k; j < (i + 1) * k; ++j)
      if (not_finite(mp[j]) || not_finite(bp[j])) t.finite[i] = 0;
  return t;
}

template <class T>
bool input_slab(const T* a, int64_t outputs, int64_t inputs, int64_t units, int64_t i,
                int64_t o0_, int64_t padded, T* slab) {
  const int64_t stride = inputs * units;  // from one output's row to the next
  const T* ai = a + o0_ * stride + i * units;
  outputs = std::max<int64_t>(0, std::min(outputs - o0_, padded));
  bool bad = false;
  for (int64_t o0 = 0; o0 < outputs; o0 += kTile) {
    const int64_t o1 = std::min(outputs, o0 + kTile);
    for (int64_t k0 = 0; k0 < units; k0 += kTile) {
      const int64_t k1 = std::min(units, k0 + kTile);
      for (int64_t k = k0; k < k1; ++k)
        for (int64_t o = o0; o < o1; ++o) {
          const T v = ai[o * stride + k];
          bad |= not_finite(v);
          slab[k * padded + o] = v;
        }
    }
  }
  for (int64_t k = 0; k < units; ++k) std::fill(slab + k * padded + outputs, slab + (k + 1) * padded, T(0));
  return !bad;
}

template <class T>
void store_input_slab(const T* slab, int64_t outputs, int64_t inputs, int64_t units, int64_t i,
                      int64_t padded, T* da) {
  const int64_t stride = inputs * units;
  T* di = da + i * units;
  for (int64_t o0 = 0; o0 < outputs; o0 += kTile) {
    const int64_t o1 = std::min(outputs, o0 + kTile);
    for (int64_t k0 = 0; k0 < units; k0 += kTile) {
      const int64_t k1 = std::min(units, k0 + kTile);
      for (int64_t o = o0; o < o1; ++o)
        for (int64_t k = k0; k < k1; ++k) di[o * stride + k] = slab[k * padded + o];
    }
  }
}

at::Tensor transposed(const at::Tensor& t) {
  const int64_t rows = t.size(0), cols = t.size(1);
  auto out = at::empty({cols, rows}, t.options());
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "transposed", [&] {
    const scalar_t* src = t.const_data_ptr<scalar_t>();
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    constexpr int64_t B = 2 * kTile;
    const int64_t blocks = (rows + B - 1) / B;
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t r0 = b0 * B; r0 < std::min(rows, b1 * B); r0 += B) {
        const int64_t r1 = std::min(rows, r0 + B);
        for (int64_t c0 = 0; c0 < cols; c0 += B) {
          const int64_t c1 = std::min(cols, c0 + B);
          for (int64_t c = c0; c < c1; ++c)
            for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
        }
      }
    });
  });
  return out;
}

#define RELU_EXT_INSTANTIATE(T)                                                              \
  template LinearTables<T> make_linear_tables<T>(const at::Tensor&, const at::Tensor&);      \
  template bool input_slab<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                              T*);                                                         \
  template void store_input_slab<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, T*);
RELU_EXT_INSTANTIATE(float)
RELU_EXT_INSTANTIATE(double)
#undef RELU_EXT_INSTANTIATE

}  // namespace relu_ext::breakpoints
