#include "relu_sum_linear_tables.h"

#include <ATen/ATen.h>

namespace relu_ext::breakpoints {

template <class T>
LinearTables<T> make_linear_tables(const at::Tensor& m, const at::Tensor& b,
                                   const at::Tensor& a_t) {
  const int64_t inputs = m.size(0), k = m.size(1);
  LinearTables<T> t;
  t.finite.assign(inputs, 1);
  if (inputs == 0) return t;
  // The breakpoints -b/m in float64, as relu_sum's tables take them.
  const auto md = m.to(at::kDouble).contiguous(), bd = b.to(at::kDouble).contiguous();
  t.inputs = make_channel_tables<T>(
      UnitParams{md.const_data_ptr<double>(), bd.const_data_ptr<double>(), nullptr,
                 inputs * k},
      inputs);
  if (k > 0) {
    const auto finite = (at::isfinite(m).all(1) & at::isfinite(b).all(1) &
                         at::isfinite(a_t).flatten(1).all(1))
                            .to(at::kByte)
                            .contiguous();
    const uint8_t* f = finite.const_data_ptr<uint8_t>();
    t.finite.assign(f, f + inputs);
  }
  return t;
}

template LinearTables<float> make_linear_tables<float>(const at::Tensor&, const at::Tensor&,
                                                       const at::Tensor&);
template LinearTables<double> make_linear_tables<double>(const at::Tensor&, const at::Tensor&,
                                                         const at::Tensor&);

}  // namespace relu_ext::breakpoints
