// Built only when relu_ext is built without CUDA: a CUDA tensor then gets an
// error that says why and how to rebuild, instead of the dispatcher's
// "Could not run 'relu_ext::relu_sum' with arguments from the 'CUDA' backend".
#include <c10/util/Exception.h>
#include <torch/library.h>

namespace {

[[noreturn]] void fail(const char* op) {
  TORCH_CHECK_NOT_IMPLEMENTED(
      false, op,
      "(): got a CUDA tensor, but this build of relu_ext has no CUDA kernels. "
      "Rebuild it with a CUDA-enabled torch and the CUDA toolkit (nvcc, CUDA_HOME): "
      "RELU_EXT_CUDA=1 pip install --no-build-isolation --force-reinstall .");
}

TORCH_LIBRARY_IMPL(relu_ext, CUDA, lib) {
  lib.impl("relu_sum", [](const at::Tensor&, const at::Tensor&, const at::Tensor&,
                          const std::optional<at::Tensor>&) -> at::Tensor {
    fail("relu_sum");
  });
  lib.impl("relu_sum_backward",
           [](const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const std::optional<at::Tensor>&, std::array<bool, 4>)
               -> std::tuple<std::optional<at::Tensor>, std::optional<at::Tensor>,
                             std::optional<at::Tensor>, std::optional<at::Tensor>> {
             fail("relu_sum_backward");
           });
  lib.impl("step_sum", [](const at::Tensor&, const at::Tensor&, const at::Tensor&,
                          const at::Tensor&) -> at::Tensor { fail("step_sum"); });
  using Grads = std::tuple<std::optional<at::Tensor>, std::optional<at::Tensor>,
                           std::optional<at::Tensor>, std::optional<at::Tensor>>;
  lib.impl("relu_sum_linear",
           [](const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const std::optional<at::Tensor>&) -> at::Tensor { fail("relu_sum_linear"); });
  lib.impl("relu_sum_linear_backward",
           [](const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const at::Tensor&, std::array<bool, 4>) -> Grads {
             fail("relu_sum_linear_backward");
           });
  lib.impl("relu_sum_linear_breakpoints",
           [](const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const std::optional<at::Tensor>&) -> at::Tensor {
             fail("relu_sum_linear_breakpoints");
           });
  lib.impl("relu_sum_linear_breakpoints_backward",
           [](const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const at::Tensor&, std::array<bool, 4>) -> Grads {
             fail("relu_sum_linear_breakpoints_backward");
           });
}

}  // namespace
