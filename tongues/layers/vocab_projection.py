"""The output layer of a masked or causal LM scored position by position: a linear layer or an adaptive softmax.

An adaptive softmax (Grave et al. 2017, "Efficient softmax approximation for GPUs") scores frequent
tokens in a head and rare ones in smaller tail clusters; torch's ``nn.AdaptiveLogSoftmaxWithLoss``
holds its weights under the keys ``head.*`` and ``tail.N.M.*``, the layout of the original XLM.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .losses import token_loss


class VocabProjection(nn.Module):
    """Hidden states (B, T, D) -> vocabulary scores (B, T, V) and, given labels, the loss without shift.

    The layer is ``proj``: ``nn.Linear(dim, vocab_size)`` (tieable to the word embeddings), or with
    ``cutoffs`` an ``nn.AdaptiveLogSoftmaxWithLoss(dim, vocab_size, cutoffs, div_value, head_bias=True)``,
    whose scores are log-probabilities (their argmax is the prediction) and whose loss is their
    negative log-likelihood. Labels are (B, T), -100 ignored, compared at the same position.

    Example::

        out = VocabProjection(64, 1000, cutoffs=[100, 500])
        scores, loss = out(torch.randn(2, 7, 64), labels)   # (2, 7, 1000), scalar
    """

    def __init__(self, dim: int, vocab_size: int, cutoffs: Sequence[int] | None = None, div_value: float = 4.0) -> None:
        super().__init__()
        self.adaptive = cutoffs is not None
        if self.adaptive:
            self.proj = nn.AdaptiveLogSoftmaxWithLoss(dim, vocab_size, cutoffs=cutoffs, div_value=float(div_value),
                                                      head_bias=True)
        else:
            self.proj = nn.Linear(dim, vocab_size)

    def forward(self, hidden: torch.Tensor, labels: torch.Tensor | None = None):
        """hidden (B, T, D) -> (scores (B, T, V), loss or None)."""
        if not self.adaptive:
            logits = self.proj(hidden)
            return logits, (token_loss(logits, labels) if labels is not None else None)
        lead, D = hidden.shape[:-1], hidden.shape[-1]
        log_probs = self.proj.log_prob(hidden.reshape(-1, D)).view(*lead, -1)  # (B, T, V)
        loss = None
        if labels is not None:
            if tuple(labels.shape) != tuple(lead):
                raise ValueError(f"labels has shape {tuple(labels.shape)}, expected {tuple(lead)}")
            loss = F.nll_loss(log_probs.float().reshape(-1, log_probs.shape[-1]), labels.reshape(-1).to(hidden.device),
                              ignore_index=-100)
        return log_probs, loss

    def resize_bias(self, rows: int) -> None:
        """After the tied weight was resized to ``rows`` tokens: resize the bias to match, new entries 0."""
        if self.adaptive:
            raise ValueError("an adaptive softmax cannot be resized: its clusters are fixed by its cutoffs")
        bias = self.proj.bias
        if bias is not None and bias.shape[0] != rows:
            new = torch.zeros(rows, dtype=bias.dtype, device=bias.device)
            n = min(rows, bias.shape[0])
            new[:n] = bias.detach()[:n]
            self.proj.bias = nn.Parameter(new)
        self.proj.out_features = rows
