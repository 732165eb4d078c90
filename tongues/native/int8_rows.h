// tongues' compiled CPU code: int8 weights (one fp32 scale per output channel) times 1 to 16 fp32 rows.
//
// Part of the extension tongues/native builds (see __init__.py there). Each output channel's int8 row is
// read from memory once for all activation rows: four channels at a time are widened to fp32 in registers
// and multiplied into up to 4 activation rows at a time (more rows take further passes over the same
// four weight rows, from the L1 cache). AVX-512 or AVX2+FMA code is chosen at run time. Sums are fp32, vectorised along the input dimension (so they are added in another order
// than a BLAS's). The work is split over output channels with at::parallel_for (torch's threads).

#pragma once

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common.h"

namespace tongues {
namespace int8 {

// out[(m + r) * N + n + c] = (sum_k q[n + c, k] * x[m + r, k]) * scale[n + c] + bias[n + c], for an NB x MB tile:
// NB weight rows widened once per 16 (8) inputs and multiplied into MB activation rows, NB * MB accumulators.

#if defined(__x86_64__) && defined(__GNUC__)
template <int NB, int MB>
__attribute__((target("avx512f"))) inline void tile_avx512(const int8_t* q, const float* x, const float* scale,
                                                          const float* bias, int64_t K, int64_t N, int64_t n,
                                                          int64_t m, float* out) {
  __m512 a[NB][MB];
  for (int c = 0; c < NB; ++c)
    for (int r = 0; r < MB; ++r) a[c][r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 w[NB];
    for (int c = 0; c < NB; ++c)
      w[c] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + (n + c) * K + k))));
    for (int r = 0; r < MB; ++r) {
      const __m512 xv = _mm512_loadu_ps(x + (m + r) * K + k);
      for (int c = 0; c < NB; ++c) a[c][r] = _mm512_fmadd_ps(w[c], xv, a[c][r]);
    }
  }
  for (int c = 0; c < NB; ++c) {
    const float s = scale[n + c], b = bias ? bias[n + c] : 0.0f;
    for (int r = 0; r < MB; ++r) {
      float sum = _mm512_reduce_add_ps(a[c][r]);
      for (int64_t t = k; t < K; ++t) sum += static_cast<float>(q[(n + c) * K + t]) * x[(m + r) * K + t];
      out[(m + r) * N + n + c] = sum * s + b;
    }
  }
}

// One weight row times one row (the single-stream one-row case): two accumulators, 32 inputs a step, so the
// FMAs' latency does not bound the read.
__attribute__((target("avx512f"))) inline float row_avx512(const int8_t* q, const float* x, int64_t K) {
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k)))),
                        _mm512_loadu_ps(x + k), a);
    b = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k + 16)))),
                        _mm512_loadu_ps(x + k + 16), b);
  }
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
  for (; k < K; ++k) sum += static_cast<float>(q[k]) * x[k];
  return sum;
}

template <int NB, int MB>
__attribute__((target("avx2,fma"))) inline void tile_avx2(const int8_t* q, const float* x, const float* scale,
                                                        const float* bias, int64_t K, int64_t N, int64_t n, int64_t m,
                                                        float* out) {
  __m256 a[NB][MB];
  for (int c = 0; c < NB; ++c)
    for (int r = 0; r < MB; ++r) a[c][r] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 w[NB];
    for (int c = 0; c < NB; ++c)
      w[c] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + (n + c) * K + k))));
    for (int r = 0; r < MB; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + (m + r) * K + k);
      for (int c = 0; c < NB; ++c) a[c][r] = _mm256_fmadd_ps(w[c], xv, a[c][r]);
    }
  }
  for (int c = 0; c < NB; ++c) {
    const float s = scale[n + c], b = bias ? bias[n + c] : 0.0f;
    for (int r = 0; r < MB; ++r) {
      float sum = hsum_avx2(a[c][r]);
      for (int64_t t = k; t < K; ++t) sum += static_cast<float>(q[(n + c) * K + t]) * x[(m + r) * K + t];
      out[(m + r) * N + n + c] = sum * s + b;
    }
  }
}
// bf16 activations (AVX-512 BF16): 32 inputs at a time, the int8 weights widened to bf16 (exact: |q| <= 127)
// and multiplied pairwise into fp32 sums by vdpbf16ps, twice the products per instruction of fp32 FMAs.
template <int NB, int MB>
__attribute__((target("avx512f,avx512bf16"))) inline void tile_bf16(const int8_t* q, const uint16_t* x,
                                                                  const float* scale, const float* bias, int64_t K,
                                                                  int64_t N, int64_t n, int64_t m, float* out) {
  __m512 a[NB][MB];
  for (int c = 0; c < NB; ++c)
    for (int r = 0; r < MB; ++r) a[c][r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m512bh w[NB];
    for (int c = 0; c < NB; ++c) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + (n + c) * K + k));
      const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(v)));
      const __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(v, 1)));
      w[c] = _mm512_cvtne2ps_pbh(hi, lo);  // inputs k..k+31 in order, as the activations lie in memory
    }
    for (int r = 0; r < MB; ++r) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + (m + r) * K + k);
      for (int c = 0; c < NB; ++c) a[c][r] = _mm512_dpbf16_ps(a[c][r], w[c], xv);
    }
  }
  for (int c = 0; c < NB; ++c) {
    const float s = scale[n + c], b = bias ? bias[n + c] : 0.0f;
    for (int r = 0; r < MB; ++r) {
      float sum = _mm512_reduce_add_ps(a[c][r]);
      for (int64_t t = k; t < K; ++t) {
        sum += static_cast<float>(q[(n + c) * K + t]) * bf16_to_float(x[(m + r) * K + t]);
      }
      out[(m + r) * N + n + c] = sum * s + b;
    }
  }
}

inline bool has_avx512_bf16() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
  return yes;
}

// All rows (bf16) against 4 output channels: 8 rows with 2 channels at a time, fewer rows with all 4.
inline void channels_bf16(const int8_t* q, const uint16_t* x, const float* scale, const float* bias, int64_t M,
                          int64_t K, int64_t N, int64_t n, int64_t nb, float* out) {
  int64_t m = 0;
  if (nb == 4) {
    for (; m + 8 <= M; m += 8) {
      tile_bf16<2, 8>(q, x, scale, bias, K, N, n, m, out);
      tile_bf16<2, 8>(q, x, scale, bias, K, N, n + 2, m, out);
    }
    for (; m + 4 <= M; m += 4) tile_bf16<4, 4>(q, x, scale, bias, K, N, n, m, out);
    for (; m + 2 <= M; m += 2) tile_bf16<4, 2>(q, x, scale, bias, K, N, n, m, out);
    for (; m < M; ++m) tile_bf16<4, 1>(q, x, scale, bias, K, N, n, m, out);
  } else {
    for (; m + 8 <= M; m += 8) tile_bf16<1, 8>(q, x, scale, bias, K, N, n, m, out);
    for (; m < M; ++m) tile_bf16<1, 1>(q, x, scale, bias, K, N, n, m, out);
  }
}

inline void range_bf16(const int8_t* q, const uint16_t* x, const float* scale, const float* bias, int64_t M,
                       int64_t K, int64_t N, int64_t n0, int64_t n1, float* out) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) channels_bf16(q, x, scale, bias, M, K, N, n, 4, out);
  for (; n < n1; ++n) channels_bf16(q, x, scale, bias, M, K, N, n, 1, out);
}
#else
inline bool has_avx512_bf16() { return false; }
inline void range_bf16(const int8_t*, const uint16_t*, const float*, const float*, int64_t, int64_t, int64_t, int64_t,
                       int64_t, float*) {}
#endif


template <int NB, int MB>
inline void tile_plain(const int8_t* q, const float* x, const float* scale, const float* bias, int64_t K, int64_t N,
                       int64_t n, int64_t m, float* out) {
  for (int c = 0; c < NB; ++c)
    for (int r = 0; r < MB; ++r) {
      float sum = 0.0f;
      for (int64_t t = 0; t < K; ++t) sum += static_cast<float>(q[(n + c) * K + t]) * x[(m + r) * K + t];
      out[(m + r) * N + n + c] = sum * scale[n + c] + (bias ? bias[n + c] : 0.0f);
    }
}

enum class Isa { plain, avx2, avx512 };

inline Isa isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const Isa chosen = __builtin_cpu_supports("avx512f") ? Isa::avx512
                            : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? Isa::avx2
                                                                                                 : Isa::plain;
  return chosen;
#else
  return Isa::plain;
#endif
}

template <int NB, int MB>
inline void tile(Isa which, const int8_t* q, const float* x, const float* scale, const float* bias, int64_t K,
                 int64_t N, int64_t n, int64_t m, float* out) {
#if defined(__x86_64__) && defined(__GNUC__)
  if constexpr (NB == 1 && MB == 1)
    if (which == Isa::avx512) {
      out[m * N + n] = row_avx512(q + n * K, x + m * K, K) * scale[n] + (bias ? bias[n] : 0.0f);
      return;
    }
  if (which == Isa::avx512) return tile_avx512<NB, MB>(q, x, scale, bias, K, N, n, m, out);
  if (which == Isa::avx2) return tile_avx2<NB, MB>(q, x, scale, bias, K, N, n, m, out);
#endif
  tile_plain<NB, MB>(q, x, scale, bias, K, N, n, m, out);
}

// All rows against NB output channels (a tile of NB * K weights, which stays in the L1 cache while the rows
// go by 4, 2 and 1 at a time).
template <int NB>
inline void channels(Isa which, const int8_t* q, const float* x, const float* scale, const float* bias, int64_t M,
                     int64_t K, int64_t N, int64_t n, float* out) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) tile<NB, 4>(which, q, x, scale, bias, K, N, n, m, out);
  if (m + 2 <= M) {
    tile<NB, 2>(which, q, x, scale, bias, K, N, n, m, out);
    m += 2;
  }
  if (m < M) tile<NB, 1>(which, q, x, scale, bias, K, N, n, m, out);
}

inline void range(const int8_t* q, const float* x, const float* scale, const float* bias, int64_t M, int64_t K,
                  int64_t N, int64_t n0, int64_t n1, float* out) {
  const Isa which = isa();
  int64_t n = n0;
  // One row: the weight rows one after the other (a single sequential stream, which read at the memory's
  // full speed where four interleaved rows read at half of it); more rows: four weight rows at a time, each
  // widened once for all the rows.
  if (M > 1)
    for (; n + 4 <= n1; n += 4) channels<4>(which, q, x, scale, bias, M, K, N, n, out);
  for (; n < n1; ++n) channels<1>(which, q, x, scale, bias, M, K, N, n, out);
}

}  // namespace int8

// x (M, K) fp32 or bf16, contiguous; q (N, K) int8 contiguous; scale (N,) fp32; bias (N,) fp32 or empty.
// Returns (M, N) fp32: x @ (q * scale[:, None]).T + bias. bf16 rows take the AVX-512 BF16 tiles where the
// CPU has them (pairwise products summed in fp32: the same sums up to rounding), else they are widened.
torch::Tensor int8_rows(torch::Tensor x, torch::Tensor q, torch::Tensor scale, torch::Tensor bias) {
  TORCH_CHECK(x.dim() == 2 && (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16) &&
                  x.is_contiguous(), "x must be (M, K) fp32 or bf16, contiguous");
  // One bf16 row is widened (exact, and cheaper than widening the weights to bf16 for the BF16 dot products).
  const bool bf16 = x.scalar_type() == torch::kBFloat16 && int8::has_avx512_bf16() && x.size(0) > 1;
  if (x.scalar_type() == torch::kBFloat16 && !bf16) x = x.to(torch::kFloat32);  // exact: bf16 values are fp32 values
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == torch::kInt8 && q.is_contiguous(), "q must be (N, K) int8, contiguous");
  const int64_t M = x.size(0), K = x.size(1), N = q.size(0);
  TORCH_CHECK(q.size(1) == K, "x has ", K, " features but q is (", N, ", ", q.size(1), ")");
  TORCH_CHECK(scale.numel() == N && scale.scalar_type() == torch::kFloat32 && scale.is_contiguous(),
              "scale must be (N,) fp32, contiguous");
  const float* bias_ptr = bias_pointer(bias, N);
  auto out = torch::empty({M, N}, x.options().dtype(torch::kFloat32));
  const int8_t* qp = q.data_ptr<int8_t>();
  const float* sp = scale.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // Chunks of at least 64K weights: below that a thread's wake-up costs more than its share.
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, K));
  if (bf16) {
    const uint16_t* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
    at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) { int8::range_bf16(qp, xp, sp, bias_ptr, M, K, N, n0, n1, op); });
  } else {
    const float* xp = x.data_ptr<float>();
    at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) { int8::range(qp, xp, sp, bias_ptr, M, K, N, n0, n1, op); });
  }
  return out;
}

}  // namespace tongues
