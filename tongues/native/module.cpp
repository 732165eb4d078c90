// The Python module of tongues' C++ CPU kernels: one translation unit (torch's headers compile once).
// tongues/native/__init__.py builds it with torch.utils.cpp_extension and loads it.

#include "argmax.h"
#include "packed_rows.h"
#include "decode_attention.h"
#include "dense_rows.h"
#include "int4_rows.h"
#include "int8_rows.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("argmax_rows", &tongues::argmax_rows, "torch.argmax(x, dim=-1) for (B, V) fp32 or bf16 x");
  m.def("decode_attention", &tongues::decode_attention, "softmax(q k^T * scale + bias) v for one query per row");
  m.def("bf16_pairs_rows", &tongues::bf16_pairs_rows, "x @ w.T + bias for bf16 x and a bf16 weight in the pairs layout");
  m.def("fp32_blocks_rows", &tongues::fp32_blocks_rows, "x @ w.T + bias for fp32 x and an fp32 weight in the blocks layout");
  m.def("fp32_blocks_supported", &tongues::fp32_blocks_supported, "whether this CPU runs fp32_blocks_rows (AVX-512)");
  m.def("bf16_pairs_supported", &tongues::bf16_pairs_supported, "whether this CPU runs bf16_pairs_rows (AVX-512 BF16)");
  m.def("dense_rows", &tongues::dense_rows, "x @ w.T + bias for fp32 or bf16 w and 1-16 rows, fp32 sums");
  m.def("int4_rows", &tongues::int4_rows, "x @ dequantised(w).T + bias for int4 w in torch's CPU layout and bf16 rows");
  m.def("int8_rows", &tongues::int8_rows, "x @ (q * scale[:, None]).T + bias for int8 q and 1-16 fp32 rows");
}
