// SIMD CPU kernels of relu_sum, on raw pointers. Included by exactly one
// translation unit per instruction set (isa/*.cpp), which defines
//   RELU_EXT_CPU_ISA     the namespace of this copy (avx512, avx2, baseline)
//   RELU_EXT_ISA_NAME    its name as a string
//   RELU_EXT_VEC_BYTES   the vector width in bytes (64, 32, 16)
// after enabling that instruction set with `#pragma GCC target`. Vectors are
// GCC/Clang vector extensions, so the same source becomes zmm, ymm or xmm
// (or NEON) code; the arithmetic itself is relu_sum_math.h's.
//
// Layout of the work: inputs run along the vector lanes and the units are
// broadcast, so the sum over units (y, dx) stays in a lane and needs no
// shuffles; the sums over inputs (dm, db, da) are reduced across lanes once
// per unit per backward span.
#include "../relu_sum_math.h"
#include "kernel_table.h"

namespace relu_ext::cpu::RELU_EXT_CPU_ISA {
namespace {

template <class T>
struct VecOf {
  typedef T type __attribute__((vector_size(RELU_EXT_VEC_BYTES)));
};
template <class T>
using Vec = typename VecOf<T>::type;
template <class T>
constexpr int kLanes = RELU_EXT_VEC_BYTES / sizeof(T);

// Independent accumulators per forward tile: enough to cover FMA latency
// times throughput; as many as the register file holds (32 zmm, 16 ymm/xmm).
constexpr int kTileVecs = RELU_EXT_VEC_BYTES == 64 ? 8 : 4;
// Units processed together in backward, each holding its m, b, a broadcasts
// and dm, db, da accumulators in registers.
constexpr int kUnitBlock = RELU_EXT_VEC_BYTES == 64 ? 4 : 2;

template <class T>
RELU_EXT_INLINE Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
RELU_EXT_INLINE void store(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}
template <class T>
RELU_EXT_INLINE Vec<T> splat(T s) {
  return Vec<T>{} + s;
}
// Pairwise sum of the lanes, in a fixed order.
template <class T>
RELU_EXT_INLINE T sum_lanes(Vec<T> v) {
  T s[kLanes<T>];
  std::memcpy(s, &v, sizeof v);
#pragma GCC unroll 8
  for (int w = kLanes<T> / 2; w > 0; w /= 2)
    for (int i = 0; i < w; ++i) s[i] += s[i + w];
  return s[0];
}

}  // namespace
}  // namespace relu_ext::cpu::RELU_EXT_CPU_ISA

#if defined(__x86_64__)
// relu(p) is `0 > p ? 0 : p`, which is exactly x86's max(0, p): max returns
// its second operand when either is NaN, so a NaN pre-activation passes
// through as in torch. GCC lowers the vector `?:` to a compare and a masked
// move; max does the same in one instruction, on the forward's critical path.
namespace relu_ext {
namespace isa = cpu::RELU_EXT_CPU_ISA;
#if RELU_EXT_VEC_BYTES == 64
template <> RELU_EXT_INLINE isa::Vec<float> relu(isa::Vec<float> p) { return _mm512_max_ps(isa::Vec<float>{}, p); }
template <> RELU_EXT_INLINE isa::Vec<double> relu(isa::Vec<double> p) { return _mm512_max_pd(isa::Vec<double>{}, p); }
#elif RELU_EXT_VEC_BYTES == 32
template <> RELU_EXT_INLINE isa::Vec<float> relu(isa::Vec<float> p) { return _mm256_max_ps(isa::Vec<float>{}, p); }
template <> RELU_EXT_INLINE isa::Vec<double> relu(isa::Vec<double> p) { return _mm256_max_pd(isa::Vec<double>{}, p); }
#elif RELU_EXT_VEC_BYTES == 16
template <> RELU_EXT_INLINE isa::Vec<float> relu(isa::Vec<float> p) { return _mm_max_ps(isa::Vec<float>{}, p); }
template <> RELU_EXT_INLINE isa::Vec<double> relu(isa::Vec<double> p) { return _mm_max_pd(isa::Vec<double>{}, p); }
#endif
}  // namespace relu_ext
#endif

namespace relu_ext::cpu::RELU_EXT_CPU_ISA {
namespace {

// ---------------------------------------------------------------- forward

// What a forward-shaped kernel sums over the units for each input: relu_sum's
// a·relu(m·x + b) (a = 1 without output weights) or step_sum's w·H(m·x + b),
// with w in the units' `a`. A compile-time choice: the loops are the same.
enum class Term { kRelu, kWeightedRelu, kStep };

template <Term term, class T>
RELU_EXT_INLINE void accumulate(T& y, T x, T m, T b, T a) {
  if constexpr (term == Term::kStep) {
    accumulate_step(y, x, m, b, a);
  } else {
    accumulate_forward<term == Term::kWeightedRelu>(y, x, m, b, a);
  }
}

template <class T, Term term>
RELU_EXT_INLINE void forward_tile(const T* x, T* y, const Units<T>& u) {
  constexpr int L = kLanes<T>;
  Vec<T> xv[kTileVecs], acc[kTileVecs];
#pragma GCC unroll 8
  for (int r = 0; r < kTileVecs; ++r) {
    xv[r] = load(x + r * L);
    acc[r] = Vec<T>{};
  }
  for (int64_t k = 0; k < u.count; ++k) {
    const Vec<T> m = splat(u.m[k]), b = splat(u.b[k]);
    const Vec<T> a = term != Term::kRelu ? splat(u.a[k]) : Vec<T>{};
#pragma GCC unroll 8
    for (int r = 0; r < kTileVecs; ++r)
      accumulate<term>(acc[r], xv[r], m, b, a);
  }
#pragma GCC unroll 8
  for (int r = 0; r < kTileVecs; ++r) store(y + r * L, acc[r]);
}

template <class T, Term term>
void forward_impl(const T* x, T* y, int64_t n, Units<T> u) {
  constexpr int64_t tile = kTileVecs * kLanes<T>;
  int64_t i = 0;
  for (; i + tile <= n; i += tile) forward_tile<T, term>(x + i, y + i, u);
  if (i < n) {  // the tail through a zero-padded tile: same instructions
    T xt[tile] = {}, yt[tile];
    std::memcpy(xt, x + i, (n - i) * sizeof(T));
    forward_tile<T, term>(xt, yt, u);
    std::memcpy(y + i, yt, (n - i) * sizeof(T));
  }
}

template <class T>
void forward(const T* x, T* y, int64_t n, Units<T> u) {
  if (u.a) forward_impl<T, Term::kWeightedRelu>(x, y, n, u);
  else forward_impl<T, Term::kRelu>(x, y, n, u);
}

// step_sum: the units' `a` holds the weights w (never null).
template <class T>
void step(const T* x, T* y, int64_t n, Units<T> u) {
  forward_impl<T, Term::kStep>(x, y, n, u);
}

// --------------------------------------------------------------- backward

// One block of KB units over the whole span: dx gets these units' terms in
// unit order (it holds the earlier units' sum), dm/db/da get the span's sums.
// The tail (n not a multiple of the lanes) runs the same math on scalars.
template <class T, bool HasA, Need need, int KB>
RELU_EXT_INLINE void backward_units(const T* x, const T* g, T* dx, int64_t n,
                                    const Units<T>& u, int64_t k0, T* dm,
                                    T* db, T* da) {
  constexpr int L = kLanes<T>;
  Vec<T> m[KB], b[KB], a[KB], sm[KB], sb[KB], sa[KB];
#pragma GCC unroll 4
  for (int j = 0; j < KB; ++j) {
    m[j] = splat(u.m[k0 + j]);
    b[j] = splat(u.b[k0 + j]);
    a[j] = HasA ? splat(u.a[k0 + j]) : Vec<T>{};
    sm[j] = sb[j] = sa[j] = Vec<T>{};
  }
  const int64_t nv = n / L * L;
  for (int64_t i = 0; i < nv; i += L) {
    const Vec<T> xv = load(x + i), gv = load(g + i);
    Vec<T> dxv = need.x ? load(dx + i) : Vec<T>{};
#pragma GCC unroll 4
    for (int j = 0; j < KB; ++j)
      accumulate_backward<HasA, need>(xv, gv, m[j], b[j], a[j], dxv, sm[j],
                                      sb[j], sa[j]);
    if constexpr (need.x) store(dx + i, dxv);
  }
  T tm[KB] = {}, tb[KB] = {}, ta[KB] = {};
  for (int64_t i = nv; i < n; ++i) {
    T dxs = need.x ? dx[i] : T{};
    for (int j = 0; j < KB; ++j) {
      const T ak = HasA ? u.a[k0 + j] : T{};
      accumulate_backward<HasA, need>(x[i], g[i], u.m[k0 + j], u.b[k0 + j], ak,
                                      dxs, tm[j], tb[j], ta[j]);
    }
    if constexpr (need.x) dx[i] = dxs;
  }
  for (int j = 0; j < KB; ++j) {
    if constexpr (need.m) dm[k0 + j] += sum_lanes<T>(sm[j]) + tm[j];
    if constexpr (need.b) db[k0 + j] += sum_lanes<T>(sb[j]) + tb[j];
    if constexpr (HasA && need.a) da[k0 + j] += sum_lanes<T>(sa[j]) + ta[j];
  }
}

template <class T, bool HasA, Need need>
void backward_impl(const T* x, const T* g, T* dx, int64_t n, Units<T> u, T* dm,
                   T* db, T* da) {
  if constexpr (need.x) std::memset(dx, 0, n * sizeof(T));
  int64_t k = 0;
  for (; k + kUnitBlock <= u.count; k += kUnitBlock)
    backward_units<T, HasA, need, kUnitBlock>(x, g, dx, n, u, k, dm, db, da);
  for (; k < u.count; ++k)
    backward_units<T, HasA, need, 1>(x, g, dx, n, u, k, dm, db, da);
}

// Turns the runtime gradient bits into one of the compile-time variants, so
// that a gradient nobody asked for costs nothing in the inner loop.
template <class T, bool HasA, unsigned Bits = 1>
void backward_dispatch(unsigned grads, const T* x, const T* g, T* dx, int64_t n,
                       Units<T> u, T* dm, T* db, T* da) {
  if constexpr (Bits < 16) {
    if (grads == Bits) {
      constexpr Need need{(Bits & kGradX) != 0, (Bits & kGradM) != 0,
                          (Bits & kGradB) != 0, (Bits & kGradA) != 0};
      return backward_impl<T, HasA, need>(x, g, dx, n, u, dm, db, da);
    }
    // Without output weights there is no da: skip the variants that have it.
    constexpr unsigned next = HasA ? Bits + 1 : ((Bits + 1) & kGradA ? 16 : Bits + 1);
    backward_dispatch<T, HasA, next>(grads, x, g, dx, n, u, dm, db, da);
  }
}

template <class T>
void backward(const T* x, const T* g, T* dx, int64_t n, Units<T> u,
              unsigned grads, T* dm, T* db, T* da) {
  if (u.a) {
    backward_dispatch<T, true>(grads, x, g, dx, n, u, dm, db, da);
  } else {
    backward_dispatch<T, false>(grads & ~kGradA, x, g, dx, n, u, dm, db, da);
  }
}

// This instruction set's kernels; the isa/*.cpp file that included this
// header hands it out once the target pragma is popped.
constexpr KernelTable kTable{RELU_EXT_ISA_NAME, forward<float>, forward<double>,
                             backward<float>, backward<double>, step<float>, step<double>};

}  // namespace
}  // namespace relu_ext::cpu::RELU_EXT_CPU_ISA
