"""Logits processors: functions that rewrite next-token scores before a token is chosen.

Each rule is a pure function ``(input_ids, scores, ...) -> scores`` over ``input_ids (B, T)`` and
``scores (B, V)``, wrapped in a tiny callable class (the names users know from the reference, so a
``LogitsProcessorList`` of them can be handed to ``generate``). :func:`build_logits_processors`
orders them exactly as the reference ``generate`` does -- order matters: sampling draws from the
final scores, and e.g. top-k after temperature keeps a different set than before it.

Example::

    scores = top_p_filter(temperature_scale(scores, 0.7), top_p=0.9)
    processors = build_logits_processors(config, prompt_length=12)
    scores = processors(input_ids, scores)
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import torch

NEG_INF = -float("inf")


def _as_id_tensor(token_ids: int | Sequence[int] | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """Token ids as a 1-D long tensor (an int becomes a one-element tensor)."""
    if isinstance(token_ids, torch.Tensor):
        ids = token_ids.to(device) if device is not None else token_ids
        return ids.reshape(-1)
    if isinstance(token_ids, int):
        token_ids = [token_ids]
    return torch.tensor(list(token_ids), dtype=torch.long, device=device)


def _check_min_tokens_to_keep(min_tokens_to_keep: int) -> None:
    if not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
        raise ValueError(f"`min_tokens_to_keep` must be a positive integer; got {min_tokens_to_keep!r}")


# ----------------------------------------------------------------------------------------------
# Pure functions
# ----------------------------------------------------------------------------------------------


def temperature_scale(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """``scores / temperature``: below 1 sharpens the distribution, above 1 flattens it."""
    return scores / temperature


def top_k_filter(
    scores: torch.Tensor, top_k: int, min_tokens_to_keep: int = 1, filter_value: float = NEG_INF
) -> torch.Tensor:
    """Keep the ``max(top_k, min_tokens_to_keep)`` best scores of each row (ties with the k-th kept too)."""
    k = min(max(top_k, min_tokens_to_keep), scores.shape[-1])
    kth_best = torch.topk(scores, k)[0][..., -1:]  # (B, 1)
    return scores.masked_fill(scores < kth_best, filter_value)


def top_p_filter(
    scores: torch.Tensor, top_p: float, min_tokens_to_keep: int = 1, filter_value: float = NEG_INF
) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of best tokens whose probability reaches ``top_p``.

    Works from the worst token up: a token goes when the mass of it and everything below it is at
    most ``1 - top_p``; the ``min_tokens_to_keep`` best always stay.
    """
    ascending, order = torch.sort(scores, descending=False)
    mass_up_to = ascending.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = mass_up_to <= (1 - top_p)
    drop_sorted[..., -min_tokens_to_keep:] = False
    drop = drop_sorted.scatter(1, order, drop_sorted)
    return scores.masked_fill(drop, filter_value)


def min_p_filter(
    scores: torch.Tensor, min_p: float, min_tokens_to_keep: int = 1, filter_value: float = NEG_INF
) -> torch.Tensor:
    """Drop tokens whose probability is below ``min_p`` times the best token's probability."""
    probs = torch.softmax(scores, dim=-1)
    drop = probs < min_p * probs.amax(dim=-1, keepdim=True)
    best = torch.topk(probs, min(min_tokens_to_keep, probs.shape[-1]), dim=-1).indices
    drop.scatter_(-1, best, False)
    return scores.masked_fill(drop, filter_value)


def typical_filter(
    scores: torch.Tensor, mass: float, min_tokens_to_keep: int = 1, filter_value: float = NEG_INF
) -> torch.Tensor:
    """Locally typical sampling (Meister et al., 2022): keep tokens whose surprise is closest to the entropy."""
    log_probs = torch.nn.functional.log_softmax(scores, dim=-1)
    probs = torch.exp(log_probs)
    entropy = -(log_probs * probs).nansum(-1, keepdim=True)
    distance = torch.abs((-log_probs) - entropy)
    sorted_distance, order = torch.sort(distance, descending=False)
    mass_so_far = scores.gather(-1, order).softmax(dim=-1).cumsum(dim=-1)
    cutoff = (mass_so_far < mass).sum(dim=1).clamp_(max=sorted_distance.shape[-1] - 1)
    drop_sorted = sorted_distance > sorted_distance.gather(1, cutoff.view(-1, 1))
    drop_sorted[..., :min_tokens_to_keep] = False
    drop = drop_sorted.scatter(1, order, drop_sorted)
    return scores.masked_fill(drop, filter_value)


def _keep_best(scores: torch.Tensor, drop: torch.Tensor, min_tokens_to_keep: int) -> torch.Tensor:
    k = min(min_tokens_to_keep, scores.shape[-1])
    return drop & (scores < torch.topk(scores, k)[0][..., -1:])


def epsilon_filter(
    scores: torch.Tensor, epsilon: float, min_tokens_to_keep: int = 1, filter_value: float = NEG_INF
) -> torch.Tensor:
    """Truncation sampling (Hewitt et al., 2022): drop tokens with probability below ``epsilon``."""
    drop = _keep_best(scores, scores.softmax(dim=-1) < epsilon, min_tokens_to_keep)
    return scores.masked_fill(drop, filter_value)


def eta_filter(
    scores: torch.Tensor, epsilon: float, min_tokens_to_keep: int = 1, filter_value: float = NEG_INF
) -> torch.Tensor:
    """Eta sampling (Hewitt et al., 2022): the threshold is ``min(eps, sqrt(eps) * exp(-entropy))``."""
    eps = torch.tensor(epsilon, device=scores.device)
    entropy = torch.distributions.Categorical(logits=scores).entropy()
    eta = torch.min(eps, torch.sqrt(eps) * torch.exp(-entropy))[..., None]
    drop = _keep_best(scores, scores.softmax(dim=-1) < eta, min_tokens_to_keep)
    return scores.masked_fill(drop, filter_value)


def top_h_filter(scores: torch.Tensor, top_h: float, top_n: int = 100, filter_value: float = NEG_INF) -> torch.Tensor:
    """Entropy-bounded truncation: add best tokens while their entropy share stays within ``top_h`` of the total."""
    keep = torch.zeros_like(scores, dtype=torch.bool)
    best, best_ids = torch.topk(scores, min(top_n, scores.shape[-1]), dim=-1, largest=True, sorted=True)
    dist = torch.distributions.Categorical(logits=best)
    probs = dist.probs
    budget = (dist.entropy() * top_h).unsqueeze(-1)
    selected = torch.cumsum(-probs * torch.log(probs), dim=-1) <= budget
    selected[:, 0] = True
    keep.scatter_(dim=1, index=best_ids, src=selected)
    out = scores.clone()
    out[~keep] = filter_value
    return out


def repetition_penalty(
    input_ids: torch.Tensor,
    scores: torch.Tensor,
    penalty: float,
    prompt_ignore_length: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al., 2019) on every token already present in ``input_ids``.

    Positive scores are divided by ``penalty``, negative ones multiplied, so the token always
    loses ground. ``prompt_ignore_length`` (an int, or one per row) skips that many leading
    positions -- ``generate`` passes each row's left padding, so pad tokens are not penalised.
    """
    vocab_size = scores.shape[-1]
    if isinstance(prompt_ignore_length, int):
        input_ids = input_ids[:, prompt_ignore_length:]
    elif isinstance(prompt_ignore_length, torch.Tensor):
        if prompt_ignore_length.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"prompt_ignore_length has {prompt_ignore_length.shape[0]} rows but input_ids has {input_ids.shape[0]}"
            )
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        skipped = positions[None, :] < prompt_ignore_length.to(input_ids.device)[:, None]
        input_ids = input_ids.masked_fill(skipped, vocab_size)  # parked in the spare column below
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(1)
    # Ids past the head's vocabulary (and skipped positions) land in one spare column, dropped after.
    input_ids = input_ids.clamp(max=vocab_size)
    padded = torch.nn.functional.pad(scores, (0, 1))
    seen = torch.gather(padded, 1, input_ids)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return padded.scatter(1, input_ids, seen)[..., :vocab_size]


def ban_repeated_ngrams(input_ids: torch.Tensor, scores: torch.Tensor, ngram_size: int) -> torch.Tensor:
    """Forbid any token that would complete an n-gram already present in the row (Paulus et al., 2017)."""
    length = input_ids.shape[-1]
    if length < ngram_size:
        return scores
    # The next token completes an n-gram whose first n-1 tokens are the current suffix: find every
    # earlier window starting with that suffix and ban the token that followed it.
    suffix = input_ids[:, length + 1 - ngram_size :]  # (B, n-1)
    windows = input_ids.unfold(dimension=1, size=ngram_size, step=1)  # (B, W, n)
    hits = (windows[..., :-1] == suffix.unsqueeze(1)).all(dim=-1)  # (B, W)
    vocab_size = scores.shape[-1]
    banned = scores.new_zeros((scores.shape[0], vocab_size + 1), dtype=torch.bool)
    targets = torch.where(hits, windows[..., -1].clamp(max=vocab_size), vocab_size)
    banned.scatter_(1, targets, True)
    return scores.masked_fill(banned[:, :vocab_size], NEG_INF)


def suppress_tokens(scores: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """Set the scores of ``token_ids`` to -inf (ids outside the vocabulary are ignored)."""
    vocab = scores.shape[-1]
    ids = token_ids.to(scores.device).reshape(-1)
    ids = ids[(ids >= 0) & (ids < vocab)]
    # index_fill, not a where over a (V,) mask: 17 against 490 us for BLOOM's 250,880 scores
    return scores.index_fill(-1, ids, NEG_INF)


def force_tokens(scores: torch.Tensor, token_ids: int | torch.Tensor) -> torch.Tensor:
    """Every score -inf except ``token_ids`` (score 0)."""
    forced = torch.full_like(scores, NEG_INF)
    forced[:, token_ids] = 0
    return forced


# ----------------------------------------------------------------------------------------------
# Callable classes
# ----------------------------------------------------------------------------------------------


class LogitsProcessor:
    """Base of the processors: ``processor(input_ids (B, T), scores (B, V)) -> scores (B, V)``."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(input_ids, scores)")


LogitsWarper = LogitsProcessor


class LogitsProcessorList(list):
    """A list of processors applied in order; itself a processor."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        for processor in self:
            scores = processor(input_ids, scores, **kwargs) if kwargs else processor(input_ids, scores)
        return scores


class MinLengthLogitsProcessor(LogitsProcessor):
    """Suppress end-of-sequence ids while the whole sequence is shorter than ``min_length``."""

    def __init__(self, min_length: int, eos_token_id, device="cpu"):
        if not isinstance(min_length, int) or min_length < 0:
            raise ValueError(f"`min_length` must be a non-negative integer; got {min_length!r}")
        self.min_length = min_length
        self.eos_token_id = _as_id_tensor(eos_token_id, device)

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] < self.min_length:
            return suppress_tokens(scores, self.eos_token_id)
        return scores.clone()


class MinNewTokensLengthLogitsProcessor(LogitsProcessor):
    """Suppress end-of-sequence ids until ``min_new_tokens`` tokens follow the prompt."""

    def __init__(self, prompt_length_to_skip: int, min_new_tokens: int, eos_token_id, device="cpu"):
        for name, value in (("prompt_length_to_skip", prompt_length_to_skip), ("min_new_tokens", min_new_tokens)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative integer; got {value!r}")
        self.prompt_length_to_skip = prompt_length_to_skip
        self.min_new_tokens = min_new_tokens
        self.eos_token_id = _as_id_tensor(eos_token_id, device)

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] - self.prompt_length_to_skip < self.min_new_tokens:
            return suppress_tokens(scores, self.eos_token_id)
        return scores.clone()


class TemperatureLogitsWarper(LogitsProcessor):
    def __init__(self, temperature: float):
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not temperature > 0:
            hint = " For greedy decoding set do_sample=False." if temperature == 0 else ""
            raise ValueError(f"`temperature` must be a strictly positive float; got {temperature!r}.{hint}")
        self.temperature = temperature

    def __call__(self, input_ids, scores):
        return temperature_scale(scores, self.temperature)


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    def __init__(self, penalty: float, prompt_ignore_length: int | torch.Tensor | None = None):
        if not isinstance(penalty, (int, float)) or isinstance(penalty, bool) or not penalty > 0:
            raise ValueError(f"`repetition_penalty` must be a strictly positive float; got {penalty!r}")
        if isinstance(prompt_ignore_length, int) and prompt_ignore_length < 0:
            raise ValueError(f"`prompt_ignore_length` must be non-negative; got {prompt_ignore_length}")
        if isinstance(prompt_ignore_length, torch.Tensor) and prompt_ignore_length.dim() != 1:
            raise ValueError(f"`prompt_ignore_length` must be 1-D (one per row); got shape {tuple(prompt_ignore_length.shape)}")
        self.penalty = penalty
        self.prompt_ignore_length = prompt_ignore_length

    def __call__(self, input_ids, scores):
        return repetition_penalty(input_ids, scores, self.penalty, self.prompt_ignore_length)


class _FilterWarper(LogitsProcessor):
    def __init__(self, min_tokens_to_keep: int = 1, filter_value: float = NEG_INF):
        _check_min_tokens_to_keep(min_tokens_to_keep)
        self.min_tokens_to_keep = min_tokens_to_keep
        self.filter_value = filter_value


class TopKLogitsWarper(_FilterWarper):
    def __init__(self, top_k: int, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k <= 0:
            raise ValueError(f"`top_k` must be a strictly positive integer; got {top_k!r}")
        super().__init__(min_tokens_to_keep, filter_value)
        self.top_k = max(top_k, min_tokens_to_keep)

    def __call__(self, input_ids, scores):
        return top_k_filter(scores, self.top_k, 1, self.filter_value)


class TopPLogitsWarper(_FilterWarper):
    def __init__(self, top_p: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        top_p = float(top_p)
        if not 0 <= top_p <= 1:
            raise ValueError(f"`top_p` must be a float in [0, 1]; got {top_p!r}")
        super().__init__(min_tokens_to_keep, filter_value)
        self.top_p = top_p

    def __call__(self, input_ids, scores):
        return top_p_filter(scores, self.top_p, self.min_tokens_to_keep, self.filter_value)


class MinPLogitsWarper(_FilterWarper):
    def __init__(self, min_p: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        if not 0 <= min_p <= 1:
            raise ValueError(f"`min_p` must be a float in [0, 1]; got {min_p!r}")
        super().__init__(min_tokens_to_keep, filter_value)
        self.min_p = min_p

    def __call__(self, input_ids, scores):
        return min_p_filter(scores, self.min_p, self.min_tokens_to_keep, self.filter_value)


class TypicalLogitsWarper(_FilterWarper):
    def __init__(self, mass: float = 0.9, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        mass = float(mass)
        if not 0 < mass < 1:
            raise ValueError(f"`typical_p` must be a float in (0, 1); got {mass!r}")
        super().__init__(min_tokens_to_keep, filter_value)
        self.mass = mass

    def __call__(self, input_ids, scores):
        return typical_filter(scores, self.mass, self.min_tokens_to_keep, self.filter_value)


class EpsilonLogitsWarper(_FilterWarper):
    def __init__(self, epsilon: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        epsilon = float(epsilon)
        if not 0 < epsilon < 1:
            raise ValueError(f"`epsilon_cutoff` must be a float in (0, 1); got {epsilon!r}")
        super().__init__(int(min_tokens_to_keep), filter_value)
        self.epsilon = epsilon

    def __call__(self, input_ids, scores):
        return epsilon_filter(scores, self.epsilon, self.min_tokens_to_keep, self.filter_value)


class EtaLogitsWarper(_FilterWarper):
    def __init__(self, epsilon: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1, device="cpu"):
        epsilon = float(epsilon)
        if not 0 < epsilon < 1:
            raise ValueError(f"`eta_cutoff` must be a float in (0, 1); got {epsilon!r}")
        super().__init__(int(min_tokens_to_keep), filter_value)
        self.epsilon = epsilon

    def __call__(self, input_ids, scores):
        return eta_filter(scores, self.epsilon, self.min_tokens_to_keep, self.filter_value)


class TopHLogitsWarper(LogitsProcessor):
    def __init__(self, top_h: float, filter_value: float = NEG_INF):
        if not 0 < top_h <= 1:
            raise ValueError(f"`top_h` must be a float in (0, 1]; got {top_h!r}")
        self.top_h = top_h
        self.filter_value = filter_value

    def __call__(self, input_ids, scores):
        return top_h_filter(scores, self.top_h, filter_value=self.filter_value)


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    def __init__(self, ngram_size: int):
        if not isinstance(ngram_size, int) or ngram_size <= 0:
            raise ValueError(f"`no_repeat_ngram_size` must be a strictly positive integer; got {ngram_size!r}")
        self.ngram_size = ngram_size

    def __call__(self, input_ids, scores):
        return ban_repeated_ngrams(input_ids, scores, self.ngram_size)


class SequenceBiasLogitsProcessor(LogitsProcessor):
    """Add a bias to the token that would complete each given token sequence.

    ``sequence_bias`` maps tuples of ids to a float, or is a list of ``[ids, bias]`` pairs. A
    one-token sequence is biased at every step; a longer one only when the row ends with its prefix.
    """

    def __init__(self, sequence_bias):
        if isinstance(sequence_bias, list) and sequence_bias and all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], list) for pair in sequence_bias
        ):
            sequence_bias = {tuple(ids): bias for ids, bias in sequence_bias}
        if not isinstance(sequence_bias, dict) or not sequence_bias:
            raise ValueError(
                f"`sequence_bias` must be a non-empty dict of id tuples -> float, or a list of [ids, float]; got {sequence_bias!r}"
            )
        for ids, bias in sequence_bias.items():
            if not isinstance(ids, tuple) or not ids or not all(isinstance(t, int) and t >= 0 for t in ids):
                raise ValueError(f"`sequence_bias` keys must be non-empty tuples of non-negative ids; got {ids!r}")
            if not isinstance(bias, float):
                raise ValueError(f"`sequence_bias` values must be floats; got {bias!r} for {ids!r}")
        self.sequence_bias = sequence_bias
        self._prepared = None

    def _prepare(self, scores: torch.Tensor):
        vocab_size = scores.shape[-1]
        too_large = [t for ids in self.sequence_bias for t in ids if t >= vocab_size]
        if too_large:
            raise ValueError(f"The model vocabulary has {vocab_size} tokens, but these biased ids are outside it: {too_large}")
        single = torch.zeros((vocab_size,), dtype=torch.float, device=scores.device)
        singles = [(ids[0], bias) for ids, bias in self.sequence_bias.items() if len(ids) == 1]
        if singles:
            single[[i for i, _ in singles]] = torch.tensor([b for _, b in singles], device=scores.device)
        # Longer sequences grouped by prefix length: one comparison per group at each step.
        groups: dict[int, list] = {}
        for ids, bias in self.sequence_bias.items():
            if len(ids) > 1:
                groups.setdefault(len(ids) - 1, []).append((ids, bias))
        multi = [
            (
                torch.tensor([ids[:-1] for ids, _ in group], device=scores.device),
                torch.tensor([ids[-1] for ids, _ in group], device=scores.device),
                torch.tensor([bias for _, bias in group], dtype=torch.float, device=scores.device),
            )
            for group in groups.values()
        ]
        self._prepared = (single, multi)

    def __call__(self, input_ids, scores):
        if self._prepared is None:
            self._prepare(scores)
        single, multi = self._prepared
        bias = torch.zeros_like(scores)
        bias += single
        for prefixes, last_ids, biases in multi:
            n = prefixes.shape[1]
            if n > input_ids.shape[1]:
                continue
            matching = (input_ids[:, None, -n:] == prefixes).all(dim=-1)  # (B, S)
            bias.index_add_(1, last_ids, torch.where(matching, biases, 0.0).to(bias.dtype))
        return scores + bias


class NoBadWordsLogitsProcessor(SequenceBiasLogitsProcessor):
    """Forbid the given token sequences (their last token is set to -inf after the prefix).

    A single-token entry equal to an end-of-sequence id is dropped, so generation can still end.
    """

    def __init__(self, bad_words_ids, eos_token_id=None):
        if (
            not isinstance(bad_words_ids, list) or not bad_words_ids
            or not all(isinstance(w, list) and all(isinstance(t, int) and t >= 0 for t in w) for w in bad_words_ids)
        ):
            raise ValueError(f"`bad_words_ids` must be a non-empty list of lists of non-negative ids; got {bad_words_ids!r}")
        if eos_token_id is not None:
            eos = _as_id_tensor(eos_token_id).tolist()
            bad_words_ids = [w for w in bad_words_ids if all(w != [e] for e in eos)]
        self.bad_words_ids = bad_words_ids
        super().__init__({tuple(w): NEG_INF for w in bad_words_ids})


class PrefixConstrainedLogitsProcessor(LogitsProcessor):
    """Allow only the tokens ``prefix_allowed_tokens_fn(batch_id, row_ids)`` returns."""

    def __init__(self, prefix_allowed_tokens_fn: Callable[[int, torch.Tensor], list[int]], num_beams: int):
        self.prefix_allowed_tokens_fn = prefix_allowed_tokens_fn
        self.num_beams = num_beams

    def __call__(self, input_ids, scores):
        mask = torch.full_like(scores, -math.inf)
        batch_size = input_ids.shape[0] // self.num_beams
        for batch_id in range(batch_size):
            for beam_id in range(self.num_beams):
                row = batch_id * self.num_beams + beam_id
                allowed = self.prefix_allowed_tokens_fn(batch_id, input_ids[row])
                if len(allowed) == 0:
                    raise ValueError(
                        f"prefix_allowed_tokens_fn returned no allowed token for batch id {batch_id}: "
                        "the constraint cannot be satisfied."
                    )
                mask[row, allowed] = 0
        constrained = scores + mask
        # When every allowed token of a prompt's beams already scores -inf, force them at 0 instead.
        stuck = constrained.amax(dim=-1).isneginf().view(batch_size, -1).all(dim=-1, keepdim=True)
        return torch.where(stuck.repeat_interleave(self.num_beams, dim=0), mask, constrained)


class ForcedBOSTokenLogitsProcessor(LogitsProcessor):
    def __init__(self, bos_token_id: int):
        self.bos_token_id = bos_token_id

    def __call__(self, input_ids, scores):
        return force_tokens(scores, self.bos_token_id) if input_ids.shape[-1] == 1 else scores


class ForcedEOSTokenLogitsProcessor(LogitsProcessor):
    def __init__(self, max_length: int, eos_token_id, device="cpu"):
        self.max_length = max_length
        self.eos_token_id = _as_id_tensor(eos_token_id, device)
        if torch.is_floating_point(self.eos_token_id) or (self.eos_token_id < 0).any():
            raise ValueError(f"`forced_eos_token_id` must be non-negative token ids; got {eos_token_id!r}")

    def __call__(self, input_ids, scores):
        return force_tokens(scores, self.eos_token_id) if input_ids.shape[-1] == self.max_length - 1 else scores


class InfNanRemoveLogitsProcessor(LogitsProcessor):
    """NaN -> 0 and +-inf -> the dtype's largest finite values, so sampling never sees them."""

    def __call__(self, input_ids, scores):
        info = torch.finfo(scores.dtype)
        out = torch.where(scores != scores, 0.0, scores)
        out = torch.where(scores == float("inf"), info.max, out)
        return torch.where(scores == -float("inf"), info.min, out)


class ExponentialDecayLengthPenalty(LogitsProcessor):
    """Past ``start`` new tokens, raise end-of-sequence scores by ``|score| * (factor ** steps - 1)``."""

    def __init__(self, exponential_decay_length_penalty: tuple[int, float], eos_token_id, input_ids_seq_length: int):
        self.regulation_start = exponential_decay_length_penalty[0] + input_ids_seq_length
        self.regulation_factor = exponential_decay_length_penalty[1]
        self.eos_token_id = _as_id_tensor(eos_token_id)
        if torch.is_floating_point(self.eos_token_id) or (self.eos_token_id < 0).any():
            raise ValueError(f"`eos_token_id` must be non-negative token ids; got {eos_token_id!r}")

    def __call__(self, input_ids, scores):
        length = input_ids.shape[-1]
        if length <= self.regulation_start:
            return scores
        eos = self.eos_token_id.to(scores.device)
        eos_scores = scores[:, eos]
        # |score| keeps the push upward for negative scores too; non-finite scores are left alone.
        boost = torch.abs(eos_scores) * (pow(self.regulation_factor, length - self.regulation_start) - 1)
        boost = boost.masked_fill(~torch.isfinite(eos_scores), 0.0)
        penalties = torch.zeros_like(scores)
        penalties[:, eos] = boost
        return scores + penalties


class LogitNormalization(LogitsProcessor):
    """Log-softmax the scores (``renormalize_logits``), always last."""

    def __call__(self, input_ids, scores):
        return scores.log_softmax(dim=-1)


class SuppressTokensLogitsProcessor(LogitsProcessor):
    def __init__(self, suppress_tokens: Iterable[int], device="cpu"):
        self.suppress_tokens = torch.tensor(list(suppress_tokens), dtype=torch.long, device=device)

    def __call__(self, input_ids, scores):
        return suppress_tokens(scores, self.suppress_tokens)


class SuppressTokensAtBeginLogitsProcessor(LogitsProcessor):
    def __init__(self, begin_suppress_tokens: Iterable[int], begin_index: int, device="cpu"):
        self.begin_suppress_tokens = torch.tensor(list(begin_suppress_tokens), dtype=torch.long, device=device)
        self.begin_index = begin_index

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] == self.begin_index:
            return suppress_tokens(scores, self.begin_suppress_tokens)
        return scores


# ----------------------------------------------------------------------------------------------
# Builder
# ----------------------------------------------------------------------------------------------


def merge_processors(defaults: list, custom: list | None) -> list:
    """User processors replace built ones of the same type in place; the others are appended."""
    if not custom:
        return defaults
    merged = type(defaults)()
    for built in defaults:
        replacement = next((c for c in custom if type(c) is type(built)), None)
        merged.append(replacement if replacement is not None else built)
    for c in custom:
        if c not in merged:
            merged.append(c)
    return merged


def build_logits_processors(
    config,
    prompt_length: int,
    eos_token_id: torch.Tensor | None = None,
    padding_lengths: torch.Tensor | None = None,
    prefix_allowed_tokens_fn: Callable | None = None,
    custom: list | None = None,
    device: torch.device | str = "cpu",
) -> LogitsProcessorList:
    """The processors ``generate`` applies, in the reference order.

    Order: sequence bias, repetition penalty, no-repeat n-gram, bad words, min length, min new
    tokens, prefix constraint, forced BOS/EOS, inf/nan removal, length decay, suppress tokens,
    suppress-at-begin; then user ``custom`` processors (replacing same-typed ones); then, only when
    sampling, the warpers temperature, top-h, top-k, top-p, min-p, typical, epsilon, eta; and
    finally log-softmax renormalisation.

    Args:
        config: a resolved :class:`GenerationConfig` (defaults filled in).
        prompt_length: length of the (padded) prompt, ``T``.
        eos_token_id: 1-D tensor of end-of-sequence ids, or None.
        padding_lengths: (B,) left-padding length of each row, for the repetition penalty.
    """
    processors = LogitsProcessorList()
    if config.sequence_bias is not None:
        processors.append(SequenceBiasLogitsProcessor(config.sequence_bias))
    if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(config.repetition_penalty, padding_lengths))
    if config.no_repeat_ngram_size is not None and config.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGramLogitsProcessor(config.no_repeat_ngram_size))
    if config.bad_words_ids is not None:
        processors.append(NoBadWordsLogitsProcessor(config.bad_words_ids, eos_token_id))
    if config.min_length is not None and eos_token_id is not None and config.min_length > 0:
        processors.append(MinLengthLogitsProcessor(config.min_length, eos_token_id, device=device))
    if config.min_new_tokens is not None and eos_token_id is not None and config.min_new_tokens > 0:
        processors.append(MinNewTokensLengthLogitsProcessor(prompt_length, config.min_new_tokens, eos_token_id, device))
    if prefix_allowed_tokens_fn is not None:
        processors.append(PrefixConstrainedLogitsProcessor(prefix_allowed_tokens_fn, config.num_beams))
    if config.forced_bos_token_id is not None:
        processors.append(ForcedBOSTokenLogitsProcessor(config.forced_bos_token_id))
    if config.forced_eos_token_id is not None:
        processors.append(ForcedEOSTokenLogitsProcessor(config.max_length, config.forced_eos_token_id, device))
    if config.remove_invalid_values is True:
        processors.append(InfNanRemoveLogitsProcessor())
    if config.exponential_decay_length_penalty is not None:
        processors.append(ExponentialDecayLengthPenalty(config.exponential_decay_length_penalty, eos_token_id, prompt_length))
    if config.suppress_tokens is not None:
        processors.append(SuppressTokensLogitsProcessor(config.suppress_tokens, device))
    if config.begin_suppress_tokens is not None:
        begin_index = prompt_length if (prompt_length > 1 or config.forced_bos_token_id is None) else prompt_length + 1
        processors.append(SuppressTokensAtBeginLogitsProcessor(config.begin_suppress_tokens, begin_index, device))

    processors = merge_processors(processors, custom)

    if config.do_sample:
        # Beam sampling must leave every beam one non-EOS continuation beside the EOS ones.
        if config.num_beams is not None and config.num_beams > 1:
            keep = (eos_token_id.shape[0] if eos_token_id is not None else 1) + 1
        else:
            keep = 1
        if config.temperature is not None and config.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(config.temperature))
        if config.top_h is not None:
            processors.append(TopHLogitsWarper(config.top_h))
        if config.top_k is not None and config.top_k != 0:
            processors.append(TopKLogitsWarper(config.top_k, min_tokens_to_keep=keep))
        if config.top_p is not None and config.top_p < 1.0:
            processors.append(TopPLogitsWarper(config.top_p, min_tokens_to_keep=keep))
        if config.min_p is not None:
            processors.append(MinPLogitsWarper(config.min_p, min_tokens_to_keep=keep))
        if config.typical_p is not None and config.typical_p < 1.0:
            processors.append(TypicalLogitsWarper(config.typical_p, min_tokens_to_keep=keep))
        if config.epsilon_cutoff is not None and 0.0 < config.epsilon_cutoff < 1.0:
            processors.append(EpsilonLogitsWarper(config.epsilon_cutoff, min_tokens_to_keep=keep))
        if config.eta_cutoff is not None and 0.0 < config.eta_cutoff < 1.0:
            processors.append(EtaLogitsWarper(config.eta_cutoff, min_tokens_to_keep=keep))
    if config.renormalize_logits is True:
        processors.append(LogitNormalization())
    return processors
