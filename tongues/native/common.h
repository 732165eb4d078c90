// Small pieces the kernels of tongues/native share (see __init__.py there).

#pragma once

#include <torch/extension.h>

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace tongues {

// The fp32 value of a bf16's bits (exact).
inline float bf16_to_float(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

// A float32 or bfloat16 element as a float (overloads for the kernels' templates).
inline float as_float(float value) { return value; }
inline float as_float(uint16_t bits) { return bf16_to_float(bits); }

// An optional (N,) fp32 bias: its data, or nullptr when it is empty; a clear error otherwise.
inline const float* bias_pointer(const torch::Tensor& bias, int64_t N) {
  if (bias.numel() == 0) return nullptr;
  TORCH_CHECK(bias.numel() == N && bias.scalar_type() == torch::kFloat32 && bias.is_contiguous(),
              "bias must be (N,) fp32, contiguous");
  return bias.data_ptr<float>();
}

#if defined(__x86_64__) && defined(__GNUC__)
// The sum of an AVX2 register's eight floats.
__attribute__((target("avx2,fma"))) inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

}  // namespace tongues
