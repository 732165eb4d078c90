"""``tongues generate [PROMPT]``: continue a prompt with a causal LM, streaming the text as it comes.

Without ``--model`` the embedded demonstration model is used (and the command says so on stderr).
Sampling flags left out keep the checkpoint's ``generation_config.json`` values.

Example::

    $ tongues generate "Tous les êtres humains naissent" --max-new-tokens 30 --do-sample --top-p 0.9 --seed 1
"""

from __future__ import annotations

import argparse
from typing import Any

from . import CommandError, load_causal_lm, read_text_argument


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]; got {text}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="checkpoint directory or hub id (default: the embedded demonstration model)")
    parser.add_argument("--dtype", default="auto", help="weights dtype: auto, float32, bfloat16, float16 (auto)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu)")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``generate`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "generate", help="continue a prompt (streamed)",
        description="Continue PROMPT (or --file, or stdin) with a causal language model and print the text as it "
                    "is generated. Flags left out keep the checkpoint's generation defaults.")
    parser.add_argument("prompt", nargs="?", default=None, help="the prompt; '-' reads stdin")
    parser.add_argument("--file", default=None, help="read the prompt from this UTF-8 file")
    add_model_arguments(parser)
    parser.add_argument("--max-new-tokens", type=positive_int, default=50, help="tokens to add (50)")
    parser.add_argument("--do-sample", action="store_true", help="sample instead of greedy/beam search")
    parser.add_argument("--temperature", type=positive_float, default=None, help="sampling temperature")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens (0 = all)")
    parser.add_argument("--top-p", type=probability, default=None, help="nucleus sampling probability mass")
    parser.add_argument("--repetition-penalty", type=positive_float, default=None,
                        help="divide the logits of tokens already present by this (>1 discourages repeats)")
    parser.add_argument("--num-beams", type=positive_int, default=None, help="beam search width (1 = no beams)")
    parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable sampling")
    parser.add_argument("--no-stream", action="store_true", help="print the text once, at the end")
    parser.set_defaults(func=run)
    return parser


def generation_kwargs(args) -> dict[str, Any]:
    """The generate() keywords the user set (others keep the checkpoint's defaults)."""
    kwargs: dict[str, Any] = {"max_new_tokens": args.max_new_tokens}
    if args.do_sample:
        kwargs["do_sample"] = True
    for name in ("temperature", "top_k", "top_p", "repetition_penalty", "num_beams"):
        value = getattr(args, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


def run(args) -> int:
    """Generate and print the continuation; returns the exit code."""
    import torch

    from ..generation import TextStreamer

    prompt = read_text_argument(args.prompt, args.file, "prompt")
    model, tokenizer, _ = load_causal_lm(args.model, "generate", args.dtype, args.device)
    encoded = tokenizer(prompt, return_tensors="pt") if prompt else None
    if encoded is None or encoded["input_ids"].shape[1] == 0:
        start = model.config.bos_token_id if model.config.bos_token_id is not None else model.config.eos_token_id
        if start is None:
            raise CommandError("the prompt is empty and the model has no bos_token_id to start from")
        input_ids = torch.tensor([[start]])
        attention_mask = torch.ones_like(input_ids)
    else:
        input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
    kwargs = generation_kwargs(args)
    if model.generation_config.pad_token_id is None and model.config.eos_token_id is not None:
        kwargs["pad_token_id"] = model.config.eos_token_id
    stream = not args.no_stream and kwargs.get("num_beams", 1) == 1
    streamer = TextStreamer(tokenizer, skip_special_tokens=True) if stream else None
    if args.seed is not None:
        torch.manual_seed(args.seed)
    try:
        with torch.inference_mode():
            output = model.generate(input_ids.to(model.device), attention_mask=attention_mask.to(model.device),
                                    streamer=streamer, **kwargs)
    except (ValueError, TypeError) as err:
        raise CommandError(str(err).splitlines()[0]) from None
    if streamer is None:
        print(tokenizer.decode(output[0], skip_special_tokens=True), flush=True)
    return 0
