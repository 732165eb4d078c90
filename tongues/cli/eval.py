"""``tongues eval``: lm-evaluation-harness's multilingual tasks and sliding-window perplexity, number for number.

Tasks (``--tasks``, comma-separated task or group names): xcopa (11 languages, shipped), xwinograd
(6, shipped), xstorycloze (11), xnli (15), pawsx (7); the unshipped ones read ``--data-dir``.
Scoring follows lm-eval 0.4.13's rules (see ``tongues.eval.scoring``).

Example::

    $ tongues eval --model path/to/checkpoint --tasks xcopa,xwinograd_en --limit 100 --output results.json
    $ tongues eval --model path/to/checkpoint --perplexity article.txt --stride 512
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import CommandError, _one_line, add_model_arguments, load_causal_lm, non_negative_int, positive_int


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "eval", help="few-shot task accuracy (xcopa, xwinograd, ...) and perplexity, as lm-eval computes them",
        description="Evaluate a causal LM on lm-evaluation-harness 0.4's multilingual tasks (same prompts, "
                    "choices, splits, few-shot draws and scoring) or on the perplexity of text files.")
    add_model_arguments(parser)
    parser.add_argument("--tasks", default=None,
                        help="comma-separated tasks or groups, e.g. xcopa,xwinograd_en (see --list-tasks)")
    parser.add_argument("--list-tasks", action="store_true", help="print the known tasks and groups and exit")
    parser.add_argument("--num-fewshot", type=non_negative_int, default=0, help="few-shot examples per document (0)")
    parser.add_argument("--fewshot-seed", type=int, default=1234,
                        help="seed of the few-shot draws (1234, lm-eval's default)")
    parser.add_argument("--limit", type=positive_int, default=None, help="score only the first N documents per task")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="sequences per forward pass (16)")
    parser.add_argument("--max-length", type=positive_int, default=None,
                        help="context window in tokens (default: the checkpoint's, as lm-eval chooses it)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the task data that is not shipped (xstorycloze, xnli, pawsx)")
    parser.add_argument("--perplexity", action="append", default=[], metavar="FILE",
                        help="also report the sliding-window perplexity of this UTF-8 text file (repeatable)")
    parser.add_argument("--stride", type=positive_int, default=None,
                        help="perplexity window step in tokens (default: the window, i.e. disjoint windows)")
    parser.add_argument("--output", default=None, help="write the results as JSON to this file")
    parser.add_argument("--log-samples", default=None, help="write one JSON line per document to this file")
    parser.set_defaults(func=run)
    return parser


def _load(args):
    model, tokenizer, model_dir = load_causal_lm(args.model, "eval", args.dtype, args.device, args.quantization,
                                                 args.threads)
    return model.eval(), tokenizer, model_dir


def _write(path: str, text: str, flag: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as err:
        raise CommandError(f"{flag} {path}: cannot write it ({_one_line(err)})") from None


def run(args) -> int:
    """Evaluate, print the table, write --output / --log-samples; returns the exit code."""
    from ..eval.evaluator import build_requests, aggregate, markdown_table, score_documents
    from ..eval.scoring import Scorer
    from ..eval.tasks import GROUPS, TASKS, TaskDataError, resolve_tasks

    if args.list_tasks:
        for group, members in GROUPS.items():
            print(f"{group}: {', '.join(members)}")
        return 0
    names = [name.strip() for name in (args.tasks or "").split(",") if name.strip()]
    if not names and not args.perplexity:
        raise CommandError("nothing to evaluate: give --tasks (e.g. --tasks xcopa,xwinograd_en) or --perplexity FILE; "
                           f"known tasks and groups: {', '.join(list(GROUPS) + list(TASKS))}")
    try:
        task_names, groups = resolve_tasks(names)
    except KeyError as err:
        raise CommandError(f"--tasks: {err.args[0]}") from None
    texts = {}
    for path in args.perplexity:
        try:
            texts[path] = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CommandError(f"--perplexity {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise CommandError(f"--perplexity {path}: cannot read it as UTF-8 text ({_one_line(err)})") from None
        if not texts[path].strip():
            raise CommandError(f"--perplexity {path}: the file is empty")
    try:  # read every document before loading the model, so that a missing file fails fast
        documents = build_requests(task_names, args.num_fewshot, args.limit, args.data_dir, args.fewshot_seed)
    except TaskDataError as err:
        raise CommandError(str(err)) from None
    model, tokenizer, model_dir = _load(args)
    try:
        scorer = Scorer(model, tokenizer, batch_size=args.batch_size, max_length=args.max_length)
        if args.stride is not None and args.stride > scorer.max_length:
            raise CommandError(f"--stride {args.stride}: larger than the {scorer.max_length}-token window")
        started = time.perf_counter()
        samples = score_documents(scorer, documents, progress=True) if documents else []
        seconds = time.perf_counter() - started
        results = aggregate(samples, task_names, groups)
        for path, text in texts.items():
            results[f"perplexity:{path}"] = scorer.perplexity(text, args.stride)
    except (ValueError, RuntimeError) as err:
        raise CommandError(_one_line(err)) from None
    config = {"model": str(model_dir), "dtype": args.dtype, "quantization": args.quantization,
              "num_fewshot": args.num_fewshot, "fewshot_seed": args.fewshot_seed, "limit": args.limit,
              "batch_size": args.batch_size, "max_length": scorer.max_length, "stride": args.stride,
              "tasks": names, "documents": len(documents), "seconds": round(seconds, 3)}
    if documents:
        print(markdown_table(results))
    for key, entry in results.items():
        if key.startswith("perplexity:"):
            print(f"{key[len('perplexity:'):]}: {entry['tokens']} tokens, perplexity {entry['token_perplexity']:.4f} "
                  f"per token, {entry['word_perplexity']:.4f} per word, {entry['bits_per_byte']:.4f} bits per byte")
    if documents:
        print(f"{len(documents)} documents in {seconds:.1f} s ({len(documents) / max(seconds, 1e-9):.1f} docs/s)",
              file=sys.stderr)
    if args.output:
        _write(args.output, json.dumps({"results": results, "config": config}, ensure_ascii=False, indent=2) + "\n",
               "--output")
    if args.log_samples:
        keys = ("task", "doc_id", "loglikelihoods", "is_greedy", "pred", "gold", "pred_norm", "acc", "acc_norm")
        _write(args.log_samples, "".join(json.dumps({key: sample[key] for key in keys}, ensure_ascii=False) + "\n"
                                         for sample in samples), "--log-samples")
    return 0
