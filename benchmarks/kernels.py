"""Microbenchmark of tongues.kernels on BLOOM-560m's matrix shapes: GB/s of weights read per product.

    python benchmarks/kernels.py [--rows 1,2,4,8,16] [--formats fp32,bf16,fp16,int8,int4] [--blocks 8]
                                 [--repeats 7] [--no-head] [--json out.json]
    python benchmarks/kernels.py --quality [--model DIR] [--max-blocks 200]
    python benchmarks/kernels.py --per-core

Shapes: the four matrices of a BLOOM-560m block (query_key_value 3072x1024, dense 1024x1024,
dense_h_to_4h 4096x1024, dense_4h_to_h 1024x4096), ``--blocks`` distinct copies so the set is far
larger than the L3 cache, multiplied one after the other as a decode step does; and the LM head
(250880x1024) on its own. GB/s = bytes of weight data read (int8: with its scales; int4: with its
fp16 scale/offset pairs) / the best time of ``--repeats``. "% bw" divides by the read bandwidth
measured in the same process (sum of a 1 GiB fp32 tensor, best of ``--repeats``), measured right
before each format. Baselines, same weights and rows: torch's ``F.linear`` on the weight in that
dtype (int8: torch's ``_weight_int8pack_mm``, int4: ``_weight_int4pack_mm_for_cpu`` with group 32,
both on bf16 activations, today's tongues.quantization kernels), and ``tongues.fast.kernels.decode_linear``
for fp32/bf16/fp16 when it exists. 
``--per-core`` measures what the load of other processes distorts least: the compute rate of one
core (the calling-thread build, one thread) on a 512x1024 weight that stays in the L2 cache, timed
in CPU seconds of the process (``time.process_time``), not wall seconds. A format whose rate per
core is well above bandwidth / (bytes a weight x cores) is memory-bound, below it compute-bound.

``--quality`` instead measures what the formats cost in accuracy on a trained model (by default
the embedded demonstration model, on the held-out UDHR slice that benchmarks/quantization_quality.py
uses): every linear layer converted with ``tongues.kernels.replace_linears``, the share of positions
whose argmax equals fp32's, the held-out perplexity and the logits' relative error, for int8 and
int4 with groups of 32 and 64. Not a test: pytest does not collect this folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tongues import kernels  # noqa: E402

BLOCK_SHAPES = [(3072, 1024), (1024, 1024), (4096, 1024), (1024, 4096)]  # (out, in) of a BLOOM-560m block
HEAD_SHAPE = (250880, 1024)


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (and the first-use compile)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def read_bandwidth(repeats: int) -> float:
    """GB/s of a sum over a 1 GiB fp32 tensor, best of ``repeats``."""
    data = torch.ones(1 << 28)
    seconds = best_time(lambda: data.sum(), repeats)
    del data
    return (1 << 30) / seconds / 1e9


def torch_baseline(fmt: str, linear: nn.Linear):
    """torch's own product for the format, as ``f(x)``, and the bytes of weight it reads."""
    weight = linear.weight.detach()
    if fmt in ("fp32", "bf16", "fp16"):
        w = weight.to(kernels.linear.dense.DTYPES[fmt])
        return (lambda x: F.linear(x.to(w.dtype), w)), w.numel() * w.element_size()
    if fmt == "int8":
        q, scale = kernels.pack_int8(weight)
        scale16 = scale.to(torch.bfloat16)
        return (lambda x: torch.ops.aten._weight_int8pack_mm(x.to(torch.bfloat16), q, scale16)), q.numel() + 2 * scale.numel()
    from tongues.quantization import quantize_int4

    packed, params = quantize_int4(weight, 32)
    return (lambda x: torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16), packed, 32, params)), \
        packed.numel() * packed.element_size() + params.numel() * 2


def fast_baseline(fmt: str, linear: nn.Linear):
    """The path tongues.fast takes where the compiled kernel does not: oneDNN for fp32, the widened fp32
    slices + BLAS for bf16/fp16 and int8 (``upcast_linear``); None for int4."""
    from tongues.fast.kernels import fp32_linear, upcast_linear

    if fmt == "fp32":
        w = linear.weight.detach()
        return lambda x: fp32_linear(x, w)
    if fmt in ("bf16", "fp16"):
        w = linear.weight.detach().to(kernels.linear.dense.DTYPES[fmt])
        return lambda x: upcast_linear(x, w)
    if fmt == "int8":
        q, scale = kernels.pack_int8(linear.weight.detach())
        return lambda x: upcast_linear(x, q, None, scale)
    return None


def step_ab(opts) -> int:
    """A real batch-1 decode step of a BLOOM-560m-shaped model, A/B interleaved in one process."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from decode_step import build

    from tongues.fast import decode_threads
    from tongues.fast import kernels as fast_kernels
    from tongues.slot_cache import SlotCache, forward_step

    torch.set_num_threads(opts.threads)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"commit {commit}, torch threads {torch.get_num_threads()}, NUMBA_THREADING_LAYER="
          f"{os.environ.get('NUMBA_THREADING_LAYER', '(tongues default)')}, GOMP_SPINCOUNT="
          f"{os.environ.get('GOMP_SPINCOUNT', '(libgomp default)')}, load {os.getloadavg()}")
    print("| format | rows | variant | step ms | GB/s of weights | % bw | bw GB/s | load |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt in opts.formats.split(","):
        if fmt == "int8":
            from tongues.quantization import quantize_model

            model = quantize_model(build("bloom", torch.float32), "int8").prepare_for_decode()
        else:
            model = build("bloom", {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[fmt])
        seen, wbytes = set(), 0  # bytes of the weights one step reads: every linear layer once, LM head included
        for module in model.modules():
            for name in ("weight", "qweight", "scale", "scales_and_zeros"):
                t = getattr(module, name, None) if hasattr(module, "kernel") else None
                if isinstance(t, torch.Tensor) and t.data_ptr() not in seen:
                    seen.add(t.data_ptr())
                    wbytes += t.numel() * t.element_size()
        routing = dict(fast_kernels.COMPILED_ROWS)
        for rows in [int(r) for r in opts.rows.split(",")]:
            prompt = torch.randint(4, 250000, (rows, 64), generator=torch.Generator().manual_seed(0))
            cache = SlotCache(slots=rows, capacity=64 + opts.steps + 2)
            view = cache.view(0, rows)

            def run(variant: str) -> float:
                fast_kernels.COMPILED_ROWS.clear()
                fast_kernels.COMPILED_ROWS.update(routing)
                if variant == "session 3 routing":  # one row on torch's kernels, as routed before session 4
                    for dtype in fast_kernels.COMPILED_ROWS:
                        fast_kernels.COMPILED_ROWS[dtype] = (2, 16) if dtype != torch.float32 else (1, 0)
                    fast_kernels.COMPILED_ROWS[torch.int8] = (1, 0)
                threads = decode_threads(model, rows) if variant == "decode_threads" else contextlib.nullcontext()
                view.crop(64)
                token, best = torch.full((rows, 1), 5), float("inf")
                with threads:
                    for _ in range(opts.steps):
                        start = time.perf_counter()
                        logits = forward_step(model, token, view)
                        token = logits.float().argmax(-1, keepdim=True)
                        best = min(best, time.perf_counter() - start)
                return best

            variants = ["decode_threads", "torch threads as set", "session 3 routing"]
            with torch.inference_mode():
                forward_step(model, prompt, view)
                for v in variants:
                    run(v)
                best = {v: float("inf") for v in variants}
                for _ in range(opts.repeats):
                    for v in variants:
                        best[v] = min(best[v], run(v))
            fast_kernels.COMPILED_ROWS.clear()
            fast_kernels.COMPILED_ROWS.update(routing)
            bandwidth = read_bandwidth(opts.repeats)
            for v in variants:
                gbs = wbytes / best[v] / 1e9
                print(f"| {fmt} | {rows} | {v} | {1e3 * best[v]:.1f} | {gbs:.1f} | {100 * gbs / bandwidth:.0f} % | "
                      f"{bandwidth:.1f} | {os.getloadavg()[0]:.1f} |", flush=True)
        del model
    return 0


def run_set(layers, inputs_by_rows, repeats):
    """Best seconds for one pass over ``layers`` (callables) for each row count."""
    times = {}
    for rows, x in inputs_by_rows.items():
        def step():
            for layer in layers:
                layer(x[layer.in_features] if hasattr(layer, "in_features") else x[layer.k])
        times[rows] = best_time(step, repeats)
    return times


class Bound:
    """A callable that remembers its input width (the block set mixes 1024- and 4096-wide inputs)."""

    def __init__(self, fn, k):
        self.fn, self.k = fn, k

    def __call__(self, x):
        return self.fn(x)


def per_core(opts) -> int:
    """G weights per CPU-second of one core, in cache, for each format and row count."""
    import numpy as np

    from tongues.kernels import dense, int4

    torch.manual_seed(0)
    N, K = 512, 1024
    weight = torch.randn(N, K)
    dense_arrays = {"fp32": weight, "bf16": weight.bfloat16(), "fp16": weight.half(), "int8": kernels.pack_int8(weight)[0]}
    empty = dense._EMPTY

    def cpu_best(fn) -> float:
        fn()
        best = float("inf")
        for _ in range(opts.repeats):
            start = time.process_time()
            for _ in range(50):
                fn()
            best = min(best, (time.process_time() - start) / 50)
        return best

    print(f"per core, in cache ({N}x{K}), CPU time, best of {opts.repeats}; load average {os.getloadavg()}")
    print("| rows | " + " | ".join(list(dense_arrays) + ["int4 g32", "int4 g64"]) + " |")
    print("|---|" + "---|" * (len(dense_arrays) + 2))
    for rows in [int(r) for r in opts.rows.split(",")]:
        x = np.random.randn(rows, K).astype(np.float32)
        out = np.empty((rows, N), dtype=np.float32)
        rates = []
        for w in dense_arrays.values():
            view = dense.kernel_view(w)
            rates.append(N * K / cpu_best(lambda: dense.rows_kernel.serial(view, x, empty, empty, out)) / 1e9)
        for group_size in (32, 64):
            packed, params = kernels.pack_int4(weight, group_size)
            packed_np, params_np = packed.numpy(), params.view(torch.int16).numpy()
            xsum = x.reshape(rows, -1, group_size).sum(-1)
            scratch = np.empty((1, K), dtype=np.float32)
            rates.append(N * K / cpu_best(lambda: int4.int4_kernel.serial(packed_np, params_np, x, xsum, empty, scratch, out)) / 1e9)
        print(f"| {rows} | " + " | ".join(f"{r:.1f}" for r in rates) + " |", flush=True)
    return 0


def quality(opts) -> int:
    """Argmax agreement with fp32, perplexity and logit error of each format on a trained model."""
    import math

    from tongues.assets import default_model_path
    from tongues.auto import AutoModelForCausalLM
    from tongues.tokenization import AutoTokenizer
    from tongues.training import read_documents, split_held_out, tokenize_and_pack

    path = opts.model or str(default_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    _, held = split_held_out(read_documents(sorted((ROOT / "tests" / "data" / "udhr").glob("*.txt"))), 0.1)
    blocks = tokenize_and_pack(held, tokenizer, 128)[: opts.max_blocks]

    def logits_of(fmt, group_size=None, head_format=None):
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        if fmt is not None:
            kernels.replace_linears(model, fmt, group_size or kernels.DEFAULT_GROUP_SIZE, head_format=head_format)
        with torch.inference_mode():
            return torch.cat([model(blocks[i:i + 16]).logits.float() for i in range(0, len(blocks), 16)])

    def perplexity(logits):
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), blocks[:, 1:].flatten())
        return math.exp(loss.item())

    reference = logits_of(None)
    print(f"{path}: {len(blocks)} held-out blocks of 128 tokens ({reference.shape[0] * reference.shape[1]} positions); "
          f"fp32 perplexity {perplexity(reference):.2f}")
    print("| format | argmax agrees with fp32 | perplexity | logits' relative error |")
    print("|---|---|---|---|")
    results = []
    setups = [("bf16", None, None), ("fp16", None, None), ("int8", None, None), ("int4", 32, None), ("int4", 64, None),
              ("int4", 32, "int8"), ("int4", 64, "int8")]
    for fmt, group_size, head_format in setups:
        logits = logits_of(fmt, group_size, head_format)
        agree = (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()
        error = ((logits - reference).norm() / reference.norm()).item()
        name = fmt if group_size is None else f"{fmt} g{group_size}" + (f", {head_format} head" if head_format else "")
        results.append({"format": name, "argmax_agreement": agree, "perplexity": perplexity(logits), "relative_error": error})
        print(f"| {name} | {100 * agree:.2f} % | {results[-1]['perplexity']:.2f} | {error:.4f} |", flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps({"model": path, "results": results}, indent=1))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1,2,4,8,16")
    parser.add_argument("--formats", default="fp32,bf16,fp16,int8,int4")
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--group-size", type=int, default=kernels.DEFAULT_GROUP_SIZE)
    parser.add_argument("--no-head", action="store_true")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--quality", action="store_true", help="accuracy of each format on a trained model instead of speed")
    parser.add_argument("--model", default=None, help="--quality: a checkpoint folder (default: the embedded model)")
    parser.add_argument("--max-blocks", type=int, default=200, help="--quality: held-out blocks of 128 tokens")
    parser.add_argument("--per-core", action="store_true", help="compute rate of one core in cache, in CPU time")
    parser.add_argument("--step", action="store_true",
                        help="a real BLOOM-560m-shaped decode step: decode_threads / none / session-3 routing, interleaved")
    parser.add_argument("--steps", type=int, default=6, help="--step: decode steps per timed run")
    parser.add_argument("--threads", type=int, default=2, help="--step: torch.set_num_threads")
    opts = parser.parse_args(argv)
    if opts.step:
        return step_ab(opts)
    if opts.per_core:
        return per_core(opts)
    if opts.quality:
        return quality(opts)
    torch.manual_seed(0)
    row_counts = [int(r) for r in opts.rows.split(",")]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, load average {os.getloadavg()}, commit {commit}")
    print(f"kernels: {kernels.describe()}")
    xs = {rows: {k: torch.randn(rows, k) for k in (1024, 4096)} for rows in row_counts}
    shapes = [("blocks", [s for _ in range(opts.blocks) for s in BLOCK_SHAPES])]
    if not opts.no_head:
        shapes.append(("head", [HEAD_SHAPE]))
    results = []
    header = "| shape | format | rows | tongues.kernels GB/s | % bw | G weights/s | torch GB/s | x torch | x slices | bw GB/s |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    with torch.inference_mode():
        for fmt in opts.formats.split(","):
            for shape_name, shape_list in shapes:
                linears = [nn.Linear(k, n, bias=False) for n, k in shape_list]
                ours = [kernels.KernelLinear.from_linear(lin, fmt, group_size=opts.group_size) for lin in linears]
                ours_bytes = sum(kernels.weight_bytes(layer) for layer in ours)
                weights = sum(lin.weight.numel() for lin in linears)
                theirs = fast = None
                if not opts.no_baselines:
                    pairs = [torch_baseline(fmt, lin) for lin in linears]
                    theirs = [Bound(fn, lin.in_features) for (fn, _), lin in zip(pairs, linears)]
                    theirs_bytes = sum(b for _, b in pairs)
                    fast_fns = [fast_baseline(fmt, lin) for lin in linears]
                    if fast_fns[0] is not None:
                        fast = [Bound(fn, lin.in_features) for fn, lin in zip(fast_fns, linears)]
                del linears
                bandwidth = read_bandwidth(opts.repeats)
                t_ours = run_set(ours, xs, opts.repeats)
                t_theirs = run_set(theirs, xs, opts.repeats) if theirs else {}
                t_fast = run_set(fast, xs, opts.repeats) if fast else {}
                for rows in row_counts:
                    gbs = ours_bytes / t_ours[rows] / 1e9
                    row = {"shape": shape_name, "format": fmt, "rows": rows, "gb_s": gbs, "pct_bw": 100 * gbs / bandwidth,
                           "gweights_s": weights / t_ours[rows] / 1e9, "bandwidth": bandwidth, "load": os.getloadavg()[0]}
                    if t_theirs:
                        row["torch_gb_s"] = theirs_bytes / t_theirs[rows] / 1e9
                        row["x_torch"] = t_theirs[rows] / t_ours[rows]
                    if t_fast:
                        row["x_fast"] = t_fast[rows] / t_ours[rows]
                    results.append(row)
                    print(f"| {shape_name} | {fmt} | {rows} | {gbs:.1f} | {row['pct_bw']:.0f} % | {row['gweights_s']:.1f} | "
                          f"{row.get('torch_gb_s', float('nan')):.1f} | {row.get('x_torch', float('nan')):.2f} | "
                          f"{row.get('x_fast', float('nan')):.2f} | {bandwidth:.1f} |", flush=True)
                del ours, theirs, fast
    print(f"load average at the end: {os.getloadavg()}")
    if opts.json:
        Path(opts.json).write_text(json.dumps({"commit": commit, "describe": kernels.describe(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
