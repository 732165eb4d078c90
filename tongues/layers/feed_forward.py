"""The two-layer feed-forward network of a Transformer block, under the checkpoint's names."""

from __future__ import annotations

from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn


class FeedForward(nn.Module):
    """``dropout(second(activation(first(x))))``: (B, T, D) -> (B, T, D).

    ``names`` are the checkpoint's attribute names of the two projections given to ``__init__``
    (XLM's ``lin1``/``lin2``); any module mapping the last dimension serves (``nn.Linear``,
    GPT-2's ``Conv1D``). ``dropout`` applies to the output, in training only.

    Example::

        class TransformerFFN(FeedForward):
            names = ("lin1", "lin2")
    """

    names: ClassVar[tuple[str, str]] = ("fc1", "fc2")

    def __init__(self, first: nn.Module, second: nn.Module, activation: Callable[[torch.Tensor], torch.Tensor],
                 dropout: float = 0.0) -> None:
        super().__init__()
        for name, module in zip(self.names, (first, second)):
            setattr(self, name, module)
        self.act = activation
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = (getattr(self, name) for name in self.names)
        return F.dropout(second(self.act(first(x))), self.dropout, self.training)
