"""Runs the model for the engine: a prefill chunk of one sequence, or one decode over all running rows.

:class:`SlotRunner` keeps every sequence's keys/values in one :class:`~tongues.slot_cache.SlotCache`
(row = ``seq.slot``): a chunk of prompt goes into its row at the row's length, and a decode step
feeds one token per running row through ``forward_step``, each row at its own position.

:class:`RecomputeRunner` is the simpler path for models without a causal cache (XLM, which predicts
the next token at an appended mask token): every step reruns each sequence's whole text, one
sequence at a time, through the model's own ``prepare_inputs_for_generation``. It is exact and
slow (quadratic in the length), and cannot return prompt log-probabilities.
"""

from __future__ import annotations

import inspect

import torch

from ..slot_cache import SlotCache, forward_step
from .sequence import Sequence


def uses_causal_cache(model) -> bool:
    """True when the model's forward takes a ``past_key_values`` cache (all but XLM)."""
    return "past_key_values" in inspect.signature(model.forward).parameters


class SlotRunner:
    """Prefill chunks and batched decodes over one :class:`SlotCache` of ``slots`` rows."""

    supports_prompt_logprobs = True

    def __init__(self, model, slots: int, capacity: int) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.cache = SlotCache(slots=slots, capacity=capacity)

    def prefill(self, seq: Sequence, start: int, stop: int, all_logits: bool) -> torch.Tensor | None:
        """Put ``seq.prompt_ids[start:stop]`` into its row: logits (stop - start or 1, V), fp32."""
        ids = torch.tensor([seq.prompt_ids[start:stop]], device=self.device)  # (1, T)
        view = self.cache.view(seq.slot, seq.slot + 1)
        if not all_logits:
            return forward_step(self.model, ids, view).float()
        T = ids.shape[1]
        out = self.model(ids, attention_mask=view.attention_mask(T).to(self.device),
                         position_ids=view.position_ids(T).to(self.device), past_key_values=view, use_cache=True,
                         logits_to_keep=0, return_dict=True)
        return out.logits[0].float()  # (T, V)

    def decode(self, seqs: list[Sequence]) -> torch.Tensor:
        """One token for each running row (``seqs[i].slot == i``): logits (rows, V), fp32."""
        ids = torch.tensor([[seq.output_ids[-1]] for seq in seqs], device=self.device)  # (rows, 1)
        return forward_step(self.model, ids, self.cache.view(0, len(seqs))).float()

    def move(self, src: int, dst: int) -> None:
        self.cache.move(src, dst)

    def reset(self, row: int) -> None:
        self.cache.reset(row)


class RecomputeRunner:
    """The cache-free path: each step reruns every sequence whole (XLM)."""

    supports_prompt_logprobs = False

    def __init__(self, model) -> None:
        self.model = model
        self.device = next(model.parameters()).device

    def _last_logits(self, ids: list[int]) -> torch.Tensor:
        inputs = self.model.prepare_inputs_for_generation(torch.tensor([ids], device=self.device))
        return self.model(**inputs, return_dict=True).logits[0, -1].float()

    def prefill(self, seq: Sequence, start: int, stop: int, all_logits: bool) -> torch.Tensor | None:
        if stop < len(seq.prompt_ids):
            return None  # nothing is kept between chunks: only the last one runs
        return self._last_logits(seq.prompt_ids)[None]

    def decode(self, seqs: list[Sequence]) -> torch.Tensor:
        return torch.stack([self._last_logits(seq.all_ids) for seq in seqs])

    def move(self, src: int, dst: int) -> None:
        pass

    def reset(self, row: int) -> None:
        pass
