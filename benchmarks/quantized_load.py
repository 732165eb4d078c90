"""Peak memory of an int8/int4 load (quantised while reading the checkpoint), and quantiser block timing.

    python benchmarks/quantized_load.py [--shape bloom-560m|test] [--methods int8,int4] [--dir DIR]

Writes a random-weight fp32 BLOOM checkpoint with tongues (once, into --dir), then loads it with
each method in a fresh subprocess and prints: the RSS growth of `from_pretrained` (VmHWM after it
minus VmRSS before it, VmHWM reset through /proc/self/clear_refs), the bytes of the loaded model's
parameters and buffers ("quantised weights"), the largest checkpoint tensor, issue 14's bound
(1.15 x quantised weights + largest tensor) and the load time. Then times int8 quantisation of a
4096 x 1024 matrix at several block sizes (best of 5). Results: docs/performance.md.

Not a test: pytest does not collect this folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = {
    "bloom-560m": dict(vocab_size=250880, hidden_size=1024, n_layer=24, n_head=16),
    "test": dict(vocab_size=8192, hidden_size=512, n_layer=4, n_head=8),
}

WORKER = r"""
import gc, json, os, sys, time
import torch
from tongues import BloomForCausalLM
from tongues.checkpoint.io import SafetensorsFile
import tongues.fast, tongues.generation, tongues.quantization

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))

path, method = sys.argv[1], sys.argv[2]
gc.collect()
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
start = time.perf_counter()
model = BloomForCausalLM.from_pretrained(path, quantization=method)
seconds = time.perf_counter() - start
peak = status("VmHWM")
seen, weights = set(), 0
for tensor in [*model.parameters(), *model.buffers()]:
    if tensor.data_ptr() not in seen:
        seen.add(tensor.data_ptr())
        weights += tensor.numel() * tensor.element_size()
entries = SafetensorsFile(os.path.join(path, "model.safetensors")).entries.values()
largest = max(end - begin for _, _, begin, end in entries)
print(json.dumps(dict(grown=peak - before, before=before, weights=weights, largest=largest, seconds=seconds)))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="bloom-560m")
    parser.add_argument("--methods", default="int8,int4")
    parser.add_argument("--dir", default=os.path.expanduser("~/.cache/tongues-bench/quantized-load"))
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    sys.path.insert(0, ROOT)
    import time

    import torch

    from tongues import BloomConfig, BloomForCausalLM

    path = os.path.join(args.dir, args.shape)
    if not os.path.exists(os.path.join(path, "model.safetensors")):
        torch.manual_seed(0)
        BloomForCausalLM.from_config(BloomConfig(**SHAPES[args.shape])).save_pretrained(path)
    mib = 2**20
    print("| method | quantised weights (MiB) | largest tensor (MiB) | bound (MiB) | grown (MiB) | load (s) |")
    print("|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        run = subprocess.run([sys.executable, "-c", WORKER, path, method], capture_output=True, text=True, env=env)
        if run.returncode:
            sys.exit(run.stderr)
        r = json.loads(run.stdout.strip().splitlines()[-1])
        bound = 1.15 * r["weights"] + r["largest"]
        print(f"| {method} | {r['weights'] / mib:.1f} | {r['largest'] / mib:.1f} | {bound / mib:.1f} | "
              f"{r['grown'] / mib:.1f} | {r['seconds']:.2f} |")

    import tongues.fast.quantized as quantized

    weight = torch.randn(4096, 1024)
    for elements in (1 << 19, 1 << 20, 1 << 21, 1 << 22):
        quantized.QUANTIZE_BLOCK_ELEMENTS = elements
        times = []
        for _ in range(5):
            start = time.perf_counter()
            quantized.quantize_int8(weight)
            times.append(time.perf_counter() - start)
        print(f"int8 quantisation of 4096 x 1024 in blocks of {elements} elements: {min(times):.3f} s (best of 5)")


if __name__ == "__main__":
    main()
