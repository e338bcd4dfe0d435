// relu_sum's "auto" algorithm: dense kernels or the breakpoint ones, chosen
// from the sizes alone by a cost model of forward + backward, counted in
// units of one dense (input, unit) pair. For N inputs over C channels of K
// units (shared units: C = 1):
//
//     dense        N·K
//     breakpoints  N·kPerInput + ceil(C / kBuildThreads)·(K·kPerUnit + kPerTable) + kFixed
//
// The tables (one per channel) are built kBuildThreads at a time, the
// threads the constants were fitted with; a single table is built on one
// thread. Per channel, with E = N / C inputs each and many channels,
// breakpoints win when
//     E·K > E·kPerInput + (K·kPerUnit + kPerTable) / kBuildThreads + kFixed / C:
// when each channel's inputs are many compared to its K, enough to pay for
// its table. The timings the constants were fitted to: docs/breakpoints.md,
// "The cost model, measured".
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/SymInt.h>

namespace relu_ext::algorithm {

inline constexpr int64_t kPerInput = 300;
inline constexpr int64_t kPerUnit = 2500;
inline constexpr int64_t kPerTable = 25'000;
inline constexpr int64_t kFixed = 2'000'000;
inline constexpr int64_t kBuildThreads = 2;

// Whether the breakpoint kernels are the cheaper ones for n inputs over
// `channels` channels of k units each. With symbolic sizes (torch.compile,
// dynamic shapes) the comparison records a guard on them.
inline bool breakpoints_cheaper(const c10::SymInt& n, const c10::SymInt& channels,
                                const c10::SymInt& k) {
  const auto rounds = (channels + (kBuildThreads - 1)) / kBuildThreads;
  return n * k > n * kPerInput + rounds * (k * kPerUnit + kPerTable) + kFixed;
}

// relu_sum_auto's choice for x and m (the ops' layout: shared (K,) units, or
// (C, K) units with x (outer, C, inner)): the breakpoint kernels where they
// are the cheaper ones and exist (CPU). A malformed x or m goes to the dense
// op, which says what is wrong with it.
inline bool auto_uses_breakpoints(const at::Tensor& x, const at::Tensor& m) {
  if (!x.is_cpu()) return false;
  if (m.dim() == 1) return breakpoints_cheaper(x.sym_numel(), 1, m.sym_size(0));
  return m.dim() == 2 && x.dim() == 3 && x.sym_size(1) == m.sym_size(0) &&
         breakpoints_cheaper(x.sym_numel(), m.sym_size(0), m.sym_size(1));
}

}  // namespace relu_ext::algorithm
