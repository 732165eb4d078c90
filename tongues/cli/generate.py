"""``tongues generate [PROMPT]``: continue a prompt with a causal LM, streaming the text as it comes.

Without ``--model`` the embedded demonstration model is used (and the command says so on stderr).
Sampling flags left out keep the checkpoint's ``generation_config.json`` values; ``--temperature 0``
means greedy, as in OpenAI's API, vLLM and llama.cpp. ``--stop`` ends a continuation at a string
(not printed). ``--file`` reads one prompt per line (or, for a ``.jsonl`` file, one
``{"prompt": ...}`` object per line, answered as JSONL); ``--json`` prints one JSON object per prompt.

Example::

    $ tongues generate "Tous les êtres humains naissent" --max-new-tokens 30 --do-sample --top-p 0.9 --seed 1
    $ tongues generate --file prompts.txt --stop "." --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import (CommandError, add_model_arguments, load_causal_lm, non_negative_float, non_negative_int, seed_value,
               positive_float, positive_int, probability, read_text_argument)

__all__ = ["add_model_arguments", "positive_float", "positive_int", "probability", "register", "run"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``generate`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "generate", help="continue a prompt (streamed)",
        description="Continue PROMPT (or stdin, or each line of --file) with a causal language model and print the "
                    "text as it is generated. Flags left out keep the checkpoint's generation defaults.")
    parser.add_argument("prompt", nargs="?", default=None, help="the prompt; '-' reads stdin")
    parser.add_argument("--file", default=None,
                        help="UTF-8 file of prompts, one a line; a .jsonl file holds one {\"prompt\": ...} object a "
                             "line and is answered in JSONL")
    add_model_arguments(parser)
    parser.add_argument("--max-new-tokens", type=positive_int, default=50, metavar="N", help="tokens to add (50)")
    parser.add_argument("--do-sample", action="store_true", help="sample instead of greedy/beam search")
    parser.add_argument("--temperature", type=non_negative_float, default=None,
                        help="sampling temperature; 0 = greedy")
    parser.add_argument("--top-k", type=non_negative_int, default=None, metavar="K",
                        help="sample among the K most likely tokens (0 = all)")
    parser.add_argument("--top-p", type=probability, default=None, metavar="P",
                        help="nucleus sampling probability mass, in (0, 1]")
    parser.add_argument("--repetition-penalty", type=positive_float, default=None, metavar="X",
                        help="divide the logits of tokens already present by X (>1 discourages repeats)")
    parser.add_argument("--num-beams", type=positive_int, default=None, metavar="N",
                        help="beam search width (1 = no beams)")
    parser.add_argument("--num-return-sequences", type=positive_int, default=1, metavar="N",
                        help="continuations per prompt (needs --do-sample or --num-beams >= N) (1)")
    parser.add_argument("--stop", action="append", default=None, metavar="TEXT",
                        help="end a continuation where TEXT appears (TEXT is not printed); repeatable")
    parser.add_argument("--seed", type=seed_value, default=None, help="random seed, for repeatable sampling")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per prompt (prompt, completions with text and finish_reason)")
    parser.add_argument("--no-stream", action="store_true", help="print the text once, at the end")
    parser.set_defaults(func=run)
    return parser


def generation_kwargs(args) -> dict[str, Any]:
    """The generate() keywords the user set (others keep the checkpoint's defaults)."""
    kwargs: dict[str, Any] = {"max_new_tokens": args.max_new_tokens}
    if args.do_sample:
        kwargs["do_sample"] = True
    for name in ("temperature", "top_k", "top_p", "repetition_penalty", "num_beams"):
        value = getattr(args, name, None)
        if value is not None:
            kwargs[name] = value
    if kwargs.get("temperature") == 0:  # OpenAI, vLLM and llama.cpp read temperature 0 as greedy
        for name in ("temperature", "top_k", "top_p"):
            kwargs.pop(name, None)
        kwargs["do_sample"] = False
    if getattr(args, "num_return_sequences", 1) > 1:
        kwargs["num_return_sequences"] = args.num_return_sequences
    return kwargs


# -- stop strings --------------------------------------------------------------------------------
def _completion_text(tokenizer, prompt_ids: list[int], new_ids: list[int]) -> str:
    """The text the new ids add to the prompt's (decoded together, so a leading space survives)."""
    prompt_text = tokenizer.decode(prompt_ids, skip_special_tokens=True)
    return tokenizer.decode(prompt_ids + new_ids, skip_special_tokens=True)[len(prompt_text):]


def _first_stop(text: str, stops: list[str]) -> int | None:
    positions = [text.find(stop) for stop in stops if stop in text]
    return min(positions) if positions else None


class StopStrings:
    """Stopping criterion: a row is done once its continuation (after ``prompt_ids``) contains a stop string."""

    def __init__(self, tokenizer, stops: list[str], prompt_ids: list[int]) -> None:
        self.tokenizer, self.stops, self.prompt_ids = tokenizer, stops, prompt_ids

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        start = len(self.prompt_ids)
        done = [_first_stop(_completion_text(self.tokenizer, self.prompt_ids, row[start:].tolist()), self.stops)
                is not None for row in input_ids]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _make_streamer(tokenizer, stops: list[str]):
    from ..generation import TextStreamer

    class StopStreamer(TextStreamer):
        """Prints the prompt and continuation as they come, cut before the first stop string; text that may
        be the start of a stop string is held back until the next token decides."""

        def __init__(self) -> None:
            super().__init__(tokenizer, skip_special_tokens=True)
            self.text, self.printed, self.stopped = "", 0, False
            self.prompt_length: int | None = None

        def put(self, value) -> None:
            if self.prompt_length is None:  # the first put is the prompt
                ids = value[0] if len(value.shape) > 1 else value
                self.prompt_length = len(tokenizer.decode(ids.tolist(), skip_special_tokens=True))
            super().put(value)

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if self.stopped:
                return
            self.text += text
            start = self.prompt_length or 0
            cut = _first_stop(self.text[start:], stops)
            if cut is not None:
                end, self.stopped = start + cut, True
            elif stream_end:
                end = len(self.text)
            else:
                end = len(self.text) - _held_back(self.text[max(start, self.printed):], stops)
            sys.stdout.write(self.text[self.printed:end])
            self.printed = max(self.printed, end)
            if self.stopped or stream_end:
                sys.stdout.write("\n")
            sys.stdout.flush()

    return StopStreamer()


def _held_back(text: str, stops: list[str]) -> int:
    """Length of the longest end of ``text`` that begins some stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if stop.startswith(text[-size:]):
                longest = size
                break
    return longest


# -- prompts -------------------------------------------------------------------------------------
def read_prompts(args) -> tuple[list[dict[str, Any]], bool]:
    """``([{"prompt": ..., ...}], from_jsonl)``: the positional prompt or stdin (one prompt), or ``--file``
    (one prompt a line; a ``.jsonl`` file: one object with a ``"prompt"`` string a line)."""
    if args.file is None:
        text = read_text_argument(args.prompt, None, "prompt")
        if args.prompt is None or args.prompt == "-":
            text = text.rstrip("\n")  # `echo PROMPT |` adds a newline the user did not type
        return [{"prompt": text}], False
    if args.prompt is not None:
        raise CommandError("give the prompt either as an argument or with --file, not both")
    path = Path(args.file)
    try:
        lines = (read_text_argument("-", None, "prompts") if args.file == "-"
                 else path.read_text(encoding="utf-8")).splitlines()
    except FileNotFoundError:
        raise CommandError(f"--file {args.file}: no such file") from None
    except IsADirectoryError:
        raise CommandError(f"--file {args.file}: is a directory; give a text file of prompts, one a line") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CommandError(f"--file {args.file}: cannot read it as UTF-8 text ({err})") from None
    jsonl = path.suffix == ".jsonl"
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not jsonl:
            records.append({"prompt": line})
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CommandError(f"--file {args.file}, line {number}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise CommandError(f"--file {args.file}, line {number}: each line must be a JSON object with a "
                               f"\"prompt\" string, like {{\"prompt\": \"Hello\"}}")
        records.append(record)
    if not records:
        raise CommandError(f"--file {args.file}: no prompts in it (one prompt a line; blank lines are skipped)")
    return records, jsonl


def _prompt_ids(model, tokenizer, prompt: str) -> list[int]:
    ids = tokenizer(prompt)["input_ids"] if prompt else []
    if ids:
        return list(ids)
    start = model.config.bos_token_id if model.config.bos_token_id is not None else model.config.eos_token_id
    if start is None:
        raise CommandError("the prompt is empty and the model has no bos_token_id to start from; give a prompt")
    return [start]


def complete(model, tokenizer, prompt: str, kwargs: dict[str, Any], stops: list[str], stream: bool) -> list[dict]:
    """Generate for one prompt; returns one ``{"text", "finish_reason", "num_tokens"}`` per sequence."""
    import torch

    prompt_ids = _prompt_ids(model, tokenizer, prompt)
    input_ids = torch.tensor([prompt_ids], device=model.device)
    criteria = [StopStrings(tokenizer, stops, prompt_ids)] if stops else None
    streamer = _make_streamer(tokenizer, stops) if stream else None
    try:
        with torch.inference_mode():
            output = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer,
                                    stopping_criteria=criteria, **kwargs)
    except (ValueError, TypeError, RuntimeError) as err:
        raise CommandError(str(err).strip().splitlines()[0]) from None
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
    pad = kwargs.get("pad_token_id", model.generation_config.pad_token_id)
    completions = []
    for row in output.tolist():
        new_ids = row[len(prompt_ids):]
        ended = next((i for i, token in enumerate(new_ids) if token in eos_ids), None)
        if ended is not None:
            new_ids = new_ids[:ended + 1]
        elif stops and pad is not None:  # a row stopped by a stop string is padded while the others go on
            while new_ids and new_ids[-1] == pad:
                new_ids.pop()
        text = _completion_text(tokenizer, prompt_ids, new_ids)
        cut = _first_stop(text, stops) if stops else None
        if cut is not None:
            text = text[:cut]
        reason = "stop" if cut is not None or ended is not None else "length"
        completions.append({"text": text, "finish_reason": reason, "num_tokens": len(new_ids)})
    return completions


def run(args) -> int:
    """Generate and print the continuation(s); returns the exit code."""
    import torch

    records, from_jsonl = read_prompts(args)
    stops = list(args.stop or [])
    if any(stop == "" for stop in stops):
        raise CommandError("--stop '': a stop string must not be empty")
    model, tokenizer, _ = load_causal_lm(args.model, "generate", args.dtype, args.device, args.quantization,
                                         args.threads)
    kwargs = generation_kwargs(args)
    if model.generation_config.pad_token_id is None and model.config.eos_token_id is not None:
        kwargs["pad_token_id"] = model.config.eos_token_id
    sequences = args.num_return_sequences
    beams = kwargs.get("num_beams", model.generation_config.num_beams or 1)
    sampling = kwargs.get("do_sample", model.generation_config.do_sample)
    if sequences > 1 and not sampling and beams < sequences:
        raise CommandError(f"--num-return-sequences {sequences} needs --do-sample, or --num-beams {sequences} or "
                           f"more: greedy search has one answer")
    as_json = args.json or from_jsonl
    stream = not (args.no_stream or as_json) and sequences == 1 and beams == 1
    if args.seed is not None:
        try:
            torch.manual_seed(args.seed)
        except RuntimeError as err:
            raise CommandError(f"--seed {args.seed}: {err}") from None
    printed = 0
    for record in records:
        completions = complete(model, tokenizer, record["prompt"], kwargs, stops, stream)
        if as_json:
            print(json.dumps({**record, "completions": completions}, ensure_ascii=False), flush=True)
            continue
        for completion in completions:
            if printed and not stream:
                print()
            if not stream:
                print(record["prompt"] + completion["text"], flush=True)
            printed += 1
        if stream and record is not records[-1]:
            print()
    return 0
