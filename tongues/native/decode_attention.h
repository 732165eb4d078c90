// tongues' compiled CPU code: attention of one query per row over a key/value cache (the decode step).
//
// Built on first use by tongues/native/__init__.py (torch.utils.cpp_extension), once per machine and torch
// version. Work is split with at::parallel_for, so it runs on torch's own OpenMP threads (the same pool,
// and the same cheap wake-up, as every torch operator). The hot loops are plain C++ that GCC vectorises;
// target_clones builds them for AVX-512, AVX2+FMA and baseline x86-64, and the loader picks one for the
// CPU it runs on, so one build serves both machine classes.

#pragma once

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "common.h"

namespace tongues {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TONGUES_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define TONGUES_CLONES
#endif

// exp for the softmax, vectorisable (no libm call): 2^(x log2 e) split into 2^n * 2^f, f in [-0.5, 0.5],
// 2^f by a degree-6 polynomial (relative error below 2e-7 over the range). x <= 0 here (scores minus
// their maximum); below -87 it returns 0, like expf's underflow.
inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  float t = x * 1.44269504088896341f;
  float n = std::nearbyint(t);
  float f = t - n;
  float p = 1.535336188319500e-4f;
  p = p * f + 1.339887440266574e-3f;
  p = p * f + 9.618437357674640e-3f;
  p = p * f + 5.550332471162809e-2f;
  p = p * f + 2.402264791363012e-1f;
  p = p * f + 6.931472028550421e-1f;
  p = p * f + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Biases at or below this are masks: exp(score + bias - max) is 0 in fp32 for any score a model computes.
constexpr float kMasked = -1e30f;

struct Shape {
  int64_t B, H, Hk, Tk, D;
  int64_t kB, kH, kT, vB, vH, vT;  // element strides of keys/values (D is contiguous)
  int64_t bB, bH, bT;              // element strides of the bias (0 where it broadcasts)
  float scale;
};

// Turns one head's scores (their maximum m) into exp(score - m) in place; returns 1 / their sum. Every
// score -inf (m too): the weights are zeros, as torch's SDPA gives there.
inline __attribute__((always_inline)) float exp_weights(float* __restrict sc, int64_t Tk, float m) {
  if (m == -std::numeric_limits<float>::infinity()) {
    for (int64_t t = 0; t < Tk; ++t) sc[t] = 0.0f;
    return 1.0f;
  }
  float total = 0.0f;
#pragma omp simd reduction(+ : total)
  for (int64_t t = 0; t < Tk; ++t) {
    const float e = fast_exp(sc[t] - m);
    sc[t] = e;
    total += e;
  }
  return 1.0f / total;
}

// One (row, key/value head) pair: its `groups` query heads read the head's keys and values once.
// scores: a buffer of groups * Tk floats.
// DC: the head size when known at compile time (64, 128: loops fully unrolled), 0 for any other.
template <typename T, int DC>
inline __attribute__((always_inline)) void attend_unit(const float* __restrict q, const T* __restrict k,
                                                      const T* __restrict v, const float* __restrict bias,
                                                      const Shape& s, int64_t b, int64_t hk, float* __restrict scores,
                                                      float* __restrict out) {
  const int64_t G = s.H / s.Hk, D = DC ? DC : s.D, Tk = s.Tk;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const T* kr0 = k + b * s.kB + hk * s.kH;
  const T* vr0 = v + b * s.vB + hk * s.vH;
  for (int64_t g = 0; g < G; ++g) {
    const int64_t h = hk * G + g;
    const float* qh = q + (b * s.H + h) * D;
    const float* bh = bias ? bias + b * s.bB + h * s.bH : nullptr;
    float* sc = scores + g * Tk;
    float m = neg_inf;
    // A column whose bias is a mask (-inf, or the dtype's lowest value as the models write masks) gets
    // probability 0 whatever its key: its key is not read. Only when every column is masked are the
    // keys read after all, so that the result is SDPA's (an average over the columns; zeros for -inf).
    for (int pass = 0; pass < 2 && m == neg_inf; ++pass) {
      for (int64_t t = 0; t < Tk; ++t) {
        const float add = bh ? bh[t * s.bT] : 0.0f;
        if (pass == 0 && add <= kMasked) {
          sc[t] = neg_inf;
          continue;
        }
        const T* kr = kr0 + t * s.kT;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t d = 0; d < D; ++d) acc += qh[d] * as_float(kr[d]);
        const float x = acc * s.scale + add;
        sc[t] = x;
        m = x > m ? x : m;
      }
    }
    const float inv = exp_weights(sc, Tk, m);
    float* o = out + (b * s.H + h) * D;
    for (int64_t d = 0; d < D; ++d) o[d] = 0.0f;
    for (int64_t t = 0; t < Tk; ++t) sc[t] *= inv;
  }
  // Weighted sum of values, all groups at once per position, so each value row is read once.
  for (int64_t t = 0; t < Tk; ++t) {
    const T* vr = vr0 + t * s.vT;
    bool any = false;
    for (int64_t g = 0; g < G; ++g) any |= scores[g * Tk + t] != 0.0f;
    if (!any) continue;
    for (int64_t g = 0; g < G; ++g) {
      const float w = scores[g * Tk + t];
      float* o = out + (b * s.H + hk * G + g) * D;
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) o[d] += w * as_float(vr[d]);
    }
  }
}

template <typename T>
inline __attribute__((always_inline)) void attend_range(const float* q, const T* k, const T* v, const float* bias,
                                                       const Shape& s, int64_t begin, int64_t end, float* scores,
                                                       float* out) {
  for (int64_t u = begin; u < end; ++u) {
    if (s.D == 64)
      attend_unit<T, 64>(q, k, v, bias, s, u / s.Hk, u % s.Hk, scores, out);
    else if (s.D == 128)
      attend_unit<T, 128>(q, k, v, bias, s, u / s.Hk, u % s.Hk, scores, out);
    else
      attend_unit<T, 0>(q, k, v, bias, s, u / s.Hk, u % s.Hk, scores, out);
  }
}

TONGUES_CLONES void attend_range_f32(const float* q, const float* k, const float* v, const float* bias, const Shape& s,
                                     int64_t begin, int64_t end, float* scores, float* out) {
  attend_range<float>(q, k, v, bias, s, begin, end, scores, out);
}

TONGUES_CLONES void attend_range_bf16(const float* q, const uint16_t* k, const uint16_t* v, const float* bias,
                                      const Shape& s, int64_t begin, int64_t end, float* scores, float* out) {
  attend_range<uint16_t>(q, k, v, bias, s, begin, end, scores, out);
}

#if defined(__x86_64__) && defined(__GNUC__)
// The same computation written with AVX-512 intrinsics, for head sizes that are multiples of 16: bf16 keys
// and values are widened with a shift in the register (GCC's own vectorisation of the loops above kept
// the bf16 cache from reading faster than the fp32 one).
__attribute__((target("avx512f"))) inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f"))) inline __m512 load16(const uint16_t* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

// NC: the head size in 16-float chunks (4 or 8: D = 64 or 128), so the accumulators stay in registers.
template <typename T, int NC>
__attribute__((target("avx512f"))) void attend_range_avx512(const float* q, const T* k, const T* v, const float* bias,
                                                            const Shape& s, int64_t begin, int64_t end, float* scores,
                                                            float* out) {
  const int64_t G = s.H / s.Hk, Tk = s.Tk;
  constexpr int64_t D = NC * 16;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t u = begin; u < end; ++u) {
    const int64_t b = u / s.Hk, hk = u % s.Hk;
    const T* kr0 = k + b * s.kB + hk * s.kH;
    const T* vr0 = v + b * s.vB + hk * s.vH;
    for (int64_t g = 0; g < G; ++g) {
      const int64_t h = hk * G + g;
      const float* qh = q + (b * s.H + h) * D;
      const float* bh = bias ? bias + b * s.bB + h * s.bH : nullptr;
      __m512 qv[NC];
      for (int c = 0; c < NC; ++c) qv[c] = _mm512_loadu_ps(qh + 16 * c);
      float* sc = scores + g * Tk;
      float m = neg_inf;
      for (int pass = 0; pass < 2 && m == neg_inf; ++pass) {  // as attend_unit: masked columns not read
        for (int64_t t = 0; t < Tk; ++t) {
          const float add = bh ? bh[t * s.bT] : 0.0f;
          if (pass == 0 && add <= kMasked) {
            sc[t] = neg_inf;
            continue;
          }
          const T* kr = kr0 + t * s.kT;
          __m512 acc = _mm512_mul_ps(qv[0], load16(kr));
          for (int c = 1; c < NC; ++c) acc = _mm512_fmadd_ps(qv[c], load16(kr + 16 * c), acc);
          const float x = _mm512_reduce_add_ps(acc) * s.scale + add;
          sc[t] = x;
          m = x > m ? x : m;
        }
      }
      const float inv = exp_weights(sc, Tk, m);
      __m512 o[NC];
      for (int c = 0; c < NC; ++c) o[c] = _mm512_setzero_ps();
      for (int64_t t = 0; t < Tk; ++t) {
        const float w = sc[t];
        if (w == 0.0f) continue;  // a masked column (or one too far below the maximum to count)
        const __m512 wv = _mm512_set1_ps(w);
        const T* vr = vr0 + t * s.vT;
        for (int c = 0; c < NC; ++c) o[c] = _mm512_fmadd_ps(wv, load16(vr + 16 * c), o[c]);
      }
      const __m512 scale = _mm512_set1_ps(inv);
      float* oh = out + (b * s.H + h) * D;
      for (int c = 0; c < NC; ++c) _mm512_storeu_ps(oh + 16 * c, _mm512_mul_ps(o[c], scale));
    }
  }
}

inline bool has_avx512f() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
#else
inline bool has_avx512f() { return false; }
template <typename T, int NC>
void attend_range_avx512(const float*, const T*, const T*, const float*, const Shape&, int64_t, int64_t, float*, float*) {}
#endif

// q (B, H, D) fp32 contiguous; k, v (B, Hk, Tk, D) fp32 or bf16 with contiguous D; bias fp32 viewed as
// (B, H, Tk) (any strides, 0 where broadcast) or an empty tensor. Returns (B, H, D) fp32.
torch::Tensor decode_attention(torch::Tensor q, torch::Tensor k, torch::Tensor v, torch::Tensor bias, double scale) {
  TORCH_CHECK(q.dim() == 3 && q.scalar_type() == torch::kFloat32 && q.is_contiguous(), "q must be (B, H, D) fp32, contiguous");
  TORCH_CHECK(k.dim() == 4 && v.dim() == 4 && k.sizes() == v.sizes(), "k and v must be (B, Hk, Tk, D) of one shape");
  TORCH_CHECK(k.scalar_type() == v.scalar_type(), "k and v must have one dtype");
  TORCH_CHECK(k.scalar_type() == torch::kFloat32 || k.scalar_type() == torch::kBFloat16, "k and v must be fp32 or bf16");
  TORCH_CHECK(k.stride(3) == 1 && v.stride(3) == 1, "k and v must be contiguous in their last dimension");
  Shape s{};
  s.B = q.size(0);
  s.H = q.size(1);
  s.D = q.size(2);
  s.Hk = k.size(1);
  s.Tk = k.size(2);
  TORCH_CHECK(k.size(0) == s.B && k.size(3) == s.D && s.H % s.Hk == 0, "shapes of q and k/v do not match");
  s.kB = k.stride(0); s.kH = k.stride(1); s.kT = k.stride(2);
  s.vB = v.stride(0); s.vH = v.stride(1); s.vT = v.stride(2);
  const float* bias_ptr = nullptr;
  if (bias.numel() > 0) {
    TORCH_CHECK(bias.dim() == 3 && bias.scalar_type() == torch::kFloat32 && bias.size(0) == s.B && bias.size(1) == s.H &&
                    bias.size(2) == s.Tk, "bias must be viewed as (B, H, Tk) fp32");
    s.bB = bias.stride(0); s.bH = bias.stride(1); s.bT = bias.stride(2);
    bias_ptr = bias.data_ptr<float>();
  }
  s.scale = static_cast<float>(scale);
  auto out = torch::empty({s.B, s.H, s.D}, q.options());
  const int64_t G = s.H / s.Hk;
  const float* qp = q.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const bool bf16 = k.scalar_type() == torch::kBFloat16;
  const void* kp = k.data_ptr();
  const void* vp = v.data_ptr();
  const int chunks = has_avx512f() && (s.D == 64 || s.D == 128) ? static_cast<int>(s.D / 16) : 0;
  at::parallel_for(0, s.B * s.Hk, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(G * s.Tk));
    const auto* k16 = static_cast<const uint16_t*>(kp);
    const auto* v16 = static_cast<const uint16_t*>(vp);
    const auto* k32 = static_cast<const float*>(kp);
    const auto* v32 = static_cast<const float*>(vp);
    if (chunks == 4 && bf16)
      attend_range_avx512<uint16_t, 4>(qp, k16, v16, bias_ptr, s, begin, end, scores.data(), op);
    else if (chunks == 8 && bf16)
      attend_range_avx512<uint16_t, 8>(qp, k16, v16, bias_ptr, s, begin, end, scores.data(), op);
    else if (chunks == 4)
      attend_range_avx512<float, 4>(qp, k32, v32, bias_ptr, s, begin, end, scores.data(), op);
    else if (chunks == 8)
      attend_range_avx512<float, 8>(qp, k32, v32, bias_ptr, s, begin, end, scores.data(), op);
    else if (bf16)
      attend_range_bf16(qp, static_cast<const uint16_t*>(kp), static_cast<const uint16_t*>(vp), bias_ptr, s, begin, end,
                        scores.data(), op);
    else
      attend_range_f32(qp, static_cast<const float*>(kp), static_cast<const float*>(vp), bias_ptr, s, begin, end,
                       scores.data(), op);
  });
  return out;
}

}  // namespace tongues
