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
#include <cmath>
#include <type_traits>
#include <utility>

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
// Pairwise sum of the lanes, in a fixed order: lane i plus lane i + w, for
// w = lanes / 2, lanes / 4, ..., 1. Halves as narrower vectors, so that it
// compiles to a few extract-and-add steps rather than a trip through memory.
template <class V, std::size_t... I>
RELU_EXT_INLINE auto lower_half(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, I...);
}
template <class V, std::size_t... I>
RELU_EXT_INLINE auto upper_half(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (I + sizeof...(I))...);
}
template <int N, class V>
RELU_EXT_INLINE auto sum_halves(V v) {
  if constexpr (N == 2) {
    return v[0] + v[1];
  } else {
    constexpr auto half = std::make_index_sequence<N / 2>{};
    return sum_halves<N / 2>(lower_half(v, half) + upper_half(v, half));
  }
}
template <class T>
RELU_EXT_INLINE T sum_lanes(Vec<T> v) {
  return sum_halves<kLanes<T>>(v);
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

// ------------------------------------------------- float16 and bfloat16

// The two 16-bit formats: float16 (IEEE binary16) and bfloat16 (float32's
// upper half).
enum class Format { kF16, kBF16 };

// One value, for the tails shorter than a vector and for the baseline's
// float16, which has no conversion instructions.
template <Format F>
RELU_EXT_INLINE float widen_one(Bits16 h) {
  uint32_t bits;
  if constexpr (F == Format::kBF16) {
    bits = uint32_t{h} << 16;
  } else {
    const uint32_t sign = uint32_t{h & 0x8000u} << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    if (exp == 0x1F) {  // inf, NaN
      bits = sign | 0x7F800000u | (man << 13);
    } else if (exp == 0) {  // zero, subnormal: man units of 2^-24, exact in float32
      const float f = static_cast<float>(man) * 0x1p-24f;
      std::memcpy(&bits, &f, sizeof bits);
      bits |= sign;
    } else {  // rebias the exponent from 15 to 127
      bits = sign | ((exp + 112) << 23) | (man << 13);
    }
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

template <Format F>
RELU_EXT_INLINE Bits16 narrow_one(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if constexpr (F == Format::kBF16) {
    if (f != f) return 0x7FC0;  // a quiet NaN, as torch narrows one
    return static_cast<Bits16>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
  } else {
    const Bits16 sign = static_cast<Bits16>((u >> 16) & 0x8000u);
    u &= 0x7FFFFFFFu;
    if (u >= 0x7F800000u) return sign | (u > 0x7F800000u ? 0x7E00 : 0x7C00);  // NaN, inf
    if (u >= 0x477FF000u) return sign | 0x7C00;  // |f| >= 65520 rounds to inf
    if (u < 0x38800000u) {  // below float16's smallest normal 2^-14: units of 2^-24
      float scaled;
      const uint32_t abs_bits = u;
      std::memcpy(&scaled, &abs_bits, sizeof scaled);
      // Exact scaling, then the default rounding mode: to nearest even.
      return sign | static_cast<Bits16>(__builtin_nearbyintf(scaled * 0x1p24f));
    }
    // Rebias by -112 and round the 13 dropped bits to nearest even; a carry
    // into the exponent is the right result.
    u += 0xC8000FFFu + ((u >> 13) & 1u);
    return sign | static_cast<Bits16>(u >> 13);
  }
}

typedef Bits16 HalfVec __attribute__((vector_size(RELU_EXT_VEC_BYTES / 2)));
typedef uint32_t WordVec __attribute__((vector_size(RELU_EXT_VEC_BYTES)));

// float16 in vectors: F16C (AVX2 builds) and AVX-512F have the instructions;
// the baseline converts one value at a time.
#if defined(__x86_64__) && RELU_EXT_VEC_BYTES >= 32
constexpr bool kVectorF16 = true;
#else
constexpr bool kVectorF16 = false;
#endif

// kLanes<float> values.
template <Format F>
RELU_EXT_INLINE Vec<float> widen_vec(const Bits16* p) {
#if defined(__x86_64__) && RELU_EXT_VEC_BYTES == 64
  if constexpr (F == Format::kF16)
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#elif defined(__x86_64__) && RELU_EXT_VEC_BYTES == 32
  if constexpr (F == Format::kF16)
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#endif
  // bfloat16: the bits are float32's upper half.
  HalfVec h;
  std::memcpy(&h, p, sizeof h);
  return reinterpret_cast<Vec<float>>(__builtin_convertvector(h, WordVec) << 16);
}

#if defined(__x86_64__)
constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
#endif

template <Format F>
RELU_EXT_INLINE void narrow_vec(Bits16* p, Vec<float> v) {
#if defined(__x86_64__) && RELU_EXT_VEC_BYTES == 64
  if constexpr (F == Format::kF16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, kNearest));
    return;
  }
#elif defined(__x86_64__) && RELU_EXT_VEC_BYTES == 32
  if constexpr (F == Format::kF16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, kNearest));
    return;
  }
#endif
  // bfloat16: round to nearest even on the dropped half, NaN to a quiet NaN.
  const WordVec u = reinterpret_cast<WordVec>(v);
  const WordVec rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const WordVec bits = v != v ? WordVec{} + 0x7FC0u : rounded;
  const HalfVec h = __builtin_convertvector(bits, HalfVec);
  std::memcpy(p, &h, sizeof h);
}

template <Format F>
void widen(const Bits16* in, float* out, int64_t n) {
  constexpr int L = kLanes<float>;
  int64_t i = 0;
  if constexpr (F == Format::kBF16 || kVectorF16)
    for (; i + L <= n; i += L) store(out + i, widen_vec<F>(in + i));
  for (; i < n; ++i) out[i] = widen_one<F>(in[i]);
}

template <Format F>
void narrow(const float* in, Bits16* out, int64_t n) {
  constexpr int L = kLanes<float>;
  int64_t i = 0;
  if constexpr (F == Format::kBF16 || kVectorF16)
    for (; i + L <= n; i += L) narrow_vec<F>(out + i, load(in + i));
  for (; i < n; ++i) out[i] = narrow_one<F>(in[i]);
}

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

// x and y as stored (S): T itself, or 16-bit values of format F converted
// in registers on the way in and out (float32 T).
template <class T, class S, Format F>
RELU_EXT_INLINE Vec<T> load_as(const S* p) {
  if constexpr (std::is_same_v<S, T>) return load(p); else return widen_vec<F>(p);
}
template <class T, class S, Format F>
RELU_EXT_INLINE void store_as(S* p, Vec<T> v) {
  if constexpr (std::is_same_v<S, T>) store(p, v); else narrow_vec<F>(p, v);
}

// Where a loop's units come from, a compile-time switch: one set for every
// lane, broadcast (shared units; a channel's run of NCHW x), or a set per
// lane, read as vectors from a block of a column table (ColumnUnits: the
// channels innermost). Everything else about the loops is the same.
enum class Per { kAll, kColumn };

template <Per per, class T>
RELU_EXT_INLINE Vec<T> unit(const T* p, int64_t k) {
  if constexpr (per == Per::kAll) return splat(p[k]); else return load(p + k * kLanes<T>);
}

// Block β of a column table: its units, or (sums) its first value.
template <class T>
RELU_EXT_INLINE Units<T> column_block(const ColumnUnits<T>& u, int64_t block) {
  const int64_t at = block * u.count * kLanes<T>;
  return {u.m + at, u.b + at, u.a ? u.a + at : nullptr, u.count};
}
template <class T>
RELU_EXT_INLINE T* column_block(T* sums, int64_t count, int64_t block) {
  return sums ? sums + block * count * kLanes<T> : nullptr;
}

// kTileVecs vectors of x, vector r at x + r·ld: one contiguous tile (ld =
// the lanes) or kTileVecs rows of a block of columns (ld = the row width).
template <class T, Term term, Per per = Per::kAll, class S = T, Format F = Format::kBF16>
RELU_EXT_INLINE void forward_tile(const S* x, S* y, int64_t ld, const Units<T>& u) {
  Vec<T> xv[kTileVecs], acc[kTileVecs];
#pragma GCC unroll 8
  for (int r = 0; r < kTileVecs; ++r) {
    xv[r] = load_as<T, S, F>(x + r * ld);
    acc[r] = Vec<T>{};
  }
  for (int64_t k = 0; k < u.count; ++k) {
    const Vec<T> m = unit<per>(u.m, k), b = unit<per>(u.b, k);
    const Vec<T> a = term != Term::kRelu ? unit<per>(u.a, k) : Vec<T>{};
#pragma GCC unroll 8
    for (int r = 0; r < kTileVecs; ++r)
      accumulate<term>(acc[r], xv[r], m, b, a);
  }
#pragma GCC unroll 8
  for (int r = 0; r < kTileVecs; ++r) store_as<T, S, F>(y + r * ld, acc[r]);
}

template <class T, Term term, class S = T, Format F = Format::kBF16>
void forward_impl(const S* x, S* y, int64_t n, Units<T> u) {
  constexpr int L = kLanes<T>;
  constexpr int64_t tile = kTileVecs * L;
  int64_t i = 0;
  for (; i + tile <= n; i += tile) forward_tile<T, term, Per::kAll, S, F>(x + i, y + i, L, u);
  if (i < n) {  // the tail through a zero-padded tile: same instructions
    S xt[tile] = {}, yt[tile];
    std::memcpy(xt, x + i, (n - i) * sizeof(S));
    forward_tile<T, term, Per::kAll, S, F>(xt, yt, L, u);
    std::memcpy(y + i, yt, (n - i) * sizeof(S));
  }
}

// The column form: a tile is kTileVecs rows of one block of columns, the
// tiles of a row band taken block by block along the rows (the unit tables
// streamed once per band). The last block, if narrower than the lanes, and
// the last rows go through a zero-padded tile: the same instructions for
// every element.
template <class T, Term term, class S = T, Format F = Format::kBF16>
void forward_columns_impl(const S* x, S* y, int64_t rows, int64_t width, ColumnUnits<T> cu) {
  constexpr int L = kLanes<T>, R = kTileVecs;
  const int64_t blocks = (width + L - 1) / L;
  for (int64_t r = 0; r < rows; r += R) {
    const int64_t band = std::min<int64_t>(R, rows - r);
    for (int64_t block = 0; block < blocks; ++block) {
      const Units<T> u = column_block(cu, block);
      const int64_t c0 = block * L, cols = std::min<int64_t>(L, width - c0);
      if (band == R && cols == L) {
        const int64_t at = r * width + c0;
        forward_tile<T, term, Per::kColumn, S, F>(x + at, y + at, width, u);
        continue;
      }
      S xt[R * L] = {}, yt[R * L];
      for (int64_t i = 0; i < band; ++i)
        std::memcpy(xt + i * L, x + (r + i) * width + c0, cols * sizeof(S));
      forward_tile<T, term, Per::kColumn, S, F>(xt, yt, L, u);
      for (int64_t i = 0; i < band; ++i)
        std::memcpy(y + (r + i) * width + c0, yt + i * L, cols * sizeof(S));
    }
  }
}

template <class T>
void forward(const T* x, T* y, int64_t n, Units<T> u) {
  if (u.a) forward_impl<T, Term::kWeightedRelu>(x, y, n, u);
  else forward_impl<T, Term::kRelu>(x, y, n, u);
}

template <class T>
void forward_columns(const T* x, T* y, int64_t rows, int64_t width, ColumnUnits<T> u) {
  if (u.a) forward_columns_impl<T, Term::kWeightedRelu>(x, y, rows, width, u);
  else forward_columns_impl<T, Term::kRelu>(x, y, rows, width, u);
}

// step_sum: the units' `a` holds the weights w (never null).
template <class T>
void step(const T* x, T* y, int64_t n, Units<T> u) {
  forward_impl<T, Term::kStep>(x, y, n, u);
}

template <class T>
void step_columns(const T* x, T* y, int64_t rows, int64_t width, ColumnUnits<T> u) {
  forward_columns_impl<T, Term::kStep>(x, y, rows, width, u);
}

// --------------------------------------------------------------- backward

// One block of KB units over `vecs` contiguous vectors of inputs: dx gets
// these units' terms in unit order (it holds the earlier units' sum), dm/db/
// da get the sums over the vectors. Shared units (kAll): a tail of `tail`
// elements shorter than a vector runs the same math on scalars, and each
// sum is reduced across the lanes. Per-column units (kColumn): vector v is
// row v of one block of columns, and each lane's sum is its column's, added
// to that lane of the block's sums.
template <class T, bool HasA, Need need, int KB, Per per>
RELU_EXT_INLINE void backward_units(const T* x, const T* g, T* dx, int64_t vecs, int64_t tail,
                                    const Units<T>& u, int64_t k0, T* dm, T* db, T* da) {
  constexpr int L = kLanes<T>;
  Vec<T> m[KB], b[KB], a[KB], sm[KB], sb[KB], sa[KB];
#pragma GCC unroll 4
  for (int j = 0; j < KB; ++j) {
    m[j] = unit<per>(u.m, k0 + j);
    b[j] = unit<per>(u.b, k0 + j);
    a[j] = HasA ? unit<per>(u.a, k0 + j) : Vec<T>{};
    sm[j] = sb[j] = sa[j] = Vec<T>{};
  }
  const int64_t n = vecs * L;
  for (int64_t i = 0; i < n; i += L) {
    const Vec<T> xv = load(x + i), gv = load(g + i);
    Vec<T> dxv = need.x ? load(dx + i) : Vec<T>{};
#pragma GCC unroll 4
    for (int j = 0; j < KB; ++j)
      accumulate_backward<HasA, need>(xv, gv, m[j], b[j], a[j], dxv, sm[j],
                                      sb[j], sa[j]);
    if constexpr (need.x) store(dx + i, dxv);
  }
  if constexpr (per == Per::kColumn) {
    const auto add = [](T* sums, int64_t k, Vec<T> s) { store(sums + k * L, load(sums + k * L) + s); };
    for (int j = 0; j < KB; ++j) {
      if constexpr (need.m) add(dm, k0 + j, sm[j]);
      if constexpr (need.b) add(db, k0 + j, sb[j]);
      if constexpr (HasA && need.a) add(da, k0 + j, sa[j]);
    }
  } else {
    T tm[KB] = {}, tb[KB] = {}, ta[KB] = {};
    for (int64_t i = n; i < n + tail; ++i) {
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
}

// Every unit over the vectors, kUnitBlock units at a time; dx must be zero
// on entry.
template <class T, bool HasA, Need need, Per per>
void backward_impl(const T* x, const T* g, T* dx, int64_t vecs, int64_t tail, const Units<T>& u,
                   T* dm, T* db, T* da) {
  int64_t k = 0;
  for (; k + kUnitBlock <= u.count; k += kUnitBlock)
    backward_units<T, HasA, need, kUnitBlock, per>(x, g, dx, vecs, tail, u, k, dm, db, da);
  for (; k < u.count; ++k)
    backward_units<T, HasA, need, 1, per>(x, g, dx, vecs, tail, u, k, dm, db, da);
}

// Calls f.template operator()<HasA, need>() with the runtime gradient bits
// (and whether there are output weights) turned into compile-time ones, so
// that a gradient nobody asked for costs nothing in the inner loop.
template <bool HasA, unsigned Bits = 1, class F>
void with_need(unsigned grads, F&& f) {
  if constexpr (Bits < 16) {
    if (grads == Bits) {
      constexpr Need need{(Bits & kGradX) != 0, (Bits & kGradM) != 0,
                          (Bits & kGradB) != 0, (Bits & kGradA) != 0};
      return f.template operator()<HasA, need>();
    }
    // Without output weights there is no da: skip the variants that have it.
    constexpr unsigned next = HasA ? Bits + 1 : ((Bits + 1) & kGradA ? 16 : Bits + 1);
    with_need<HasA, next>(grads, f);
  }
}

template <class F>
void with_need(bool has_a, unsigned grads, F&& f) {
  if (has_a) with_need<true>(grads, f);
  else with_need<false>(grads & ~kGradA, f);
}

template <class T>
void backward(const T* x, const T* g, T* dx, int64_t n, Units<T> u,
              unsigned grads, T* dm, T* db, T* da) {
  constexpr int L = kLanes<T>;
  if (grads & kGradX) std::memset(dx, 0, n * sizeof(T));
  with_need(u.a != nullptr, grads, [&]<bool HasA, Need need>() {
    backward_impl<T, HasA, need, Per::kAll>(x, g, dx, n / L, n % L, u, dm, db, da);
  });
}

// x, g and dx of a column span as the column kernels read them: copied, or
// (16-bit S) widened on the way in and narrowed on the way out.
template <class T, class S, Format F>
RELU_EXT_INLINE void stage_in(const S* in, T* out, int64_t n) {
  if constexpr (std::is_same_v<S, T>) std::memcpy(out, in, n * sizeof(T)); else widen<F>(in, out, n);
}
template <class T, class S, Format F>
RELU_EXT_INLINE void stage_out(const T* in, S* out, int64_t n) {
  if constexpr (std::is_same_v<S, T>) std::memcpy(out, in, n * sizeof(T)); else narrow<F>(in, out, n);
}

// The column form over a span of rows, a cache line of columns (a panel) at
// a time: the panel's rows staged into buffers contiguous per block of
// columns (zero past the row's end: x = g = 0 with zero units adds nothing),
// each block's units over its rows, dx written back.
template <class T, class S = T, Format F = Format::kBF16>
void backward_columns_impl(const S* x, const S* g, S* dx, int64_t rows, int64_t width,
                           ColumnUnits<T> cu, unsigned grads, T* dm, T* db, T* da) {
  constexpr int L = kLanes<T>;
  constexpr int64_t panel = 64 / sizeof(T), buffer = kColumnSpanRows * panel;
  const bool need_x = grads & kGradX;
  const int64_t k_count = cu.count;
  alignas(64) T xs[buffer], gs[buffer], dxs[buffer];
  with_need(cu.a != nullptr, grads, [&]<bool HasA, Need need>() {
    for (int64_t p0 = 0; p0 < width; p0 += panel) {
      const int64_t cols = std::min<int64_t>(panel, width - p0);
      const int64_t blocks = (cols + L - 1) / L;
      if (cols < blocks * L) {
        std::fill_n(xs, blocks * rows * L, T(0));
        std::fill_n(gs, blocks * rows * L, T(0));
      }
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < blocks; ++j) {
          const int64_t at = r * width + p0 + j * L, len = std::min<int64_t>(L, cols - j * L);
          stage_in<T, S, F>(x + at, xs + (j * rows + r) * L, len);
          stage_in<T, S, F>(g + at, gs + (j * rows + r) * L, len);
        }
      if (need.x) std::fill_n(dxs, blocks * rows * L, T(0));
      for (int64_t j = 0; j < blocks; ++j) {
        const int64_t block = p0 / L + j, at = j * rows * L;
        backward_impl<T, HasA, need, Per::kColumn>(
            xs + at, gs + at, dxs + at, rows, 0, column_block(cu, block),
            column_block(dm, k_count, block), column_block(db, k_count, block),
            column_block(da, k_count, block));
      }
      if (need.x)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < blocks; ++j) {
            const int64_t at = r * width + p0 + j * L, len = std::min<int64_t>(L, cols - j * L);
            stage_out<T, S, F>(dxs + (j * rows + r) * L, dx + at, len);
          }
    }
  });
}

template <class T>
void backward_columns(const T* x, const T* g, T* dx, int64_t rows, int64_t width,
                      ColumnUnits<T> u, unsigned grads, T* dm, T* db, T* da) {
  backward_columns_impl<T>(x, g, dx, rows, width, u, grads, dm, db, da);
}

// Without vector float16 conversions (the baseline), inputs are widened a
// block at a time: x and y of a block take 2 × 4 KiB of L1.
constexpr int64_t kHalfBlock = 1024;

// forward or step over 16-bit x and y: the float32 tiles with x converted
// as it is loaded and y as it is stored, or (baseline float16) a block at a
// time through the float32 kernel.
template <Format F, Term term>
void sum_half(const Bits16* x, Bits16* y, int64_t n, Units<float> u) {
  if constexpr (F == Format::kBF16 || kVectorF16) {
    forward_impl<float, term, Bits16, F>(x, y, n, u);
  } else {
    alignas(64) float xs[kHalfBlock], ys[kHalfBlock];
    for (int64_t i = 0; i < n; i += kHalfBlock) {
      const int64_t len = n - i < kHalfBlock ? n - i : kHalfBlock;
      widen<F>(x + i, xs, len);
      forward_impl<float, term>(xs, ys, len, u);
      narrow<F>(ys, y + i, len);
    }
  }
}

// The column form of sum_half; the baseline's float16 widens a band of rows
// (one tile high) at a time.
template <Format F, Term term>
void sum_half_columns(const Bits16* x, Bits16* y, int64_t rows, int64_t width,
                      ColumnUnits<float> u) {
  if constexpr (F == Format::kBF16 || kVectorF16) {
    forward_columns_impl<float, term, Bits16, F>(x, y, rows, width, u);
  } else {
    std::vector<float> xs(kTileVecs * width), ys(kTileVecs * width);
    for (int64_t r = 0; r < rows; r += kTileVecs) {
      const int64_t band = std::min<int64_t>(kTileVecs, rows - r);
      widen<F>(x + r * width, xs.data(), band * width);
      forward_columns_impl<float, term>(xs.data(), ys.data(), band, width, u);
      narrow<F>(ys.data(), y + r * width, band * width);
    }
  }
}

template <Format F>
void forward_half(const Bits16* x, Bits16* y, int64_t n, Units<float> u) {
  if (u.a) sum_half<F, Term::kWeightedRelu>(x, y, n, u);
  else sum_half<F, Term::kRelu>(x, y, n, u);
}

template <Format F>
void forward_half_columns(const Bits16* x, Bits16* y, int64_t rows, int64_t width,
                          ColumnUnits<float> u) {
  if (u.a) sum_half_columns<F, Term::kWeightedRelu>(x, y, rows, width, u);
  else sum_half_columns<F, Term::kRelu>(x, y, rows, width, u);
}

// The backward of one span (n <= kBackwardSpan<float>, as for float32):
// x, g widened into L1 buffers, the float32 backward, dx narrowed. The sums
// over inputs are the float32 kernel's, in its order.
template <Format F>
void backward_half(const Bits16* x, const Bits16* g, Bits16* dx, int64_t n, Units<float> u,
                   unsigned grads, float* dm, float* db, float* da) {
  constexpr int64_t span = kBackwardSpan<float>;
  alignas(64) float xs[span], gs[span], dxs[span];
  for (int64_t i = 0; i < n; i += span) {
    const int64_t len = n - i < span ? n - i : span;
    widen<F>(x + i, xs, len);
    widen<F>(g + i, gs, len);
    backward<float>(xs, gs, dx ? dxs : nullptr, len, u, dx ? grads : grads & ~kGradX, dm, db,
                    da);
    if (dx) narrow<F>(dxs, dx + i, len);
  }
}

// The column form stages its spans anyway: 16-bit ones are widened as they
// are staged, and the sums are the float32 kernel's, in its order.
template <Format F>
void backward_half_columns(const Bits16* x, const Bits16* g, Bits16* dx, int64_t rows,
                           int64_t width, ColumnUnits<float> u, unsigned grads, float* dm,
                           float* db, float* da) {
  backward_columns_impl<float, Bits16, F>(x, g, dx, rows, width, u, grads, dm, db, da);
}

template <Format F>
constexpr HalfKernels half_kernels{forward_half<F>,
                                   sum_half<F, Term::kStep>,
                                   backward_half<F>,
                                   forward_half_columns<F>,
                                   sum_half_columns<F, Term::kStep>,
                                   backward_half_columns<F>,
                                   widen<F>,
                                   narrow<F>};

}  // namespace
}  // namespace relu_ext::cpu::RELU_EXT_CPU_ISA

#include "relu_sum_linear_kernels.h"

namespace relu_ext::cpu::RELU_EXT_CPU_ISA {
namespace {

template <class T>
constexpr TypedKernels<T> typed_kernels{forward<T>,         step<T>,
                                        backward<T>,        forward_columns<T>,
                                        step_columns<T>,    backward_columns<T>};

// This instruction set's kernels; the isa/*.cpp file that included this
// header hands it out once the target pragma is popped.
constexpr KernelTable kTable{RELU_EXT_ISA_NAME,           RELU_EXT_VEC_BYTES,
                             typed_kernels<float>,        typed_kernels<double>,
                             half_kernels<Format::kF16>,  half_kernels<Format::kBF16>,
                             linear_kernels<float>,       linear_kernels<double>};

}  // namespace
}  // namespace relu_ext::cpu::RELU_EXT_CPU_ISA
