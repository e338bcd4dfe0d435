#include "breakpoint_table.h"

#include <limits>

#include <ATen/ATen.h>

namespace relu_ext::breakpoints {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// out[i] = sum_{j < i} v[j], i = 0..K.
at::Tensor exclusive_prefix_sum(const at::Tensor& v) {
  return at::cat({at::zeros({1}, v.options()), at::cumsum(v, 0)});
}

// out[i] = sum_{j >= i} v[j], i = 0..K, accumulated from the end, so a suffix
// is as accurate as a prefix (no total-minus-prefix cancellation).
at::Tensor suffix_sum(const at::Tensor& v) {
  return at::cat({at::cumsum(v.flip(0), 0).flip(0), at::zeros({1}, v.options())});
}

// For float64 t: the largest value of `dtype` that is <= t (resp. < t), as
// that dtype. The conversion rounds to nearest, so the answer is the rounded
// value or its lower neighbour; ±inf map to themselves (below -inf: -inf).
at::Tensor largest_at_most(const at::Tensor& t, at::ScalarType dtype) {
  const auto r = t.to(dtype);
  return at::where(r.to(at::kDouble) > t, at::nextafter(r, at::full_like(r, -kInf)), r);
}

at::Tensor largest_below(const at::Tensor& t, at::ScalarType dtype) {
  const auto r = t.to(dtype);
  return at::where(r.to(at::kDouble) >= t, at::nextafter(r, at::full_like(r, -kInf)), r);
}

at::Tensor unsort(const at::Tensor& sorted, const at::Tensor& order) {
  return at::empty_like(sorted).index_copy_(0, order, sorted);
}

}  // namespace

BreakpointTable make_breakpoint_table(const at::Tensor& m_in, const at::Tensor& b_in,
                                      const std::optional<at::Tensor>& a_in,
                                      at::ScalarType dtype) {
  const auto m = m_in.to(at::kDouble), b = b_in.to(at::kDouble);
  const auto a = a_in ? a_in->to(at::kDouble) : at::ones_like(m);
  const auto rising = m >= 0;
  // Flat units: -inf (active for every x) when b > 0, +inf (never) otherwise.
  const auto t = at::where(m == 0, at::where(b > 0, -kInf, kInf), -b / m);
  const auto event = at::where(rising, largest_at_most(t, dtype), largest_below(t, dtype));

  const auto [events, order] = at::sort(event, /*stable=*/std::optional<bool>(true), /*dim=*/0);
  const auto rising_s = rising.index_select(0, order);
  const auto am = (a * m).index_select(0, order), ab = (a * b).index_select(0, order);
  const auto zero = at::zeros_like(am);
  const auto slope = exclusive_prefix_sum(at::where(rising_s, am, zero)) +
               suffix_sum(at::where(rising_s, zero, am));
  const auto intercept = exclusive_prefix_sum(at::where(rising_s, ab, zero)) +
                   suffix_sum(at::where(rising_s, zero, ab));
  return {events.contiguous(), order, rising_s, at::stack({slope, intercept}, 1).contiguous()};
}

std::array<std::optional<at::Tensor>, 3> unit_gradients(
    const BreakpointTable& table, const at::Tensor& g_sum, const at::Tensor& gx_sum,
    const at::Tensor& m_in, const at::Tensor& b_in, const std::optional<at::Tensor>& a_in,
    std::array<bool, 3> need, at::ScalarType out_dtype) {
  const int64_t k = table.order.numel();
  // The rising unit at sorted position j is active on intervals i > j, the
  // falling one on intervals i <= j.
  const auto over_active = [&](const at::Tensor& per_interval) {
    return at::where(table.rising, suffix_sum(per_interval).slice(0, 1, k + 1),
                     at::cumsum(per_interval, 0).slice(0, 0, k));
  };
  const auto sum_g = over_active(g_sum), sum_gx = over_active(gx_sum);
  const auto sorted = [&](const at::Tensor& p) {
    return p.to(at::kDouble).index_select(0, table.order);
  };
  const auto a = a_in ? sorted(*a_in) : at::ones({k}, g_sum.options());
  const auto result = [&](const at::Tensor& v) { return unsort(v, table.order).to(out_dtype); };

  std::array<std::optional<at::Tensor>, 3> grads;
  if (need[0]) grads[0] = result(a * sum_gx);
  if (need[1]) grads[1] = result(a * sum_g);
  // sum over active inputs of g (m x + b) = m sum(g x) + b sum(g).
  if (need[2] && a_in) grads[2] = result(sorted(m_in) * sum_gx + sorted(b_in) * sum_g);
  return grads;
}

}  // namespace relu_ext::breakpoints
