#include "lines.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "linalg.h"

namespace relu_ext::curve {

using Vec = std::vector<double>;

Lines segment_lines(const Vec& t, const Vec& coef, double u0) {
  const auto h = static_cast<int64_t>(t.size());
  Lines out{Vec(h + 1), Vec(h + 1)};
  double slope = coef[1], intercept = coef[0];  // the line's, at u = 0
  for (int64_t j = 0; j <= h; ++j) {
    if (j > 0) slope += coef[1 + j], intercept -= coef[1 + j] * t[j - 1];
    out.slopes[j] = slope;
    out.values[j] = intercept + slope * u0;
  }
  return out;
}

namespace {

// J's row at u: 1, u, relu(u - t_k), then (breakpoints estimated) -β_k·[u > t_k].
void jacobian_row(double u, const Vec& t, const Vec& coef, int64_t p, double* row) {
  const auto h = static_cast<int64_t>(t.size());
  row[0] = 1, row[1] = u;
  for (int64_t k = 0; k < h; ++k) {
    row[2 + k] = std::max(u - t[k], 0.0);
    if (p > h + 2) row[2 + h + k] = u > t[k] ? -coef[2 + k] : 0.0;
  }
}

}  // namespace

CurveErrors curve_errors(const double* u, const double* w, int64_t n, const Vec& t,
                         const Vec& coef, double sigma, double u0, bool breakpoints_estimated,
                         const Vec& through) {
  const auto h = static_cast<int64_t>(t.size());
  const int64_t p = breakpoints_estimated ? 2 * h + 2 : h + 2;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CurveErrors out{Vec(h + 1, nan), Vec(h + 1, nan), Vec(h, nan)};
  Vec gram(p * p, 0.0), row(p);
  for (int64_t i = 0; i < n; ++i) {
    jacobian_row(u[i], t, coef, p, row.data());
    for (int64_t a = 0; a < p; ++a) {
      if (row[a] == 0) continue;
      const double weighted = w[i] * row[a];
      for (int64_t b = a; b < p; ++b) gram[a * p + b] += weighted * row[b];
    }
  }
  Vec scale(p);
  for (int64_t a = 0; a < p; ++a) scale[a] = gram[a * p + a] > 0 ? std::sqrt(gram[a * p + a]) : 1.0;
  for (int64_t a = 0; a < p; ++a) {
    for (int64_t b = a; b < p; ++b) gram[a * p + b] /= scale[a] * scale[b];
  }
  if (!cholesky_upper(gram.data(), p)) return out;
  double largest = 0, smallest = std::numeric_limits<double>::infinity();
  for (int64_t a = 0; a < p; ++a) {
    largest = std::max(largest, gram[a * p + a]), smallest = std::min(smallest, gram[a * p + a]);
  }
  if (!(smallest > kSingularPivot * largest)) return out;
  // z = U⁻ᵀD⁻¹g, so that gᵀM⁻¹g = ‖z‖².
  const auto solved = [&](Vec g) {
    for (int64_t a = 0; a < p; ++a) g[a] /= scale[a];
    cholesky_solve_lower(gram.data(), p, g.data());
    return g;
  };
  // The constraints' rows, solved likewise (Z_A), and the factor of their
  // Gram matrix Z_AᵀZ_A = AM⁻¹Aᵀ.
  // A point given twice is one constraint (its rows would make AM⁻¹Aᵀ singular).
  Vec distinct;
  for (const double u : through) {
    if (std::find(distinct.begin(), distinct.end(), u) == distinct.end()) distinct.push_back(u);
  }
  const auto constraints = static_cast<int64_t>(distinct.size());
  std::vector<Vec> rows(constraints);
  Vec among(constraints * constraints);
  for (int64_t c = 0; c < constraints; ++c) {
    Vec a(p);
    jacobian_row(distinct[c], t, coef, p, a.data());
    rows[c] = solved(std::move(a));
    for (int64_t d = 0; d <= c; ++d) among[d * constraints + c] = dot(rows[d].data(), rows[c].data(), p);
  }
  if (constraints > 0 && !cholesky_upper(among.data(), constraints)) return out;
  // σ·‖z less its projection on the constraints' Z_A‖: the projection
  // subtracted from z, not its square from ‖z‖², so that an error the
  // constraints make 0 comes out a rounding error, not its square root.
  const auto error_of = [&](Vec g) {
    Vec z = solved(std::move(g));
    if (constraints > 0) {
      Vec along(constraints);
      for (int64_t c = 0; c < constraints; ++c) along[c] = dot(rows[c].data(), z.data(), p);
      cholesky_solve(among.data(), constraints, along.data());
      for (int64_t c = 0; c < constraints; ++c) {
        for (int64_t a = 0; a < p; ++a) z[a] -= along[c] * rows[c][a];
      }
    }
    return sigma * std::sqrt(dot(z.data(), z.data(), p));
  };
  for (int64_t j = 0; j <= h; ++j) {
    // Segment j: c + α·u + Σ_{k<j} β_k·(u - t_k).
    Vec slope(p, 0.0), value(p, 0.0);
    slope[1] = 1, value[0] = 1, value[1] = u0;
    for (int64_t k = 0; k < j; ++k) {
      slope[2 + k] = 1, value[2 + k] = u0 - t[k];
      if (breakpoints_estimated) value[2 + h + k] = -coef[2 + k];
    }
    out.slopes[j] = error_of(std::move(slope));
    out.values[j] = error_of(std::move(value));
  }
  for (int64_t k = 0; k < h && breakpoints_estimated; ++k) {
    Vec at(p, 0.0);
    at[2 + h + k] = 1;
    out.breakpoints[k] = error_of(std::move(at));
  }
  return out;
}

}  // namespace relu_ext::curve
