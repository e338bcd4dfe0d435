// relu_ext.ops._C: loading it registers the operators (library.cpp and the
// backends' TORCH_LIBRARY_IMPL blocks); pybind11 adds what is not an operator:
// the build's description, the CPU instruction-set switch and fit_curve's
// solver (curve/).
#include <ATen/Parallel.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include <string>

#include "algorithm.h"
#include "cpu/kernel_table.h"
#include "curve/bindings.h"

#ifndef RELU_EXT_VERSION
#error "setup.py defines RELU_EXT_VERSION and RELU_EXT_TORCH_VERSION"
#endif
#ifndef RELU_EXT_CUDA_ARCHS
#define RELU_EXT_CUDA_ARCHS ""
#endif

namespace {

pybind11::dict build_info() {
  namespace py = pybind11;
  py::dict info;
  info["version"] = RELU_EXT_VERSION;
  info["torch"] = RELU_EXT_TORCH_VERSION;
  py::list backends;
  backends.append("cpu");
#ifdef RELU_EXT_WITH_CUDA
  backends.append("cuda");
#endif
  info["backends"] = backends;
  info["cuda_archs"] = py::str(RELU_EXT_CUDA_ARCHS).attr("split")();
  info["cpu_isa"] = relu_ext::cpu::kernels().isa;
  const char* isas[3];
  py::list available;
  for (int i = 0, n = relu_ext::cpu::available_isas(isas); i < n; ++i) available.append(isas[i]);
  info["cpu_isas"] = available;
  info["threads"] = at::get_num_threads();
  info["parallel"] = at::get_parallel_info();
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "relu_ext's compiled operators (see torch.ops.relu_ext)";
  m.def("build_info", &build_info,
        "Version, the torch it was built against, backends, CPU instruction set, threads.");
  m.def(
      "set_cpu_isa", [](const std::string& name) { return std::string(relu_ext::cpu::set_isa(name.c_str())); },
      "Selects the CPU kernels' instruction set ('avx512', 'avx2', 'baseline'); returns the previous one.");
  m.def("auto_uses_breakpoints", &relu_ext::algorithm::auto_uses_breakpoints,
        "Whether relu_sum's 'auto' (relu_ext::relu_sum_auto) takes the breakpoint kernels for x and m (csrc/algorithm.h).");
  relu_ext::curve::bind(m);
}
