// tongues' compiled CPU code: int4 weights in torch's packed CPU layout times a few bf16 rows (AVX-512 BF16).
//
// Part of the extension tongues/native builds (see __init__.py there). The weights are those of
// tongues.fast.quantized.quantize_int4: torch's ``_convert_weight_to_int4pack_for_cpu`` layout, in which each block
// of 64 output channels holds, for each input k, 32 bytes: byte j's low nibble is channel j's q, its high nibble
// channel 32 + j's (the layout of a last block of fewer than 64 channels differs, so N must be a multiple of 64);
// and per group of inputs and channel a bf16 scale s and offset z, the weight being (q - 8) * s + z.
//
// The nibbles are made bf16 without arithmetic: 0x4300 | q is the bf16 of 128 + q, exactly. Two inputs' values
// are interleaved per channel and multiplied by the row's pair (x[k], x[k+1]) with vdpbf16ps (exact products, fp32
// sums), so a group's sum is sum((128 + q) x) = S; the group then adds s * (S - 136 X) + z * X, X being the sum of
// the row's inputs over the group (since (q - 8) s + z = s (128 + q) - 136 s + z). Every weight byte is read once,
// in order (a block of 64 channels is one stretch of memory), for up to 4 rows at a time.

#pragma once

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"
#include "packed_rows.h"

namespace tongues {
namespace int4 {

#if defined(__x86_64__) && defined(__GNUC__)
// The channels of the four accumulators, in the order unpacklo/unpackhi_epi16 leave them (per 128-bit lane):
// acc 0: 0-3, 8-11, 16-19, 24-27; acc 1: 4-7, 12-15, 20-23, 28-31; acc 2 and 3: the same plus 32.
// perm[i][lane] = the natural channel (0-31 within its half) of that lane.
alignas(64) static const int32_t LO_LANES[16] = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
alignas(64) static const int32_t HI_LANES[16] = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};

// MB rows against one block of 64 channels. y rows have stride N; x rows stride K; sums[r * groups + g] = X.
template <int MB>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) inline void block_rows(
    const uint8_t* wb, const uint16_t* sz, const uint16_t* x, const float* sums, int64_t K, int64_t N, int64_t n,
    int64_t group, const float* bias, float* y) {
  const int64_t groups = K / group;
  const __m512i low_nibble = _mm512_set1_epi16(0x000F), magic = _mm512_set1_epi16(0x4300);
  const __m512i lo_lanes = _mm512_load_si512(LO_LANES), hi_lanes = _mm512_load_si512(HI_LANES);
  __m512 total[MB][4];
  for (int r = 0; r < MB; ++r)
    for (int i = 0; i < 4; ++i) total[r][i] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m512 acc[MB][4];
    for (int r = 0; r < MB; ++r)
      for (int i = 0; i < 4; ++i) acc[r][i] = _mm512_setzero_ps();
    for (int64_t k = g * group; k < (g + 1) * group; k += 2) {
      const __m512i v0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + k * 32)));
      const __m512i v1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + (k + 1) * 32)));
      // (v & 0xF) | 0x4300 and (v >> 4) | 0x4300: bf16 128 + q for channels 0-31 and 32-63 of inputs k, k + 1
      const __m512i l0 = _mm512_ternarylogic_epi32(v0, low_nibble, magic, 0xEA);
      const __m512i l1 = _mm512_ternarylogic_epi32(v1, low_nibble, magic, 0xEA);
      const __m512i h0 = _mm512_or_si512(_mm512_srli_epi16(v0, 4), magic);
      const __m512i h1 = _mm512_or_si512(_mm512_srli_epi16(v1, 4), magic);
      const __m512bh w[4] = {(__m512bh)_mm512_unpacklo_epi16(l0, l1), (__m512bh)_mm512_unpackhi_epi16(l0, l1),
                             (__m512bh)_mm512_unpacklo_epi16(h0, h1), (__m512bh)_mm512_unpackhi_epi16(h0, h1)};
      for (int r = 0; r < MB; ++r) {
        int32_t both;
        std::memcpy(&both, x + r * K + k, sizeof both);
        const __m512bh xv = (__m512bh)_mm512_set1_epi32(both);
        for (int i = 0; i < 4; ++i) acc[r][i] = _mm512_dpbf16_ps(acc[r][i], w[i], xv);
      }
    }
    // this group's scales and offsets of the 64 channels, (s, z) bf16 pairs, into the accumulators' lane order
    const uint16_t* pairs = sz + (g * N + n) * 2;
    __m512 s[4], z[4];
    for (int half = 0; half < 2; ++half) {
      const __m512i a = _mm512_loadu_si512(pairs + half * 64);       // channels 32 half + 0-15
      const __m512i b = _mm512_loadu_si512(pairs + half * 64 + 32);  // channels 32 half + 16-31
      const __m512i lo = _mm512_permutex2var_epi32(a, lo_lanes, b), hi = _mm512_permutex2var_epi32(a, hi_lanes, b);
      s[2 * half] = _mm512_castsi512_ps(_mm512_slli_epi32(lo, 16));
      z[2 * half] = _mm512_castsi512_ps(_mm512_and_si512(lo, _mm512_set1_epi32(0xFFFF0000)));
      s[2 * half + 1] = _mm512_castsi512_ps(_mm512_slli_epi32(hi, 16));
      z[2 * half + 1] = _mm512_castsi512_ps(_mm512_and_si512(hi, _mm512_set1_epi32(0xFFFF0000)));
    }
    for (int r = 0; r < MB; ++r) {
      const __m512 X = _mm512_set1_ps(sums[r * groups + g]);
      const __m512 X136 = _mm512_set1_ps(136.0f * sums[r * groups + g]);
      for (int i = 0; i < 4; ++i)
        total[r][i] = _mm512_add_ps(total[r][i],
                                    _mm512_fmadd_ps(s[i], _mm512_sub_ps(acc[r][i], X136), _mm512_mul_ps(z[i], X)));
    }
  }
  // back to the natural channel order: channels 0-15 are acc 0's lanes 0-3, 4-7 ... interleaved with acc 1's
  alignas(64) static const int32_t FIRST[16] = {0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23};
  alignas(64) static const int32_t SECOND[16] = {8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31};
  const __m512i first = _mm512_load_si512(FIRST), second = _mm512_load_si512(SECOND);
  for (int r = 0; r < MB; ++r) {
    float* out = y + r * N + n;
    for (int half = 0; half < 2; ++half) {
      const __m512 a = total[r][2 * half], b = total[r][2 * half + 1];
      __m512 c0 = _mm512_permutex2var_ps(a, first, b), c1 = _mm512_permutex2var_ps(a, second, b);
      if (bias) {
        c0 = _mm512_add_ps(c0, _mm512_loadu_ps(bias + n + 32 * half));
        c1 = _mm512_add_ps(c1, _mm512_loadu_ps(bias + n + 32 * half + 16));
      }
      _mm512_storeu_ps(out + 32 * half, c0);
      _mm512_storeu_ps(out + 32 * half + 16, c1);
    }
  }
}

inline void blocks(const uint8_t* w, const uint16_t* sz, const uint16_t* x, const float* sums, int64_t M, int64_t K,
                   int64_t N, int64_t group, const float* bias, int64_t b0, int64_t b1, float* y) {
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* wb = w + b * 32 * K;
    const int64_t n = b * 64;
    const int64_t groups = K / group;
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) block_rows<4>(wb, sz, x + m * K, sums + m * groups, K, N, n, group, bias, y + m * N);
    switch (M - m) {
      case 3: block_rows<3>(wb, sz, x + m * K, sums + m * groups, K, N, n, group, bias, y + m * N); break;
      case 2: block_rows<2>(wb, sz, x + m * K, sums + m * groups, K, N, n, group, bias, y + m * N); break;
      case 1: block_rows<1>(wb, sz, x + m * K, sums + m * groups, K, N, n, group, bias, y + m * N); break;
      default: break;
    }
  }
}
#else
inline void blocks(const uint8_t*, const uint16_t*, const uint16_t*, const float*, int64_t, int64_t, int64_t, int64_t,
                   const float*, int64_t, int64_t, float*) {}
#endif

}  // namespace int4

// x (M, K) bf16 contiguous; w (N, K / 2) uint8 in torch's int4 CPU layout (N a multiple of 64); scales_and_zeros
// (K / group, N, 2) bf16; bias (N,) fp32 or empty. Returns (M, N) fp32: x @ dequantised(w).T + bias.
torch::Tensor int4_rows(torch::Tensor x, torch::Tensor w, int64_t group, torch::Tensor scales_and_zeros,
                        torch::Tensor bias) {
  TORCH_CHECK(packed::has_avx512_bf16(), "int4_rows needs a CPU with AVX-512 BF16");
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kBFloat16 && x.is_contiguous(),
              "x must be (M, K) bf16, contiguous");
  const int64_t M = x.size(0), K = x.size(1);
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == torch::kUInt8 && w.is_contiguous() && w.size(1) * 2 == K &&
                  w.size(0) % 64 == 0,
              "w must be (N, K / 2) uint8 in torch's int4 CPU layout with N a multiple of 64; got ", w.sizes(),
              " for K = ", K);
  const int64_t N = w.size(0);
  TORCH_CHECK(group > 0 && group % 2 == 0 && K % group == 0, "the group size (", group,
              ") must be even and divide the input width (", K, ")");
  TORCH_CHECK(scales_and_zeros.scalar_type() == torch::kBFloat16 && scales_and_zeros.is_contiguous() &&
                  scales_and_zeros.numel() == (K / group) * N * 2,
              "scales_and_zeros must be (K / group, N, 2) bf16, contiguous");
  const float* bias_ptr = bias_pointer(bias, N);
  // each row's input sums per group (fp32, of the bf16 values)
  const int64_t groups = K / group;
  std::vector<float> sums(M * groups, 0.0f);
  const uint16_t* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < groups; ++g) {
      float s = 0.0f;
      for (int64_t k = g * group; k < (g + 1) * group; ++k) s += bf16_to_float(xp[m * K + k]);
      sums[m * groups + g] = s;
    }
  auto y = torch::empty({M, N}, x.options().dtype(torch::kFloat32));
  const uint8_t* wp = w.data_ptr<uint8_t>();
  const uint16_t* szp = reinterpret_cast<const uint16_t*>(scales_and_zeros.data_ptr<at::BFloat16>());
  float* yp = y.data_ptr<float>();
  const float* sp = sums.data();
  at::parallel_for(0, N / 64, 1, [&](int64_t b0, int64_t b1) {
    int4::blocks(wp, szp, xp, sp, M, K, N, group, bias_ptr, b0, b1, yp);
  });
  return y;
}

}  // namespace tongues
