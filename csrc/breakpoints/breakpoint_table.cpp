#include "breakpoint_table.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <limits>

#include <ATen/ATen.h>

namespace relu_ext::breakpoints {
namespace {

// The bit pattern of a float or double as an unsigned integer; arithmetic on
// it wraps instead of overflowing.
template <class T>
using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;

template <class T>
constexpr Bits<T> kSignBit = Bits<T>{1} << (8 * sizeof(T) - 1);

// All ones where `condition`, else zero: selects without branches. On random
// signs the branches GCC makes of `?:` here mispredict half the time (the
// set-up is slower with them, and with std::nextafter: docs/breakpoints.md).
template <class T>
Bits<T> mask(bool condition) {
  return Bits<T>{0} - static_cast<Bits<T>>(condition);
}

// The largest T <= t (strict: < t). The conversion rounds to nearest, so the
// answer is the rounded value r or the one below it, found by its bit
// pattern: one step down is one less for positive r, one more for negative
// r, the negative subnormal for ±0; -inf stays (nothing is below it), +inf
// goes to the largest finite value.
template <class T>
T largest_at_most(double t, bool strict) {
  using B = Bits<T>;
  const T r = static_cast<T>(t);
  const double rd = static_cast<double>(r);
  B bits;
  std::memcpy(&bits, &r, sizeof r);
  const B negative = mask<T>(bits & kSignBit<T>), zero = mask<T>((bits & ~kSignBit<T>) == 0);
  B down = (bits + (negative & B{2}) - B{1});
  down = (down & ~zero) | ((kSignBit<T> | B{1}) & zero);
  const B move = mask<T>(((rd > t) | (strict & (rd == t))) & (r != -std::numeric_limits<T>::infinity()));
  bits = (bits & ~move) | (down & move);
  T result;
  std::memcpy(&result, &bits, sizeof result);
  return result;
}

// A signed integer that orders as the float does (-0 just before +0): the bit
// pattern, with the magnitude bits flipped for negative numbers.
template <class T>
int64_t sort_key(T v) {
  using B = Bits<T>;
  B bits;
  std::memcpy(&bits, &v, sizeof v);
  bits ^= mask<T>(bits & kSignBit<T>) & ~kSignBit<T>;
  if constexpr (sizeof(T) == 4) {
    return static_cast<int32_t>(bits);
  } else {
    return static_cast<int64_t>(bits);
  }
}

// Below this many keys std::stable_sort is the faster: ATen's call alone
// costs microseconds, which a table per channel pays C times (the crossover
// measured in docs/breakpoints.md, "Measurements behind the code").
constexpr int64_t kRadixFrom = 1024;

// The positions of the keys in ascending order; stable, so ties keep the
// units' order and the sums below are taken in an order fixed by the inputs
// alone (either sort gives the same order).
std::vector<int64_t> stable_order(std::vector<int64_t>& keys) {
  const int64_t k = static_cast<int64_t>(keys.size());
  if (k < kRadixFrom) {
    std::vector<int64_t> order(k);
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t i, int64_t j) { return keys[i] < keys[j]; });
    return order;
  }
  // Integer keys sort by radix in ATen, faster than sorting the floats
  // (docs/breakpoints.md).
  const auto order = std::get<1>(at::sort(at::from_blob(keys.data(), {k}, at::kLong),
                                          /*stable=*/std::optional<bool>(true), 0));
  const int64_t* p = order.const_data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + k);
}

}  // namespace

template <class T>
BreakpointTable<T> make_breakpoint_table(const UnitParams& u) {
  const int64_t k = u.count;
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::vector<T> event(k);
  std::vector<int64_t> key(k);
  for (int64_t j = 0; j < k; ++j) {
    const double m = u.m[j], b = u.b[j];
    const double t = m == 0 ? (b > 0 ? -inf : inf) : -b / m;
    event[j] = largest_at_most<T>(t, /*strict=*/m < 0);
    key[j] = sort_key(event[j]);
  }
  BreakpointTable<T> table{std::vector<T>(k), stable_order(key), std::vector<uint8_t>(k),
                           std::vector<double>(2 * (k + 1))};
  const int64_t* order = table.order.data();
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
