"""Embedding modules families share: a scaled token embedding and fixed sinusoidal position tables."""

from __future__ import annotations

import torch
from torch import nn

from .sinusoidal import interleaved_sinusoidal_table, sinusoidal_table


class ScaledEmbedding(nn.Embedding):
    """Token embedding multiplied by ``embed_scale`` (``sqrt(d_model)`` when ``config.scale_embedding``).

    The scale lives in the module, as in fairseq, so ``get_input_embeddings()(ids)`` gives exactly
    what the model adds positions to, and ``inputs_embeds`` built that way match ``input_ids``.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 embed_scale: float = 1.0, **kwargs) -> None:
        super().__init__(num_embeddings, embedding_dim, padding_idx, **kwargs)
        self.embed_scale = embed_scale

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(input_ids) * self.embed_scale


class GrowingSinusoidalPositions(nn.Module):
    """Position vectors (B, T, D) from a fixed sinusoidal table (:func:`sinusoidal_table`) that grows when
    a longer input comes; position p reads row p + ``offset`` (fairseq reserves rows below its padding row).

    The table is a non-persistent buffer: computed, never stored in checkpoints.
    """

    def __init__(self, num_positions: int, embedding_dim: int, padding_idx: int | None = None,
                 offset: int = 0) -> None:
        super().__init__()
        self.offset = offset
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.register_buffer("weights", sinusoidal_table(num_positions + self.offset, embedding_dim, padding_idx),
                             persistent=False)

    def reset_buffers(self) -> None:
        table = sinusoidal_table(self.weights.shape[0], self.embedding_dim, self.padding_idx)
        self.weights = table.to(device=self.weights.device, dtype=self.weights.dtype)

    @torch.no_grad()
    def forward(self, position_ids: torch.Tensor, past_length: int = 0) -> torch.Tensor:
        B, T = position_ids.shape
        rows = position_ids + self.offset
        low, high = (int(v) for v in torch.aminmax(rows))
        if low < 0:
            raise ValueError(f"position_ids must be >= -{self.offset}; got {low - self.offset}")
        # The table has no learned weights, so it grows instead of failing (as fairseq's does).
        needed = max(high + 1, self.offset + past_length + T)
        if needed > self.weights.shape[0]:
            table = sinusoidal_table(needed, self.embedding_dim, self.padding_idx)
            self.weights = table.to(device=self.weights.device, dtype=self.weights.dtype)
        return self.weights.index_select(0, rows.reshape(-1)).view(B, T, -1)  # (B, T, D)


class FrozenSinusoidalEmbedding(nn.Embedding):
    """An ``nn.Embedding`` holding a fixed interleaved sinusoidal table, frozen (XLM, as in facebookresearch/XLM).

    It stays a parameter (checkpoint key ``position_embeddings.weight``) so that checkpoints load
    unchanged; the table is rebuilt only when a checkpoint lacks it.
    """

    def __init__(self, num_positions: int, dim: int) -> None:
        super().__init__(num_positions, dim)
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def reset_table(self) -> None:
        self.weight.copy_(interleaved_sinusoidal_table(self.num_embeddings, self.embedding_dim))
