#include "breakpoint_table.h"

#include <cmath>
#include <cstring>
#include <type_traits>
#include <limits>

#include <ATen/ATen.h>

namespace relu_ext::breakpoints {
namespace {

// The largest T below r (r not NaN; -inf stays -inf), by its bit pattern:
// the patterns of positive numbers ascend with them, those of negative ones
// (negative as integers) descend. Selects rather than branches, and no libm
// call: on random signs std::nextafter and `if`s measured ~1 ms per 65,536
// units here, mostly mispredicted branches.
template <class T>
T next_down(T r) {
  using Bits = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  constexpr Bits sign = std::numeric_limits<Bits>::min();
  Bits bits;
  std::memcpy(&bits, &r, sizeof r);
  Bits down = bits > 0 ? bits - 1 : bits + 1;
  down = (bits & ~sign) == 0 ? (sign | 1) : down;  // ±0: the negative subnormal
  down = r == -std::numeric_limits<T>::infinity() ? bits : down;
  std::memcpy(&r, &down, sizeof r);
  return r;
}

// The largest T <= t (strict: < t). The conversion rounds to nearest, so the
// answer is the rounded value or the one below it; ±inf map to themselves
// (and nothing is below -inf: -inf).
template <class T>
T largest_at_most(double t, bool strict) {
  const T r = static_cast<T>(t);
  const double rd = static_cast<double>(r);
  const bool too_big = (rd > t) | (strict & (rd == t));
  return too_big ? next_down(r) : r;
}

// A signed integer that orders as the float does (-0 just before +0): the bit
// pattern, with the magnitude bits flipped for negative numbers.
template <class T>
int64_t sort_key(T v) {
  if constexpr (sizeof(T) == 4) {
    int32_t bits;
    std::memcpy(&bits, &v, 4);
    return bits < 0 ? bits ^ 0x7fffffff : bits;
  } else {
    int64_t bits;
    std::memcpy(&bits, &v, 8);
    return bits < 0 ? bits ^ 0x7fffffffffffffff : bits;
  }
}

}  // namespace

template <class T>
BreakpointTable<T> make_breakpoint_table(const UnitParams& u) {
  const int64_t k = u.count;
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::vector<T> event(k);
  auto keys = at::empty({k}, at::kLong);
  int64_t* key = keys.mutable_data_ptr<int64_t>();
  for (int64_t j = 0; j < k; ++j) {
    const double m = u.m[j], b = u.b[j];
    const double t = m == 0 ? (b > 0 ? -inf : inf) : -b / m;
    event[j] = largest_at_most<T>(t, /*strict=*/m < 0);
    key[j] = sort_key(event[j]);
  }
  // Integer keys sort by radix in ATen (~4x faster than sorting the floats
  // here); stable, so ties keep the units' order and the sums below are
  // taken in an order fixed by the inputs alone.
  const auto order_t = std::get<1>(at::sort(keys, /*stable=*/std::optional<bool>(true), 0));
  const int64_t* order = order_t.const_data_ptr<int64_t>();

  BreakpointTable<T> table{std::vector<T>(k), std::vector<int64_t>(order, order + k),
                           std::vector<uint8_t>(k), std::vector<double>(2 * (k + 1))};
  double* line = table.line.data();
  // The units' a·m and a·b in sorted order; `on` is 1 for rising units and 0
  // for falling ones, multiplied in rather than branched on (random signs).
  std::vector<double> am(k), ab(k), on(k);
  for (int64_t j = 0; j < k; ++j) {
    const int64_t unit = order[j];
    const double a = u.a ? u.a[unit] : 1.0;
    table.events[j] = event[unit];
    table.rising[j] = u.m[unit] >= 0;
    on[j] = table.rising[j];
    am[j] = a * u.m[unit];
    ab[j] = a * u.b[unit];
  }
  // Rising units active on interval i: sorted positions j < i.
  double slope = 0, intercept = 0;
  for (int64_t j = 0; j < k; ++j) {
    line[2 * j] = slope;
    line[2 * j + 1] = intercept;
    slope += on[j] * am[j];
    intercept += on[j] * ab[j];
  }
  line[2 * k] = slope;
  line[2 * k + 1] = intercept;
  // Falling units active on interval i: sorted positions j >= i.
  slope = intercept = 0;
  for (int64_t j = k - 1; j >= 0; --j) {
    slope += (1 - on[j]) * am[j];
    intercept += (1 - on[j]) * ab[j];
    line[2 * j] += slope;
    line[2 * j + 1] += intercept;
  }
  return table;
}

template <class T>
void unit_gradients(const BreakpointTable<T>& table, const double* sums, const UnitParams& u,
                    double* dm, double* db, double* da) {
  const int64_t k = u.count;
  // The unit's sums of g and g·x over its active inputs, in sorted order.
  std::vector<double> g(k), gx(k);
  // Falling unit at position j: intervals i <= j (prefix from the front).
  double g_acc = 0, gx_acc = 0;
  for (int64_t j = 0; j < k; ++j) {
    g_acc += sums[2 * j];
    gx_acc += sums[2 * j + 1];
    if (!table.rising[j]) g[j] = g_acc, gx[j] = gx_acc;
  }
  // Rising unit at position j: intervals i > j (suffix from the back).
  g_acc = gx_acc = 0;
  for (int64_t j = k - 1; j >= 0; --j) {
    g_acc += sums[2 * (j + 1)];
    gx_acc += sums[2 * (j + 1) + 1];
    if (table.rising[j]) g[j] = g_acc, gx[j] = gx_acc;
  }
  for (int64_t j = 0; j < k; ++j) {
    const int64_t unit = table.order[j];
    const double a = u.a ? u.a[unit] : 1.0;
    if (dm) dm[unit] = a * gx[j];
    if (db) db[unit] = a * g[j];
    // The sum over active inputs of g (m x + b).
    if (da) da[unit] = u.m[unit] * gx[j] + u.b[unit] * g[j];
  }
}

template BreakpointTable<float> make_breakpoint_table<float>(const UnitParams&);
template BreakpointTable<double> make_breakpoint_table<double>(const UnitParams&);
template void unit_gradients<float>(const BreakpointTable<float>&, const double*,
                                    const UnitParams&, double*, double*, double*);
template void unit_gradients<double>(const BreakpointTable<double>&, const double*,
                                     const UnitParams&, double*, double*, double*);

}  // namespace relu_ext::breakpoints
