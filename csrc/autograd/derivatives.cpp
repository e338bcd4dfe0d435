// relu is piecewise linear, so every derivative of relu_sum past the first
// is made of the mask H(p), p_nk = m_k·x_n + b_k, H the derivative of relu
// as torch takes it (relu_sum_math.h), and two sums over it:
//
//     S(w)_n = Σ_k H(p_nk)·w_k     (over units:  step_sum(x, m, b, w))
//     C(v)_k = Σ_n H(p_nk)·v_n     (over inputs: relu_sum_backward(v, x, m, b)'s
//                                   db without output weights; its dm is C(v·x))
//
// S and C are transposes of each other and, away from the kinks (a set of
// measure zero, where torch too takes relu'' = 0), linear in w and v with no
// dependence on x, m, b; so the family {relu_sum, relu_sum_backward,
// step_sum} is closed under differentiation, to any order, through these
// formulas. With y = Σ_k a_k·relu(p) = Σ_k a_k·H(p)·(m_k·x + b_k):
//
//   relu_sum           y_t = relu_sum(x, m, b, a_t) + x_t·S(a·m) + x·S(a·m_t) + S(a·b_t)
//   relu_sum_backward  dx = g·S(a·m)   dm = a·C(g·x)   db = a·C(g)   da = Σ_n g·relu(p)
//                      (a = 1 without output weights)
//
// and the rest below follows by the product rule. Every call goes through
// the dispatcher (op_calls.h), so these are differentiable in turn.
#include "derivatives.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/zeros_like.h>

namespace relu_ext::derivatives {
namespace {

// a·t, or t when there are no output weights (a = 1).
at::Tensor times_a(const OptTensor& a, const at::Tensor& t) { return a ? *a * t : t; }

// Adds term to sum (an undefined sum is zero).
void accumulate(at::Tensor& sum, const at::Tensor& term) {
  sum = sum.defined() ? sum + term : term;
}

at::Tensor S(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
             const at::Tensor& w) {
  return calls::step_sum(x, m, b, w);
}

at::Tensor C(const at::Tensor& v, const at::Tensor& x, const at::Tensor& m,
             const at::Tensor& b) {
  return *std::get<2>(calls::relu_sum_backward(v, x, m, b, std::nullopt, {false, false, true, false}));
}

// (C(v·x), C(v)) in one pass.
std::pair<at::Tensor, at::Tensor> C_vx_v(const at::Tensor& v, const at::Tensor& x,
                                         const at::Tensor& m, const at::Tensor& b) {
  auto [dx, dm, db, da] =
      calls::relu_sum_backward(v, x, m, b, std::nullopt, {false, true, true, false});
  return {*dm, *db};
}

}  // namespace

at::Tensor relu_sum_jvp(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                        const OptTensor& a, const OptTensor& x_t, const OptTensor& m_t,
                        const OptTensor& b_t, const OptTensor& a_t) {
  at::Tensor y_t;
  if (a && a_t) accumulate(y_t, calls::relu_sum(x, m, b, a_t));
  if (x_t) accumulate(y_t, *x_t * S(x, m, b, times_a(a, m)));
  if (m_t) accumulate(y_t, x * S(x, m, b, times_a(a, *m_t)));
  if (b_t) accumulate(y_t, S(x, m, b, times_a(a, *b_t)));
  return y_t.defined() ? y_t : at::zeros_like(x);
}

std::array<at::Tensor, 5> relu_sum_backward_vjp(const at::Tensor& g, const at::Tensor& x,
                                                const at::Tensor& m, const at::Tensor& b,
                                                const OptTensor& a, const Grads& bars,
                                                std::array<bool, 5> need) {
  const auto& [dx_bar, dm_bar, db_bar, da_bar_in] = bars;
  const OptTensor da_bar = a ? da_bar_in : std::nullopt;
  const auto [need_g, need_x, need_m, need_b, need_a] = need;
  std::array<at::Tensor, 5> out;
  auto& [g_bar, x_bar, m_bar, b_bar, a_bar] = out;

  if (need_g) {
    if (dx_bar) accumulate(g_bar, *dx_bar * S(x, m, b, times_a(a, m)));
    if (dm_bar) accumulate(g_bar, x * S(x, m, b, times_a(a, *dm_bar)));
    if (db_bar) accumulate(g_bar, S(x, m, b, times_a(a, *db_bar)));
    if (da_bar) accumulate(g_bar, calls::relu_sum(x, m, b, da_bar));
  }
  if (need_x && (dm_bar || da_bar)) {
    at::Tensor w;
    if (dm_bar) accumulate(w, times_a(a, *dm_bar));
    if (da_bar) accumulate(w, *da_bar * m);
    x_bar = g * S(x, m, b, w);
  }
  // The sums over inputs: C(g·dx_bar), C(g·x) and C(g), as far as needed.
  const bool want_gdx = dx_bar && (need_m || (need_a && a));
  const bool want_g = (da_bar && (need_m || need_b)) || (need_a && a && (dm_bar || db_bar));
  const at::Tensor c_gdx = want_gdx ? C(g * *dx_bar, x, m, b) : at::Tensor();
  at::Tensor c_gx, c_g;
  if (want_g) std::tie(c_gx, c_g) = C_vx_v(g, x, m, b);
  if (need_m) {
    if (dx_bar) accumulate(m_bar, times_a(a, c_gdx));
    if (da_bar) accumulate(m_bar, *da_bar * c_gx);
  }
  if (need_b && da_bar) b_bar = *da_bar * c_g;
  if (need_a && a) {
    if (dx_bar) accumulate(a_bar, m * c_gdx);
    if (dm_bar) accumulate(a_bar, *dm_bar * c_gx);
    if (db_bar) accumulate(a_bar, *db_bar * c_g);
  }
  // A gradient asked for that no term above reaches is zero (relu'' = 0),
  // and must come back as zeros, as torch's threshold_backward gives it: an
  // undefined one would tell torch.autograd.grad that the input is unused,
  // and a gradient penalty through x alone could not reach b, nor the
  // layers before x.
  if (dx_bar || dm_bar || db_bar || da_bar) {
    const auto zero_if_absent = [](bool needed, at::Tensor& grad, const at::Tensor& like) {
      if (needed && !grad.defined()) grad = at::zeros_like(like);
    };
    zero_if_absent(need_g, g_bar, g);
    zero_if_absent(need_x, x_bar, x);
    zero_if_absent(need_m, m_bar, m);
    zero_if_absent(need_b, b_bar, b);
    if (a) zero_if_absent(need_a, a_bar, *a);
  }
  return out;
}

Grads relu_sum_backward_jvp(const at::Tensor& g, const at::Tensor& x, const at::Tensor& m,
                            const at::Tensor& b, const OptTensor& a, std::array<bool, 4> outputs,
                            const OptTensor& g_t, const OptTensor& x_t, const OptTensor& m_t,
                            const OptTensor& b_t, const OptTensor& a_t_in) {
  const OptTensor a_t = a ? a_t_in : std::nullopt;
  const auto [want_dx, want_dm, want_db, want_da_in] = outputs;
  const bool want_da = want_da_in && a;
  at::Tensor dx_t, dm_t, db_t, da_t;

  if (want_dx) {
    if (g_t) accumulate(dx_t, *g_t * S(x, m, b, times_a(a, m)));
    at::Tensor w;
    if (a_t) accumulate(w, *a_t * m);
    if (m_t) accumulate(w, times_a(a, *m_t));
    if (w.defined()) accumulate(dx_t, g * S(x, m, b, w));
  }
  // v = g_t·x + g·x_t, the tangent of g·x; C(v), C(g·x) and C(g).
  at::Tensor v;
  if (g_t) accumulate(v, *g_t * x);
  if (x_t) accumulate(v, g * *x_t);
  const at::Tensor c_v = (v.defined() && (want_dm || want_da)) ? C(v, x, m, b) : at::Tensor();
  const at::Tensor c_gt = (g_t && (want_db || want_da)) ? C(*g_t, x, m, b) : at::Tensor();
  at::Tensor c_gx, c_g;
  if ((a_t && (want_dm || want_db)) || (want_da && (m_t || b_t))) {
    std::tie(c_gx, c_g) = C_vx_v(g, x, m, b);
  }
  if (want_dm) {
    if (a_t) accumulate(dm_t, *a_t * c_gx);
    if (c_v.defined()) accumulate(dm_t, times_a(a, c_v));
  }
  if (want_db) {
    if (a_t) accumulate(db_t, *a_t * c_g);
    if (c_gt.defined()) accumulate(db_t, times_a(a, c_gt));
  }
  if (want_da) {
    if (c_v.defined()) accumulate(da_t, m * c_v);
    if (c_gt.defined()) accumulate(da_t, b * c_gt);
    if (m_t) accumulate(da_t, *m_t * c_gx);
    if (b_t) accumulate(da_t, *b_t * c_g);
  }
  // A requested output whose tangent is zero gets explicit zeros.
  const auto out = [](bool want, at::Tensor t, const at::Tensor& like) -> OptTensor {
    if (!want) return std::nullopt;
    return t.defined() ? t : at::zeros_like(like);
  };
  return {out(want_dx, dx_t, x), out(want_dm, dm_t, m), out(want_db, db_t, m),
          out(want_da, da_t, m)};
}

at::Tensor step_sum_vjp_w(const at::Tensor& bar, const at::Tensor& x, const at::Tensor& m,
                          const at::Tensor& b) {
  return C(bar, x, m, b);
}

}  // namespace relu_ext::derivatives
