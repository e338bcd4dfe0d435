// relu_sum's "auto" algorithm: dense kernels or the breakpoint ones, chosen
// from the sizes alone by a cost model of forward + backward, counted in
// units of one dense (input, unit) pair:
//
//     dense        N·K
//     breakpoints  N·kPerInput + K·kPerUnit + kFixed
//
// The constants, and the timings they were fitted to, are in
// relu_ext/algorithm.py's docstring.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/SymInt.h>

namespace relu_ext::algorithm {

inline constexpr int64_t kPerInput = 300;
inline constexpr int64_t kPerUnit = 2500;
inline constexpr int64_t kFixed = 2'000'000;

// Whether the breakpoint kernels are the cheaper ones for n inputs and k
// units. With symbolic sizes (torch.compile, dynamic shapes) the comparison
// records a guard on them.
inline bool breakpoints_cheaper(const c10::SymInt& n, const c10::SymInt& k) {
  return n * k > n * kPerInput + k * kPerUnit + kFixed;
}

// relu_sum_auto's choice for x and m: the breakpoint kernels where they are
// the cheaper ones and exist (CPU, shared 1-D units only: per-channel units
// have no breakpoint kernels yet). A malformed m goes to the dense op, which
// says what is wrong with it.
inline bool auto_uses_breakpoints(const at::Tensor& x, const at::Tensor& m) {
  return x.is_cpu() && m.dim() == 1 && breakpoints_cheaper(x.sym_numel(), m.sym_size(-1));
}

}  // namespace relu_ext::algorithm
