// tongues' compiled CPU code: the argmax of each row of a (B, V) fp32 or bf16 tensor, as torch.argmax gives it
// (the first of equal maxima; a row holding NaN gives its first NaN).
//
// Part of the extension tongues/native builds (see __init__.py there). torch's argmax over one long row runs as a
// scalar loop (210 us for BLOOM's 250,880 logits in fp32, 900 us in bf16, on the 2-core Zen 4 VM: as much as the rest
// of a greedy step's bookkeeping); two vectorised passes, the maximum and then its first place, take about 40 us.

#pragma once

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common.h"

namespace tongues {
namespace argmax {

template <typename T>
inline int64_t plain(const T* x, int64_t V) {
  int64_t best = 0;
  float top = as_float(x[0]);
  if (std::isnan(top)) return 0;
  for (int64_t i = 1; i < V; ++i) {
    const float v = as_float(x[i]);
    if (std::isnan(v)) return i;
    if (v > top) top = v, best = i;
  }
  return best;
}

#if defined(__x86_64__) && defined(__GNUC__)
template <typename T>
__attribute__((target("avx512f"))) inline __m512 load16(const T* x) {
  if constexpr (sizeof(T) == 4) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(x));
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <typename T>
__attribute__((target("avx512f"))) inline int64_t avx512(const T* x, int64_t V) {
  const int64_t whole = V / 16 * 16;
  if (whole == 0) return plain(x, V);
  // pass 1: the maximum, and whether any value is NaN
  __m512 top = load16(x);
  __mmask16 nan = 0;
  for (int64_t i = 0; i < whole; i += 16) {
    const __m512 v = load16(x + i);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    top = _mm512_max_ps(top, v);
  }
  float m = _mm512_reduce_max_ps(top);
  for (int64_t i = whole; i < V; ++i) {
    const float v = as_float(x[i]);
    if (std::isnan(v)) nan = 1;
    if (v > m) m = v;
  }
  if (nan) return plain(x, V);  // the first NaN (a rare case: a scalar pass)
  // pass 2: the first place holding it
  const __m512 mv = _mm512_set1_ps(m);
  for (int64_t i = 0; i < whole; i += 16) {
    const __mmask16 hit = _mm512_cmp_ps_mask(load16(x + i), mv, _CMP_EQ_OQ);
    if (hit) return i + __builtin_ctz(hit);
  }
  for (int64_t i = whole; i < V; ++i)
    if (as_float(x[i]) == m) return i;
  return 0;
}
#endif

template <typename T>
inline int64_t row(const T* x, int64_t V) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool wide = __builtin_cpu_supports("avx512f");
  if (wide) return avx512(x, V);
#endif
  return plain(x, V);
}

}  // namespace argmax

// x (B, V) fp32 or bf16 with contiguous rows (V >= 1). Returns (B,) int64: torch.argmax(x, dim=-1).
torch::Tensor argmax_rows(torch::Tensor x) {
  TORCH_CHECK(x.dim() == 2 && (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16) &&
                  x.size(1) >= 1 && x.stride(1) == 1,
              "x must be (B, V) fp32 or bf16 with V >= 1 and contiguous rows");
  const int64_t B = x.size(0), V = x.size(1), stride = x.stride(0);
  auto out = torch::empty({B}, x.options().dtype(torch::kInt64));
  int64_t* op = out.data_ptr<int64_t>();
  const bool bf16 = x.scalar_type() == torch::kBFloat16;
  const float* fp = bf16 ? nullptr : x.data_ptr<float>();
  const uint16_t* hp = bf16 ? reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()) : nullptr;
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) op[b] = bf16 ? argmax::row(hp + b * stride, V) : argmax::row(fp + b * stride, V);
  });
  return out;
}

}  // namespace tongues
