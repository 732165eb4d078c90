"""tongues.native's C++ kernels against what they replace, on BLOOM-560m's shapes (outside the test suite).

    python benchmarks/native.py [--threads 2] [--repeats 7]

1. Decode attention: one query per row over 24 layers of distinct caches (capacity 256, so each layer's
   keys/values are strided views, as a SlotCache hands them), 16 heads of 64, an ALiBi bias with each
   row's unused columns masked: torch's ``scaled_dot_product_attention`` on the fp32 cache (the PyTorch
   path) against the kernel on the fp32 cache and on a bf16 cache. GB/s counts the keys and values read.
2. int8 weights (24 matrices of 4096 x 1024, and 24 of 1024 x 4096) times 1-16 rows: torch's
   ``_weight_int8pack_mm`` (bf16 activations) against ``int8_rows`` with fp32 and with bf16 activations.
   GB/s counts the int8 weights read.
3. Products of fp32, bf16 and int4 weights (12 layers of BLOOM-560m's four block matrices) times 1-128 rows:
   oneDNN (fp32 as stored, bf16 packed in its blocked layout) and torch's int4 kernel against tongues.native's
   packed layouts (fp32 blocks, bf16 pairs), ``dense_rows`` (plain weights, up to 4 rows) and ``int4_rows``.
   GB/s counts the weights read.
4. The argmax of 250,880 logits: ``torch.argmax`` against ``argmax_rows``.

Best of ``--repeats`` passes over all the layers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.kernels import best_time  # noqa: E402
from tongues import native  # noqa: E402


def attention(module, repeats: int) -> None:
    H, D, capacity, layers = 16, 64, 256, 24
    print("decode attention, 24 layers (ms; GB/s of keys and values)")
    print(f"{'rows x positions':>17} {'SDPA fp32':>16} {'native fp32':>16} {'native bf16':>16}")
    for rows, positions in ((1, 160), (8, 48), (8, 129), (16, 48), (16, 140)):
        keys = [torch.randn(rows, H, capacity, D) for _ in range(layers)]
        values = [torch.randn(rows, H, capacity, D) for _ in range(layers)]
        keys16 = [k.bfloat16() for k in keys]
        values16 = [v.bfloat16() for v in values]
        q = torch.randn(rows, H, 1, D)
        slopes = torch.rand(H)
        bias = (slopes[None, :, None, None] * torch.arange(positions)[None, None, None, :]).expand(rows, H, 1, positions)
        bias = bias.clone()
        bias[0, :, :, positions - 3:] = torch.finfo(torch.float32).min  # one row is 3 shorter
        q3, bias3 = q[:, :, 0].contiguous(), bias[:, :, 0]
        cells = []
        for name, run, width in (
            ("sdpa", lambda: [F.scaled_dot_product_attention(q, k[:, :, :positions], v[:, :, :positions],
                                                             attn_mask=bias, scale=D ** -0.5)
                              for k, v in zip(keys, values)], 4),
            ("fp32", lambda: [module.decode_attention(q3, k[:, :, :positions], v[:, :, :positions], bias3, D ** -0.5)
                              for k, v in zip(keys, values)], 4),
            ("bf16", lambda: [module.decode_attention(q3, k[:, :, :positions], v[:, :, :positions], bias3, D ** -0.5)
                              for k, v in zip(keys16, values16)], 2),
        ):
            seconds = best_time(run, repeats)
            gbs = rows * positions * H * D * 2 * width * layers / seconds / 1e9
            cells.append(f"{seconds * 1e3:6.2f} ({gbs:4.1f})")
        print(f"{rows:>8} x {positions:<6} " + " ".join(f"{c:>16}" for c in cells), flush=True)


def int8(module, repeats: int) -> None:
    print("\nint8 weights x rows, 24 matrices (ms; GB/s of int8 weights)")
    print(f"{'shape':>12} {'rows':>4} {'torch int8pack':>16} {'native fp32 x':>16} {'native bf16 x':>16}")
    for N, K in ((4096, 1024), (1024, 4096)):
        weights = [torch.randint(-127, 128, (N, K), dtype=torch.int8) for _ in range(24)]
        scale = torch.rand(N) / 100
        scale16, empty = scale.bfloat16(), torch.empty(0)
        nbytes = 24 * N * K
        for rows in (1, 2, 4, 8, 16):
            x = torch.randn(rows, K)
            x16 = x.bfloat16()
            cells = []
            for run in (lambda: [torch.ops.aten._weight_int8pack_mm(x16, w, scale16) for w in weights],
                        lambda: [module.int8_rows(x, w, scale, empty) for w in weights],
                        lambda: [module.int8_rows(x16, w, scale, empty) for w in weights]):
                seconds = best_time(run, repeats)
                cells.append(f"{seconds * 1e3:6.2f} ({nbytes / seconds / 1e9:4.1f})")
            print(f"{N:>5} x {K:<5} {rows:>4} " + " ".join(f"{c:>16}" for c in cells), flush=True)


def block_weights(dtype) -> list:
    """BLOOM-560m's four block matrices, 12 layers of them (151 M weights), in ``dtype``."""
    return [torch.randn(n, k).to(dtype) for _ in range(12) for n, k in ((3072, 1024), (1024, 1024), (4096, 1024),
                                                                        (1024, 4096))]


def products(module, repeats: int) -> None:
    from tongues.fast.packed import pack_blocks, pack_pairs
    from tongues.fast.quantized import quantize_int4

    print("\nproducts over 12 layers of BLOOM-560m's block matrices (ms; GB/s of weights read)")
    empty = torch.empty(0)
    for name in ("fp32", "bf16", "int4"):
        if name == "int4":
            if not module.bf16_pairs_supported():
                continue
            weights = [quantize_int4(w, 128) for w in block_weights(torch.float32)]
            nbytes = sum(q.numel() for q, _ in weights)
            width = [q.shape[1] * 2 for q, _ in weights]
            runs = {"torch int4pack": lambda xs: [torch.ops.aten._weight_int4pack_mm_for_cpu(xs[k], q, 128, sz)
                                                  for k, (q, sz) in zip(width, weights)],
                    "native int4_rows": lambda xs: [module.int4_rows(xs[k], q, 128, sz, empty)
                                                    for k, (q, sz) in zip(width, weights)]}
            xtype, most = torch.bfloat16, 16
        else:
            xtype = torch.float32 if name == "fp32" else torch.bfloat16
            weights = block_weights(xtype)
            nbytes = sum(w.numel() * w.element_size() for w in weights)
            width = [w.shape[1] for w in weights]
            most = 128
            # oneDNN as tongues would call it without its kernels (fp32 as stored, bf16 packed), then tongues.native's
            # packed layout for the dtype where this CPU runs it
            if name == "fp32":
                onednn, label, supported, pack, kernel = weights, "oneDNN", module.fp32_blocks_supported(), \
                    pack_blocks, "fp32_blocks_rows"
            else:
                onednn = [torch.ops.mkldnn._reorder_linear_weight(w, 16) for w in weights]
                label, supported, pack, kernel = "oneDNN packed", module.bf16_pairs_supported(), pack_pairs, \
                    "bf16_pairs_rows"
            runs = {label: lambda xs, onednn=onednn: [torch.ops.mkldnn._linear_pointwise(xs[k], p, None, "none", [], "")
                                                      for k, p in zip(width, onednn)]}
            if supported:
                packed = [pack(w) for w in weights]
                run_packed = getattr(module, kernel)
                runs[f"native {'blocks' if name == 'fp32' else 'pairs'}"] = lambda xs, packed=packed, run=run_packed: [
                    run(xs[k], p, w.shape[0], empty) for k, w, p in zip(width, weights, packed)]
            runs["native dense_rows"] = lambda xs: [module.dense_rows(xs[k], w, empty) for k, w in zip(width, weights)]
        print(f"{name:>5} {'rows':>4} " + " ".join(f"{label:>20}" for label in runs))
        for rows in (1, 2, 4, 8, 16, 128):
            if rows > most:
                continue
            xs = {k: torch.randn(rows, k).to(xtype) for k in (1024, 4096)}
            cells = []
            for label, run in runs.items():
                if label == "native dense_rows" and rows > 4:  # its tiles are for decoding's few rows
                    cells.append(f"{'-':>20}")
                    continue
                seconds = best_time(lambda: run(xs), repeats if rows < 128 else 2)
                cells.append(f"{seconds * 1e3:7.2f} ({nbytes / seconds / 1e9:5.1f})")
            print(f"{'':>5} {rows:>4} " + " ".join(f"{c:>20}" for c in cells), flush=True)


def argmax(module, repeats: int) -> None:
    print("\nargmax over 250,880 logits (BLOOM's vocabulary), one row (us)")
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(1, 250880).to(dtype)
        ours = best_time(lambda: [module.argmax_rows(x) for _ in range(100)], repeats) * 1e4
        theirs = best_time(lambda: [torch.argmax(x, dim=-1) for _ in range(100)], repeats) * 1e4
        print(f"{str(dtype).replace('torch.', ''):>9}: torch.argmax {theirs:7.1f}   native argmax_rows {ours:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    module = native.load()
    if module is None:
        sys.exit(f"tongues.native is not available here: {native.status()}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    isa = "avx512_bf16" if "avx512_bf16" in flags else "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "?"
    print(f"commit {commit}, {os.cpu_count()} cpus ({isa}), threads {args.threads}, load average {os.getloadavg()[0]:.1f}")
    attention(module, args.repeats)
    int8(module, args.repeats)
    products(module, args.repeats)
    argmax(module, args.repeats)


if __name__ == "__main__":
    main()
