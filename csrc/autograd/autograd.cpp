// Autograd for relu_ext's operators, registered in C++ for the Autograd
// dispatch key, the way torch's own operators get theirs: a backward Node
// that saves only the inputs (never N×K) and, for forward mode, the tangent
// of the outputs. The formulas are in derivatives.cpp.
//
// Why C++ and why plain Nodes: a Python autograd formula costs tens of
// microseconds a call, which is most of a training step at the lesson's size;
// and torch::autograd::Function (the C++ custom-function API) is refused by
// torch.func's transforms, while Nodes made like the generated ones work
// under grad, vjp, jacrev, jvp, jacfwd and vmap (relu_ext/ops/_relu_sum.py registers
// the batching rules).
#include <array>
#include <optional>
#include <string>

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/library.h>

#include "derivatives.h"

namespace relu_ext::autograd {
namespace {

using calls::Grads;
using calls::OptTensor;
using torch::autograd::Node;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

using ForwardCall = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                   const OptTensor&);
using BackwardCall = Grads (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                               const at::Tensor&, const OptTensor&, std::array<bool, 4>);

// A saved tensor that may be absent (a, when there are no output weights).
SavedVariable save(const OptTensor& t) { return SavedVariable(t ? *t : at::Tensor(), false); }
OptTensor optional(const at::Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }
at::Tensor value_or_undefined(const OptTensor& t) { return t ? *t : at::Tensor(); }

// The primal and the tangent of a forward-mode dual input; nullopt for an
// absent input or a zero tangent.
at::Tensor primal(const at::Tensor& t) { return t._fw_primal(0); }
OptTensor primal(const OptTensor& t) { return t ? OptTensor(t->_fw_primal(0)) : std::nullopt; }
OptTensor tangent(const OptTensor& t) {
  if (!t || !t->defined()) return std::nullopt;
  const auto& grad = t->_fw_grad(0);
  return grad.defined() ? OptTensor(grad) : std::nullopt;
}

// ------------------------------------------------ relu_sum, relu_sum_breakpoints

struct ReluSumBackward : Node {
  ReluSumBackward(BackwardCall backward, std::string name)
      : backward_(backward), name_(std::move(name)) {}

  variable_list apply(variable_list&& grads) override {
    const auto self = getptr();
    const at::Tensor x = x_.unpack(self), m = m_.unpack(self), b = b_.unpack(self);
    const OptTensor a = optional(a_.unpack(self));
    variable_list out(4);
    const std::array<bool, 4> need{should_compute_output(0), should_compute_output(1),
                                   should_compute_output(2), a && should_compute_output(3)};
    if (!grads[0].defined() || !(need[0] || need[1] || need[2] || need[3])) return out;
    // A first-order backward (grad mode off) without tangents has nothing
    // for the backward op's own autograd kernel to record: straight to the
    // backend, one dispatcher hop fewer per step.
    std::optional<at::AutoDispatchBelowADInplaceOrView> below_autograd;
    if (!at::GradMode::is_enabled() && !tangent(grads[0]) && !tangent(x) && !tangent(m) &&
        !tangent(b) && !tangent(a)) {
      below_autograd.emplace();
    }
    const auto [dx, dm, db, da] = backward_(grads[0], x, m, b, a, need);
    out[0] = value_or_undefined(dx);
    out[1] = value_or_undefined(dm);
    out[2] = value_or_undefined(db);
    out[3] = value_or_undefined(da);
    return out;
  }
  std::string name() const override { return name_; }
  void release_variables() override {
    x_.reset_data();
    m_.reset_data();
    b_.reset_data();
    a_.reset_data();
  }

  SavedVariable x_, m_, b_, a_;

 private:
  BackwardCall backward_;
  std::string name_;
};

template <ForwardCall kForward, BackwardCall kBackward>
at::Tensor relu_sum_autograd(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                             const OptTensor& a, const char* node_name) {
  c10::intrusive_ptr<ReluSumBackward> node;
  if (torch::autograd::compute_requires_grad(x, m, b, a)) {
    node = c10::make_intrusive<ReluSumBackward>(kBackward, node_name);
    node->set_next_edges(torch::autograd::collect_next_edges(x, m, b, a));
    node->x_ = SavedVariable(x, false);
    node->m_ = SavedVariable(m, false);
    node->b_ = SavedVariable(b, false);
    node->a_ = save(a);
  }
  at::Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    y = kForward(x, m, b, a);
  }
  if (node) torch::autograd::set_history(y, node);

  const OptTensor x_t = tangent(x), m_t = tangent(m), b_t = tangent(b), a_t = tangent(a);
  if (x_t || m_t || b_t || a_t) {
    y._set_fw_grad(calls::relu_sum_jvp(primal(x), primal(m), primal(b), primal(a), x_t, m_t,
                                       b_t, a_t),
                   0, /*is_inplace_op=*/false);
  }
  return y;
}

at::Tensor relu_sum_dense(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                          const OptTensor& a) {
  return relu_sum_autograd<calls::relu_sum, calls::relu_sum_backward>(x, m, b, a,
                                                                      "ReluSumBackward");
}

at::Tensor relu_sum_breakpoints(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                                const OptTensor& a) {
  return relu_sum_autograd<calls::relu_sum_breakpoints, calls::relu_sum_breakpoints_backward>(
      x, m, b, a, "ReluSumBreakpointsBackward");
}

// ------------------------------- relu_sum_backward, relu_sum_breakpoints_backward

struct ReluSumBackwardBackward : Node {
  variable_list apply(variable_list&& bars) override {
    const auto self = getptr();
    const at::Tensor g = g_.unpack(self), x = x_.unpack(self), m = m_.unpack(self),
                     b = b_.unpack(self);
    const OptTensor a = optional(a_.unpack(self));
    const Grads bar{optional(bars[0]), optional(bars[1]), optional(bars[2]),
                    optional(bars[3])};
    const std::array<bool, 5> need{should_compute_output(0), should_compute_output(1),
                                   should_compute_output(2), should_compute_output(3),
                                   a && should_compute_output(4)};
    const auto grads = derivatives::relu_sum_backward_vjp(g, x, m, b, a, bar, need);
    return variable_list(grads.begin(), grads.end());
  }
  std::string name() const override { return "ReluSumBackwardBackward"; }
  void release_variables() override {
    g_.reset_data();
    x_.reset_data();
    m_.reset_data();
    b_.reset_data();
    a_.reset_data();
  }

  SavedVariable g_, x_, m_, b_, a_;
};

template <BackwardCall kBackward>
Grads relu_sum_backward_autograd(const at::Tensor& g, const at::Tensor& x, const at::Tensor& m,
                                 const at::Tensor& b, const OptTensor& a,
                                 std::array<bool, 4> mask) {
  c10::intrusive_ptr<ReluSumBackwardBackward> node;
  if (torch::autograd::compute_requires_grad(g, x, m, b, a)) {
    node = c10::make_intrusive<ReluSumBackwardBackward>();
    node->set_next_edges(torch::autograd::collect_next_edges(g, x, m, b, a));
    node->g_ = SavedVariable(g, false);
    node->x_ = SavedVariable(x, false);
    node->m_ = SavedVariable(m, false);
    node->b_ = SavedVariable(b, false);
    node->a_ = save(a);
  }
  Grads grads;
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    grads = kBackward(g, x, m, b, a, mask);
  }
  auto& [dx, dm, db, da] = grads;
  if (node) {
    torch::autograd::set_history(
        {value_or_undefined(dx), value_or_undefined(dm), value_or_undefined(db),
         value_or_undefined(da)},
        node);
  }
  const OptTensor g_t = tangent(g), x_t = tangent(x), m_t = tangent(m), b_t = tangent(b),
                  a_t = tangent(a);
  if (g_t || x_t || m_t || b_t || a_t) {
    const std::array<bool, 4> present{dx.has_value(), dm.has_value(), db.has_value(),
                                      da.has_value()};
    const auto tangents = derivatives::relu_sum_backward_jvp(
        primal(g), primal(x), primal(m), primal(b), primal(a), present, g_t, x_t, m_t, b_t,
        a_t);
    const auto set = [](OptTensor& out, const OptTensor& t) {
      if (out && t) out->_set_fw_grad(*t, 0, /*is_inplace_op=*/false);
    };
    set(dx, std::get<0>(tangents));
    set(dm, std::get<1>(tangents));
    set(db, std::get<2>(tangents));
    set(da, std::get<3>(tangents));
  }
  return grads;
}

// ------------------------------------------------------------------ step_sum

struct StepSumBackward : Node {
  variable_list apply(variable_list&& bars) override {
    variable_list out(4);
    if (!bars[0].defined()) return out;
    const auto self = getptr();
    const at::Tensor x = x_.unpack(self), m = m_.unpack(self), b = b_.unpack(self);
    // Piecewise constant in x, m, b: their gradients are zeros, not absent,
    // as torch.sign's are, so that the inputs count as used in the graph.
    if (should_compute_output(0)) out[0] = at::zeros_like(x);
    if (should_compute_output(1)) out[1] = at::zeros_like(m);
    if (should_compute_output(2)) out[2] = at::zeros_like(b);
    if (should_compute_output(3)) out[3] = derivatives::step_sum_vjp_w(bars[0], x, m, b);
    return out;
  }
  std::string name() const override { return "StepSumBackward"; }
  void release_variables() override {
    x_.reset_data();
    m_.reset_data();
    b_.reset_data();
  }

  SavedVariable x_, m_, b_;
};

at::Tensor step_sum_autograd(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                             const at::Tensor& w) {
  c10::intrusive_ptr<StepSumBackward> node;
  if (torch::autograd::compute_requires_grad(x, m, b, w)) {
    node = c10::make_intrusive<StepSumBackward>();
    node->set_next_edges(torch::autograd::collect_next_edges(x, m, b, w));
    node->x_ = SavedVariable(x, false);
    node->m_ = SavedVariable(m, false);
    node->b_ = SavedVariable(b, false);
  }
  at::Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    y = calls::step_sum(x, m, b, w);
  }
  if (node) torch::autograd::set_history(y, node);
  if (const OptTensor w_t = tangent(w)) {
    y._set_fw_grad(calls::step_sum(primal(x), primal(m), primal(b), *w_t), 0,
                   /*is_inplace_op=*/false);
  } else if (tangent(x) || tangent(m) || tangent(b)) {
    // A zero tangent rather than none, as torch.sign gives: relu_sum's
    // second derivatives in forward mode are products with step_sum, and
    // would otherwise lose the tangent that the reference's carry.
    y._set_fw_grad(at::zeros_like(y), 0, /*is_inplace_op=*/false);
  }
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(relu_ext, Autograd, lib) {
  lib.impl("relu_sum", &relu_sum_dense);
  lib.impl("relu_sum_backward", &relu_sum_backward_autograd<calls::relu_sum_backward>);
  lib.impl("relu_sum_breakpoints", &relu_sum_breakpoints);
  lib.impl("relu_sum_breakpoints_backward",
           &relu_sum_backward_autograd<calls::relu_sum_breakpoints_backward>);
  lib.impl("step_sum", &step_sum_autograd);
}

// A composite of the operators above: autograd, torch.func and every backend
// come from them.
TORCH_LIBRARY_IMPL(relu_ext, CompositeImplicitAutograd, lib) {
  lib.impl("relu_sum_jvp", &derivatives::relu_sum_jvp);
}

}  // namespace relu_ext::autograd
