"""One request's sampling settings (:class:`SamplingParams`) and the sampler that applies them to one row.

The penalties and filters are tongues' own processors (``tongues.generation.processors``); this file
only orders them the way OpenAI's and vLLM's servers do: repetition penalty (prompt and output),
presence and frequency penalties (output), temperature, top-k, top-p, then a draw from the
request's own ``torch.Generator``. Temperature 0 is greedy. Log-probabilities reported to the client
are those of the model's own distribution (log-softmax of the raw logits), as vLLM reports them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import native
from ..generation.processors import repetition_penalty, suppress_tokens, top_k_filter, top_p_filter

MAX_LOGPROBS = 20  # vLLM's default cap on top-k log-probabilities per token


class ParameterError(ValueError):
    """A request setting is wrong: ``param`` names it (the HTTP layer answers 400 with it)."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class SamplingParams:
    """The settings of one request (OpenAI's completion parameters, plus vLLM's ``ignore_eos``).

    Args:
        max_tokens: tokens to generate at most (``None``: up to the context length; 0: only
            score the prompt, for ``prompt_logprobs``).
        temperature: 0 is greedy; otherwise logits are divided by it before sampling.
        top_p / top_k: nucleus mass (1 = off) and number of best tokens (0 or -1 = off).
        seed: seeds this request's own generator (``None``: a random seed), so sampling repeats.
        stop: strings that end the text (not included in it); ``stop_token_ids``: extra end ids.
        ignore_eos: keep going past the model's end ids (for benchmarks).
        presence_penalty / frequency_penalty: OpenAI's, on tokens generated so far (-2..2).
        repetition_penalty: CTRL's, on prompt and output tokens (> 0; 1 = off).
        logprobs: also return each generated token's log-probability and the top ``logprobs`` ones.
        prompt_logprobs: also return the prompt tokens' log-probabilities (the top ``prompt_logprobs``).
        n: number of continuations of the prompt.
        logit_bias: OpenAI's ``{token id: bias}``, added to those tokens' logits before sampling
            (-100..100; -100 in effect bans a token, 100 forces it). Log-probabilities stay the model's.
        min_tokens: vLLM's: the end ids (and ``stop_token_ids``) cannot be drawn before this many
            tokens are generated (stop strings still apply).
    """

    max_tokens: int | None = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    n: int = 1
    skip_special_tokens: bool = True
    logit_bias: dict[int, float] = field(default_factory=dict)
    min_tokens: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the first setting out of range."""
        def number(name, low=None, high=None, integer=False, low_open=False):
            value = getattr(self, name)
            kinds = (int,) if integer else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds) or value != value:
                raise ParameterError(name, f"'{name}' must be {'an integer' if integer else 'a number'}; got {value!r}")
            if low is not None and (value <= low if low_open else value < low):
                raise ParameterError(name, f"'{name}' must be {'>' if low_open else '>='} {low}; got {value!r}")
            if high is not None and value > high:
                raise ParameterError(name, f"'{name}' must be <= {high}; got {value!r}")

        if self.max_tokens is not None:  # 0 scores the prompt only (echo with logprobs)
            number("max_tokens", 0, integer=True)
        number("temperature", 0, 100)
        number("top_p", 0, 1, low_open=True)
        number("top_k", -1, integer=True)
        number("presence_penalty", -2, 2)
        number("frequency_penalty", -2, 2)
        number("repetition_penalty", 0, 100, low_open=True)
        number("n", 1, 128, integer=True)
        if self.seed is not None:
            number("seed", -2**63, 2**64 - 1, integer=True)
        for name in ("logprobs", "prompt_logprobs"):
            if getattr(self, name) is not None:
                number(name, 0, MAX_LOGPROBS, integer=True)
        if not isinstance(self.stop, list) or not all(isinstance(s, str) and s for s in self.stop):
            raise ParameterError("stop", f"'stop' must be a non-empty string or a list of them; got {self.stop!r}")
        if len(self.stop) > 16:
            raise ParameterError("stop", f"'stop' takes at most 16 strings; got {len(self.stop)}")
        number("min_tokens", 0, integer=True)
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ParameterError("min_tokens", f"'min_tokens' ({self.min_tokens}) is larger than 'max_tokens' "
                                               f"({self.max_tokens})")
        if not isinstance(self.logit_bias, dict):
            raise ParameterError("logit_bias", f"'logit_bias' must map token ids to numbers; got {self.logit_bias!r}")
        for token, bias in self.logit_bias.items():
            if isinstance(token, bool) or not isinstance(token, int) or token < 0:
                raise ParameterError("logit_bias", f"'logit_bias' keys must be token ids; got {token!r}")
            if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -100 <= bias <= 100:
                raise ParameterError("logit_bias", f"'logit_bias' values must be numbers from -100 to 100; got "
                                                   f"{bias!r} for token {token}")
        if not isinstance(self.stop_token_ids, list) or not all(
                isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in self.stop_token_ids):
            raise ParameterError("stop_token_ids", f"'stop_token_ids' must be a list of token ids; got "
                                                   f"{self.stop_token_ids!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def generator(self, index: int, device: torch.device | str = "cpu") -> torch.Generator:
        """The generator of continuation ``index``: seeded by ``seed + index``, or at random."""
        generator = torch.Generator(device=device)
        seed = random.getrandbits(63) if self.seed is None else (self.seed + index) % 2**64
        generator.manual_seed(seed)
        return generator

    def replace(self, **changes: Any) -> "SamplingParams":
        return SamplingParams(**{**self.__dict__, **changes})


def adjust_logits(logits: torch.Tensor, params: SamplingParams, prompt_ids: list[int],
                  output_ids: list[int], end_ids: set[int] | frozenset = frozenset()) -> torch.Tensor:
    """(V,) logits after the request's penalties (repetition, presence, frequency), its ``logit_bias``
    and, while fewer than ``min_tokens`` are generated, its ``end_ids`` banned. ``logits`` is not changed."""
    if params.repetition_penalty != 1.0:
        seen = torch.tensor([prompt_ids + output_ids], device=logits.device)
        logits = repetition_penalty(seen, logits[None], params.repetition_penalty)[0]
    if output_ids and (params.presence_penalty or params.frequency_penalty):
        V = logits.shape[-1]
        ids = torch.tensor(output_ids, device=logits.device).clamp(max=V)
        counts = torch.bincount(ids, minlength=V + 1)[:V].to(logits.dtype)
        logits = logits - params.frequency_penalty * counts - params.presence_penalty * (counts > 0).to(logits.dtype)
    if params.logit_bias:  # its ids are inside the vocabulary (Engine.check_prompt)
        ids = torch.tensor(list(params.logit_bias), device=logits.device)
        biases = torch.tensor(list(params.logit_bias.values()), dtype=logits.dtype, device=logits.device)
        logits = logits.index_add(0, ids, biases)
    if len(output_ids) < params.min_tokens and end_ids:  # stop_token_ids past the vocabulary are ignored there
        logits = suppress_tokens(logits, torch.tensor(list(end_ids), dtype=torch.long))
    return logits


def sample_token(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    """Draw one token from (V,) adjusted logits: argmax at temperature 0, else temperature/top-k/top-p."""
    if params.greedy:
        return int(native.argmax(logits.reshape(-1)))
    scores = logits[None].float() / params.temperature
    if params.top_k > 0:
        scores = top_k_filter(scores, params.top_k)
    if params.top_p < 1.0:
        scores = top_p_filter(scores, params.top_p)
    probs = scores.softmax(dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def top_logprobs(log_probs: torch.Tensor, k: int) -> list[tuple[int, float]]:
    """The ``k`` best (token id, log-probability) pairs of a (V,) log-probability row."""
    if k <= 0:
        return []
    values, ids = torch.topk(log_probs, min(k, log_probs.shape[-1]))
    return list(zip(ids.tolist(), values.tolist()))
