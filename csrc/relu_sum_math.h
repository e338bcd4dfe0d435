// The per-element math of relu_sum, written once and shared by every kernel:
// the CPU kernels instantiate it with scalars and SIMD vectors, the CUDA
// kernels with scalars on the device. Each function is one step of the
// pure-PyTorch reference
//     y = (relu(x[..., None] * m + b) * a).sum(-1)
// and of its autograd graph, in the same order of operations, so that NaN and
// ±Inf propagate exactly as they do in the reference (docs/contract.md,
// "Kinks, NaN and infinities").
//
// T is float, double, or a GCC/Clang vector of them; for vectors the
// comparisons yield lane masks and `?:` selects per lane.
#pragma once

#if defined(__CUDACC__)
#define RELU_EXT_INLINE __host__ __device__ __forceinline__
#else
#define RELU_EXT_INLINE [[gnu::always_inline]] inline
#endif

namespace relu_ext {
// The CPU kernels compile this header once per instruction set; a namespace
// per instruction set keeps those copies apart (no ODR clash between, say, the
// AVX-512 and the baseline instantiation of relu<float>).
#if defined(RELU_EXT_CPU_ISA)
inline namespace RELU_EXT_CPU_ISA {
#endif

// Pre-activation of one unit: m·x + b. Built with FP contraction on (nvcc's
// default, -ffp-contract=fast on the host) this is one FMA, rounded once, so
// its sign (and with it the relu mask) is that of the exact m·x + b.
template <class T>
RELU_EXT_INLINE T preact(T x, T m, T b) {
  return m * x + b;
}

// relu as torch computes it: NaN passes through. Written as `0 > p ? 0 : p`,
// which is exactly x86's maxps(0, p); fmax/std::max would drop the NaN.
template <class T>
RELU_EXT_INLINE T relu(T p) {
  const T zero{};
  return zero > p ? zero : p;
}

// torch's threshold_backward(grad, p, 0), the gradient of relu: it is blocked
// only where p <= 0, so relu'(0) = 0 and a NaN pre-activation lets it pass.
template <class T>
RELU_EXT_INLINE T relu_backward(T grad, T p) {
  const T zero{};
  return p <= zero ? zero : grad;
}

// Forward: one unit's term a·relu(m·x + b), accumulated into y. With no output
// weights (HasA = false) a is 1 and the multiply is not performed at all.
template <bool HasA, class T>
RELU_EXT_INLINE void accumulate_forward(T& y, T x, T m, T b, T a) {
  const T h = relu(preact(x, m, b));
  if constexpr (HasA) {
    y += a * h;
  } else {
    y += h;
  }
}

// step_sum: one unit's term w·H(m·x + b), where H is the derivative of relu
// exactly as torch takes it (threshold_backward: 1 unless p <= 0, so H(0) = 0
// and H(NaN) = 1). It is the building block of every higher derivative of
// relu_sum: relu is piecewise linear, so past the first derivative only the
// mask H(m·x + b) remains (csrc/autograd/derivatives.cpp).
template <class T>
RELU_EXT_INLINE void accumulate_step(T& y, T x, T m, T b, T w) {
  y += relu_backward(w, preact(x, m, b));
}

// Backward for one (input, unit) pair, following the reference's autograd
// graph term by term:
//     t  = threshold_backward(g·a, pre)      the gradient reaching pre
//     dx += t·m     dm += t·x     db += t     da += g·relu(pre)
// Only the gradients named in Need are accumulated.
struct Need {
  bool x, m, b, a;
};

template <bool HasA, Need need, class T>
RELU_EXT_INLINE void accumulate_backward(T x, T g, T m, T b, T a, T& dx, T& dm,
                                         T& db, T& da) {
  const T p = preact(x, m, b);
  T ga = g;
  if constexpr (HasA) ga = g * a;
  const T t = relu_backward(ga, p);
  if constexpr (need.x) dx += t * m;
  if constexpr (need.m) dm += t * x;
  if constexpr (need.b) db += t;
  if constexpr (HasA && need.a) da += g * relu(p);
}

#if defined(RELU_EXT_CPU_ISA)
}  // inline namespace RELU_EXT_CPU_ISA
#endif
}  // namespace relu_ext
