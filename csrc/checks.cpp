#include "checks.h"

#include <sstream>
#include <string>

#include <c10/util/Exception.h>

namespace relu_ext {
namespace {

// Python's spelling of a dtype, so messages read the same from C++ and Python.
std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kHalf: return "torch.float16";
    case at::kBFloat16: return "torch.bfloat16";
    case at::kFloat: return "torch.float32";
    case at::kDouble: return "torch.float64";
    case at::kLong: return "torch.int64";
    case at::kInt: return "torch.int32";
    case at::kShort: return "torch.int16";
    case at::kChar: return "torch.int8";
    case at::kByte: return "torch.uint8";
    case at::kBool: return "torch.bool";
    case at::kComplexFloat: return "torch.complex64";
    case at::kComplexDouble: return "torch.complex128";
    default: return std::string("torch.") + c10::toString(t);
  }
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;  // "[2, 3]", as list(t.shape) prints in Python
  return o.str();
}

bool is_supported_float(at::ScalarType t) {
  return t == at::kHalf || t == at::kBFloat16 || t == at::kFloat || t == at::kDouble;
}

void check_like_x(const char* op, const char* name, const at::Tensor& t,
                  const at::Tensor& x) {
  TORCH_CHECK_TYPE(t.scalar_type() == x.scalar_type(), op, "(): ", name,
                   " must have the dtype of x (", dtype_name(x.scalar_type()),
                   "), but got ", dtype_name(t.scalar_type()));
  TORCH_CHECK_VALUE(t.device() == x.device(), op, "(): ", name,
                    " must be on the device of x (", x.device().str(), "), but got ",
                    t.device().str());
}

}  // namespace

void check_relu_sum_args(const char* op, const at::Tensor& x, const at::Tensor& m,
                         const at::Tensor& b, const std::optional<at::Tensor>& a,
                         const char* a_name) {
  TORCH_CHECK_TYPE(is_supported_float(x.scalar_type()), op,
                   "(): x must be a floating-point tensor (torch.float16, "
                   "torch.bfloat16, torch.float32 or torch.float64), but got ",
                   dtype_name(x.scalar_type()));
  check_like_x(op, "m", m, x);
  check_like_x(op, "b", b, x);
  if (a) check_like_x(op, a_name, *a, x);
  TORCH_CHECK_VALUE(m.dim() == 1, op,
                    "(): m must be 1-D with one entry per unit, but got shape ",
                    shape_str(m.sizes()));
  TORCH_CHECK_VALUE(b.sizes() == m.sizes(), op, "(): b must have the shape of m (",
                    shape_str(m.sizes()), "), but got ", shape_str(b.sizes()));
  if (a)
    TORCH_CHECK_VALUE(a->sizes() == m.sizes(), op, "(): ", a_name, " must have the shape of m (",
                      shape_str(m.sizes()), "), but got ", shape_str(a->sizes()));
}

void check_grad(const char* op, const at::Tensor& grad, const at::Tensor& x) {
  check_like_x(op, "grad", grad, x);
  TORCH_CHECK_VALUE(grad.sizes() == x.sizes(), op, "(): grad must have the shape of x (",
                    shape_str(x.sizes()), "), but got ", shape_str(grad.sizes()));
}

}  // namespace relu_ext
