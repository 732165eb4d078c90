"""Helpers that build tiny random checkpoints with the oracle (transformers), for parity tests."""

from __future__ import annotations

import warnings

import torch


def save_oracle(model, path) -> str:
    """Save an oracle model into ``path`` and return the path as a string."""
    model.save_pretrained(str(path))
    return str(path)


def left_padded(batch: int, length: int, vocab: int, pads: list[int], pad_id: int = 0, low: int = 1,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids (B, T) in [low, vocab) with ``pads[b]`` pad tokens on the left of row b, and the mask."""
    ids = torch.randint(low, vocab, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.long)
    for b, n in enumerate(pads):
        ids[b, :n] = pad_id
        mask[b, :n] = 0
    return ids, mask


def right_padded(batch: int, length: int, vocab: int, pads: list[int], pad_id: int = 0):
    ids = torch.randint(1, vocab, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    for b, n in enumerate(pads):
        if n:
            ids[b, -n:] = pad_id
            mask[b, -n:] = 0
    return ids, mask


def assert_close(ours, ref, atol=1e-5, rtol=1e-5, mask=None):
    """``assert_close`` on (B, T, ...) tensors, optionally only where ``mask`` (B, T) is 1."""
    if mask is not None:
        keep = mask.bool()
        ours, ref = ours[keep], ref[keep]
    torch.testing.assert_close(ours, ref, atol=atol, rtol=rtol)


def run_both(pair, *args, seed=0, **kwargs):
    """``generate`` on the oracle's model and ours (``pair``), each after ``torch.manual_seed(seed)``."""
    ref_model, ours = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        ref = ref_model.generate(*args, **kwargs)
        torch.manual_seed(seed)
        got = ours.generate(*args, **kwargs)
    return ref, got
