#include "constrained_lstsq.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>

#include "linalg.h"

namespace relu_ext::curve {
namespace {

using Vec = std::vector<double>;

double norm(const double* a, int64_t n) { return std::sqrt(dot(a, a, n)); }

// ---------------------------------------------------------------- reflections
// Householder reflections as Lawson & Hanson's H12, kept where they were
// made: x[first] holds the result s, x[first+1..n) the reflector's tail, and
// its head u_first is returned. Both the QR of the face and NNLS use them.

// Reflects x[first..n) onto s·e_first, s = −sign(x_first)·‖x[first..n)‖ (the
// sign that avoids cancellation in u_first = x_first − s); 0 when that part
// of x is zero and there is nothing to reflect.
double make_reflector(double* x, int64_t first, int64_t n) {
  const double length = norm(x + first, n - first);
  if (length == 0) return 0;
  const double s = x[first] > 0 ? -length : length;
  const double u_first = x[first] - s;
  x[first] = s;
  return u_first;
}

// c := H·c for the reflector make_reflector left in x: H = I + u·uᵀ/(s·u_first),
// s·u_first = −‖u‖²/2 < 0.
void apply_reflector(const double* x, double u_first, int64_t first, int64_t n, double* c) {
  const double b = u_first * x[first];
  if (!(b < 0)) return;
  const double t = (c[first] * u_first + dot(x + first + 1, c + first + 1, n - first - 1)) / b;
  if (t == 0) return;
  c[first] += t * u_first;
  for (int64_t i = first + 1; i < n; ++i) c[i] += t * x[i];
}

// A plane rotation taking (a, b) to (r, 0), r = ‖(a, b)‖·sign (L&H's G1,
// which divides by the larger of |a|, |b| so that nothing overflows).
struct Rotation {
  double c, s;

  void apply(double& x, double& y) const {
    const double t = x;
    x = c * t + s * y;
    y = -s * t + c * y;
  }
};

Rotation make_rotation(double a, double b, double& r) {
  if (std::abs(a) > std::abs(b)) {
    const double ratio = b / a, root = std::sqrt(1 + ratio * ratio);
    const double c = std::copysign(1 / root, a);
    r = std::abs(a) * root;
    return {c, c * ratio};
  }
  if (b != 0) {
    const double ratio = a / b, root = std::sqrt(1 + ratio * ratio);
    const double s = std::copysign(1 / root, b);
    r = std::abs(b) * root;
    return {s * ratio, s};
  }
  r = 0;
  return {0, 1};
}

// ---------------------------------------------------------------- the face
// Mᵀ·Π = Q·R for the rows of M scaled to unit length, by Householder with
// column pivoting: the row farthest from the span of those already taken
// comes next, so that R's diagonal is the distance of each from the span
// before it and the rank decision is one comparison with kRankTolerance.
// Q = H_0·…·H_{r−1}: its first r columns span M's rows, the rest is an
// orthonormal basis of M's null space.
class FaceQr {
 public:
  FaceQr(const std::vector<const double*>& rows, int64_t n)
      : n_(n), count_(static_cast<int64_t>(rows.size())), columns_(count_ * n),
        scale_(count_), order_(count_) {
    std::iota(order_.begin(), order_.end(), int64_t{0});
    for (int64_t i = 0; i < count_; ++i) {
      double* column = columns_.data() + i * n;
      std::copy_n(rows[i], n, column);
      scale_[i] = norm(column, n);
      if (scale_[i] > 0) {
        for (int64_t k = 0; k < n; ++k) column[k] /= scale_[i];
      }
    }
    for (int64_t k = 0; k < std::min(n, count_); ++k) {
      const int64_t pivot = farthest_from_span(k);
      if (pivot < 0) break;
      swap_columns(k, pivot);
      double* column = columns_.data() + k * n;
      u_first_.push_back(make_reflector(column, k, n));
      for (int64_t i = k + 1; i < count_; ++i) {
        apply_reflector(column, u_first_[k], k, n, columns_.data() + i * n);
      }
      rank_ = k + 1;
    }
  }

  int64_t rank() const { return rank_; }

  // Whether row i was taken as independent of the rows before it.
  bool independent(int64_t i) const {
    return std::find(order_.begin(), order_.begin() + rank_, i) != order_.begin() + rank_;
  }

  void apply_qt(double* x) const {
    for (int64_t k = 0; k < rank_; ++k) apply_reflector(column(k), u_first_[k], k, n_, x);
  }

  void apply_q(double* x) const {
    for (int64_t k = rank_ - 1; k >= 0; --k) apply_reflector(column(k), u_first_[k], k, n_, x);
  }

  // y[0..rank) with R₁ᵀ·y = the independent rows' rhs (in the order taken):
  // Qᵀ·z starts with y for every z on the face.
  void solve_rt(const double* rhs, double* y) const {
    for (int64_t k = 0; k < rank_; ++k) {
      const double* c = column(k);
      y[k] = (rhs[order_[k]] / scale_[k] - dot(c, y, k)) / c[k];
    }
  }

  // λ with Mᵀ·λ = Q₁·t[0..rank): R₁·λ_taken = t by back substitution, λ of
  // the dependent rows 0, in M's order and scale.
  void solve_r(const double* t, double* lambda) const {
    Vec v(rank_);
    for (int64_t k = rank_ - 1; k >= 0; --k) {
      double s = t[k];
      for (int64_t i = k + 1; i < rank_; ++i) s -= column(i)[k] * v[i];
      v[k] = s / column(k)[k];
    }
    std::fill_n(lambda, count_, 0.0);
    for (int64_t k = 0; k < rank_; ++k) lambda[order_[k]] = v[k] / scale_[k];
  }

 private:
  const double* column(int64_t k) const { return columns_.data() + k * n_; }

  // The column from k on with the largest part outside the span of columns
  // 0..k-1 (the first of equals); -1 when none is beyond kRankTolerance.
  int64_t farthest_from_span(int64_t k) const {
    int64_t best = -1;
    double best_length = kRankTolerance;
    for (int64_t i = k; i < count_; ++i) {
      const double length = norm(column(i) + k, n_ - k);
      if (length > best_length) best = i, best_length = length;
    }
    return best;
  }

  void swap_columns(int64_t a, int64_t b) {
    if (a == b) return;
    std::swap_ranges(columns_.begin() + a * n_, columns_.begin() + (a + 1) * n_,
                     columns_.begin() + b * n_);
    std::swap(scale_[a], scale_[b]);
    std::swap(order_[a], order_[b]);
  }

  int64_t n_, count_, rank_ = 0;
  Vec columns_;  // count × n: column k is row order_[k] of M / scale_[k], then R and the reflectors
  Vec u_first_;  // one per reflector
  Vec scale_;    // the rows' lengths, in column order
  std::vector<int64_t> order_;
};

// The minimiser of zᵀ·(G + ρI)·z − 2gᵀ·z on the rows' solutions (dependent
// rows dropped), in the coordinates y = Qᵀ·z: y[0..r) fixed by the rows,
// y[r..n) = w minimising the reduced problem, whose Hessian has the
// Cholesky factor U (UᵀU = (QᵀGQ)[r:, r:] + ρI; ρI is ρI in any orthonormal
// basis, so the ridge is that of G).
struct Face {
  FaceQr qr;
  Vec y, factor, z;
};

// NᵀGN (p×p) for N = Q[:, r:], p = n − r, G symmetric, by whichever takes
// fewer flops: Qᵀ on G's rows (its columns) gives GQ, and Qᵀ on the rows
// r..n of its transpose QᵀG gives those of QᵀGQ, ~4·(n + p)·r·n; or N
// formed (Q on e_r..e_n) and multiplied out, ~4·p·r·n + 2·n²·p + 2·n·p²,
// far less at a face of many rows. G itself when r = 0.
Vec reduced_gram(const Vec& G, int64_t n, const FaceQr& qr) {
  const int64_t r = qr.rank(), p = n - r;
  Vec reduced(p * p);
  if (4 * (n + p) * r * n <= 4 * p * r * n + 2 * n * n * p + 2 * n * p * p) {
    Vec gq = G;
    for (int64_t i = 0; i < n && r > 0; ++i) qr.apply_qt(gq.data() + i * n);
    for (int64_t i = 0; i < p; ++i) {
      Vec column(n);  // column r + i of GQ: row r + i of QᵀG
      for (int64_t j = 0; j < n; ++j) column[j] = gq[j * n + r + i];
      qr.apply_qt(column.data());
      std::copy_n(column.begin() + r, p, reduced.begin() + i * p);
    }
    return reduced;
  }
  Vec basis(p * n, 0.0), g_basis(p * n);  // rows: the columns of N, of GN
  for (int64_t i = 0; i < p; ++i) {
    double* column = basis.data() + i * n;
    column[r + i] = 1;
    qr.apply_q(column);
    for (int64_t j = 0; j < n; ++j) g_basis[i * n + j] = dot(G.data() + j * n, column, n);
  }
  for (int64_t i = 0; i < p; ++i) {
    for (int64_t j = i; j < p; ++j) {
      reduced[i * p + j] = reduced[j * p + i] = dot(basis.data() + i * n, g_basis.data() + j * n, n);
    }
  }
  return reduced;
}

// The face of `rows` (rhs: their right-hand sides); nullopt when the reduced
// Hessian does not factor even with the grown ridge (G far from positive
// semi-definite, or not finite).
std::optional<Face> solve_face(const Vec& G, const double* g, int64_t n, double ridge,
                               const std::vector<const double*>& rows, const Vec& rhs) {
  Face face{FaceQr(rows, n), Vec(n, 0.0), {}, {}};
  const int64_t r = face.qr.rank(), p = n - r;
  face.qr.solve_rt(rhs.data(), face.y.data());
  if (!cholesky_with_ridge(reduced_gram(G, n, face.qr), p, ridge, face.factor)) return std::nullopt;

  // The reduced gradient's constant part Nᵀ·(g − G·z₀), z₀ = Q·(y[:r], 0):
  // g itself when r = 0.
  Vec z0 = face.y;
  face.qr.apply_q(z0.data());
  Vec w(n);
  for (int64_t i = 0; i < n; ++i) w[i] = g[i] - dot(G.data() + i * n, z0.data(), n);
  face.qr.apply_qt(w.data());
  w.erase(w.begin(), w.begin() + r);
  cholesky_solve(face.factor.data(), p, w.data());
  std::copy(w.begin(), w.end(), face.y.begin() + r);

  face.z = face.y;
  face.qr.apply_q(face.z.data());
  return face;
}

// ---------------------------------------------------------------- NNLS
// min ‖A·x − b‖ subject to x ≥ 0, by L&H's active-set algorithm (ch. 23 §3,
// their NNLS): x's positive entries (the passive set P) are kept such that
// A_P's columns, reduced by the reflections and rotations so far to upper
// triangular form, are well independent; each step lets in the variable of
// largest dual w = Aᵀ(b − A·x), then steps back toward the old x as far as
// needed to keep P's entries positive, letting out those that reach zero.
class Nnls {
 public:
  // A: rows × cols, column-major.
  Nnls(Vec a, int64_t rows, int64_t cols, Vec b)
      : a_(std::move(a)), b_(std::move(b)), x_(cols, 0.0), w_(cols), zz_(rows), index_(cols),
        rows_(rows), cols_(cols) {
    std::iota(index_.begin(), index_.end(), int64_t{0});
  }

  // A bound on the steps against cycles of rounding (x is then the last
  // positive iterate): L&H's 3 per variable is too few where the columns
  // are close to parallel (an ill-conditioned G makes U⁻¹ turn the LDP's
  // rows toward its weak directions), which can take several times that.
  const Vec& solve() {
    const int64_t max_steps = 10 * (rows_ + cols_);
    int64_t steps = 0;
    while (passive_ < std::min(rows_, cols_)) {
      const int64_t entering = choose_entering();
      if (entering < 0) break;  // the dual is <= 0 off P: x is optimal
      enter(entering);
      bool positive = false;
      while (!positive && steps++ < max_steps) {
        solve_passive();
        positive = !step_back();
      }
      if (!positive) break;
      for (int64_t k = 0; k < passive_; ++k) x_[index_[k]] = zz_[k];
    }
    return x_;
  }

 private:
  // Column j of A after the transformations, its first passive_ entries in
  // the span of P, the rest orthogonal to it (as b's).
  double* column(int64_t j) { return a_.data() + j * rows_; }

  // The position (in index_, past P) of the variable to let in, -1 if none:
  // the largest positive dual whose column is independent of P's and whose
  // entry in the least squares solution would be positive.
  int64_t choose_entering() {
    for (int64_t k = passive_; k < cols_; ++k) {
      const int64_t j = index_[k];
      w_[j] = dot(column(j) + passive_, b_.data() + passive_, rows_ - passive_);
    }
    while (true) {
      int64_t best = -1;
      double largest = 0;
      for (int64_t k = passive_; k < cols_; ++k) {
        if (w_[index_[k]] > largest) best = k, largest = w_[index_[k]];
      }
      if (best < 0 || acceptable(index_[best])) return best;
      w_[index_[best]] = 0;
    }
  }

  // Tries the reflector that would make column j P's next: kept (with zz_
  // the reflected b) if the column's new diagonal is not lost in rounding
  // next to its part in P's span (L&H's factor 0.01) and its least squares
  // entry is positive; else undone.
  bool acceptable(int64_t j) {
    double* c = column(j);
    const double saved = c[passive_];
    const double u_first = make_reflector(c, passive_, rows_);
    const double in_span = norm(c, passive_);
    if (in_span + std::abs(c[passive_]) * kIndependence - in_span > 0) {
      zz_ = b_;
      apply_reflector(c, u_first, passive_, rows_, zz_.data());
      if (zz_[passive_] / c[passive_] > 0) {
        u_first_ = u_first;
        return true;
      }
    }
    c[passive_] = saved;
    return false;
  }

  // Moves the variable at position k (just accepted) into P.
  void enter(int64_t k) {
    const int64_t j = index_[k];
    std::swap(index_[k], index_[passive_]);
    b_ = zz_;
    double* c = column(j);
    for (int64_t m = passive_ + 1; m < cols_; ++m) {
      apply_reflector(c, u_first_, passive_, rows_, column(index_[m]));
    }
    std::fill(c + passive_ + 1, c + rows_, 0.0);
    ++passive_;
    w_[j] = 0;
  }

  // zz_[0..passive_): the least squares solution on P (back substitution).
  void solve_passive() {
    zz_ = b_;
    for (int64_t k = passive_ - 1; k >= 0; --k) {
      const double* c = column(index_[k]);
      zz_[k] /= c[k];
      for (int64_t i = 0; i < k; ++i) zz_[i] -= c[i] * zz_[k];
    }
  }

  // If some entry of zz_ is not positive: x moves toward zz_ until the first
  // entry reaches zero, which leaves P with any other rounded to <= 0, and
  // true. False if zz_ is positive.
  bool step_back() {
    double alpha = 2;
    int64_t blocking = -1;
    for (int64_t k = 0; k < passive_; ++k) {
      const double x = x_[index_[k]];
      if (zz_[k] <= 0) {
        const double t = -x / (zz_[k] - x);
        if (alpha > t) alpha = t, blocking = k;
      }
    }
    if (blocking < 0) return false;
    for (int64_t k = 0; k < passive_; ++k) {
      double& x = x_[index_[k]];
      x += alpha * (zz_[k] - x);
    }
    leave(blocking);
    for (int64_t k = 0; k < passive_;) {
      if (x_[index_[k]] <= 0) {
        leave(k);
      } else {
        ++k;
      }
    }
    return true;
  }

  // Moves the variable at position k of P out; the columns after it, one
  // place earlier now, are brought back to triangular form by rotations of
  // rows (m−1, m), applied to every column and to b.
  void leave(int64_t k) {
    const int64_t leaving = index_[k];
    x_[leaving] = 0;
    for (int64_t m = k + 1; m < passive_; ++m) {
      const int64_t j = index_[m];
      index_[m - 1] = j;
      double* c = column(j);
      const Rotation rotation = make_rotation(c[m - 1], c[m], c[m - 1]);
      c[m] = 0;
      for (int64_t l = 0; l < cols_; ++l) {
        if (l != j) rotation.apply(column(l)[m - 1], column(l)[m]);
      }
      rotation.apply(b_[m - 1], b_[m]);
    }
    --passive_;
    index_[passive_] = leaving;
  }

  static constexpr double kIndependence = 0.01;

  Vec a_, b_, x_, w_, zz_;
  std::vector<int64_t> index_;  // P's variables in triangular order, then the others
  int64_t rows_, cols_, passive_ = 0;
  double u_first_ = 0;  // of the reflector acceptable() kept
};

// ---------------------------------------------------------------- the inequalities

bool holds(const double* row, double rhs, const Vec& z, bool equality) {
  const auto n = static_cast<int64_t>(z.size());
  const double value = dot(row, z.data(), n);
  const double tolerance = kFeasibilityTolerance * (norm(row, n) * norm(z.data(), n) + std::abs(rhs));
  return equality ? std::abs(value - rhs) <= tolerance : value - rhs >= -tolerance;
}

// A least distance problem's answer: the inequalities active at its
// minimiser (u_j > 0) and the minimiser itself, in z.
struct LeastDistance {
  std::vector<int64_t> active;
  Vec z;
};

class Solver {
 public:
  explicit Solver(const ConstrainedLstsqProblem& problem)
      : problem_(problem), n_(problem.n), G_(n_ * n_) {
    for (int64_t i = 0; i < n_; ++i) {  // symmetric, from the upper triangle
      for (int64_t j = i; j < n_; ++j) G_[i * n_ + j] = G_[j * n_ + i] = problem.G[i * n_ + j];
    }
    ridge_ = n_ > 0 ? relative_ridge(G_.data(), n_) : 0.0;
    equalities_ = face({});
  }

  ConstrainedLstsqSolution solve() const;

 private:
  ConstrainedLstsqSolution infeasible() const {
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    return {false, Vec(n_, kNaN), Vec(problem_.equalities, kNaN), Vec(problem_.inequalities, kNaN)};
  }

  const double* row(int64_t j) const { return problem_.C + j * n_; }

  // The face of the equalities and the given inequalities.
  std::optional<Face> face(const std::vector<int64_t>& inequalities) const {
    std::vector<const double*> rows;
    Vec rhs(problem_.d, problem_.d + problem_.equalities);
    for (int64_t i = 0; i < problem_.equalities; ++i) rows.push_back(problem_.E + i * n_);
    for (const int64_t j : inequalities) {
      rows.push_back(row(j));
      rhs.push_back(problem_.h[j]);
    }
    return solve_face(G_, problem_.g, n_, ridge_, rows, rhs);
  }

  bool all_hold(const Vec& z) const {
    for (int64_t i = 0; i < problem_.equalities; ++i) {
      if (!holds(problem_.E + i * n_, problem_.d[i], z, true)) return false;
    }
    for (int64_t j = 0; j < problem_.inequalities; ++j) {
      if (!holds(row(j), problem_.h[j], z, false)) return false;
    }
    return true;
  }

  // kFeasibilityTolerance × 2·(‖G‖·‖z‖ + ‖g‖), the size of 2·(G·z − g)'s terms.
  double stationarity_tolerance(const Vec& z) const {
    return kFeasibilityTolerance * 2 *
           (norm(G_.data(), n_ * n_) * norm(z.data(), n_) + norm(problem_.g, n_));
  }

  Vec gradient(const Vec& z) const {
    Vec s(n_);
    for (int64_t i = 0; i < n_; ++i) s[i] = 2 * (dot(G_.data() + i * n_, z.data(), n_) - problem_.g[i]);
    return s;
  }

  std::optional<LeastDistance> least_distance(bool in_g_metric, const Vec& centre) const;
  bool tight(int64_t j, const Vec& z, double length) const;
  std::vector<int64_t> nearly_active(const Vec& z, const Vec& centre,
                                     std::vector<int64_t> active) const;
  std::vector<int64_t> tight_at(const Vec& z, std::vector<int64_t> active) const;
  Vec feasible_point(Vec z) const;
  double multipliers(const Vec& z, const std::vector<int64_t>& active,
                     ConstrainedLstsqSolution& solution) const;
  std::pair<Vec, std::vector<int64_t>> active_set(Vec z, std::vector<int64_t> working) const;

  const ConstrainedLstsqProblem& problem_;
  int64_t n_;
  Vec G_;
  double ridge_;
  std::optional<Face> equalities_;  // z* and the elimination of E
};

// A least distance problem on the equalities' face, from a centre z_c on
// it: in the G metric from z* (x = U·(w − w*), L&H's LSI to LDP), whose
// minimiser is the problem's; or in the Euclidean metric from any z_c (x =
// w − w_c), whose minimiser is only the feasible point nearest z_c, but
// whose rows are as well conditioned as C's, whatever G is. Either is z_c
// itself (nothing active) when z_c satisfies every row to the relaxation;
// nullopt when the rows contradict each other. x is found to about
// ε·‖x‖: from a z_c far from the feasible set, a feasible set much smaller
// than that distance is not resolved; a second problem from the first's
// answer is.
//
// Each row is relaxed by kRelaxation × (‖C_j‖·‖z_c‖ + |h_j|): rounding alone
// would otherwise make a feasible set that is a single point (equalities and
// tight inequalities that pin z, a monotone curve through two equal values)
// look empty. Rows that the equalities fix (C_j·z the same on the whole
// face) stay out: the final check decides them.
std::optional<LeastDistance> Solver::least_distance(bool in_g_metric, const Vec& centre) const {
  const Face& face = *equalities_;
  const int64_t n = n_, r = face.qr.rank(), p = n - r;
  const double centre_length = norm(centre.data(), n);
  // The LDP's rows: a_j = (CQ)_j[r:] (·U⁻¹) and β_j = h_j − C_j·z_c
  // (relaxed), both over ‖a_j‖ so that every row is a unit normal and β_j a
  // distance.
  std::vector<int64_t> rows;
  Vec a, beta, reduced(n);
  for (int64_t j = 0; j < problem_.inequalities; ++j) {
    const double* c = row(j);
    std::copy_n(c, n, reduced.begin());
    face.qr.apply_qt(reduced.data());
    double* tail = reduced.data() + r;
    const double c_length = norm(c, n);
    if (!(norm(tail, p) > kRankTolerance * c_length)) continue;
    if (in_g_metric) cholesky_solve_lower(face.factor.data(), p, tail);
    const double length = norm(tail, p);
    rows.push_back(j);
    for (int64_t k = 0; k < p; ++k) a.push_back(tail[k] / length);
    const double relaxation = kRelaxation * (c_length * centre_length + std::abs(problem_.h[j]));
    beta.push_back((problem_.h[j] - dot(c, centre.data(), n) - relaxation) / length);
  }
  double farthest = 0;
  for (const double b : beta) farthest = std::max(farthest, b);
  if (!(farthest > 0)) return LeastDistance{{}, centre};

  // LDP as NNLS (L&H ch. 23 §4): E' = [Aᵀ; βᵀ] (β over the farthest, so
  // that E' is of order 1), f = e_p; r = E'u − f, and x = −r[:p]/r_p unless
  // r_p = −‖r‖² is 0, the constraints' contradiction.
  const auto count = static_cast<int64_t>(rows.size());
  Vec columns((p + 1) * count);
  for (int64_t k = 0; k < count; ++k) {
    std::copy_n(a.begin() + k * p, p, columns.begin() + k * (p + 1));
    columns[k * (p + 1) + p] = beta[k] / farthest;
  }
  Vec target(p + 1, 0.0);
  target[p] = 1;
  Nnls nnls(columns, p + 1, count, target);
  const Vec& u = nnls.solve();
  Vec residual(p + 1, 0.0);
  residual[p] = -1;
  LeastDistance result;
  for (int64_t k = 0; k < count; ++k) {
    if (!(u[k] > 0)) continue;
    result.active.push_back(rows[k]);
    for (int64_t i = 0; i <= p; ++i) residual[i] += columns[k * (p + 1) + i] * u[k];
  }
  if (!(residual[p] < 0)) return std::nullopt;

  // z = Q·(y[:r], w_c + (U⁻¹)·x), on E's face whatever rounding put z_c at.
  Vec x(p);
  for (int64_t i = 0; i < p; ++i) x[i] = -residual[i] / residual[p] * farthest;
  if (in_g_metric) cholesky_solve_upper(face.factor.data(), p, x.data());
  if (in_g_metric) {
    result.z = face.y;  // the centre is z* = Q·y
  } else {
    result.z = centre;
    face.qr.apply_qt(result.z.data());
    std::copy_n(face.y.begin(), r, result.z.begin());
  }
  for (int64_t i = 0; i < p; ++i) result.z[r + i] += x[i];
  face.qr.apply_q(result.z.data());
  return result;
}

// nu and mu for z with mu >= 0 on the active rows only, from the
// stationarity condition 2·(G·z − g) = Eᵀ·nu + C_activeᵀ·mu: in E's null
// space (Q₂ᵀ of both sides) it is NNLS for mu, which keeps mu >= 0 where the
// active rows are dependent (a degenerate vertex) and least squares would
// not; nu then solves the rest, R₁·nu = Q₁ᵀ·(2·(G·z − g) − C_activeᵀ·mu),
// by back substitution (0 for the rows found dependent). Returns the
// stationarity residual left, ‖Q₂ᵀ·(2·(G·z − g) − C_activeᵀ·mu)‖.
double Solver::multipliers(const Vec& z, const std::vector<int64_t>& active,
                           ConstrainedLstsqSolution& solution) const {
  const Face& face = *equalities_;
  const int64_t n = n_, r = face.qr.rank(), p = n - r;
  const auto count = static_cast<int64_t>(active.size());
  Vec s = gradient(z);
  face.qr.apply_qt(s.data());
  Vec rows(count * n);  // Qᵀ·C_jᵀ for the active j
  Vec reduced(count * p);
  for (int64_t k = 0; k < count; ++k) {
    double* projected = rows.data() + k * n;
    std::copy_n(row(active[k]), n, projected);
    face.qr.apply_qt(projected);
    std::copy_n(projected + r, p, reduced.begin() + k * p);
  }
  Nnls nnls(reduced, p, count, Vec(s.begin() + r, s.end()));
  const Vec& mu = nnls.solve();
  solution.mu.assign(problem_.inequalities, 0.0);
  for (int64_t k = 0; k < count; ++k) {
    solution.mu[active[k]] = mu[k];
    for (int64_t i = 0; i < n; ++i) s[i] -= rows[k * n + i] * mu[k];
  }
  solution.nu.resize(problem_.equalities);
  face.qr.solve_r(s.data(), solution.nu.data());
  return norm(s.data() + r, p);
}

// The primal active-set method (Nocedal & Wright, Numerical Optimization,
// 2nd ed., algorithm 16.3) from a feasible z and a working set of
// inequalities that hold with equality there: each step goes toward the
// minimiser on the working set's face, as far as the first constraint it
// would break, which joins the set; at a face's minimiser, the inequality of
// most negative multiplier leaves, and when none is negative z is the
// minimiser. Exact in finitely many steps, but for cycling at a degenerate
// vertex, which the step bound stops (z is then the last feasible iterate).
// The fallback where the LDP's rounding misleads it, for a G so
// ill-conditioned that U⁻¹ makes the LDP's rows nearly parallel: each step
// is a face solve, O(n³).
std::pair<Vec, std::vector<int64_t>> Solver::active_set(Vec z, std::vector<int64_t> working) const {
  std::vector<char> in_working(problem_.inequalities, 0);
  for (const int64_t j : working) in_working[j] = 1;
  const int64_t max_steps = 2 * (n_ + problem_.inequalities) + 10;
  int64_t dropped = -1;  // the row that left at the last step, if it did
  for (int64_t step = 0; step < max_steps; ++step) {
    const auto face = this->face(working);
    if (!face) break;
    // The working set is kept independent, so that its multipliers are
    // unique: a row the face's QR found dependent on the others leaves (its
    // equality follows from theirs).
    if (face->qr.rank() < problem_.equalities + static_cast<int64_t>(working.size())) {
      const auto before = working.size();
      for (size_t k = working.size(); k-- > 0;) {
        if (!face->qr.independent(problem_.equalities + static_cast<int64_t>(k))) {
          in_working[working[k]] = 0;
          working.erase(working.begin() + static_cast<std::ptrdiff_t>(k));
        }
      }
      if (working.size() < before) continue;
    }
    Vec direction(n_);
    for (int64_t i = 0; i < n_; ++i) direction[i] = face->z[i] - z[i];
    const double z_length = std::max(norm(z.data(), n_), norm(face->z.data(), n_));
    double alpha = 1;
    int64_t blocking = -1;
    for (int64_t j = 0; j < problem_.inequalities; ++j) {
      // Only a row that the whole step would break by more than a tenth of
      // the tolerance blocks it: one whose rate is rounding (dependent on
      // the working set's, at a degenerate vertex; the direction is a
      // difference of points, rounded to ε·‖z‖) would make the set
      // dependent. The slack is today's, so that such steps cannot add up.
      const double rate = dot(row(j), direction.data(), n_);
      const double slack = dot(row(j), z.data(), n_) - problem_.h[j];
      const double tolerance =
          kFeasibilityTolerance / 10 * (norm(row(j), n_) * z_length + std::abs(problem_.h[j]));
      if (in_working[j] || !(slack + rate < -tolerance)) continue;
      if (std::max(slack, 0.0) < alpha * -rate) alpha = std::max(slack, 0.0) / -rate, blocking = j;
    }
    if (blocking >= 0) {
      for (int64_t i = 0; i < n_; ++i) z[i] += alpha * direction[i];
      working.push_back(blocking);
      in_working[blocking] = 1;
      // A row that left for a negative multiplier would, in exact
      // arithmetic, be moved away from. Stopped by it at once, the sign was
      // rounding (the face's stationarity no better than the multiplier):
      // z is then as good as this precision tells, and going on would cycle.
      if (blocking == dropped) break;
      dropped = -1;
      continue;
    }
    z = face->z;
    // The face's multipliers: R₁·λ = Q₁ᵀ·2·(G·z − g), in its rows' order
    // (equalities, then the working set).
    Vec s = gradient(z);
    face->qr.apply_qt(s.data());
    Vec lambda(problem_.equalities + working.size());
    face->qr.solve_r(s.data(), lambda.data());
    const auto most_negative = std::min_element(lambda.begin() + problem_.equalities, lambda.end());
    if (most_negative == lambda.end() || *most_negative >= -stationarity_tolerance(z)) break;
    const auto k = most_negative - (lambda.begin() + problem_.equalities);
    dropped = working[k];
    in_working[working[k]] = 0;
    working.erase(working.begin() + k);
  }
  return {std::move(z), std::move(working)};
}

// Whether inequality j holds with equality at z, to kFeasibilityTolerance ×
// (‖C_j‖·length + |h_j|).
bool Solver::tight(int64_t j, const Vec& z, double length) const {
  const double slack = dot(row(j), z.data(), n_) - problem_.h[j];
  return slack <= kFeasibilityTolerance * (norm(row(j), n_) * length + std::abs(problem_.h[j]));
}

// `active` and the other inequalities tight at the LDP's z, to the scale of
// ‖z_c‖ + ‖z‖ (the LDP's accuracy): at a degenerate vertex, NNLS's
// positive u_j are only a basis of the rows that pin z, and the face of
// those alone would let z leave the others.
std::vector<int64_t> Solver::nearly_active(const Vec& z, const Vec& centre,
                                           std::vector<int64_t> active) const {
  std::vector<char> in(problem_.inequalities, 0);
  for (const int64_t j : active) in[j] = 1;
  const double length = norm(z.data(), n_) + norm(centre.data(), n_);
  for (int64_t j = 0; j < problem_.inequalities; ++j) {
    if (!in[j] && tight(j, z, length)) active.push_back(j);
  }
  return active;
}

// The rows of `active` tight at z: a face's QR takes at most n rows, and
// those it leaves out need not hold with equality, so they may not carry a
// multiplier.
std::vector<int64_t> Solver::tight_at(const Vec& z, std::vector<int64_t> active) const {
  const double length = norm(z.data(), n_);
  std::erase_if(active, [&](int64_t j) { return !tight(j, z, length); });
  return active;
}

// A point satisfying every constraint, from z on E's face: z, else the
// nearest feasible point in the Euclidean metric, found again from there
// while the first is not resolved finely enough (see least_distance); empty
// when the inequalities contradict each other.
Vec Solver::feasible_point(Vec z) const {
  for (int attempt = 0; attempt < 3 && !all_hold(z); ++attempt) {
    auto nearest = least_distance(false, z);
    if (!nearest) return {};
    z = std::move(nearest->z);
  }
  return all_hold(z) ? z : Vec{};
}

ConstrainedLstsqSolution Solver::solve() const {
  if (!equalities_) return infeasible();
  ConstrainedLstsqSolution solution{true, {}, {}, {}};
  const Vec& centre = equalities_->z;
  const auto ldp = least_distance(true, centre);
  if (ldp && ldp->active.empty()) {  // z* satisfies every inequality
    if (!all_hold(ldp->z)) return infeasible();
    multipliers(ldp->z, {}, solution);
    solution.z = ldp->z;
    return solution;
  }

  // The face of the LDP's active rows gives them to rounding, where the LDP
  // point carries the error of U⁻¹ and the relaxation: it is the answer
  // when it breaks no constraint and needs no negative multiplier.
  Vec start;
  std::vector<int64_t> working;
  if (ldp) {
    auto active = nearly_active(ldp->z, centre, ldp->active);
    auto face = this->face(active);
    if (face && all_hold(face->z)) {
      active = tight_at(face->z, std::move(active));
      if (multipliers(face->z, active, solution) <= stationarity_tolerance(face->z)) {
        solution.z = std::move(face->z);
        return solution;
      }
      start = std::move(face->z);
      working = std::move(active);
    }
  }
  // Otherwise the primal active-set method finishes, from there or from a
  // feasible point near the LDP's.
  if (start.empty()) start = feasible_point(ldp ? ldp->z : centre);
  if (start.empty()) return infeasible();
  auto [z, active] = active_set(std::move(start), std::move(working));
  if (!all_hold(z)) return infeasible();
  multipliers(z, tight_at(z, std::move(active)), solution);
  solution.z = std::move(z);
  return solution;
}

}  // namespace

ConstrainedLstsqSolution solve_constrained_lstsq(const ConstrainedLstsqProblem& problem) {
  return Solver(problem).solve();
}

}  // namespace relu_ext::curve
