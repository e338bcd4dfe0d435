// fit_curve's coefficients under shape constraints: for fixed breakpoints, a
// monotone or convex curve, or one through given points, is the solution of
//
//   minimise   zᵀ·G·z − 2·gᵀ·z      G n×n symmetric positive semi-definite
//   subject to E·z = d              m_e rows, possibly dependent
//              C·z ≥ h              m_i rows
//
// with G, g the normal equations of hinge_lstsq.h (n a few to a few hundred).
// G gets the ridge of cholesky.h (kRidge × its mean |diagonal|), so the
// minimiser is unique even where G is singular: it is that of G + ρ·I.
//
// Method, exact in finitely many steps (no penalty weights, no interior-point
// iteration): Lawson & Hanson, Solving Least Squares Problems, ch. 20–23.
//  1. The equalities are eliminated: a Householder QR with column pivoting
//     of Eᵀ (rows scaled to unit length, a row within kRankTolerance of the
//     span of those before it counts as dependent) gives z = z₀ + N·w, N an
//     orthonormal basis of E's null space. z* = z₀ + N·w*, w* the ridged
//     Cholesky solve of the reduced normal equations NᵀGN·w = Nᵀ(g − G·z₀).
//  2. If z* satisfies C·z ≥ h, it is the minimiser. Otherwise, with
//     NᵀGN + ρI = UᵀU and x = U·(w − w*), the rest is the least distance
//     problem (LDP) min ‖x‖² s.t. C·N·U⁻¹·x ≥ h − C·z* (ch. 23 §5, LSI to
//     LDP), solved as the non-negative least squares min ‖[Aᵀ; βᵀ]·u −
//     e_last‖, u ≥ 0 (ch. 23 §4; NNLS by the active-set algorithm of ch. 23
//     §3). A zero residual means the inequalities cannot hold. Each row is
//     relaxed by kRelaxation so that a feasible set that is a single point
//     (a monotone curve through two equal values) survives rounding.
//  3. The LDP point carries the error of U⁻¹, so z is recomputed as in 1 on
//     the face of the rows active there (NNLS's u_j > 0 and the others
//     tight to the tolerance): the active constraints then hold to
//     rounding. That is the answer if it breaks no constraint and its
//     multipliers are >= 0 to the tolerance.
//  4. Otherwise (a G so ill-conditioned that U⁻¹ turns the LDP's rows nearly
//     parallel, or a degenerate vertex): the primal active-set method
//     (Nocedal & Wright, alg. 16.3) finishes, from that face or from the
//     feasible point nearest the LDP's (an LDP in the Euclidean metric,
//     conditioned as C is).
// The multipliers, for z and its active rows: in E's null space the
// stationarity condition 2·(G·z − g) = Eᵀ·nu + C_activeᵀ·mu is NNLS for
// mu (so mu >= 0 even where the active rows are dependent), and nu the
// least squares solution of the rest by the QR of step 1 (0 for E's
// dependent rows). mu is 0 off the active rows.
// Finally every row is checked: |E·z − d| and (h − C·z)⁺ within
// kFeasibilityTolerance × (‖row‖·‖z‖ + |rhs|), else not feasible.
//
// Why this: exact where a penalty or barrier is approximate, accurate
// multipliers (fit_curve differentiates the optimum through them, by the
// envelope theorem), deterministic (no threads, a fixed order of
// operations: the same problem gives bitwise the same solution), and plain
// C++ for the few hundred unknowns there are.
//
// Cost, p = n − rank(E) and k the active rows: O(n³) for the faces (their
// QR, NᵀGN and its Cholesky factor), O(m_i·n·(m_e + p)) to project C, and
// NNLS on a (p + 1) × m_i matrix, O((p + m_i)·p) per step and about k
// steps plus one per row it lets go. Step 4, rare, costs a face, O(n³), per
// step. With no constraints it is hinge_lstsq's ridged Cholesky solve of
// G·z = g, bitwise.
#pragma once

#include <cstdint>
#include <vector>

namespace relu_ext::curve {

// A row (scaled to unit length) closer than this to the span of the rows
// taken before it counts as dependent on them: dropped from the QR, and its
// constraint left to the final check.
inline constexpr double kRankTolerance = 1e-12;
// A constraint holds when it is violated by at most this × (‖row‖·‖z‖ + |rhs|);
// the minimiser is the exact one of its face when that face's stationarity
// residual is at most this × 2·(‖G‖·‖z‖ + ‖g‖).
inline constexpr double kFeasibilityTolerance = 1e-9;
// The least distance problem relaxes each inequality by this × (‖row‖·‖z*‖ +
// |rhs|), a tenth of the tolerance: rounding cannot then make a feasible set
// that is a single point look empty.
inline constexpr double kRelaxation = 1e-10;

// Matrices are row-major with n columns; E, d (C, h) may be null when there
// are no equalities (inequalities). G is read from its upper triangle.
struct ConstrainedLstsqProblem {
  int64_t n = 0;
  const double* G = nullptr;  // n × n
  const double* g = nullptr;  // n
  int64_t equalities = 0;
  const double* E = nullptr;  // equalities × n
  const double* d = nullptr;  // equalities
  int64_t inequalities = 0;
  const double* C = nullptr;  // inequalities × n
  const double* h = nullptr;  // inequalities
};

// The minimiser and its multipliers, 2·(G·z − g) = Eᵀ·nu + Cᵀ·mu (to the
// ridge, 2ρ·z), mu >= 0, mu_j = 0 unless C_j·z = h_j to the tolerance. When
// not feasible (the constraints contradict each other; or G + ridge does not
// factor, G far from positive semi-definite), z, nu and mu are NaN.
struct ConstrainedLstsqSolution {
  bool feasible = false;
  std::vector<double> z;   // n
  std::vector<double> nu;  // equalities
  std::vector<double> mu;  // inequalities
};

ConstrainedLstsqSolution solve_constrained_lstsq(const ConstrainedLstsqProblem& problem);

}  // namespace relu_ext::curve
