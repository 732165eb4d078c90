"""Stopping criteria: ``criterion(input_ids (B, T), scores) -> (B,) bool``, True where a row is done.

``generate`` always stops at ``max_length``; with end-of-sequence ids each row also stops on its
own when it emits one (and is then padded while the others go on).
"""

from __future__ import annotations

import time

import torch


class StoppingCriteria:
    """Base class: ``criterion(input_ids, scores, **kwargs) -> (B,) bool tensor``."""

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(input_ids, scores)")


class MaxLengthCriteria(StoppingCriteria):
    """Every row is done once the sequences (prompt included) reach ``max_length``."""

    def __init__(self, max_length: int, max_position_embeddings: int | None = None):
        self.max_length = max_length
        self.max_position_embeddings = max_position_embeddings

    def __call__(self, input_ids, scores, **kwargs):
        done = input_ids.shape[1] >= self.max_length
        return torch.full((input_ids.shape[0],), done, device=input_ids.device, dtype=torch.bool)


class MaxTimeCriteria(StoppingCriteria):
    """Every row is done once ``max_time`` seconds have passed since ``initial_timestamp`` (default: now)."""

    def __init__(self, max_time: float, initial_timestamp: float | None = None):
        self.max_time = max_time
        self.initial_timestamp = time.time() if initial_timestamp is None else initial_timestamp

    def __call__(self, input_ids, scores, **kwargs):
        done = time.time() - self.initial_timestamp > self.max_time
        return torch.full((input_ids.shape[0],), done, device=input_ids.device, dtype=torch.bool)


class EosTokenCriteria(StoppingCriteria):
    """A row is done when its last token is one of ``eos_token_id`` (an int, a list or a 1-D tensor)."""

    def __init__(self, eos_token_id):
        if not isinstance(eos_token_id, torch.Tensor):
            eos_token_id = torch.tensor([eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id))
        self.eos_token_id = eos_token_id

    def __call__(self, input_ids, scores, new_token_length: int = 1, **kwargs):
        self.eos_token_id = self.eos_token_id.to(input_ids.device)
        return torch.isin(input_ids[:, -new_token_length:], self.eos_token_id).any(dim=-1)


class StoppingCriteriaList(list):
    """Criteria combined with OR."""

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        done = torch.full((input_ids.shape[0],), False, device=input_ids.device, dtype=torch.bool)
        for criterion in self:
            done = done | criterion(input_ids, scores, **kwargs)
        return done

    @property
    def max_length(self) -> int | None:
        for criterion in self:
            if isinstance(criterion, MaxLengthCriteria):
                return criterion.max_length
        return None


def build_stopping_criteria(config, eos_token_id: torch.Tensor | None, max_position_embeddings=None, custom=None):
    """Max length, max time and end-of-sequence criteria, then ``custom`` (same-typed ones replace built ones)."""
    from .processors import merge_processors

    criteria = StoppingCriteriaList()
    if config.max_length is not None:
        criteria.append(MaxLengthCriteria(config.max_length, max_position_embeddings))
    if config.max_time is not None:
        criteria.append(MaxTimeCriteria(config.max_time))
    if eos_token_id is not None:
        criteria.append(EosTokenCriteria(eos_token_id))
    return merge_processors(criteria, custom)
