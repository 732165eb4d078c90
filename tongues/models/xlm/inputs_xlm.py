"""XLM's per-token inputs as the spec gives them: for the whole sequence, even when a cache holds its start.

A forward computes only the positions after the cached ones; :func:`new_columns` cuts ``langs``,
``token_type_ids`` and ``position_ids`` to those positions and checks them against the tables they
index, so a bad id is an error naming the input and the config field rather than an IndexError.
"""

from __future__ import annotations

import torch

from ...layers.inputs import last_columns
from .configuration_xlm import XLMConfig


def new_columns(config: XLMConfig, batch_size: int, length: int, past: int, device: torch.device, langs,
                token_type_ids, position_ids, lang_table: bool):
    """``(langs, token_type_ids, position_ids)`` of the ``length - past`` new positions, each (B, T) or None.

    Each may be given (B, S) for the whole sequence or (B, T) for the new positions only. Positions
    default to ``past .. S - 1`` (shape (1, T)). ``lang_table``: the model has language embeddings, so
    ``langs`` must lie in ``[0, config.n_langs)`` (without them ``langs`` is ignored, as in the reference).
    """
    B, S, T = batch_size, length, length - past
    if position_ids is None:
        if S > config.max_position_embeddings:
            raise ValueError(f"the input has {S} positions but XLM's position table has "
                             f"{config.max_position_embeddings} (config.max_position_embeddings)")
        position_ids = torch.arange(past, S, device=device)[None, :]  # (1, T)
    else:
        position_ids = last_columns(position_ids, "position_ids", B, S, T)
        if int(position_ids.min()) < 0 or int(position_ids.max()) >= config.max_position_embeddings:
            low, high = int(position_ids.min()), int(position_ids.max())
            raise ValueError(f"position_ids must lie in [0, {config.max_position_embeddings}) "
                             f"(config.max_position_embeddings); got {low}..{high}")
    langs = last_columns(langs, "langs", B, S, T)
    token_type_ids = last_columns(token_type_ids, "token_type_ids", B, S, T)
    if langs is not None and lang_table and (int(langs.min()) < 0 or int(langs.max()) >= config.n_langs):
        raise ValueError(f"langs holds language id {int(langs.max())}, outside [0, {config.n_langs}) "
                         "(config.n_langs); see config.lang2id")
    if token_type_ids is not None:
        if int(token_type_ids.min()) < 0 or int(token_type_ids.max()) >= config.vocab_size:
            raise ValueError(f"token_type_ids index the word embeddings and must lie in [0, {config.vocab_size}); "
                             f"got {int(token_type_ids.min())}..{int(token_type_ids.max())}")
    return langs, token_type_ids, position_ids
