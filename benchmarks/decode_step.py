"""One batch-1 decode step, split into the weight products and everything else.

    python benchmarks/decode_step.py [--models bloom,glm,xglm] [--dtype bf16] [--steps 16] [--repeats 5]
                                     [--prompt 128] [--threads 2] [--profile]

For each model shape (random weights, no checkpoint): build ``<Family>ForCausalLM(config)`` in the
dtype, ``model.prepare_for_decode()``, prefill ``--prompt`` tokens into a one-row ``SlotCache``,
then time decode steps: ``forward_step`` (the step ``generate`` and the serving engine share)
followed by the greedy choice (the logits widened to fp32 and their ``argmax``, as ``generate`` does), ``--repeats`` runs of ``--steps`` steps
from the same position; the time given is the fastest single step of all (the VM is shared and
noisy; the fastest step is the least disturbed one). The split is measured two ways:

- **products**: every linear layer the step runs (recorded in order by forward hooks during one
  step, LM head included), called alone in that order on a one-row input of its width, nothing
  between them; the fastest of ``--repeats`` x ``--steps`` such sequences.
- **rest, stubbed**: the same step with every linear layer replaced by a stub returning a copy
  of the output that layer gave in a real step (no arithmetic; the copies, ~0.1 ms a step, count
  as rest); the fastest of 4 x ``--repeats`` x ``--steps`` stubbed steps, i.e. the time outside the weight
  products measured directly (attention over the cache, norms, activations, masks, positions,
  the cache writes, the argmax and the Python dispatch of every op).

``step - products`` and ``rest, stubbed`` should agree within the noise; the table gives both,
and "% outside" is ``rest, stubbed / step``. ``--profile`` prints torch.profiler's top operators
of the stubbed step (self CPU time). Not a test: pytest does not collect this folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

import torch
from torch import nn

SHAPES = {
    "bloom": ("tongues.models.bloom", "BloomConfig", "BloomForCausalLM",
              dict(hidden_size=1024, n_layer=24, n_head=16, vocab_size=250880)),
    "glm": ("tongues.models.glm", "GlmConfig", "GlmForCausalLM",
            dict(hidden_size=1024, num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=2, head_dim=64,
                 intermediate_size=3072, vocab_size=151552, max_position_embeddings=4096, tie_word_embeddings=False)),
    "xglm": ("tongues.models.xglm", "XGLMConfig", "XGLMForCausalLM",
             dict(d_model=1024, num_layers=24, attention_heads=16, ffn_dim=4096, vocab_size=256008,
                  max_position_embeddings=2048)),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def build(name: str, dtype: torch.dtype):
    import importlib

    module, config_name, model_name, fields = SHAPES[name]
    family = importlib.import_module(module)
    torch.manual_seed(0)
    model = getattr(family, model_name)(getattr(family, config_name)(**fields))
    return model.to(dtype).eval().prepare_for_decode()


def is_product(module: nn.Module) -> bool:
    """A module that multiplies by a weight: ``nn.Linear`` or any of tongues' replacements (fast,
    quantised, compiled), which all carry ``in_features``/``out_features``; wrappers of such a
    module are not counted twice."""
    if not (isinstance(module, nn.Linear) or hasattr(module, "in_features") and hasattr(module, "out_features")):
        return False
    return not any(is_product(child) for child in module.children())


def linear_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if is_product(m)]


class Stub(nn.Module):
    """Stands in for a linear layer: returns a copy of the output it gave in a real step, computes nothing.

    A copy, because blocks may add into a layer's output in place; real values, because garbage
    (an uninitialised tensor) can hold denormals and NaNs that slow the ops after it down."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out

    def forward(self, x):
        return self.out.clone()


def time_steps(model, view, prompt_length: int, steps: int, token: torch.Tensor) -> float:
    """Seconds of the fastest of ``steps`` decode steps from ``prompt_length`` (the cache is cropped back first)."""
    from tongues.slot_cache import forward_step

    view.crop(prompt_length)
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        logits = forward_step(model, token, view)
        token = logits.float().argmax(-1, keepdim=True)  # as generate: fp32 logits, then the greedy choice
        best = min(best, time.perf_counter() - start)
    return best


def measure(name: str, dtype: torch.dtype, prompt_length: int, steps: int, repeats: int, profile: bool) -> dict:
    return {"model": name, **split_step(build(name, dtype), prompt_length, steps, repeats, profile)}


def split_step(model, prompt_length: int, steps: int, repeats: int, profile: bool = False) -> dict:
    """The batch-1 step split of a model already prepared for decoding (also run by benchmarks/run.py's
    workers on the loaded checkpoint, any dtype): milliseconds of the step, of its products alone and
    of the rest with the products stubbed."""
    from tongues.slot_cache import SlotCache, forward_step

    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(1234)
    prompt = torch.randint(4, vocab, (1, prompt_length), generator=generator)
    cache = SlotCache(slots=1, capacity=prompt_length + steps + 1)
    view = cache.view(0, 1)
    with torch.inference_mode():
        token = forward_step(model, prompt, view).argmax(-1, keepdim=True)

        # The linear layers of one step, in the order the step runs them, with their output shapes.
        calls = []
        hooks = [m.register_forward_hook(lambda m, args, out: calls.append((m, args[0].shape, args[0].dtype, out)))
                 for m in linear_layers(model)]
        forward_step(model, token, view)
        for hook in hooks:
            hook.remove()
        time_steps(model, view, prompt_length, 2, token)  # warm-up
        step = min(time_steps(model, view, prompt_length, steps, token) for _ in range(repeats))

        inputs = [(m, torch.randn(shape, dtype=dtype)) for m, shape, dtype, _ in calls]

        def products() -> float:
            best = float("inf")
            for _ in range(steps):
                start = time.perf_counter()
                for m, x in inputs:
                    m(x)
                best = min(best, time.perf_counter() - start)
            return best

        products()
        product_time = min(products() for _ in range(repeats))

        # The same step with every linear layer stubbed out.
        originals = {}
        for parent_name, parent in model.named_modules():
            for child_name, child in parent.named_children():
                outs = [out for m, _, _, out in calls if m is child]
                if outs:
                    originals[(parent, child_name)] = child
                    setattr(parent, child_name, Stub(outs[0].clone()))
        time_steps(model, view, prompt_length, 2, token)
        # The stubbed step is short (no products): four times the runs for the same wall time or less.
        rest = min(time_steps(model, view, prompt_length, steps, token) for _ in range(4 * repeats))
        if profile:
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as torch_profile

            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                time_steps(model, view, prompt_length, steps, token)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        for (parent, child_name), child in originals.items():
            setattr(parent, child_name, child)
    return {"step_ms": 1e3 * step, "products_ms": 1e3 * product_time, "rest_ms": 1e3 * rest, "linear_calls": len(calls)}


def machine() -> str:
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = "unknown CPU"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        commit = "?"
    return (f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"load average {os.getloadavg()[0]:.1f}, commit {commit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="bloom,glm,xglm")
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print the top operators of the stubbed step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine())
    print(f"dtype {args.dtype}, batch 1, prompt {args.prompt}, fastest of {args.repeats} x {args.steps} steps")
    print("| model | step (ms) | products alone (ms) | step - products (ms) | rest, stubbed (ms) | % outside | tok/s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        r = measure(name, DTYPES[args.dtype], args.prompt, args.steps, args.repeats, args.profile)
        print(f"| {name} | {r['step_ms']:.1f} | {r['products_ms']:.1f} | {r['step_ms'] - r['products_ms']:.1f} | "
              f"{r['rest_ms']:.2f} | {100 * r['rest_ms'] / r['step_ms']:.1f} % | {1e3 / r['step_ms']:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
