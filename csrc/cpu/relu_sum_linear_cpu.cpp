// CPU launchers of relu_sum_linear and its backward by the dense algorithm
// (every hinge made in registers, cost N·I·K·O): threads over blocks of rows
// for y, over inputs for the gradients, so that every sum over samples is
// taken by one thread in sample order (bitwise the same on any number of
// threads). The arithmetic is in relu_sum_linear_kernels.h.
#include <array>
#include <optional>
#include <tuple>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../checks.h"
#include "relu_sum_linear_inputs.h"

namespace relu_ext::cpu {
namespace {

// Rows per parallel task of the forward.
constexpr int64_t kRowsPerTask = 64;

at::Tensor relu_sum_linear_cpu(const at::Tensor& x_in, const at::Tensor& m_in,
                               const at::Tensor& b_in, const at::Tensor& a_in,
                               const std::optional<at::Tensor>& bias_in) {
  check_relu_sum_linear_args("relu_sum_linear", x_in, m_in, b_in, a_in, bias_in);
  const LinearInputs in = linear_inputs(x_in, m_in, b_in, a_in);
  const auto bias = bias_in ? padded_rows(*bias_in, in.padded, in.compute) : at::Tensor();
  auto y = new_linear_cpu({in.n, in.padded}, in.compute);
  AT_DISPATCH_FLOATING_TYPES(in.compute, "relu_sum_linear_cpu", [&] {
    const auto& k = kernels().linear<scalar_t>();
    const auto p = in.params<scalar_t>();
    const scalar_t* x = in.x.const_data_ptr<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    const int64_t tasks = (in.n + kRowsPerTask - 1) / kRowsPerTask;
    at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n0 = t * kRowsPerTask, rows = std::min(kRowsPerTask, in.n - n0);
        k.dense_forward(x + n0 * in.inputs, rows, p, bp, yp + n0 * in.padded);
      }
    });
  });
  return finish_rows(y, in.outputs, in.dtype);
}

LinearGrads relu_sum_linear_backward_cpu(const at::Tensor& grad_in, const at::Tensor& x_in,
                                         const at::Tensor& m_in, const at::Tensor& b_in,
                                         const at::Tensor& a_in,
                                         std::array<bool, 4> output_mask) {
  check_relu_sum_linear_args("relu_sum_linear_backward", x_in, m_in, b_in, a_in,
                             std::nullopt);
  check_linear_grad("relu_sum_linear_backward", grad_in, x_in, a_in);
  const unsigned grads = grad_bits(output_mask);
  const LinearInputs in = linear_inputs(x_in, m_in, b_in, a_in);
  const int64_t I = in.inputs, K = in.units, Op = in.padded;
  const auto g = padded_rows(grad_in, Op, in.compute);
  auto dx = (grads & kGradX) ? new_linear_cpu({in.n, I}, in.compute) : at::Tensor();
  auto dm = new_linear_cpu({I, K}, in.compute);
  auto db = new_linear_cpu({I, K}, in.compute);
  auto dat = (grads & kGradA) ? new_linear_cpu({I, K, Op}, in.compute) : at::Tensor();
  if (grads) {
    AT_DISPATCH_FLOATING_TYPES(in.compute, "relu_sum_linear_backward_cpu", [&] {
      const auto& k = kernels().linear<scalar_t>();
      const auto p = in.params<scalar_t>();
      const scalar_t* x = in.x.const_data_ptr<scalar_t>();
      const scalar_t* gp = g.const_data_ptr<scalar_t>();
      scalar_t* dxp = dx.defined() ? dx.mutable_data_ptr<scalar_t>() : nullptr;
      scalar_t* dmp = dm.mutable_data_ptr<scalar_t>();
      scalar_t* dbp = db.mutable_data_ptr<scalar_t>();
      scalar_t* datp = dat.defined() ? dat.mutable_data_ptr<scalar_t>() : nullptr;
      at::parallel_for(0, I, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i)
          k.dense_backward(x + i, I, gp, in.n, p, i, grads, dxp ? dxp + i : nullptr, I,
                           dmp + i * K, dbp + i * K, datp ? datp + i * K * Op : nullptr);
      });
    });
  }
  return finish_grads(in, grads, dx, dm, db, dat);
}

TORCH_LIBRARY_IMPL(relu_ext, CPU, lib) {
  lib.impl("relu_sum_linear", &relu_sum_linear_cpu);
  lib.impl("relu_sum_linear_backward", &relu_sum_linear_backward_cpu);
}

}  // namespace
}  // namespace relu_ext::cpu
