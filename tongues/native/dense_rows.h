// tongues' compiled CPU code: fp32 or bf16 weights times 1 to 16 activation rows (decoding's products).
//
// Part of the extension tongues/native builds (see __init__.py there). Each thread takes a contiguous range of
// output channels and reads their weight rows one after the other, a single sequential stream: on the 2-core
// Zen 4 VM that read BLOOM-560m's block matrices at 97-100 % of the memory probe in bf16 at one row, where
// tiles interleaving four weight rows (four streams 2-8 KB apart) and oneDNN's packed bf16 kernel read at 66 %
// (docs/performance.md, "Session 8"). Each weight row is multiplied into up to 4 activation rows at a time
// (more rows take further passes over the same row, from the L1 cache). Sums are fp32 and each row's sum is
// added in the same order whatever the number of rows, so a row's result does not depend on its batch.
// bf16 weights with bf16 rows use AVX-512 BF16 dot products (exact products, fp32 sums) where the CPU has them;
// otherwise bf16 weights are widened in the register (exact) and multiplied into fp32 rows by FMAs.

#pragma once

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common.h"

namespace tongues {
namespace dense {

// The plain loop, for the inputs past the last whole vector and for CPUs without AVX2.
template <typename W, typename X>
inline float dot_tail(const W* w, const X* x, int64_t k0, int64_t K) {
  float sum = 0.0f;
  for (int64_t k = k0; k < K; ++k) sum += as_float(w[k]) * as_float(x[k]);
  return sum;
}

#if defined(__x86_64__) && defined(__GNUC__)
// out[r] = w . x[r] for MB rows of fp32 x (row stride K), w fp32 or bf16 (widened by a shift). Two
// accumulators per row, 32 inputs a step.
template <int MB, typename W>
__attribute__((target("avx512f"))) inline void dots_avx512(const W* w, const float* x, int64_t K, float* out) {
  __m512 a[MB], b[MB];
  for (int r = 0; r < MB; ++r) a[r] = b[r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m512 w0, w1;
    if constexpr (sizeof(W) == 4) {
      w0 = _mm512_loadu_ps(reinterpret_cast<const float*>(w) + k);
      w1 = _mm512_loadu_ps(reinterpret_cast<const float*>(w) + k + 16);
    } else {
      const __m512i both = _mm512_loadu_si512(reinterpret_cast<const uint16_t*>(w) + k);
      w0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(both)), 16));
      w1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(both, 1)), 16));
    }
    for (int r = 0; r < MB; ++r) {
      a[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + r * K + k), a[r]);
      b[r] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + r * K + k + 16), b[r]);
    }
  }
  for (int r = 0; r < MB; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a[r], b[r])) + dot_tail(w, x + r * K, k, K);
}

// bf16 weights and bf16 rows: vdpbf16ps multiplies pairs of inputs exactly and adds them into fp32 sums.
template <int MB>
__attribute__((target("avx512f,avx512bf16"))) inline void dots_bf16(const uint16_t* w, const uint16_t* x, int64_t K,
                                                                   float* out) {
  __m512 a[MB], b[MB];
  for (int r = 0; r < MB; ++r) a[r] = b[r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) {
    const __m512bh w0 = (__m512bh)_mm512_loadu_si512(w + k);
    const __m512bh w1 = (__m512bh)_mm512_loadu_si512(w + k + 32);
    for (int r = 0; r < MB; ++r) {
      a[r] = _mm512_dpbf16_ps(a[r], w0, (__m512bh)_mm512_loadu_si512(x + r * K + k));
      b[r] = _mm512_dpbf16_ps(b[r], w1, (__m512bh)_mm512_loadu_si512(x + r * K + k + 32));
    }
  }
  for (int r = 0; r < MB; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a[r], b[r])) + dot_tail(w, x + r * K, k, K);
}


template <int MB, typename W>
__attribute__((target("avx2,fma"))) inline void dots_avx2(const W* w, const float* x, int64_t K, float* out) {
  __m256 a[MB], b[MB];
  for (int r = 0; r < MB; ++r) a[r] = b[r] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m256 w0, w1;
    if constexpr (sizeof(W) == 4) {
      w0 = _mm256_loadu_ps(reinterpret_cast<const float*>(w) + k);
      w1 = _mm256_loadu_ps(reinterpret_cast<const float*>(w) + k + 8);
    } else {
      const __m256i both = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const uint16_t*>(w) + k));
      w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(both)), 16));
      w1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(both, 1)), 16));
    }
    for (int r = 0; r < MB; ++r) {
      a[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * K + k), a[r]);
      b[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + r * K + k + 8), b[r]);
    }
  }
  for (int r = 0; r < MB; ++r) out[r] = hsum_avx2(_mm256_add_ps(a[r], b[r])) + dot_tail(w, x + r * K, k, K);
}
#endif

enum class Isa { plain, avx2, avx512, avx512_bf16 };

inline Isa isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const Isa chosen = !__builtin_cpu_supports("avx512f")
                                ? ((__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? Isa::avx2 : Isa::plain)
                            : __builtin_cpu_supports("avx512bf16") ? Isa::avx512_bf16
                                                                   : Isa::avx512;
  return chosen;
#else
  return Isa::plain;
#endif
}

// MB rows of x (fp32, or bf16 only on Isa::avx512_bf16 with bf16 weights) against one weight row.
template <int MB, typename W, typename X>
inline void dots(Isa which, const W* w, const X* x, int64_t K, float* out) {
#if defined(__x86_64__) && defined(__GNUC__)
  if constexpr (sizeof(X) == 2) {
    return dots_bf16<MB>(w, x, K, out);
  } else {
    if (which == Isa::avx512 || which == Isa::avx512_bf16) return dots_avx512<MB>(w, x, K, out);
    if (which == Isa::avx2) return dots_avx2<MB>(w, x, K, out);
  }
#endif
  for (int r = 0; r < MB; ++r) out[r] = dot_tail(w, x + r * K, 0, K);
}

// Output channels n0..n1 (their weight rows read in order) against all M rows; y (M, N) fp32.
template <typename W, typename X>
inline void channels(const W* w, const X* x, const float* bias, int64_t M, int64_t K, int64_t N, int64_t n0,
                     int64_t n1, float* y) {
  const Isa which = isa();
  float part[4];
  for (int64_t n = n0; n < n1; ++n) {
    const W* row = w + n * K;
    const float b = bias ? bias[n] : 0.0f;
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) {
      dots<4>(which, row, x + m * K, K, part);
      for (int r = 0; r < 4; ++r) y[(m + r) * N + n] = part[r] + b;
    }
    for (; m + 2 <= M; m += 2) {
      dots<2>(which, row, x + m * K, K, part);
      for (int r = 0; r < 2; ++r) y[(m + r) * N + n] = part[r] + b;
    }
    for (; m < M; ++m) {
      dots<1>(which, row, x + m * K, K, part);
      y[m * N + n] = part[0] + b;
    }
  }
}

}  // namespace dense

// x (M, K) fp32 or bf16, contiguous; w (N, K) fp32 or bf16, contiguous; bias (N,) fp32 or empty.
// Returns (M, N) fp32: x @ w.T + bias. bf16 x meets bf16 w in AVX-512 BF16 dot products where the CPU has
// them; elsewhere it is widened to fp32 first (exact).
torch::Tensor dense_rows(torch::Tensor x, torch::Tensor w, torch::Tensor bias) {
  TORCH_CHECK(x.dim() == 2 && (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16) &&
                  x.is_contiguous(), "x must be (M, K) fp32 or bf16, contiguous");
  TORCH_CHECK(w.dim() == 2 && (w.scalar_type() == torch::kFloat32 || w.scalar_type() == torch::kBFloat16) &&
                  w.is_contiguous(), "w must be (N, K) fp32 or bf16, contiguous");
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  TORCH_CHECK(w.size(1) == K, "x has ", K, " features but w is (", N, ", ", w.size(1), ")");
  const bool bf16_dots = x.scalar_type() == torch::kBFloat16 && w.scalar_type() == torch::kBFloat16 &&
                         dense::isa() == dense::Isa::avx512_bf16;
  if (x.scalar_type() == torch::kBFloat16 && !bf16_dots) x = x.to(torch::kFloat32);  // exact
  const float* bias_ptr = bias_pointer(bias, N);
  auto y = torch::empty({M, N}, x.options().dtype(torch::kFloat32));
  float* yp = y.data_ptr<float>();
  // Chunks of at least 64K weights: below that a thread's wake-up costs more than its share.
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, K));
  auto run = [&](auto* wp, auto* xp) {
    at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) { dense::channels(wp, xp, bias_ptr, M, K, N, n0, n1, yp); });
  };
  const bool w16 = w.scalar_type() == torch::kBFloat16;
  const uint16_t* w16p = w16 ? reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>()) : nullptr;
  if (bf16_dots)
    run(w16p, reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()));
  else if (w16)
    run(w16p, x.data_ptr<float>());
  else
    run(w.data_ptr<float>(), x.data_ptr<float>());
  return y;
}

}  // namespace tongues
