"""One continuation being generated: its tokens, its streamed text, and why it finished."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

import torch

from .detokenize import detokenize_incrementally
from .sampling import SamplingParams

CONTEXT_TOKENS = 5  # prompt tokens decoded with the first new ones, so they keep their leading space


class Status(enum.Enum):
    WAITING = "waiting"        # queued, no cache row yet
    PREFILLING = "prefilling"  # has a row; its prompt goes in chunk by chunk
    RUNNING = "running"        # prompt done; decodes one token per step
    FINISHED = "finished"


@dataclass
class TokenLogprob:
    """A token, its log-probability and the ``top`` best alternatives (id, log-probability)."""

    token_id: int
    logprob: float | None
    top: list[tuple[int, float]] = field(default_factory=list)


class Sequence:
    """Continuation ``index`` of request ``request_id``: prompt, generated ids, text, status, cache row."""

    def __init__(self, request_id: str, index: int, prompt_ids: list[int], params: SamplingParams,
                 generator: torch.Generator, end_ids: set[int], max_length: int) -> None:
        self.request_id, self.index = request_id, index
        self.prompt_ids = list(prompt_ids)
        self.output_ids: list[int] = []
        self.params = params
        self.generator = generator
        self.end_ids = set() if params.ignore_eos else set(end_ids)
        self.end_ids.update(params.stop_token_ids)
        self.max_length = max_length  # prompt + output may not pass it (the context, or the cache)
        self.status = Status.WAITING
        self.slot: int | None = None
        self.num_prefilled = 0
        self.finish_reason: str | None = None
        self.error: str | None = None  # why it finished with "error"
        self.prompt_logprobs: list[TokenLogprob] = []  # filled during prefill when asked for
        self.logprobs: list[TokenLogprob] = []
        # The last row of a prefill chunk predicts the next chunk's first token.
        self.carry_logprobs: torch.Tensor | None = None
        self.final_sent = False
        # Text: everything decoded so far, and how much of it has been handed out.
        self.text = ""
        self.sent = 0
        self.cut_by_stop_string = False
        self.read_offset = len(self.prompt_ids)
        self.prefix_offset = max(0, self.read_offset - CONTEXT_TOKENS)
        self.arrival = time.monotonic()
        self.first_token_time: float | None = None
        self.last_token_time: float | None = None

    @property
    def all_ids(self) -> list[int]:
        return self.prompt_ids + self.output_ids

    @property
    def finished(self) -> bool:
        return self.status is Status.FINISHED

    def append(self, token_id: int, tokenizer, logprob: TokenLogprob | None = None) -> None:
        """Add a generated token, extend the text, and finish on an end id, a stop string or the length."""
        self.output_ids.append(token_id)
        if logprob is not None:
            self.logprobs.append(logprob)
        if token_id in self.end_ids:
            self.finish("stop")
            return
        new_text, self.prefix_offset, self.read_offset = detokenize_incrementally(
            tokenizer, self.all_ids, self.prefix_offset, self.read_offset, self.params.skip_special_tokens)
        self.text += new_text
        if new_text and self.params.stop and self._cut_at_stop(len(new_text)):
            self.finish("stop")
        elif len(self.output_ids) >= (self.params.max_tokens or self.max_length) or \
                len(self.prompt_ids) + len(self.output_ids) >= self.max_length:
            self.finish("length")

    def _cut_at_stop(self, added: int) -> bool:
        longest = max(map(len, self.params.stop))
        start = max(0, len(self.text) - added - longest + 1)  # a stop may begin in earlier text
        found = [i for i in (self.text.find(stop, start) for stop in self.params.stop) if i >= 0]
        if found:
            self.text = self.text[:min(found)]
            self.cut_by_stop_string = True
        return bool(found)

    def finish(self, reason: str) -> None:
        """Mark finished with ``reason``: "stop" (end id or stop string), "length", "abort" or "error"."""
        if not self.finished:
            self.finish_reason = reason
            self.status = Status.FINISHED

    def flush(self, tokenizer) -> None:
        """At the end, release text held back as an incomplete character (unless a stop string cut it)."""
        if not self.cut_by_stop_string and self.finish_reason != "error":
            new_text, self.prefix_offset, self.read_offset = detokenize_incrementally(
                tokenizer, self.all_ids, self.prefix_offset, self.read_offset, self.params.skip_special_tokens,
                final=True)
            self.text += new_text

    def take_text(self) -> str:
        """The text not handed out yet, keeping back what may be the start of a stop string."""
        end = len(self.text)
        if self.params.stop and not self.finished:
            end = max(self.sent, end - (max(map(len, self.params.stop)) - 1))
        delta, self.sent = self.text[self.sent:end], max(self.sent, end)
        return delta
