// tongues' compiled CPU code: bf16 weights in "pairs" layout times any number of bf16 rows (AVX-512 BF16).
//
// Part of the extension tongues/native builds (see __init__.py there). The layout (made by
// tongues.fast.packed.pack_pairs, in PyTorch): output channels in blocks of 32; a block holds, for each pair of
// inputs (2p, 2p + 1), 64 bf16 values: channel 0's two inputs, channel 1's two, ... channel 31's two. Rows past N
// and the input past an odd K are zeros. vdpbf16ps multiplies such a 64-byte line by the row's pair (x[2p],
// x[2p+1]) broadcast, giving 16 channels' sums at once: every weight is read once, in order, whatever the
// number of rows, and each row's pair is reused for 32 channels. One thread takes whole blocks (a sequential
// stream), and a block's weights (64 KB for 1,024 inputs) stay in the L2 cache while the rows go by 8 at a time.
// Products are exact (bf16 times bf16 fits in fp32); sums are fp32.

#pragma once

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace tongues {
namespace pairs {

constexpr int64_t BLOCK = 32;

inline bool supported() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
  return yes;
#else
  return false;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,avx512bf16"))) inline __m512bh pair_at(const uint16_t* x, int64_t p, int64_t K) {
  int32_t both = 0;
  if (2 * p + 1 < K)
    std::memcpy(&both, x + 2 * p, sizeof both);
  else
    both = x[2 * p];  // an odd K's last input, its partner a zero (as the weights' padding is)
  return (__m512bh)_mm512_set1_epi32(both);
}

// Writes a block's 32 (or nvalid) outputs of one row, plus the bias.
__attribute__((target("avx512f"))) inline void store_block(float* y, __m512 lo, __m512 hi, const float* bias,
                                                          int64_t nvalid) {
  const __mmask16 m0 = nvalid >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << nvalid) - 1);
  const __mmask16 m1 = nvalid >= 32 ? 0xFFFF : nvalid <= 16 ? 0 : static_cast<__mmask16>((1u << (nvalid - 16)) - 1);
  if (bias) {
    lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(m0, bias));
    hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(m1, bias + 16));
  }
  _mm512_mask_storeu_ps(y, m0, lo);
  _mm512_mask_storeu_ps(y + 16, m1, hi);
}

// MB rows (stride K) against one block; y's rows have stride N.
template <int MB>
__attribute__((target("avx512f,avx512bf16"))) inline void block_rows(const uint16_t* wb, const uint16_t* x, int64_t K,
                                                                    int64_t N, float* y, const float* bias,
                                                                    int64_t nvalid) {
  __m512 lo[MB], hi[MB];
  for (int r = 0; r < MB; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
  const int64_t Kp = (K + 1) / 2;
  for (int64_t p = 0; p < Kp; ++p) {
    const __m512bh w0 = (__m512bh)_mm512_loadu_si512(wb + p * 64);
    const __m512bh w1 = (__m512bh)_mm512_loadu_si512(wb + p * 64 + 32);
    for (int r = 0; r < MB; ++r) {
      const __m512bh xv = pair_at(x + r * K, p, K);
      lo[r] = _mm512_dpbf16_ps(lo[r], w0, xv);
      hi[r] = _mm512_dpbf16_ps(hi[r], w1, xv);
    }
  }
  for (int r = 0; r < MB; ++r) store_block(y + r * N, lo[r], hi[r], bias, nvalid);
}

// One row against one block: four interleaved sets of sums, so the dot products' latency does not bound the read.
__attribute__((target("avx512f,avx512bf16"))) inline void block_row(const uint16_t* wb, const uint16_t* x, int64_t K,
                                                                   float* y, const float* bias, int64_t nvalid) {
  __m512 lo[4], hi[4];
  for (int j = 0; j < 4; ++j) lo[j] = hi[j] = _mm512_setzero_ps();
  const int64_t Kp = (K + 1) / 2;
  int64_t p = 0;
  for (; p + 4 <= Kp; p += 4)
    for (int j = 0; j < 4; ++j) {
      const __m512bh xv = pair_at(x, p + j, K);
      lo[j] = _mm512_dpbf16_ps(lo[j], (__m512bh)_mm512_loadu_si512(wb + (p + j) * 64), xv);
      hi[j] = _mm512_dpbf16_ps(hi[j], (__m512bh)_mm512_loadu_si512(wb + (p + j) * 64 + 32), xv);
    }
  for (; p < Kp; ++p) {
    const __m512bh xv = pair_at(x, p, K);
    lo[0] = _mm512_dpbf16_ps(lo[0], (__m512bh)_mm512_loadu_si512(wb + p * 64), xv);
    hi[0] = _mm512_dpbf16_ps(hi[0], (__m512bh)_mm512_loadu_si512(wb + p * 64 + 32), xv);
  }
  store_block(y, _mm512_add_ps(_mm512_add_ps(lo[0], lo[1]), _mm512_add_ps(lo[2], lo[3])),
              _mm512_add_ps(_mm512_add_ps(hi[0], hi[1]), _mm512_add_ps(hi[2], hi[3])), bias, nvalid);
}

inline void blocks(const uint16_t* w, const uint16_t* x, const float* bias, int64_t M, int64_t K, int64_t N,
                   int64_t b0, int64_t b1, float* y) {
  const int64_t Kp = (K + 1) / 2;
  for (int64_t b = b0; b < b1; ++b) {
    const uint16_t* wb = w + b * Kp * 64;
    const int64_t n = b * BLOCK, nvalid = std::min<int64_t>(BLOCK, N - n);
    const float* bb = bias ? bias + n : nullptr;
    if (M == 1) {
      block_row(wb, x, K, y + n, bb, nvalid);
      continue;
    }
    int64_t m = 0;
    for (; m + 8 <= M; m += 8) block_rows<8>(wb, x + m * K, K, N, y + m * N + n, bb, nvalid);
    const uint16_t* xm = x + m * K;
    float* ym = y + m * N + n;
    switch (M - m) {  // the last 1-7 rows in one pass over the block
      case 7: block_rows<7>(wb, xm, K, N, ym, bb, nvalid); break;
      case 6: block_rows<6>(wb, xm, K, N, ym, bb, nvalid); break;
      case 5: block_rows<5>(wb, xm, K, N, ym, bb, nvalid); break;
      case 4: block_rows<4>(wb, xm, K, N, ym, bb, nvalid); break;
      case 3: block_rows<3>(wb, xm, K, N, ym, bb, nvalid); break;
      case 2: block_rows<2>(wb, xm, K, N, ym, bb, nvalid); break;
      case 1: block_rows<1>(wb, xm, K, N, ym, bb, nvalid); break;
      default: break;
    }
  }
}
#else
inline void blocks(const uint16_t*, const uint16_t*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, float*) {}
#endif

}  // namespace pairs

bool bf16_pairs_supported() { return pairs::supported(); }

// x (M, K) bf16, contiguous; w the pairs layout of an (N, K) bf16 weight (ceil(N / 32) * ceil(K / 2) * 64 values);
// bias (N,) fp32 or empty. Returns (M, N) fp32: x @ weight.T + bias.
torch::Tensor bf16_pairs_rows(torch::Tensor x, torch::Tensor w, int64_t N, torch::Tensor bias) {
  TORCH_CHECK(pairs::supported(), "bf16_pairs_rows needs a CPU with AVX-512 BF16");
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kBFloat16 && x.is_contiguous(),
              "x must be (M, K) bf16, contiguous");
  const int64_t M = x.size(0), K = x.size(1);
  const int64_t blocks = (N + pairs::BLOCK - 1) / pairs::BLOCK;
  TORCH_CHECK(N > 0 && w.scalar_type() == torch::kBFloat16 && w.is_contiguous() && w.numel() == blocks * ((K + 1) / 2) * 64,
              "w must hold the pairs layout of an (", N, ", ", K, ") bf16 weight: ", blocks * ((K + 1) / 2) * 64,
              " contiguous bf16 values; got ", w.numel());
  const float* bias_ptr = nullptr;
  if (bias.numel() > 0) {
    TORCH_CHECK(bias.numel() == N && bias.scalar_type() == torch::kFloat32 && bias.is_contiguous(),
                "bias must be (N,) fp32, contiguous");
    bias_ptr = bias.data_ptr<float>();
  }
  auto y = torch::empty({M, N}, x.options().dtype(torch::kFloat32));
  const uint16_t* wp = reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>());
  const uint16_t* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) { pairs::blocks(wp, xp, bias_ptr, M, K, N, b0, b1, yp); });
  return y;
}

}  // namespace tongues
