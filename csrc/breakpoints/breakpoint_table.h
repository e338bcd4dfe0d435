// The K-level half of the breakpoint algorithm: what the N-level passes
// (relu_sum_breakpoints_cpu.cpp) need to evaluate sum_k a_k relu(m_k x + b_k)
// at any x with one lookup, and to turn per-interval sums of the incoming
// gradient back into per-unit gradients. O(K log K) time, O(K) memory.
//
// The function is continuous piecewise linear. Unit k switches at its
// breakpoint t_k = -b_k / m_k (evaluated in float64):
//   rising units  (m_k >= 0) are active where x > t_k,
//   falling units (m_k <  0) are active where x < t_k,
//   flat units    (m_k == 0) are rising units active everywhere when b_k > 0
//                 (t_k = -inf) and nowhere otherwise (t_k = +inf).
// Both rules become one comparison with an *event* e_k of the compute dtype
// T, chosen so that for every x of type T the comparison is exactly the one
// with t_k:
//   rising:  e_k = the largest T <= t_k,  and  x > t_k  <=>  x > e_k
//   falling: e_k = the largest T <  t_k,  and  x < t_k  <=>  not x > e_k
// With the events sorted, i(x) = #{events < x} names the interval holding x:
// the rising units at sorted positions j < i(x) and the falling units at
// positions j >= i(x) are active. So the slope and intercept on interval i
// are a prefix sum over rising units plus a suffix sum over falling ones.
//
// Sums are accumulated in float64, each prefix from the front and each suffix
// from the back (never a total minus a prefix, which would cancel).
//
// Written as plain loops (plus a stable sort of 64-bit keys: ATen's radix
// sort for many units, std::stable_sort for few): composed of
// ATen operations (sort of the float events, cumsum, where, nextafter, ...)
// it was several times slower, mostly a comparison sort (measured in
// docs/breakpoints.md, "Measurements behind the code").
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace relu_ext::breakpoints {

// The units' parameters in float64; a is null when there are no output
// weights (a_k = 1).
struct UnitParams {
  const double* m;
  const double* b;
  const double* a;
  int64_t count;
};

template <class T>
struct BreakpointTable {
  std::vector<T> events;         // [K] ascending
  std::vector<int64_t> order;    // [K] the unit at each sorted position
  std::vector<uint8_t> rising;   // [K] sorted order: 1 where m >= 0
  // [K+1][2]: line[2i] is the slope on interval i (the sum of a_k m_k over
  // the units active there) and line[2i+1] the intercept (sum of a_k b_k);
  // side by side so that a lookup touches one cache line.
  std::vector<double> line;
};

template <class T>
BreakpointTable<T> make_breakpoint_table(const UnitParams& units);

// Per-unit gradients from per-interval sums: sums[2i] and sums[2i+1] are the
// sums of g_n and g_n·x_n over the inputs n in interval i (i = 0..K). A
// unit's sums over its active inputs are a suffix (rising) or a prefix
// (falling) sum of these. Writes dm, db, da (each of length K, in the units'
// own order) where the pointer is not null; da needs a.
template <class T>
void unit_gradients(const BreakpointTable<T>& table, const double* sums,
                    const UnitParams& units, double* dm, double* db, double* da);

}  // namespace relu_ext::breakpoints
