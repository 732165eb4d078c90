"""Side-by-side CPU benchmark: tongues vs the reference (transformers) on random-weight checkpoints.

    python benchmarks/run.py [--quick] [--models bloom,xglm,glm] [--dtypes fp32,bf16,int8,int4]

Each (implementation, model, dtype) runs in its own subprocess, so import time and peak RSS are
clean. Checkpoints are fp32 safetensors written once by the reference into --cache-dir (random
weights, fixed seed), and every measurement loads them with a dtype cast (fp32 -> bf16 is the
"loaded as bf16" case). Printed per run: import time, load time, peak RSS after load, prefill
tok/s (512 tokens, batch 1), decode tok/s at batch 1 and 8 (128-token prompt -> 128 new tokens,
greedy, EOS suppressed; decode steps timed by a streamer, prefill excluded), the measured read
bandwidth (once at the start, and again inside each worker right before it decodes: this VM's
bandwidth drifts), and each decode rate as a fraction of its roofline (the worker's bandwidth /
bytes read per step).
For int8/int4 the argmax agreement with fp32 over every prompt position is printed as well.

Not a test: pytest does not collect this folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT_SEED = 1234

# The shapes of the public checkpoints (config fields as the reference names them), vocabularies included.
SHAPES = {
    "bloom": dict(
        module="tongues.models.bloom", ref_class="BloomForCausalLM", ref_config="BloomConfig",
        config=dict(hidden_size=1024, n_layer=24, n_head=16, vocab_size=250880, bos_token_id=1, eos_token_id=2,
                    pad_token_id=3),
    ),
    "xglm": dict(
        module="tongues.models.xglm", ref_class="XGLMForCausalLM", ref_config="XGLMConfig",
        config=dict(d_model=1024, num_layers=24, attention_heads=16, ffn_dim=4096, vocab_size=256008,
                    max_position_embeddings=2048, bos_token_id=0, eos_token_id=2, pad_token_id=1),
    ),
    "glm": dict(
        module="tongues.models.glm", ref_class="GlmForCausalLM", ref_config="GlmConfig",
        config=dict(hidden_size=1024, num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=2,
                    head_dim=64, intermediate_size=3072, vocab_size=151552, max_position_embeddings=4096,
                    tie_word_embeddings=False, bos_token_id=None, eos_token_id=151329, pad_token_id=151329),
    ),
}
TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "int8": "float32", "int4": "bfloat16"}


def family_available(model: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(SHAPES[model]["module"]) is not None


def make_checkpoint(model: str, cache_dir: str) -> str:
    """Write the random-weight fp32 checkpoint with the reference (once, in a subprocess so that the
    driver stays small)."""
    path = os.path.join(cache_dir, f"{model}-random")
    if not os.path.exists(os.path.join(path, "config.json")):
        subprocess.run([sys.executable, os.path.abspath(__file__), "--make-checkpoint", model, "--cache-dir", cache_dir],
                       check=True)
    return path


def write_checkpoint(model: str, path: str) -> None:
    import torch
    import transformers

    torch.manual_seed(0)
    spec = SHAPES[model]
    config = getattr(transformers, spec["ref_config"])(**spec["config"])
    ref = getattr(transformers, spec["ref_class"])(config).eval()
    ref.save_pretrained(path + ".tmp")
    os.replace(path + ".tmp", path)


# -- the measurement (runs in a subprocess) -----------------------------------------------------
def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss
    across fork + exec, so a worker started by a driver that had just written a 2 GB checkpoint would
    report the driver's peak as its own."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_bandwidth_gbs() -> float:
    """Best of several full reads of a 512 MiB buffer (a sum: one load per element, no stores)."""
    import torch

    buf = torch.ones(128 * 1024 * 1024)
    best = float("inf")
    for _ in range(8):
        t = time.perf_counter()
        buf.sum()
        best = min(best, time.perf_counter() - t)
    return buf.numel() * 4 / best / 1e9


def decode_bytes(model) -> int:
    """Bytes read per decode step: every parameter/buffer once, except input embedding tables
    (a lookup reads one row), plus the LM head even when it is tied to them."""
    import torch

    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    head_ids = set()
    if head is not None:
        head_ids = {id(t) for t in list(head.parameters()) + list(head.buffers())}
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) in seen or (id(t) in embeddings and id(t) not in head_ids):
            continue
        seen.add(id(t))
        total += t.numel() * t.element_size()
    return total


def worker(args) -> dict:
    t0 = time.perf_counter()
    if args.impl == "tongues":
        import tongues  # noqa: F401

        t_pkg = time.perf_counter() - t0
        import importlib

        cls = getattr(importlib.import_module(SHAPES[args.model]["module"]), SHAPES[args.model]["ref_class"])
    else:
        import transformers

        t_pkg = time.perf_counter() - t0
        cls = getattr(transformers, SHAPES[args.model]["ref_class"])
    t_import = time.perf_counter() - t0
    import torch

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, TORCH_DTYPES[args.dtype])
    rss_before = peak_rss_mib()
    t = time.perf_counter()
    kwargs = {"quantization": args.dtype} if args.dtype in ("int8", "int4") else {}
    model = cls.from_pretrained(args.checkpoint, dtype=dtype, **kwargs).eval()
    t_load = time.perf_counter() - t
    rss_load = peak_rss_mib()
    result = dict(impl=args.impl, model=args.model, dtype=args.dtype, import_pkg_s=t_pkg, import_s=t_import,
                  load_s=t_load, peak_rss_load_mib=rss_load, rss_before_load_mib=rss_before,
                  weights_mib=decode_bytes(model) / 2**20, threads=torch.get_num_threads())
    if args.impl == "tongues" and hasattr(model, "_prepare_fast_decode"):
        model._prepare_fast_decode()
    elif args.impl == "tongues":
        from tongues.fast import prepare_for_decode

        prepare_for_decode(model)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(PROMPT_SEED)
    prompt512 = torch.randint(4, min(vocab, 200000), (1, args.prefill), generator=gen)
    prompt128 = torch.randint(4, min(vocab, 200000), (8, args.prompt), generator=gen)

    with torch.inference_mode():
        model(prompt512[:, :32], use_cache=False)  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            logits = model(prompt512, use_cache=False).logits
            times.append(time.perf_counter() - t)
        result["prefill_tok_s"] = args.prefill / min(times)
        result["argmax"] = logits[0].argmax(-1).tolist()

        class StepClock:
            """A streamer that only notes when each step's tokens arrive (the first call is the prompt)."""

            def __init__(self):
                self.times = []

            def put(self, ids):
                self.times.append(time.perf_counter())

            def end(self):
                pass

        # This VM's bandwidth drifts (24-37 GB/s over minutes: other guests share the host), so each
        # worker measures its own, right before decoding, and its roofline uses that figure.
        result["bandwidth_gbs"] = read_bandwidth_gbs()
        for batch in (1, 8):
            ids = prompt128[:batch]
            clock = StepClock()
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new,
                                 min_new_tokens=args.new, do_sample=False, pad_token_id=model.config.pad_token_id,
                                 streamer=clock)
            steps = clock.times[2:]  # after the prompt and the first new token (the prefill's)
            result[f"decode_b{batch}_tok_s"] = batch * (len(steps) - 1) / (steps[-1] - steps[0])
            if batch == 1:
                result["greedy_b1"] = out[0, ids.shape[1]:].tolist()
    result["peak_rss_mib"] = peak_rss_mib()
    return result


# -- the driver ----------------------------------------------------------------------------------
def run_one(impl, model, dtype, checkpoint, opts) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--impl", impl, "--model", model, "--dtype", dtype,
           "--checkpoint", checkpoint, "--threads", str(opts.threads), "--prompt", str(opts.prompt),
           "--new", str(opts.new), "--prefill", str(opts.prefill), "--repeats", str(opts.repeats)]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode:
        print(f"  {impl} {model} {dtype}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short prompts and 16 new tokens: a smoke run")
    parser.add_argument("--models", default="bloom,xglm,glm")
    parser.add_argument("--dtypes", default="fp32,bf16,int8,int4")
    parser.add_argument("--impls", default="reference,tongues")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--cache-dir", default=os.path.expanduser("~/.cache/tongues-bench"))
    parser.add_argument("--json", help="also write every result to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--make-checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--prompt", type=int, default=128, help="decode prompt length (default 128)")
    parser.add_argument("--new", type=int, default=128, help="new tokens per decode run (default 128)")
    parser.add_argument("--prefill", type=int, default=512, help="prefill length (default 512)")
    parser.add_argument("--repeats", type=int, default=3, help="prefill repeats, best kept (default 3)")
    opts = parser.parse_args()
    if opts.worker:
        print(json.dumps(worker(opts)))
        return
    if opts.make_checkpoint:
        write_checkpoint(opts.make_checkpoint, os.path.join(opts.cache_dir, f"{opts.make_checkpoint}-random"))
        return
    if opts.quick:
        opts.prompt, opts.new, opts.prefill, opts.repeats = 32, 16, 128, 1

    models = [m for m in opts.models.split(",") if m in SHAPES and family_available(m)]
    bandwidth = float(subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, %r); import torch; torch.set_num_threads(%d); "
         "from benchmarks.run import read_bandwidth_gbs; print(read_bandwidth_gbs())" % (ROOT, opts.threads)],
        capture_output=True, text=True, check=True).stdout)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cpus, threads={opts.threads}, commit {commit} (+ working tree)")
    print(f"read bandwidth: {bandwidth:.1f} GB/s  prompt={opts.prompt} new={opts.new} prefill={opts.prefill}")
    results = []
    for model in models:
        checkpoint = make_checkpoint(model, opts.cache_dir)
        fp32_argmax = {}
        for dtype in opts.dtypes.split(","):
            for impl in opts.impls.split(","):
                if impl == "reference" and dtype in ("int8", "int4"):
                    continue  # the reference has no CPU weight-only quantisation without extra packages
                r = run_one(impl, model, dtype, checkpoint, opts)
                if r is None:
                    continue
                roof = r["bandwidth_gbs"] * 1e9 / (r["weights_mib"] * 2**20)
                r["roofline_b1_tok_s"] = roof
                if dtype == "fp32":
                    fp32_argmax[impl] = (r["argmax"], r["greedy_b1"])
                base = fp32_argmax.get(impl) or fp32_argmax.get("reference")
                if base is not None:
                    r["argmax_agreement_vs_fp32"] = sum(a == b for a, b in zip(r["argmax"], base[0])) / len(base[0])
                    r["greedy_identical_vs_fp32"] = r["greedy_b1"] == base[1]
                if impl == "tongues" and dtype == "fp32" and "reference" in fp32_argmax:
                    r["greedy_identical_vs_reference"] = r["greedy_b1"] == fp32_argmax["reference"][1]
                results.append(r)
                print(format_row(r), flush=True)
    print_ratios(results)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(dict(bandwidth_gbs=bandwidth, commit=commit, threads=opts.threads, results=results), f, indent=1)


def format_row(r: dict) -> str:
    extra = ""
    if "argmax_agreement_vs_fp32" in r and r["dtype"] != "fp32":
        extra = f"  argmax-agree {100 * r['argmax_agreement_vs_fp32']:.1f}%"
    if "greedy_identical_vs_reference" in r:
        extra += f"  greedy==ref {r['greedy_identical_vs_reference']}"
    return (f"{r['model']:6} {r['dtype']:5} {r['impl']:9} import {r['import_pkg_s']:.2f}/{r['import_s']:.2f}s "
            f"load {r['load_s']:.2f}s rss {r['peak_rss_load_mib']:.0f}MiB (weights {r['weights_mib']:.0f}) "
            f"prefill {r['prefill_tok_s']:.0f} tok/s  bw {r['bandwidth_gbs']:.1f}GB/s  decode b1 {r['decode_b1_tok_s']:.2f} "
            f"({100 * r['decode_b1_tok_s'] / r['roofline_b1_tok_s']:.0f}% of roof {r['roofline_b1_tok_s']:.1f})  "
            f"b8 {r['decode_b8_tok_s']:.1f} ({100 * r['decode_b8_tok_s'] / (8 * r['roofline_b1_tok_s']):.0f}%){extra}")


def print_ratios(results: list[dict]) -> None:
    ref = {(r["model"], r["dtype"]): r for r in results if r["impl"] == "reference"}
    print("\nratios tongues / reference (same model; int8/int4 against the reference's bf16):")
    for r in results:
        if r["impl"] != "tongues":
            continue
        base = ref.get((r["model"], r["dtype"])) or ref.get((r["model"], "bf16"))
        if base is None:
            continue
        keys = ("prefill_tok_s", "decode_b1_tok_s", "decode_b8_tok_s")
        ratios = "  ".join(f"{k.replace('_tok_s', '')} x{r[k] / base[k]:.2f}" for k in keys)
        print(f"{r['model']:6} {r['dtype']:5} {ratios}  load x{base['load_s'] / r['load_s']:.2f} faster  "
              f"rss x{r['peak_rss_load_mib'] / base['peak_rss_load_mib']:.2f}")


if __name__ == "__main__":
    main()
