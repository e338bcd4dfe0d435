#include "op_calls.h"

#include <ATen/core/dispatch/Dispatcher.h>

namespace relu_ext::calls {
namespace {

// The operator's handle, looked up once.
template <class Signature>
c10::TypedOperatorHandle<Signature> handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

using ForwardSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                              const OptTensor&);
using BackwardSig = Grads(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                          const at::Tensor&, const OptTensor&, std::array<bool, 4>);

}  // namespace

at::Tensor relu_sum(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                    const OptTensor& a) {
  static const auto op = handle<ForwardSig>("relu_ext::relu_sum");
  return op.call(x, m, b, a);
}

Grads relu_sum_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& m,
                        const at::Tensor& b, const OptTensor& a, std::array<bool, 4> mask) {
  static const auto op = handle<BackwardSig>("relu_ext::relu_sum_backward");
  return op.call(grad, x, m, b, a, mask);
}

at::Tensor relu_sum_breakpoints(const at::Tensor& x, const at::Tensor& m,
                                const at::Tensor& b, const OptTensor& a) {
  static const auto op = handle<ForwardSig>("relu_ext::relu_sum_breakpoints");
  return op.call(x, m, b, a);
}

Grads relu_sum_breakpoints_backward(const at::Tensor& grad, const at::Tensor& x,
                                    const at::Tensor& m, const at::Tensor& b,
                                    const OptTensor& a, std::array<bool, 4> mask) {
  static const auto op = handle<BackwardSig>("relu_ext::relu_sum_breakpoints_backward");
  return op.call(grad, x, m, b, a, mask);
}

at::Tensor step_sum(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                    const at::Tensor& w) {
  static const auto op =
      handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                        const at::Tensor&)>("relu_ext::step_sum");
  return op.call(x, m, b, w);
}

at::Tensor relu_sum_jvp(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                        const OptTensor& a, const OptTensor& x_t, const OptTensor& m_t,
                        const OptTensor& b_t, const OptTensor& a_t) {
  static const auto op =
      handle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                        const OptTensor&, const OptTensor&, const OptTensor&,
                        const OptTensor&, const OptTensor&)>("relu_ext::relu_sum_jvp");
  return op.call(x, m, b, a, x_t, m_t, b_t, a_t);
}

}  // namespace relu_ext::calls
