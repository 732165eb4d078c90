"""XCOPA on the BLOOM-560m shape (random weights): ``tongues eval`` scoring vs lm-eval 0.4.13's ``hf`` backend.

Both score the same documents of the same checkpoint (random weights saved once, the embedded model's
BLOOM tokenizer); the table gives documents per second, excluding model loading, and the largest
difference between their per-document log-likelihoods. Needs ``pip install -e '.[test]'``.

    python benchmarks/eval.py --limit 50 --threads 2            # a reduced run: 50 documents of xcopa_zh
    python benchmarks/eval.py --task xcopa_sw --limit 500       # a whole language
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

BLOOM_560M = dict(vocab_size=250880, hidden_size=1024, n_layer=24, n_head=16, bos_token_id=1, eos_token_id=2,
                  pad_token_id=3)


def make_checkpoint(folder: Path) -> str:
    """Random BLOOM-560m-shaped weights saved by tongues, with the embedded model's tokenizer files."""
    import torch

    from tongues import BloomConfig, BloomForCausalLM
    from tongues.assets import default_model_path

    if (folder / "config.json").exists():
        return str(folder)
    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(**BLOOM_560M)).eval()
    model.save_pretrained(str(folder))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(Path(default_model_path()) / name, folder / name)
    return str(folder)


class MatmulCount:
    """Floating-point operations of the weight matmuls a run does: 2 x parameters x tokens through the
    decoder blocks (padding included: it is computed too) plus 2 x hidden x vocabulary per row through the
    language-model head. The attention scores (about 4 x tokens x keys x hidden per layer, under 1% at 0
    shots here) are left out. Works on tongues' and transformers' BLOOM, which name their modules alike."""

    def __init__(self, model):
        self.block_tokens = self.head_rows = 0
        blocks = model.transformer.h
        self.block_params = sum(p.numel() for p in blocks.parameters())
        self.head_params = model.lm_head.weight.numel()
        blocks[0].register_forward_pre_hook(self._block, with_kwargs=True)
        model.lm_head.register_forward_pre_hook(self._head)

    def _block(self, module, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]
        self.block_tokens += x.shape[0] * x.shape[1]

    def _head(self, module, args):
        self.head_rows += args[0].numel() // args[0].shape[-1]

    def gflop(self) -> dict[str, float]:
        body, head = 2 * self.block_params * self.block_tokens / 1e9, 2 * self.head_params * self.head_rows / 1e9
        return {"block tokens": self.block_tokens, "head rows": self.head_rows, "body GFLOP": round(body, 1),
                "head GFLOP": round(head, 1), "GFLOP": round(body + head, 1)}


def run_tongues(path: str, task: str, limit: int, batch_size: int, num_fewshot: int):
    from tongues import AutoModelForCausalLM, AutoTokenizer
    from tongues.eval import Scorer, evaluate

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    count = MatmulCount(model)
    scorer = Scorer(model, AutoTokenizer.from_pretrained(path), batch_size=batch_size)
    started, cpu = time.perf_counter(), time.process_time()
    _, samples = evaluate(scorer, [task], num_fewshot=num_fewshot, limit=limit, progress=False)
    seconds = (time.perf_counter() - started, time.process_time() - cpu)
    return seconds, [s["loglikelihoods"] for s in samples], count.gflop()


def run_lm_eval(path: str, task: str, limit: int, batch_size: int, num_fewshot: int, scratch: Path):
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from tongues.eval.tasks import DATA

    language = task.split("_")[1]
    data = DATA / "xcopa" / "data" / language
    (scratch / "local.yaml").write_text(
        f"include: {Path(lm_eval.__file__).parent / 'tasks' / 'xcopa' / f'default_{language}.yaml'}\n"
        f"task: local_{task}\ndataset_path: json\ndataset_name: null\ndataset_kwargs:\n  cache_dir: {scratch}/cache\n"
        f"  data_files:\n    test: {data / f'test.{language}.jsonl'}\n    validation: {data / f'val.{language}.jsonl'}\n")
    model = HFLM(pretrained=path, batch_size=batch_size, device="cpu", dtype="float32")
    count = MatmulCount(model.model)
    manager = TaskManager(include_path=str(scratch), include_defaults=False)
    started, cpu = time.perf_counter(), time.process_time()
    out = lm_eval.simple_evaluate(model=model, tasks=[f"local_{task}"], task_manager=manager, limit=limit,
                                  num_fewshot=num_fewshot, log_samples=True, bootstrap_iters=0)
    seconds = (time.perf_counter() - started, time.process_time() - cpu)
    samples = sorted(out["samples"][f"local_{task}"], key=lambda s: s["doc_id"])
    return seconds, [[float(ll) for ll, _ in s["filtered_resps"]] for s in samples], count.gflop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="xcopa_zh")
    parser.add_argument("--limit", type=int, default=50, help="documents (50; 500 is a whole XCOPA language)")
    parser.add_argument("--num-fewshot", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--checkpoint", default=None, help="folder to keep the random checkpoint in (reused)")
    parser.add_argument("--backends", default="tongues,lm-eval",
                        help="which to run, comma-separated: tongues, lm-eval (default both; one alone for A/B runs "
                             "of two tongues versions)")
    args = parser.parse_args()
    backends = args.backends.split(",")
    if not backends or set(backends) - {"tongues", "lm-eval"}:
        parser.error(f"--backends takes tongues and/or lm-eval, comma-separated; got {args.backends!r}")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="tongues-eval-bench-"))
    try:
        path = make_checkpoint(Path(args.checkpoint) if args.checkpoint else scratch / "bloom-560m-random")
        runs = {}
        if "tongues" in backends:
            runs["tongues eval"] = run_tongues(path, args.task, args.limit, args.batch_size, args.num_fewshot)
        if "lm-eval" in backends:
            runs["lm-eval 0.4.13 hf (transformers)"] = run_lm_eval(path, args.task, args.limit, args.batch_size,
                                                                   args.num_fewshot, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "?"
    print(json.dumps({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                      "threads": torch.get_num_threads(), "torch": torch.__version__, "commit": commit,
                      "task": args.task, "documents": len(next(iter(runs.values()))[1]),
                      "num_fewshot": args.num_fewshot,
                      "batch_size": args.batch_size, "dtype": "float32"}))
    # CPU seconds too: on a shared machine they move less with other load than wall-clock seconds.
    print("| backend | wall s | docs/s (wall) | CPU s | docs per CPU s |\n|---|---:|---:|---:|---:|")
    for name, ((wall, cpu), scores, _) in sorted(runs.items()):
        print(f"| {name} | {wall:.1f} | {len(scores) / wall:.2f} | {cpu:.1f} | {len(scores) / cpu:.2f} |")
    for name, (_, _, flops) in sorted(runs.items()):
        print(f"{name} matmul work: {json.dumps(flops)}")
    if len(runs) == 2:
        (ours_s, ours, ours_f), (theirs_s, theirs, theirs_f) = (runs["tongues eval"],
                                                                 runs["lm-eval 0.4.13 hf (transformers)"])
        diff = max(abs(a - b) for x, y in zip(ours, theirs) for a, b in zip(x, y))
        print(f"speed-up {theirs_s[0] / ours_s[0]:.2f}x wall, {theirs_s[1] / ours_s[1]:.2f}x CPU, "
              f"{theirs_f['GFLOP'] / ours_f['GFLOP']:.2f}x fewer matmul FLOPs; "
              f"largest log-likelihood difference {diff:.2e}")


if __name__ == "__main__":
    main()
