"""Side-by-side CPU benchmark: tongues vs the reference (transformers) on random-weight checkpoints.

    python benchmarks/run.py [--quick] [--models bloom,xglm,glm] [--dtypes fp32,bf16,int8,int4]
                             [--batches 1,8] [--split-steps 16] [--peer llama.cpp] [--json out.json]

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

tongues rows also get the batch-1 step split of benchmarks/decode_step.py (the one place for that
logic), run on the loaded checkpoint: the fastest step, the step's weight products alone and the
rest with the products stubbed (``--split-steps 0`` skips it). ``--peer llama.cpp`` adds
llama.cpp (llama-cpp-python) rows for the shapes its converter takes (BLOOM): the same checkpoint
converted to GGUF f32 / bf16 / q8_0 / q4_0, decoded greedily with the same prompts, threads and
token counts (benchmarks/llama_cpp_peer.py). ``--prefill 0`` skips the prefill measurement.

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
if ROOT not in sys.path:  # ``python benchmarks/run.py`` from anywhere: ``benchmarks.llama_cpp_peer`` imports
    sys.path.insert(0, ROOT)
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


LAYER_FIELDS = {"bloom": "n_layer", "xglm": "num_layers", "glm": "num_hidden_layers"}


def checkpoint_path(model: str, cache_dir: str, layers: int | None = None) -> str:
    return os.path.join(cache_dir, f"{model}-random" + (f"-{layers}layers" if layers else ""))


def make_checkpoint(model: str, cache_dir: str, layers: int | None = None) -> str:
    """Write the random-weight fp32 checkpoint with the reference (once, in a subprocess so that the
    driver stays small). ``layers`` cuts the depth (smoke runs); the full shape otherwise."""
    path = checkpoint_path(model, cache_dir, layers)
    if not os.path.exists(os.path.join(path, "config.json")):
        subprocess.run([sys.executable, os.path.abspath(__file__), "--make-checkpoint", model, "--cache-dir", cache_dir]
                       + (["--layers", str(layers)] if layers else []), check=True)
    return path


def write_checkpoint(model: str, path: str, layers: int | None = None) -> None:
    import torch
    import transformers

    torch.manual_seed(0)
    spec = SHAPES[model]
    fields = dict(spec["config"], **({LAYER_FIELDS[model]: layers} if layers else {}))
    config = getattr(transformers, spec["ref_config"])(**fields)
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


def make_prompts(vocab: int, prefill: int, prompt: int):
    """The prefill prompt (1, prefill) and the decode prompts (8, prompt) every implementation gets."""
    import torch

    gen = torch.Generator().manual_seed(PROMPT_SEED)
    prompt512 = torch.randint(4, min(vocab, 200000), (1, max(prefill, 1)), generator=gen)
    prompt128 = torch.randint(4, min(vocab, 200000), (8, prompt), generator=gen)
    return prompt512[:, :prefill], prompt128


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
    if args.impl == "tongues":
        from tongues import native

        # as the serving engine does (a batched generate would too), before the layers are packed: "packed" then
        # uses tongues.native's layouts, and batch 1 gets its kernels as well
        native.load()
        result["native"] = native.status()
    if args.impl == "tongues" and hasattr(model, "_prepare_fast_decode"):
        model._prepare_fast_decode()
    elif args.impl == "tongues":
        from tongues.fast import prepare_for_decode

        prepare_for_decode(model, args.kernels)  # the CLI's choice, "packed", unless --kernels says otherwise
    prompt512, prompt128 = make_prompts(model.config.vocab_size, args.prefill, args.prompt)

    with torch.inference_mode():
        model(prompt128[:1, :32], use_cache=False)  # warm-up
        if args.prefill:
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
        for batch in args.batches:
            ids = prompt128[:batch]
            clock = StepClock()
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new,
                                 min_new_tokens=args.new, do_sample=False, pad_token_id=model.config.pad_token_id,
                                 streamer=clock)
            steps = clock.times[2:]  # after the prompt and the first new token (the prefill's)
            result[f"decode_b{batch}_tok_s"] = batch * (len(steps) - 1) / (steps[-1] - steps[0])
            if batch == 1:
                result["greedy_b1"] = out[0, ids.shape[1]:].tolist()
    if args.impl == "tongues" and args.split_steps:
        from benchmarks.decode_step import split_step

        result["split"] = split_step(model, args.prompt, args.split_steps, args.split_repeats)
    result["peak_rss_mib"] = peak_rss_mib()
    return result


# -- the driver ----------------------------------------------------------------------------------
def run_one(impl, model, dtype, checkpoint, opts) -> dict | None:
    common = ["--threads", str(opts.threads), "--prompt", str(opts.prompt), "--new", str(opts.new),
              "--prefill", str(opts.prefill), "--repeats", str(opts.repeats),
              "--batches", ",".join(map(str, opts.batches))]
    if impl == "llama.cpp":
        from benchmarks import llama_cpp_peer

        try:
            gguf = llama_cpp_peer.gguf_file(checkpoint, dtype, opts.cache_dir)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            print(f"  llama.cpp {model} {dtype}: conversion FAILED: {e}", file=sys.stderr)
            return None
        cmd = [sys.executable, llama_cpp_peer.__file__, "--gguf", gguf, "--model", model, "--dtype", dtype,
               "--cache-dir", opts.cache_dir] + common
    else:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--impl", impl, "--model", model, "--dtype", dtype,
               "--checkpoint", checkpoint, "--split-steps", str(opts.split_steps),
               "--split-repeats", str(opts.split_repeats), "--kernels", opts.kernels] + common
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode:
        print(f"  {impl} {model} {dtype}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1 or max(values) > 8:
        raise argparse.ArgumentTypeError(f"expected batch sizes from 1 to 8, comma-separated (e.g. 1,8); got {text!r}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short prompts and 16 new tokens: a smoke run")
    parser.add_argument("--models", default="bloom,xglm,glm", help="shapes to run (default bloom,xglm,glm)")
    parser.add_argument("--dtypes", default="fp32,bf16,int8,int4", help="dtypes to run (default fp32,bf16,int8,int4)")
    parser.add_argument("--impls", default="reference,tongues", help="default reference,tongues")
    parser.add_argument("--batches", type=int_list, default=[1, 8], help="decode batch sizes, 1-8 (default 1,8)")
    parser.add_argument("--peer", choices=("none", "llama.cpp"), default="none",
                        help="add a peer's rows: llama.cpp (llama-cpp-python) on the same checkpoint, BLOOM shape only")
    parser.add_argument("--kernels", choices=("packed", "auto", "none"), default="packed",
                        help="tongues' kernels= setting (default packed, as the CLI commands load models)")
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
    parser.add_argument("--prefill", type=int, default=512, help="prefill length; 0 skips prefill (default 512)")
    parser.add_argument("--repeats", type=int, default=3, help="prefill repeats, best kept (default 3)")
    parser.add_argument("--split-steps", type=int, default=16,
                        help="tongues' batch-1 step split: steps per run, 0 skips it (default 16)")
    parser.add_argument("--layers", type=int, help="cut every shape to this many layers (a smoke run; "
                        "the vocabularies stay full size)")
    parser.add_argument("--split-repeats", type=int, default=3, help="step-split runs, fastest kept (default 3)")
    opts = parser.parse_args()
    if opts.worker:
        print(json.dumps(worker(opts)))
        return
    if opts.make_checkpoint:
        write_checkpoint(opts.make_checkpoint, checkpoint_path(opts.make_checkpoint, opts.cache_dir, opts.layers),
                         opts.layers)
        return
    if opts.quick:  # the sizes given explicitly win
        for name, value in (("prompt", 32), ("new", 16), ("prefill", 128), ("repeats", 1)):
            if getattr(opts, name) == parser.get_default(name):
                setattr(opts, name, value)
    if opts.new < 3:
        parser.error("--new must be at least 3 (the first two steps are not timed)")

    models = [m for m in opts.models.split(",") if m in SHAPES and family_available(m)]
    dtypes = opts.dtypes.split(",")
    impls = opts.impls.split(",")
    peer_models = set()
    if opts.peer == "llama.cpp":
        from benchmarks import llama_cpp_peer

        missing = llama_cpp_peer.unavailable()
        if missing:
            print(f"--peer llama.cpp: {missing}; running without the peer")
        else:
            peer_models = set(models) & set(llama_cpp_peer.MODELS)
            if set(models) - peer_models:
                print(f"--peer llama.cpp: llama.cpp's converter takes {', '.join(llama_cpp_peer.MODELS)} only; "
                      f"no peer rows for {', '.join(sorted(set(models) - peer_models))}")
    bandwidth = float(subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, %r); import torch; torch.set_num_threads(%d); "
         "from benchmarks.run import read_bandwidth_gbs; print(read_bandwidth_gbs())" % (ROOT, opts.threads)],
        capture_output=True, text=True, check=True).stdout)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cpus, threads={opts.threads}, commit {commit} (+ working tree), "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"read bandwidth: {bandwidth:.1f} GB/s  prompt={opts.prompt} new={opts.new} prefill={opts.prefill} "
          f"batches={','.join(map(str, opts.batches))}")
    plan = [(model, dtype, impl) for model in models for dtype in dtypes
            for impl in impls + (["llama.cpp"] if model in peer_models else [])
            if not (impl == "reference" and dtype in ("int8", "int4"))]  # no CPU weight-only quantisation there
    results, start = [], time.perf_counter()
    fp32_runs = {}
    for i, (model, dtype, impl) in enumerate(plan):
        print(f"[{i + 1}/{len(plan)}, {time.perf_counter() - start:.0f} s] {impl} {model} {dtype} ...",
              file=sys.stderr, flush=True)
        r = run_one(impl, model, dtype, make_checkpoint(model, opts.cache_dir, opts.layers), opts)
        if r is None:
            continue
        r["roofline_b1_tok_s"] = r["bandwidth_gbs"] * 1e9 / (r["weights_mib"] * 2**20)
        if dtype == "fp32":
            fp32_runs[(model, impl)] = r
        compare_with_fp32(r, fp32_runs)
        results.append(r)
        print(format_row(r), flush=True)
    print(f"({len(results)} runs in {time.perf_counter() - start:.0f} s)")
    print_ratios(results)
    print_table(results)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(dict(bandwidth_gbs=bandwidth, commit=commit, threads=opts.threads, results=results), f, indent=1)


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return os.uname().machine


def compare_with_fp32(r: dict, fp32_runs: dict) -> None:
    """Argmax agreement (prefill positions) and greedy tokens against fp32: the run's own implementation's
    fp32 (or the reference's). llama.cpp's rows are compared with tongues' fp32 too: the same checkpoint
    through another engine, a check of the conversion."""
    model, impl = r["model"], r["impl"]
    base = fp32_runs.get((model, impl)) or fp32_runs.get((model, "reference"))
    if base is not None and "argmax" in r and "argmax" in base:
        r["argmax_agreement_vs_fp32"] = sum(a == b for a, b in zip(r["argmax"], base["argmax"])) / len(base["argmax"])
    if base is not None and "greedy_b1" in r and "greedy_b1" in base:
        r["greedy_identical_vs_fp32"] = r["greedy_b1"] == base["greedy_b1"]
    ref = fp32_runs.get((model, "reference"))
    if impl == "tongues" and r["dtype"] == "fp32" and ref is not None and "greedy_b1" in r and "greedy_b1" in ref:
        r["greedy_identical_vs_reference"] = r["greedy_b1"] == ref["greedy_b1"]
    ours = fp32_runs.get((model, "tongues"))
    if impl == "llama.cpp" and ours is not None:
        if "argmax" in r and "argmax" in ours:
            r["argmax_agreement_vs_tongues_fp32"] = (sum(a == b for a, b in zip(r["argmax"], ours["argmax"]))
                                                     / len(ours["argmax"]))
        if "greedy_b1" in r and "greedy_b1" in ours:
            same = next((i for i, (a, b) in enumerate(zip(r["greedy_b1"], ours["greedy_b1"])) if a != b),
                        min(len(r["greedy_b1"]), len(ours["greedy_b1"])))
            r["greedy_prefix_vs_tongues_fp32"] = same


def rate(r: dict, key: str, fmt: str = "{:.2f}") -> str:
    return fmt.format(r[key]) if key in r else "-"


def products_gbs(r: dict) -> float:
    """GB/s of weights read by the weight products alone (the step split's products time)."""
    return r["weights_mib"] * 2**20 / (r["split"]["products_ms"] / 1e3) / 1e9


def format_row(r: dict) -> str:
    extra = ""
    if "argmax_agreement_vs_fp32" in r and r["dtype"] != "fp32":
        extra = f"  argmax-agree {100 * r['argmax_agreement_vs_fp32']:.1f}%"
    if "greedy_identical_vs_reference" in r:
        extra += f"  greedy==ref {r['greedy_identical_vs_reference']}"
    if "argmax_agreement_vs_tongues_fp32" in r:
        extra += f"  argmax-agree vs tongues fp32 {100 * r['argmax_agreement_vs_tongues_fp32']:.1f}%"
    if "greedy_prefix_vs_tongues_fp32" in r:
        extra += f"  greedy = tongues fp32 for {r['greedy_prefix_vs_tongues_fp32']}/{len(r['greedy_b1'])} tokens"
    roof = r["roofline_b1_tok_s"]
    decode = ""
    for key in sorted(k for k in r if k.startswith("decode_b")):
        batch = int(key[len("decode_b"):-len("_tok_s")])
        decode += f"  b{batch} {r[key]:.2f} ({100 * r[key] / (batch * roof):.0f}% of {batch}x roof {roof:.1f})"
    split = ""
    if "split" in r:
        s, product_gbs = r["split"], products_gbs(r)
        split = (f"  step {s['step_ms']:.1f}ms = products {s['products_ms']:.1f} ({product_gbs:.1f}GB/s, "
                 f"{100 * product_gbs / r['bandwidth_gbs']:.0f}% of bw) + rest {s['rest_ms']:.1f} "
                 f"({100 * s['rest_ms'] / s['step_ms']:.0f}%)")
    imports = f"import {r['import_pkg_s']:.2f}/{r['import_s']:.2f}s " if "import_s" in r else ""
    return (f"{r['model']:6} {r['dtype']:5} {r['impl']:9} {imports}"
            f"load {r['load_s']:.2f}s rss {r['peak_rss_load_mib']:.0f}MiB (weights {r['weights_mib']:.0f}) "
            f"prefill {rate(r, 'prefill_tok_s', '{:.0f}')} tok/s  bw {r['bandwidth_gbs']:.1f}GB/s "
            f"decode{decode}{split}{extra}")


def print_ratios(results: list[dict]) -> None:
    keys = [k for k in ("prefill_tok_s", "decode_b1_tok_s", "decode_b8_tok_s") if any(k in r for r in results)]
    for peer, note in (("reference", "int8/int4 against the reference's bf16"), ("llama.cpp", "same precision")):
        base_of = {(r["model"], r["dtype"]): r for r in results if r["impl"] == peer}
        if not base_of:
            continue
        print(f"\nratios tongues / {peer} (same model; {note}):")
        for r in results:
            base = base_of.get((r["model"], r["dtype"]))
            if peer == "reference" and base is None:
                base = base_of.get((r["model"], "bf16"))
            if r["impl"] != "tongues" or base is None:
                continue
            ratios = "  ".join(f"{k.replace('_tok_s', '')} x{r[k] / base[k]:.2f}" for k in keys if k in r and k in base)
            print(f"{r['model']:6} {r['dtype']:5} {ratios}  load x{base['load_s'] / r['load_s']:.2f} faster  "
                  f"rss x{r['peak_rss_load_mib'] / base['peak_rss_load_mib']:.2f}")


def print_table(results: list[dict]) -> None:
    """The results as one markdown table (for docs/performance.md)."""
    by = {(r["model"], r["dtype"], r["impl"]): r for r in results}
    print("\n| model | dtype | impl | load (s) | peak RSS after load (MiB) | weights read / step (MiB) | prefill (tok/s) "
          "| bandwidth (GB/s) | decode b1 tok/s (% roof) | decode b8 tok/s (% of 8x roof; x own b1) "
          "| b1 step: products alone + rest stubbed (ms; rest % of step; products % of bw) | argmax agree vs fp32 "
          "| tongues x reference: b1 / b8 | tongues x llama.cpp: b1 / b8 |")
    print("|" + "---|" * 14)
    for r in results:
        roof = r["roofline_b1_tok_s"]
        b1 = "-"
        if "decode_b1_tok_s" in r:
            b1 = f"{r['decode_b1_tok_s']:.2f} ({100 * r['decode_b1_tok_s'] / roof:.0f} %)"
        b8 = "-"
        if "decode_b8_tok_s" in r:
            b8 = f"{r['decode_b8_tok_s']:.1f} ({100 * r['decode_b8_tok_s'] / (8 * roof):.0f} %"
            b8 += f"; x{r['decode_b8_tok_s'] / r['decode_b1_tok_s']:.1f})" if "decode_b1_tok_s" in r else ")"
        split = "-"
        if "split" in r:
            s, product_gbs = r["split"], products_gbs(r)
            split = (f"{s['step_ms']:.1f}: {s['products_ms']:.1f} + {s['rest_ms']:.1f} "
                     f"({100 * s['rest_ms'] / s['step_ms']:.0f} %; "
                     f"{100 * product_gbs / r['bandwidth_gbs']:.0f} %)")
        agree = ""
        if r["dtype"] != "fp32" and "argmax_agreement_vs_fp32" in r:
            agree = f"{100 * r['argmax_agreement_vs_fp32']:.1f} %"
        if "greedy_identical_vs_reference" in r:
            agree = "greedy = reference: " + ("yes" if r["greedy_identical_vs_reference"] else "NO")
        if "argmax_agreement_vs_tongues_fp32" in r:
            agree += f" (vs tongues fp32: {100 * r['argmax_agreement_vs_tongues_fp32']:.1f} %)"
        ratios = []
        for peer in ("reference", "llama.cpp"):
            base = by.get((r["model"], r["dtype"], peer))
            if peer == "reference" and base is None:
                base = by.get((r["model"], "bf16", peer))
            if r["impl"] != "tongues" or base is None:
                ratios.append("")
                continue
            ratios.append(" / ".join(f"{r[k] / base[k]:.2f}" if k in r and k in base else "-"
                                     for k in ("decode_b1_tok_s", "decode_b8_tok_s")))
        print(f"| {r['model']} | {r['dtype']} | {r['impl']} | {r['load_s']:.2f} | {r['peak_rss_load_mib']:.0f} "
              f"| {r['weights_mib']:.0f} | {rate(r, 'prefill_tok_s', '{:.0f}')} | {r['bandwidth_gbs']:.1f} "
              f"| {b1} | {b8} "
              f"| {split} | {agree} | {ratios[0]} | {ratios[1]} |")


if __name__ == "__main__":
    main()
