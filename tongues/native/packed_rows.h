// tongues' compiled CPU code: packed weights times any number of rows, fp32 (AVX-512) or bf16 (AVX-512 BF16).
//
// Part of the extension tongues/native builds (see __init__.py there). Both layouts (made in PyTorch by
// tongues.fast.packed.pack_blocks / pack_pairs) hold the output channels in blocks of 32, a block one stretch of
// memory ordered by input:
// - fp32 "blocks": for each input k, the block's 32 weights (128 bytes). Two FMAs add them times the row's x[k]
//   (broadcast) into 32 channels' sums.
// - bf16 "pairs": for each pair of inputs (2p, 2p + 1), 64 bf16 values: channel 0's two inputs, channel 1's two,
//   ... channel 31's two. vdpbf16ps multiplies a 64-byte half by the row's pair (x[2p], x[2p+1]) broadcast, giving
//   16 channels' sums at once; products are exact (bf16 times bf16 fits in fp32).
// Rows past N and the input past an odd K are zeros. Every weight is read once, in order, whatever the number of
// rows, and each row's input is reused for 32 channels. One thread takes whole blocks (a sequential stream, which
// read at the memory's full speed where oneDNN's layouts read at 55-90 % of it at one row), and a block's weights
// (64-128 KB for 1,024 inputs) stay in the L2 cache while the rows go by 8 at a time. Sums are fp32.

#pragma once

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common.h"

namespace tongues {
namespace packed {

constexpr int64_t BLOCK = 32;

inline bool has_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
#else
  return false;
#endif
}

inline bool has_avx512_bf16() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool yes = has_avx512() && __builtin_cpu_supports("avx512bf16");
  return yes;
#else
  return false;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
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

// One format's step: the 64-byte line(s) for input step s of a block, times one row's inputs for that step.
// fp32 blocks: a step is one input (32 weights); bf16 pairs: a step is two inputs (64 weights).
struct Blocks {
  using W = float;
  using X = float;
  static int64_t steps(int64_t K) { return K; }
  static int64_t block_values(int64_t K) { return K * BLOCK; }
  __attribute__((target("avx512f"))) static void load(const float* wb, int64_t s, __m512& w0, __m512& w1) {
    w0 = _mm512_loadu_ps(wb + s * 32);
    w1 = _mm512_loadu_ps(wb + s * 32 + 16);
  }
  __attribute__((target("avx512f"))) static void add(const __m512& w0, const __m512& w1, const float* x, int64_t s,
                                                    int64_t, __m512& lo, __m512& hi) {
    const __m512 xv = _mm512_set1_ps(x[s]);
    lo = _mm512_fmadd_ps(w0, xv, lo);
    hi = _mm512_fmadd_ps(w1, xv, hi);
  }
};

struct Pairs {
  using W = uint16_t;
  using X = uint16_t;
  static int64_t steps(int64_t K) { return (K + 1) / 2; }
  static int64_t block_values(int64_t K) { return (K + 1) / 2 * 2 * BLOCK; }
  __attribute__((target("avx512f"))) static void load(const uint16_t* wb, int64_t s, __m512& w0, __m512& w1) {
    w0 = _mm512_castsi512_ps(_mm512_loadu_si512(wb + s * 64));
    w1 = _mm512_castsi512_ps(_mm512_loadu_si512(wb + s * 64 + 32));
  }
  __attribute__((target("avx512f,avx512bf16"))) static void add(const __m512& w0, const __m512& w1, const uint16_t* x,
                                                               int64_t s, int64_t K, __m512& lo, __m512& hi) {
    int32_t both = 0;
    if (2 * s + 1 < K)
      std::memcpy(&both, x + 2 * s, sizeof both);
    else
      both = x[2 * s];  // an odd K's last input, its partner a zero (as the weights' padding is)
    const __m512bh xv = (__m512bh)_mm512_set1_epi32(both);
    lo = _mm512_dpbf16_ps(lo, (__m512bh)w0, xv);
    hi = _mm512_dpbf16_ps(hi, (__m512bh)w1, xv);
  }
};

// MB rows (stride K) against one block; y's rows have stride N.
template <typename F, int MB>
__attribute__((target("avx512f,avx512bf16"))) inline void block_rows(const typename F::W* wb, const typename F::X* x,
                                                                    int64_t K, int64_t N, float* y, const float* bias,
                                                                    int64_t nvalid) {
  __m512 lo[MB], hi[MB];
  for (int r = 0; r < MB; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
  const int64_t steps = F::steps(K);
  for (int64_t s = 0; s < steps; ++s) {
    __m512 w0, w1;
    F::load(wb, s, w0, w1);
    for (int r = 0; r < MB; ++r) F::add(w0, w1, x + r * K, s, K, lo[r], hi[r]);
  }
  for (int r = 0; r < MB; ++r) store_block(y + r * N, lo[r], hi[r], bias, nvalid);
}

// One row against one block: four interleaved sets of sums, so the multiply-adds' latency does not bound the read.
template <typename F>
__attribute__((target("avx512f,avx512bf16"))) inline void block_row(const typename F::W* wb, const typename F::X* x,
                                                                   int64_t K, float* y, const float* bias,
                                                                   int64_t nvalid) {
  __m512 lo[4], hi[4];
  for (int j = 0; j < 4; ++j) lo[j] = hi[j] = _mm512_setzero_ps();
  const int64_t steps = F::steps(K);
  int64_t s = 0;
  for (; s + 4 <= steps; s += 4)
    for (int j = 0; j < 4; ++j) {
      __m512 w0, w1;
      F::load(wb, s + j, w0, w1);
      F::add(w0, w1, x, s + j, K, lo[j], hi[j]);
    }
  for (; s < steps; ++s) {
    __m512 w0, w1;
    F::load(wb, s, w0, w1);
    F::add(w0, w1, x, s, K, lo[0], hi[0]);
  }
  store_block(y, _mm512_add_ps(_mm512_add_ps(lo[0], lo[1]), _mm512_add_ps(lo[2], lo[3])),
              _mm512_add_ps(_mm512_add_ps(hi[0], hi[1]), _mm512_add_ps(hi[2], hi[3])), bias, nvalid);
}

template <typename F>
inline void blocks(const typename F::W* w, const typename F::X* x, const float* bias, int64_t M, int64_t K, int64_t N,
                   int64_t b0, int64_t b1, float* y) {
  for (int64_t b = b0; b < b1; ++b) {
    const typename F::W* wb = w + b * F::block_values(K);
    const int64_t n = b * BLOCK, nvalid = std::min<int64_t>(BLOCK, N - n);
    const float* bb = bias ? bias + n : nullptr;
    if (M == 1) {
      block_row<F>(wb, x, K, y + n, bb, nvalid);
      continue;
    }
    int64_t m = 0;
    for (; m + 8 <= M; m += 8) block_rows<F, 8>(wb, x + m * K, K, N, y + m * N + n, bb, nvalid);
    const typename F::X* xm = x + m * K;
    float* ym = y + m * N + n;
    switch (M - m) {  // the last 1-7 rows in one pass over the block
      case 7: block_rows<F, 7>(wb, xm, K, N, ym, bb, nvalid); break;
      case 6: block_rows<F, 6>(wb, xm, K, N, ym, bb, nvalid); break;
      case 5: block_rows<F, 5>(wb, xm, K, N, ym, bb, nvalid); break;
      case 4: block_rows<F, 4>(wb, xm, K, N, ym, bb, nvalid); break;
      case 3: block_rows<F, 3>(wb, xm, K, N, ym, bb, nvalid); break;
      case 2: block_rows<F, 2>(wb, xm, K, N, ym, bb, nvalid); break;
      case 1: block_rows<F, 1>(wb, xm, K, N, ym, bb, nvalid); break;
      default: break;
    }
  }
}
#endif

// Checks the arguments and runs F over the blocks.
template <typename F>
torch::Tensor rows(torch::Tensor x, torch::Tensor w, int64_t N, torch::Tensor bias, torch::ScalarType dtype,
                   const char* name, const char* layout) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == dtype && x.is_contiguous(), "x must be (M, K) ", name, ", contiguous");
  const int64_t M = x.size(0), K = x.size(1);
  const int64_t count = (N + BLOCK - 1) / BLOCK;
#if defined(__x86_64__) && defined(__GNUC__)
  const int64_t block_values = F::block_values(K);
#else
  const int64_t block_values = 0;
#endif
  TORCH_CHECK(N > 0 && w.scalar_type() == dtype && w.is_contiguous() && w.numel() == count * block_values,
              "w must hold the ", layout, " layout of an (", N, ", ", K, ") ", name, " weight: ",
              count * block_values, " contiguous values; got ", w.numel());
  const float* bias_ptr = bias_pointer(bias, N);
  auto y = torch::empty({M, N}, x.options().dtype(torch::kFloat32));
#if defined(__x86_64__) && defined(__GNUC__)
  const auto* wp = reinterpret_cast<const typename F::W*>(w.data_ptr());
  const auto* xp = reinterpret_cast<const typename F::X*>(x.data_ptr());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, count, 1, [&](int64_t b0, int64_t b1) { blocks<F>(wp, xp, bias_ptr, M, K, N, b0, b1, yp); });
#endif
  return y;
}

}  // namespace packed

bool fp32_blocks_supported() { return packed::has_avx512(); }
bool bf16_pairs_supported() { return packed::has_avx512_bf16(); }

// x (M, K) fp32, contiguous; w the blocks layout of an (N, K) fp32 weight (ceil(N / 32) * K * 32 values); bias (N,)
// fp32 or empty. Returns (M, N) fp32: x @ weight.T + bias.
torch::Tensor fp32_blocks_rows(torch::Tensor x, torch::Tensor w, int64_t N, torch::Tensor bias) {
  TORCH_CHECK(packed::has_avx512(), "fp32_blocks_rows needs a CPU with AVX-512");
  return packed::rows<packed::Blocks>(x, w, N, bias, torch::kFloat32, "fp32", "blocks");
}

// x (M, K) bf16, contiguous; w the pairs layout of an (N, K) bf16 weight (ceil(N / 32) * ceil(K / 2) * 64 values);
// bias (N,) fp32 or empty. Returns (M, N) fp32: x @ weight.T + bias.
torch::Tensor bf16_pairs_rows(torch::Tensor x, torch::Tensor w, int64_t N, torch::Tensor bias) {
  TORCH_CHECK(packed::has_avx512_bf16(), "bf16_pairs_rows needs a CPU with AVX-512 BF16");
  return packed::rows<packed::Pairs>(x, w, N, bias, torch::kBFloat16, "bf16", "pairs");
}

}  // namespace tongues
