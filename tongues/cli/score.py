"""``tongues score [TEXT]``: per-token log-probabilities and the perplexity of a text under a causal LM.

Every token but the first is scored given the tokens before it (the first has no context). Texts
longer than ``--max-length`` are scored in windows that overlap by one token, so each token is
still scored once, with the context of its own window.

Example::

    $ tongues score "Tous les êtres humains naissent libres" --model path/to/checkpoint
    $ tongues score --file article1.txt --json > scores.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from . import CommandError, add_model_arguments, load_causal_lm, positive_int, read_text_argument


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``score`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "score", help="per-token log-probabilities and perplexity of a text",
        description="Score TEXT (or --file, or stdin): print each token's log-probability given the tokens before "
                    "it, then the mean log-probability and the perplexity.")
    parser.add_argument("text", nargs="?", default=None, help="the text; '-' reads stdin")
    parser.add_argument("--file", default=None, help="read the text from this UTF-8 file")
    add_model_arguments(parser)
    parser.add_argument("--max-length", type=positive_int, default=None, metavar="N",
                        help="tokens per window (1024, or the model's max_position_embeddings if smaller)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--summary", action="store_true", help="print only the totals, not every token")
    parser.set_defaults(func=run)
    return parser


def score_ids(model, ids: list[int], max_length: int, progress: bool = False) -> list[float]:
    """Natural-log probabilities of ``ids[1:]``, each given the preceding ids of its window."""
    import inspect

    import torch

    if max_length < 2:
        raise ValueError(f"--max-length must be at least 2; got {max_length}")
    # Encoders with an LM head (XLM) have no cache to turn off.
    extra = {"use_cache": False} if "use_cache" in inspect.signature(model.forward).parameters else {}
    starts = list(range(0, max(1, len(ids) - 1), max_length - 1))
    bar = None
    if progress and len(starts) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(starts), desc="score", unit="window", file=sys.stderr)
    scores: list[float] = []
    with torch.inference_mode():
        for start in starts:
            window = torch.tensor([ids[start:start + max_length]], device=model.device)
            logits = model(input_ids=window, **extra).logits.float()  # (1, T, V)
            log_probs = torch.log_softmax(logits[0, :-1], dim=-1)
            scores.extend(log_probs.gather(1, window[0, 1:, None]).squeeze(1).tolist())
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return scores


def run(args) -> int:
    """Score the text and print the table (or JSON); returns the exit code."""
    text = read_text_argument(args.text, args.file, "text")
    if not text.strip():
        raise CommandError("nothing to score: give a TEXT argument, --file or stdin")
    model, tokenizer, model_dir = load_causal_lm(args.model, "score", args.dtype, args.device, args.quantization,
                                                 args.threads)
    limit = getattr(model.config, "max_position_embeddings", None)
    max_length = args.max_length or min(1024, limit or 1024)
    if limit and max_length > limit:
        raise CommandError(f"--max-length {max_length} is longer than the model's max_position_embeddings ({limit}); "
                           f"use --max-length {limit} or less")
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) < 2:
        raise CommandError(f"the text is {len(ids)} token long; at least 2 tokens are needed to score one")
    try:
        scores = score_ids(model, ids, max_length, progress=True)
    except (ValueError, RuntimeError) as err:
        raise CommandError(str(err).splitlines()[0]) from None
    mean = sum(scores) / len(scores)
    perplexity = math.exp(-mean)
    pieces = [tokenizer.decode([token_id]) for token_id in ids]
    if args.json:
        result = {"model": str(model_dir), "num_tokens": len(ids), "num_scored": len(scores),
                  "mean_logprob": mean, "perplexity": perplexity}
        if not args.summary:
            result["tokens"] = [{"id": ids[0], "text": pieces[0], "logprob": None}] + [
                {"id": i, "text": p, "logprob": s} for i, p, s in zip(ids[1:], pieces[1:], scores)]
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    if not args.summary:
        print("position\tid\tlogprob\ttoken")
        for position, (token_id, piece) in enumerate(zip(ids, pieces)):
            logprob = "-" if position == 0 else f"{scores[position - 1]:.4f}"
            print(f"{position}\t{token_id}\t{logprob}\t{json.dumps(piece, ensure_ascii=False)}")
    print(f"tokens: {len(ids)}  scored: {len(scores)}  mean logprob: {mean:.4f}  perplexity: {perplexity:.3f}")
    return 0
