// The K-level half of the breakpoint algorithm: what the N-level passes
// (relu_sum_breakpoints_cpu.cpp) need to evaluate sum_k a_k relu(m_k x + b_k)
// at any x with one binary search, and to turn per-interval sums of the
// incoming gradient back into per-unit gradients. Written from ATen
// operations only (sort, cumsum, nextafter, index_copy), so it is
// device-generic and costs O(K log K).
//
// The function is continuous piecewise linear. Unit k switches at its
// breakpoint t_k = -b_k / m_k:
//   rising units  (m_k >= 0) are active where x > t_k,
//   falling units (m_k <  0) are active where x < t_k,
//   flat units    (m_k == 0) are rising units active everywhere when b_k > 0
//                 and nowhere otherwise (t_k = -inf or +inf).
// Both rules become one: "unit k is active iff x > e_k" for rising units and
// "iff not x > e_k" for falling units, with an *event* e_k in the compute
// dtype T chosen so that the comparison of a T-valued x with e_k is exactly
// the comparison with t_k (t_k evaluated in float64):
//   rising:  e_k = the largest T <= t_k   (x > t_k  <=>  x > e_k)
//   falling: e_k = the largest T <  t_k   (x < t_k  <=>  not x > e_k)
// With the events sorted, i(x) = #{events < x} names the interval holding x:
// the rising units at sorted positions j < i(x) and the falling units at
// positions j >= i(x) are active, so the slope and intercept of the interval
// are a prefix sum over rising and a suffix sum over falling units.
#pragma once

#include <array>
#include <optional>

#include <ATen/core/Tensor.h>

namespace relu_ext::breakpoints {

struct BreakpointTable {
  at::Tensor events;     // [K] compute dtype, sorted ascending
  at::Tensor order;      // [K] int64: the unit at each sorted position
  at::Tensor rising;     // [K] bool, sorted order: m_k >= 0
  // [K+1, 2] float64: on interval i, line[i][0] is the slope (sum of a_k m_k
  // over the active units) and line[i][1] the intercept (sum of a_k b_k);
  // side by side, so that an input's lookup touches one cache line.
  at::Tensor line;
};

// m, b, a: the units' parameters (any floating dtype, one device); `dtype`:
// the dtype x is compared in (float32 or float64).
BreakpointTable make_breakpoint_table(const at::Tensor& m, const at::Tensor& b,
                                      const std::optional<at::Tensor>& a,
                                      at::ScalarType dtype);

// Per-unit gradients from per-interval sums: g_sum[i] and gx_sum[i] (float64,
// [K+1]) are the sums of g_n and g_n x_n over the inputs in interval i. Each
// unit's sums over its active inputs are a suffix (rising) or prefix
// (falling) sum of these, each taken directly, never as total minus the rest.
// Returns (dm, db, da) in the units' own order and dtype `out_dtype`, each
// only where `need` asks (da also only when a is given).
std::array<std::optional<at::Tensor>, 3> unit_gradients(
    const BreakpointTable& table, const at::Tensor& g_sum, const at::Tensor& gx_sum,
    const at::Tensor& m, const at::Tensor& b, const std::optional<at::Tensor>& a,
    std::array<bool, 3> need, at::ScalarType out_dtype);

}  // namespace relu_ext::breakpoints
