// SIMD CPU kernels of relu_sum_linear, on raw pointers (kernel_table.h,
// LinearKernels). Included by relu_sum_kernels.h, after its vector helpers,
// so compiled once per instruction set like them; the per-element math is
// relu_sum_math.h's.
//
// Outputs run along the vector lanes (a is transposed to (I, K, Op), outputs
// innermost), so a tile of y is a few rows by a few vectors of outputs held
// in registers, and every sum over samples is taken one sample after another.

namespace relu_ext::cpu::RELU_EXT_CPU_ISA {
namespace {

// Dense forward tile: kLinRows samples by kLinOutVecs vectors of outputs, as
// many accumulators as leave registers for a's vectors.
constexpr int kLinRows = 4;
constexpr int kLinOutVecs = RELU_EXT_VEC_BYTES == 64 ? 4 : 2;
// Rows per dense block: their tiles share the o-slab of a while it is in L2.
constexpr int64_t kLinRowBlock = 64;
// Units per dense backward tile (each with kLinRows dot accumulators).
constexpr int kLinUnits = 4;
// Output vectors in registers: the cell forward's row of y, the backward's
// two sums and beta of a cell group.
constexpr int kCellVecs = RELU_EXT_VEC_BYTES == 64 ? 8 : 4;

// Half a vector of floats: as many as a vector of doubles has lanes.
typedef float NarrowF __attribute__((vector_size(RELU_EXT_VEC_BYTES / 2)));

// kLanes<double> elements of T as doubles (the tables are summed in float64).
template <class T>
RELU_EXT_INLINE Vec<double> load_wide(const T* p) {
  if constexpr (sizeof(T) == 8) {
    return load<double>(p);
  } else {
    NarrowF h;
    std::memcpy(&h, p, sizeof h);
    return __builtin_convertvector(h, Vec<double>);
  }
}
template <class T>
RELU_EXT_INLINE void store_narrow(T* p, Vec<double> v) {
  if constexpr (sizeof(T) == 8) {
    store<double>(p, v);
  } else {
    const NarrowF h = __builtin_convertvector(v, NarrowF);
    std::memcpy(p, &h, sizeof h);
  }
}

// ---- dense ----

template <int V, class T>
RELU_EXT_INLINE void dense_forward_tile(const T* const* xr, const LinearParams<T>& p,
                                        int64_t o0, const T* bias, T* const* yr, int nr) {
  constexpr int R = kLinRows, L = kLanes<T>;
  const int64_t K = p.units, Op = p.padded;
  Vec<T> acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = Vec<T>{};
  for (int64_t i = 0; i < p.inputs; ++i) {
    T xv[R];
    for (int r = 0; r < R; ++r) xv[r] = xr[r][i];
    const T* mi = p.m + i * K;
    const T* bi = p.b + i * K;
    const T* ai = p.at + i * K * Op + o0;
    for (int64_t k = 0; k < K; ++k) {
      Vec<T> av[V];
      for (int v = 0; v < V; ++v) av[v] = load(ai + k * Op + v * L);
      for (int r = 0; r < R; ++r) {
        const Vec<T> h = splat(relu(preact(xv[r], mi[k], bi[k])));
        for (int v = 0; v < V; ++v) acc[r][v] += h * av[v];
      }
    }
  }
  for (int r = 0; r < nr; ++r)
    for (int v = 0; v < V; ++v) {
      Vec<T> out = acc[r][v];
      if (bias) out = out + load(bias + o0 + v * L);
      store(yr[r] + o0 + v * L, out);
    }
}

template <class T>
void linear_dense_forward(const T* x, int64_t rows, LinearParams<T> p, const T* bias, T* y) {
  constexpr int R = kLinRows, V = kLinOutVecs, L = kLanes<T>;
  const int64_t I = p.inputs, Op = p.padded, vecs = Op / L;
  for (int64_t b0 = 0; b0 < rows; b0 += kLinRowBlock) {
    const int64_t b1 = std::min(rows, b0 + kLinRowBlock);
    int64_t v0 = 0;
    const auto tiles = [&](auto width) {
      for (int64_t r0 = b0; r0 < b1; r0 += R) {
        const int nr = static_cast<int>(std::min<int64_t>(R, b1 - r0));
        const T* xr[R];
        T* yr[R];
        // A short tile repeats its first row and stores only its own.
        for (int r = 0; r < R; ++r) {
          const int64_t n = r0 + (r < nr ? r : 0);
          xr[r] = x + n * I;
          yr[r] = y + n * Op;
        }
        dense_forward_tile<decltype(width)::value>(xr, p, v0 * L, bias, yr, nr);
      }
    };
    for (; v0 + V <= vecs; v0 += V) tiles(std::integral_constant<int, V>{});
    for (; v0 < vecs; ++v0) tiles(std::integral_constant<int, 1>{});
  }
}

// U units of input i against kLinRows samples: t = H(p) (g . a) for dx, dm,
// db, and dat[k] += g relu(p) for the rows in the tile, in row order.
template <int U, class T>
RELU_EXT_INLINE void dense_backward_tile(const T* xv, const T* const* gr, int nr,
                                         const T* at, const T* m, const T* b, int64_t Op,
                                         unsigned grads, T* dxacc, T* dm, T* db, T* dat) {
  constexpr int R = kLinRows, L = kLanes<T>;
  const bool need_t = grads & (kGradX | kGradM | kGradB), need_a = grads & kGradA;
  T pre[R][U];
  Vec<T> h[R][U], dot[R][U];
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < U; ++u) {
      pre[r][u] = preact(xv[r], m[u], b[u]);
      h[r][u] = splat(relu(pre[r][u]));
      dot[r][u] = Vec<T>{};
    }
  for (int64_t o = 0; o < Op; o += L) {
    Vec<T> gv[R], av[U];
    for (int r = 0; r < R; ++r) gv[r] = load(gr[r] + o);
    if (need_t) {
      for (int u = 0; u < U; ++u) av[u] = load(at + u * Op + o);
      for (int r = 0; r < R; ++r)
        for (int u = 0; u < U; ++u) dot[r][u] += gv[r] * av[u];
    }
    if (need_a) {
      for (int u = 0; u < U; ++u) {
        Vec<T> d = load(dat + u * Op + o);
        for (int r = 0; r < nr; ++r) d += h[r][u] * gv[r];
        store(dat + u * Op + o, d);
      }
    }
  }
  if (!need_t) return;
  for (int r = 0; r < nr; ++r)
    for (int u = 0; u < U; ++u) {
      const T t = relu_backward(sum_lanes<T>(dot[r][u]), pre[r][u]);
      dxacc[r] += t * m[u];
      dm[u] += t * xv[r];
      db[u] += t;
    }
}

template <class T>
void linear_dense_backward(const T* x, int64_t x_stride, const T* g, int64_t rows,
                           LinearParams<T> p, int64_t i, unsigned grads, T* dx,
                           int64_t dx_stride, T* dm, T* db, T* dat) {
  constexpr int R = kLinRows, U = kLinUnits;
  const int64_t K = p.units, Op = p.padded;
  const T* at = p.at + i * K * Op;
  const T* m = p.m + i * K;
  const T* b = p.b + i * K;
  // Sums the caller did not ask for go to scratch (dm, db) or are not taken.
  std::vector<T> scratch_mb(2 * K);
  T* dm_acc = (grads & kGradM) ? dm : scratch_mb.data();
  T* db_acc = (grads & kGradB) ? db : scratch_mb.data() + K;
  std::fill(dm_acc, dm_acc + K, T(0));
  std::fill(db_acc, db_acc + K, T(0));
  if (grads & kGradA) std::fill(dat, dat + K * Op, T(0));
  T dxacc[kLinRowBlock];
  for (int64_t b0 = 0; b0 < rows; b0 += kLinRowBlock) {
    const int64_t b1 = std::min(rows, b0 + kLinRowBlock);
    std::fill(dxacc, dxacc + kLinRowBlock, T(0));
    int64_t k0 = 0;
    const auto tiles = [&](auto width) {
      constexpr int W = decltype(width)::value;
      for (int64_t r0 = b0; r0 < b1; r0 += R) {
        const int nr = static_cast<int>(std::min<int64_t>(R, b1 - r0));
        T xv[R];
        const T* gr[R];
        for (int r = 0; r < R; ++r) {
          const int64_t n = r0 + (r < nr ? r : 0);
          xv[r] = x[n * x_stride];
          gr[r] = g + n * Op;
        }
        dense_backward_tile<W>(xv, gr, nr, at + k0 * Op, m + k0, b + k0, Op, grads,
                               dxacc + (r0 - b0), dm_acc + k0, db_acc + k0,
                               (grads & kGradA) ? dat + k0 * Op : nullptr);
      }
    };
    for (; k0 + U <= K; k0 += U) tiles(std::integral_constant<int, U>{});
    for (; k0 < K; ++k0) tiles(std::integral_constant<int, 1>{});
    if (grads & kGradX)
      for (int64_t n = b0; n < b1; ++n) dx[n * dx_stride] = dxacc[n - b0];
  }
}

// ---- breakpoints ----

// One sorted unit's a row times (b, m) added to a [alpha, beta] row of doubles.
template <class T>
RELU_EXT_INLINE void add_unit(double* row, const T* a, double b, double m, int64_t Op) {
  constexpr int L = kLanes<double>;
  for (int64_t o = 0; o < Op; o += L) {
    const Vec<double> av = load_wide(a + o);
    store(row + o, load(row + o) + av * b);
    store(row + Op + o, load(row + Op + o) + av * m);
  }
}

template <class T>
void linear_cells(LinearParams<T> p, int64_t i, const int64_t* order, const uint8_t* rising,
                  double* scratch, T* cells) {
  constexpr int L = kLanes<double>;
  const int64_t K = p.units, Op = p.padded, W = 2 * Op;
  const T* at = p.at + i * K * Op;
  const T* m = p.m + i * K;
  const T* b = p.b + i * K;
  if constexpr (sizeof(T) == 4) {
    // float32 cells: the falling units at positions >= j as their total minus
    // a prefix, in float64, whose cancellation stays far below the cell's one
    // rounding to float32; a third of the memory traffic of the suffix rows.
    double* rise = scratch;
    double* fall = scratch + W;
    double* fall_before = scratch + 2 * W;
    std::fill(scratch, scratch + 3 * W, 0.0);
    for (int64_t j = 0; j < K; ++j)
      if (!rising[j]) add_unit(fall, at + order[j] * Op, b[order[j]], m[order[j]], Op);
    for (int64_t j = 0; j <= K; ++j) {
      for (int64_t o = 0; o < W; o += L)
        store_narrow(cells + j * W + o,
                     load(rise + o) + (load(fall + o) - load(fall_before + o)));
      if (j == K) break;
      const int64_t u = order[j];
      add_unit(rising[j] ? rise : fall_before, at + u * Op, b[u], m[u], Op);
    }
    return;
  }
  // Row j of scratch: the falling units at sorted positions >= j (each a
  // suffix from the back, never a total minus a prefix, which would cancel
  // in the float64 result).
  std::fill(scratch + K * W, scratch + (K + 2) * W, 0.0);
  for (int64_t j = K - 1; j >= 0; --j) {
    std::memcpy(scratch + j * W, scratch + (j + 1) * W, W * sizeof(double));
    const int64_t u = order[j];
    if (!rising[j]) add_unit(scratch + j * W, at + u * Op, b[u], m[u], Op);
  }
  // Plus the rising units at positions < j, rounded once to T.
  double* prefix = scratch + (K + 1) * W;
  for (int64_t j = 0; j <= K; ++j) {
    for (int64_t o = 0; o < W; o += L)
      store_narrow(cells + j * W + o, load(prefix + o) + load(scratch + j * W + o));
    if (j < K && rising[j]) {
      const int64_t u = order[j];
      add_unit(prefix, at + u * Op, b[u], m[u], Op);
    }
  }
}

// Cell of each sample: the number of the K sorted events below x[r], each
// event compared with every lane of samples at once; -1 for a non-finite x.
// For few units this is a fraction of a binary search's cost and has no
// branch to mispredict.
template <class T>
void linear_count_cells(const T* events, int64_t k, const T* x, int64_t rows, int32_t* cell) {
  using Int = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef Int IntVec __attribute__((vector_size(RELU_EXT_VEC_BYTES)));
  constexpr int L = kLanes<T>;
  int64_t r = 0;
  for (; r + L <= rows; r += L) {
    const Vec<T> xv = load(x + r);
    IntVec c{};
    for (int64_t j = 0; j < k; ++j) c -= (splat(events[j]) < xv);  // true is -1
    c = ((xv - xv) == Vec<T>{}) ? c : IntVec{} - 1;  // x - x is NaN for NaN and ±inf
    for (int l = 0; l < L; ++l) cell[r + l] = static_cast<int32_t>(c[l]);
  }
  for (; r < rows; ++r) {
    int32_t c = 0;
    for (int64_t j = 0; j < k; ++j) c += events[j] < x[r];
    cell[r] = std::isfinite(x[r]) ? c : -1;
  }
}

// Row r of y, V vectors of outputs from o0, in registers while it gains the
// term of every input in turn.
template <int V, class T>
RELU_EXT_INLINE void cells_forward_tile(const T* tables, int64_t input_stride, int64_t ldt,
                                        int64_t beta_at, const int32_t* cell, int64_t ldc,
                                        const T* x, int64_t ldx, int64_t inputs, int64_t r,
                                        int64_t o0, bool first, T* yr) {
  constexpr int L = kLanes<T>;
  Vec<T> acc[V];
  for (int v = 0; v < V; ++v) acc[v] = first ? Vec<T>{} : load(yr + o0 + v * L);
  for (int64_t s = 0; s < inputs; ++s) {
    const int64_t c = cell[s * ldc + r];
    if (c < 0) continue;
    const T* alpha = tables + s * input_stride + c * ldt + o0;
    const T* beta = alpha + beta_at;
    const Vec<T> xv = splat(x[s * ldx + r]);
    for (int v = 0; v < V; ++v) acc[v] = acc[v] + (xv * load(beta + v * L) + load(alpha + v * L));
  }
  for (int v = 0; v < V; ++v) store(yr + o0 + v * L, acc[v]);
}

template <class T>
void linear_cells_forward(const T* tables, int64_t input_stride, int64_t ldt, int64_t beta_at,
                          const int32_t* cell, int64_t ldc, const T* x, int64_t ldx,
                          int64_t inputs, int64_t rows, int64_t width, bool first, T* y,
                          int64_t ldy) {
  constexpr int V = kCellVecs, L = kLanes<T>;
  const int64_t vecs = width / L;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t v0 = 0;
    for (; v0 + V <= vecs; v0 += V)
      cells_forward_tile<V>(tables, input_stride, ldt, beta_at, cell, ldc, x, ldx, inputs, r,
                            v0 * L, first, y + r * ldy);
    for (; v0 < vecs; ++v0)
      cells_forward_tile<1>(tables, input_stride, ldt, beta_at, cell, ldc, x, ldx, inputs, r,
                            v0 * L, first, y + r * ldy);
  }
}

// Lane l of the sum of L (= lanes) vectors' lanes, each vector halved as
// sum_lanes does (lane t plus lane t + w, w = L/2, ..., 1, so the sums are
// bitwise sum_lanes'), all L at once: a level pairs the vectors, each holding
// groups of P partial sums, into half as many holding groups of P / 2. Taken
// in bit-reversed order, vector r's sum ends in lane r. About one shuffle and
// one add per vector, against a few of each for sum_lanes alone.
constexpr int bit_reversed(int k, int lanes) {
  int r = 0;
  for (int w = 1; w < lanes; w *= 2) r = 2 * r + ((k / w) % 2);
  return r;
}
template <int L, int P, bool High>
constexpr int halve_pick(int t) {
  const int half = P / 2, group = t / half, from_b = group % 2;
  return from_b * L + (group / 2) * P + t % half + (High ? half : 0);
}
template <int L, int P, bool High, class V, std::size_t... T>
RELU_EXT_INLINE V halve_lanes(V a, V b, std::index_sequence<T...>) {
  return __builtin_shufflevector(a, b, halve_pick<L, P, High>(T)...);
}
template <int P, class T>
RELU_EXT_INLINE void halve_level(Vec<T>* v) {
  if constexpr (P > 1) {
    constexpr int L = kLanes<T>;
    constexpr auto lanes = std::make_index_sequence<L>{};
    for (int k = 0; k < P / 2; ++k)
      v[k] = halve_lanes<L, P, false>(v[2 * k], v[2 * k + 1], lanes) +
             halve_lanes<L, P, true>(v[2 * k], v[2 * k + 1], lanes);
    halve_level<P / 2, T>(v);
  }
}
template <class T>
RELU_EXT_INLINE Vec<T> sum_lanes_of(const Vec<T>* rows) {
  constexpr int L = kLanes<T>;
  Vec<T> v[L];
  for (int k = 0; k < L; ++k) v[k] = rows[bit_reversed(k, L)];
  halve_level<L, T>(v);
  return v[0];
}

// One group's rows backward, V vectors of outputs from o0: the cell's sums of
// g and x g gather in registers (added to s0, s1 once per group), and each
// row's dot with beta is added to its vector part[r], summed across lanes
// once all groups and tiles are done.
template <int V, bool Sums, bool Dx, class T>
RELU_EXT_INLINE void group_backward_tile(const T* beta, T* s0, T* s1, const int32_t* rows,
                                         int64_t count, const T* x, const T* g, int64_t ldg,
                                         int64_t o0, Vec<T>* part) {
  constexpr int L = kLanes<T>;
  Vec<T> acc0[V], acc1[V], bv[V];
  for (int v = 0; v < V; ++v) {
    acc0[v] = acc1[v] = Vec<T>{};
    if constexpr (Dx) bv[v] = load(beta + o0 + v * L);
  }
  for (int64_t j = 0; j < count; ++j) {
    const int64_t r = rows[j];
    const Vec<T> xv = splat(x[r]);
    const T* gr = g + r * ldg + o0;
    Vec<T> dot[2] = {};  // two chains of FMA latency, not one
    for (int v = 0; v < V; ++v) {
      const Vec<T> gv = load(gr + v * L);
      if constexpr (Sums) {
        acc0[v] += gv;
        acc1[v] += xv * gv;
      }
      if constexpr (Dx) dot[v % 2] += gv * bv[v];
    }
    if constexpr (Dx) part[r] += dot[0] + dot[1];
  }
  if constexpr (Sums)
    for (int v = 0; v < V; ++v) {
      store(s0 + o0 + v * L, load(s0 + o0 + v * L) + acc0[v]);
      store(s1 + o0 + v * L, load(s1 + o0 + v * L) + acc1[v]);
    }
}

template <bool Sums, bool Dx, class T>
void groups_backward_impl(const T* table, T* sums, int64_t ldt, int64_t beta_at,
                          CellGroups groups, const T* x, const T* g, int64_t ldg,
                          int64_t width, int64_t rows, T* dx) {
  constexpr int V = kCellVecs, L = kLanes<T>;
  const int64_t vecs = width / L;
  Vec<T> part[kLinearBlockRows];
  if constexpr (Dx)
    for (int64_t r = 0; r < rows; ++r) part[r] = Vec<T>{};
  for (int64_t u = 0; u < groups.count; ++u) {
    const int64_t c = groups.cell[u];
    const T* beta = Dx ? table + c * ldt + beta_at : nullptr;
    T* s0 = Sums ? sums + c * ldt : nullptr;
    T* s1 = Sums ? s0 + beta_at : nullptr;
    const int32_t* rs = groups.rows + groups.begin[u];
    const int64_t count = groups.begin[u + 1] - groups.begin[u];
    int64_t v0 = 0;
    for (; v0 + V <= vecs; v0 += V)
      group_backward_tile<V, Sums, Dx>(beta, s0, s1, rs, count, x, g, ldg, v0 * L, part);
    for (; v0 < vecs; ++v0)
      group_backward_tile<1, Sums, Dx>(beta, s0, s1, rs, count, x, g, ldg, v0 * L, part);
  }
  if constexpr (Dx) {
    int64_t r = 0;
    for (; r + L <= rows; r += L) store(dx + r, sum_lanes_of<T>(part + r));
    for (; r < rows; ++r) dx[r] = sum_lanes<T>(part[r]);
  }
}

template <class T>
void linear_groups_backward(const T* table, T* sums, int64_t ldt, int64_t beta_at,
                            CellGroups groups, const T* x, const T* g, int64_t ldg,
                            int64_t width, int64_t rows, T* dx) {
  if (sums && dx)
    groups_backward_impl<true, true>(table, sums, ldt, beta_at, groups, x, g, ldg, width, rows,
                                     dx);
  else if (sums)
    groups_backward_impl<true, false>(table, sums, ldt, beta_at, groups, x, g, ldg, width, rows,
                                      dx);
  else if (dx)
    groups_backward_impl<false, true>(table, sums, ldt, beta_at, groups, x, g, ldg, width, rows,
                                      dx);
}

template <class T>
void linear_unit_grads(LinearParams<T> p, int64_t i, const int64_t* order,
                       const uint8_t* rising, const T* sums, double* acc, unsigned grads,
                       T* dm, T* db, T* dat) {
  constexpr int L = kLanes<double>;
  const int64_t K = p.units, Op = p.padded, W = 2 * Op;
  const T* at = p.at + i * K * Op;
  const T* m = p.m + i * K;
  const T* b = p.b + i * K;
  // acc holds G0 (the sum of g) and G1 (of g x) over the unit's active samples.
  const auto emit = [&](int64_t u) {
    const double* g0 = acc;
    const double* g1 = acc + Op;
    if (grads & kGradA) {
      const double mu = m[u], bu = b[u];
      for (int64_t o = 0; o < Op; o += L)
        store_narrow(dat + u * Op + o, load(g1 + o) * mu + load(g0 + o) * bu);
    }
    if (grads & (kGradM | kGradB)) {
      Vec<double> s0{}, s1{};
      for (int64_t o = 0; o < Op; o += L) {
        const Vec<double> av = load_wide(at + u * Op + o);
        s0 += av * load(g0 + o);
        s1 += av * load(g1 + o);
      }
      if (grads & kGradM) dm[u] = static_cast<T>(sum_lanes<double>(s1));
      if (grads & kGradB) db[u] = static_cast<T>(sum_lanes<double>(s0));
    }
  };
  const auto add_cell = [&](int64_t c) {
    for (int64_t o = 0; o < W; o += L) store(acc + o, load(acc + o) + load_wide(sums + c * W + o));
  };
  // Falling unit at sorted position j: cells <= j, a prefix from the front.
  std::fill(acc, acc + W, 0.0);
  for (int64_t j = 0; j < K; ++j) {
    add_cell(j);
    if (!rising[j]) emit(order[j]);
  }
  // Rising unit at position j: cells > j, a suffix from the back.
  std::fill(acc, acc + W, 0.0);
  for (int64_t j = K - 1; j >= 0; --j) {
    add_cell(j + 1);
    if (rising[j]) emit(order[j]);
  }
}

template <class T>
constexpr LinearKernels<T> linear_kernels{
    linear_dense_forward<T>,  linear_dense_backward<T>,  linear_cells<T>,
    linear_count_cells<T>,    linear_cells_forward<T>,   linear_groups_backward<T>,
    linear_unit_grads<T>};

}  // namespace
}  // namespace relu_ext::cpu::RELU_EXT_CPU_ISA
