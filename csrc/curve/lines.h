// Each segment's line of a fitted curve f(u) = c + α·u + Σ_k β_k·relu(u - t_k),
// and the delta-method standard errors of the lines and breakpoints: one
// owner for the bootstrap's replicates (bootstrap.cpp) and curve_summary
// (relu_ext/curve/_summary.py, through the binding).
#pragma once

#include <cstdint>
#include <vector>

namespace relu_ext::curve {

// Segment j (left to right) of the curve (t sorted, coef = c, α, β) is
// c + α·u + Σ_{k<j} β_k·(u - t_k): its slope, and its value at u0.
struct Lines {
  std::vector<double> slopes, values;
};
Lines segment_lines(const std::vector<double>& t, const std::vector<double>& coef, double u0);

// Standard errors of each segment's slope and of its value at u0, and of
// each breakpoint, for the curve (t, coef) fitted by weighted least squares
// to the n points (u, w) with residual standard deviation sigma:
// σ·√(gᵀΣg) for g the gradient in θ = (c, α, β, t), Σ = (JᵀWJ)⁻¹ with J the
// Jacobian at the points (the columns 1, u, relu(u - t_k), -β_k·[u > t_k]).
//
// breakpoints_estimated false: t is known, θ = (c, α, β) (their errors NaN).
// through: points (in u, inside the points' range; a point given twice
// counts once) the fit was made to pass through; Σ is then the constrained
// fit's, (JᵀWJ)⁻¹ less its part along the constraints' rows A:
// M⁻¹ - M⁻¹Aᵀ(AM⁻¹Aᵀ)⁻¹AM⁻¹, M = JᵀWJ. The singularity test below is M's: a
// segment that only a point passed through fixes gets NaN too.
//
// From the Cholesky factor of JᵀWJ with its columns scaled to a unit
// diagonal (u in years puts the columns of 1 and u at scales 2000 apart).
// Singular, and every error NaN, where a pivot of that factor is at most
// kSingularPivot of the largest: a segment without the points to fix its
// line, say. Never a number from a singular system.
inline constexpr double kSingularPivot = 1e-7;

struct CurveErrors {
  std::vector<double> slopes, values, breakpoints;
};
CurveErrors curve_errors(const double* u, const double* w, int64_t n, const std::vector<double>& t,
                         const std::vector<double>& coef, double sigma, double u0,
                         bool breakpoints_estimated = true,
                         const std::vector<double>& through = {});

}  // namespace relu_ext::curve
