#include "checks.h"

#include <sstream>
#include <string>
#include <vector>

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

void check_device(const char* op, const char* name, const at::Tensor& t, const at::Tensor& x) {
  TORCH_CHECK_VALUE(t.device() == x.device(), op, "(): ", name,
                    " must be on the device of x (", x.device().str(), "), but got ",
                    t.device().str());
}

// A unit parameter: x's dtype, or float32 when x is 16-bit (the mixed
// precision rule, checks.h).
void check_param(const char* op, const char* name, const at::Tensor& t, const at::Tensor& x) {
  const auto xt = x.scalar_type(), pt = t.scalar_type();
  TORCH_CHECK_TYPE(pt == xt || (is_16bit(xt) && pt == at::kFloat), op, "(): ", name,
                   " must have the dtype of x (", dtype_name(xt), ")",
                   is_16bit(xt) ? " or torch.float32" : "", ", but got ", dtype_name(pt));
  check_device(op, name, t, x);
}

// The units' parameters share one dtype: the kernels read them as one array type.
void check_like_m(const char* op, const char* name, const at::Tensor& t, const at::Tensor& m) {
  TORCH_CHECK_TYPE(t.scalar_type() == m.scalar_type(), op, "(): ", name,
                   " must have the dtype of m (", dtype_name(m.scalar_type()), "), but got ",
                   dtype_name(t.scalar_type()));
}

void check_like_x(const char* op, const char* name, const at::Tensor& t,
                  const at::Tensor& x) {
  TORCH_CHECK_TYPE(t.scalar_type() == x.scalar_type(), op, "(): ", name,
                   " must have the dtype of x (", dtype_name(x.scalar_type()),
                   "), but got ", dtype_name(t.scalar_type()));
  check_device(op, name, t, x);
}

// x's dtype, and the units' m and b of one dtype allowed with it.
void check_x_and_units(const char* op, const at::Tensor& x, const at::Tensor& m,
                       const at::Tensor& b) {
  TORCH_CHECK_TYPE(is_supported_float(x.scalar_type()), op,
                   "(): x must be a floating-point tensor (torch.float16, "
                   "torch.bfloat16, torch.float32 or torch.float64), but got ",
                   dtype_name(x.scalar_type()));
  check_param(op, "m", m, x);
  check_param(op, "b", b, x);
  check_like_m(op, "b", b, m);
}

}  // namespace

void check_relu_sum_args(const char* op, const at::Tensor& x, const at::Tensor& m,
                         const at::Tensor& b, const std::optional<at::Tensor>& a,
                         const char* a_name) {
  check_x_and_units(op, x, m, b);
  if (a) {
    check_param(op, a_name, *a, x);
    check_like_m(op, a_name, *a, m);
  }
  TORCH_CHECK_VALUE(m.dim() == 1 || m.dim() == 2, op,
                    "(): m must be 1-D (K units, shared) or 2-D (C channels, K units), "
                    "but got shape ", shape_str(m.sizes()));
  TORCH_CHECK_VALUE(b.sizes() == m.sizes(), op, "(): b must have the shape of m (",
                    shape_str(m.sizes()), "), but got ", shape_str(b.sizes()));
  if (a)
    TORCH_CHECK_VALUE(a->sizes() == m.sizes(), op, "(): ", a_name, " must have the shape of m (",
                      shape_str(m.sizes()), "), but got ", shape_str(a->sizes()));
  if (m.dim() == 2) {
    // The op's canonical per-channel layout; relu_ext.relu_sum maps any x and
    // dim onto it, so only a direct caller of the op sees these two.
    TORCH_CHECK_VALUE(x.dim() == 3, op,
                      "(): x must be 3-D (outer, C, inner) when m is 2-D (C, K), but got shape ",
                      shape_str(x.sizes()));
    TORCH_CHECK_VALUE(x.size(1) == m.size(0), op,
                      "(): x.shape[1] must equal the number of channels of m (", m.size(0),
                      "), but got ", x.size(1));
  }
}

void check_grad(const char* op, const at::Tensor& grad, const at::Tensor& x) {
  check_like_x(op, "grad", grad, x);
  TORCH_CHECK_VALUE(grad.sizes() == x.sizes(), op, "(): grad must have the shape of x (",
                    shape_str(x.sizes()), "), but got ", shape_str(grad.sizes()));
}

void check_relu_sum_linear_args(const char* op, const at::Tensor& x, const at::Tensor& m,
                                const at::Tensor& b, const at::Tensor& a,
                                const std::optional<at::Tensor>& bias) {
  check_x_and_units(op, x, m, b);
  check_param(op, "a", a, x);
  check_like_m(op, "a", a, m);
  if (bias) {
    check_param(op, "bias", *bias, x);
    check_like_m(op, "bias", *bias, m);
  }
  TORCH_CHECK_VALUE(x.dim() == 2, op, "(): x must be 2-D (N, I), but got shape ",
                    shape_str(x.sizes()));
  TORCH_CHECK_VALUE(m.dim() == 2 && m.size(0) == x.size(1), op,
                    "(): m must be 2-D (I, K) with I = x.shape[1] = ", x.size(1),
                    ", but got shape ", shape_str(m.sizes()));
  TORCH_CHECK_VALUE(b.sizes() == m.sizes(), op, "(): b must have the shape of m (",
                    shape_str(m.sizes()), "), but got ", shape_str(b.sizes()));
  TORCH_CHECK_VALUE(a.dim() == 3 && a.size(1) == m.size(0) && a.size(2) == m.size(1), op,
                    "(): a must be 3-D (O, I, K) with (I, K) = m.shape (",
                    shape_str(m.sizes()), "), but got shape ", shape_str(a.sizes()));
  if (bias)
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == a.size(0), op,
                      "(): bias must be 1-D (O,) with O = a.shape[0] = ", a.size(0),
                      ", but got shape ", shape_str(bias->sizes()));
}

void check_linear_grad(const char* op, const at::Tensor& grad, const at::Tensor& x,
                       const at::Tensor& a) {
  check_like_x(op, "grad", grad, x);
  const std::vector<int64_t> want{x.size(0), a.size(0)};
  TORCH_CHECK_VALUE(grad.sizes() == at::IntArrayRef(want), op,
                    "(): grad must have shape (N, O) = ", shape_str(want), ", but got ",
                    shape_str(grad.sizes()));
}

}  // namespace relu_ext
