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
// Output vectors of y held in registers by the cell forward.
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

template <int V, class T>
RELU_EXT_INLINE void cells_forward_tile(const T* const* rowp, const T* xs, int64_t count,
                                        int64_t Op, int64_t o0, bool first, const T* bias,
                                        T* y) {
  constexpr int L = kLanes<T>;
  Vec<T> acc[V];
  for (int v = 0; v < V; ++v) acc[v] = first ? Vec<T>{} : load(y + o0 + v * L);
  for (int64_t e = 0; e < count; ++e) {
    const T* c = rowp[e] + o0;
    const Vec<T> xv = splat(xs[e]);
    for (int v = 0; v < V; ++v)
      acc[v] = acc[v] + (xv * load(c + Op + v * L) + load(c + v * L));
  }
  for (int v = 0; v < V; ++v) {
    if (bias) acc[v] = acc[v] + load(bias + o0 + v * L);
    store(y + o0 + v * L, acc[v]);
  }
}

template <class T>
void linear_cells_forward(const T* const* rowp, const T* xs, int64_t rows, int64_t count,
                          int64_t Op, bool first, const T* bias, T* y, int64_t ldy) {
  constexpr int V = kCellVecs, L = kLanes<T>;
  const int64_t vecs = Op / L;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t v0 = 0;
    for (; v0 + V <= vecs; v0 += V)
      cells_forward_tile<V>(rowp + r * count, xs + r * count, count, Op, v0 * L, first, bias,
                            y + r * ldy);
    for (; v0 < vecs; ++v0)
      cells_forward_tile<1>(rowp + r * count, xs + r * count, count, Op, v0 * L, first, bias,
                            y + r * ldy);
  }
}

template <bool Sums, bool Dx, class T>
void cells_backward_impl(const T* x, const int32_t* cell, const T* g, int64_t rows, int64_t Op,
                         const T* cells, T* sums, T* dx) {
  constexpr int L = kLanes<T>, A = 4;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = cell[r];
    if (c < 0) continue;
    const T* gr = g + r * Op;
    T* s0 = sums + c * 2 * Op;
    T* s1 = s0 + Op;
    const T* beta = cells + c * 2 * Op + Op;
    const Vec<T> xv = splat(x[r]);
    // A accumulators in turn, so the dot is not one chain of FMA latencies.
    Vec<T> acc[A] = {};
    for (int64_t o = 0, q = 0; o < Op; o += L, q = (q + 1) % A) {
      const Vec<T> gv = load(gr + o);
      if constexpr (Sums) {
        store(s0 + o, load(s0 + o) + gv);
        store(s1 + o, load(s1 + o) + xv * gv);
      }
      if constexpr (Dx) acc[q] += gv * load(beta + o);
    }
    if constexpr (Dx) dx[r] = sum_lanes<T>((acc[0] + acc[1]) + (acc[2] + acc[3]));
  }
}

template <class T>
void linear_cells_backward(const T* x, const int32_t* cell, const T* g, int64_t rows,
                           int64_t Op, const T* cells, T* sums, T* dx) {
  if (sums && dx) cells_backward_impl<true, true>(x, cell, g, rows, Op, cells, sums, dx);
  else if (sums) cells_backward_impl<true, false>(x, cell, g, rows, Op, cells, sums, dx);
  else if (dx) cells_backward_impl<false, true>(x, cell, g, rows, Op, cells, sums, dx);
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
constexpr LinearKernels<T> linear_kernels{linear_dense_forward<T>, linear_dense_backward<T>,
                                          linear_cells<T>,         linear_cells_forward<T>,
                                          linear_cells_backward<T>, linear_unit_grads<T>};

}  // namespace
}  // namespace relu_ext::cpu::RELU_EXT_CPU_ISA
