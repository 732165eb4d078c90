"""Pooling a sequence into one vector, and the SQuAD span heads with beam search over starts and ends.

:class:`SequenceSummary` is the pooler of XLM/XLNet/GPT-style classifiers: pick (or average, or
attend over) the hidden states, then dropout -> optional projection -> optional activation ->
dropout. The SQuAD heads follow XLNet's answer layer (Yang et al. 2019, ``modeling.py`` of
zihangdai/xlnet): start scores per token; end scores conditioned on a start; an answerability logit
from the start and the classification token; at inference the top ``start_n_top`` starts, and for
each the top ``end_n_top`` ends.

Submodule names are the checkpoint keys of the models that use them (``summary``, ``dense``,
``dense_0``, ``LayerNorm``, ``dense_1``, ``start_logits``, ``end_logits``, ``answer_class``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import get_activation

SUMMARY_TYPES = ("last", "first", "mean", "cls_index", "attn")


def gather_positions(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``hidden[..., index, :]`` per leading row: hidden (*lead, T, D), index (*lead) -> (*lead, D)."""
    if tuple(index.shape) != tuple(hidden.shape[:-2]):
        raise ValueError(
            f"position index of shape {tuple(index.shape)} must match the leading dimensions {tuple(hidden.shape[:-2])} "
            f"of hidden states shaped {tuple(hidden.shape)}"
        )
    T = hidden.shape[-2]
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= T):
        raise ValueError(f"position index holds {int(index.min())}..{int(index.max())}, outside the sequence [0, {T})")
    index = index.long()[..., None, None].expand(*index.shape, 1, hidden.shape[-1])  # (*lead, 1, D)
    return hidden.gather(-2, index).squeeze(-2)


class LearnedQueryAttentionPool(nn.Module):
    """Multi-head attention from one learned query over the sequence, then an output projection and LayerNorm.

    XLNet's ``summarize_sequence(summary_type="attn")``: the query is a learned vector, projections
    have no bias, and there is no residual. Padded keys (``attention_mask == 0``) are ignored.
    """

    def __init__(self, hidden_size: int, num_heads: int, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"attention pooling: hidden_size {hidden_size} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.query = nn.Parameter(torch.zeros(hidden_size))
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (*lead, T, D), attention_mask (*lead, T) -> (*lead, D)."""
        lead, (T, D) = hidden.shape[:-2], hidden.shape[-2:]
        H = self.num_heads
        x = hidden.reshape(-1, T, D)  # (B, T, D)
        B = x.shape[0]
        q = self.q_proj(self.query.to(x.dtype)).view(1, H, 1, D // H).expand(B, H, 1, D // H)  # (B, H, 1, D/H)
        k = self.k_proj(x).view(B, T, H, D // H).transpose(1, 2)  # (B, H, T, D/H)
        v = self.v_proj(x).view(B, T, H, D // H).transpose(1, 2)
        bias = None
        if attention_mask is not None:
            hidden_keys = attention_mask.reshape(B, 1, 1, T) == 0
            bias = torch.zeros(hidden_keys.shape, dtype=x.dtype, device=x.device).masked_fill(
                hidden_keys, torch.finfo(x.dtype).min)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, H, 1, D/H)
        out = self.layer_norm(self.o_proj(out.transpose(1, 2).reshape(B, D)))
        return out.view(*lead, D)


class SequenceSummary(nn.Module):
    """One vector per sequence: pool the hidden states, then dropout, project, activate, dropout.

    Args:
        hidden_size: D, the width of the hidden states.
        summary_type: ``"last"`` (last position), ``"first"`` (first position), ``"mean"`` (average over
            every position, padding included, as the reference does), ``"cls_index"`` (the position
            given by ``cls_index``, the last one when it is ``None``) or ``"attn"`` (attention from a
            learned query, see :class:`LearnedQueryAttentionPool`).
        num_outputs: width of the projection ``summary`` (``None``: no projection).
        activation: name of an activation after the projection (``"tanh"`` ...), ``None`` for none.
        first_dropout / last_dropout: dropout before the projection / after the activation.
        num_heads, layer_norm_eps: for ``"attn"`` only.

    Raises:
        ValueError: an unknown ``summary_type`` or activation name.

    Example::

        pool = SequenceSummary(64, "first", num_outputs=3)
        pool(torch.randn(2, 7, 64)).shape   # (2, 3)
    """

    def __init__(self, hidden_size: int, summary_type: str = "last", num_outputs: int | None = None,
                 activation: str | None = None, first_dropout: float = 0.0, last_dropout: float = 0.0,
                 num_heads: int = 1, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        if summary_type not in SUMMARY_TYPES:
            raise ValueError(f"summary_type must be one of {SUMMARY_TYPES}; got {summary_type!r}")
        self.summary_type = summary_type
        if summary_type == "attn":
            self.pool = LearnedQueryAttentionPool(hidden_size, num_heads, layer_norm_eps)
        self.summary = nn.Linear(hidden_size, num_outputs) if num_outputs else nn.Identity()
        self.activation = get_activation(activation) if activation else (lambda x: x)
        self.first_dropout = nn.Dropout(first_dropout) if first_dropout > 0 else nn.Identity()
        self.last_dropout = nn.Dropout(last_dropout) if last_dropout > 0 else nn.Identity()

    @classmethod
    def from_config(cls, config) -> "SequenceSummary":
        """Built from a config's ``summary_*`` fields, as XLM/XLNet/GPT configs spell them."""
        num_outputs = None
        if getattr(config, "summary_use_proj", False):
            to_labels = getattr(config, "summary_proj_to_labels", False) and config.num_labels > 0
            num_outputs = config.num_labels if to_labels else config.hidden_size
        return cls(config.hidden_size, getattr(config, "summary_type", "last"), num_outputs,
                   getattr(config, "summary_activation", None), getattr(config, "summary_first_dropout", 0.0) or 0.0,
                   getattr(config, "summary_last_dropout", 0.0) or 0.0,
                   getattr(config, "num_attention_heads", 1), getattr(config, "layer_norm_eps", 1e-12))

    def forward(self, hidden: torch.Tensor, cls_index: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (*lead, T, D) -> (*lead, num_outputs or D).

        ``cls_index`` (*lead) picks the position for ``"cls_index"``; ``attention_mask`` (*lead, T)
        hides padding from ``"attn"`` (the other types ignore it, as the reference does).
        """
        kind = self.summary_type
        if kind == "last":
            out = hidden[..., -1, :]
        elif kind == "first":
            out = hidden[..., 0, :]
        elif kind == "mean":
            out = hidden.mean(dim=-2)
        elif kind == "cls_index":
            out = hidden[..., -1, :] if cls_index is None else gather_positions(hidden, cls_index)
        else:
            out = self.pool(hidden, attention_mask)
        out = self.first_dropout(out)
        out = self.activation(self.summary(out))
        return self.last_dropout(out)


def mask_scores(scores: torch.Tensor, p_mask: torch.Tensor | None) -> torch.Tensor:
    """Push the scores of positions with ``p_mask == 1`` to -1e30 (-65500 in fp16), as XLNet does."""
    if p_mask is None:
        return scores
    big = 65500 if p_mask.dtype == torch.float16 else 1e30
    return scores * (1 - p_mask) - big * p_mask


class SpanStartLogits(nn.Module):
    """Start score per token: ``dense`` (D -> 1). (B, T, D) -> (B, T)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor, p_mask: torch.Tensor | None = None) -> torch.Tensor:
        return mask_scores(self.dense(hidden).squeeze(-1), p_mask)


class SpanEndLogits(nn.Module):
    """End score per token given a start: ``dense_1(LayerNorm(tanh(dense_0([h_t; h_start]))))``."""

    def __init__(self, hidden_size: int, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.dense_0 = nn.Linear(2 * hidden_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dense_1 = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor, start_states: torch.Tensor | None = None,
                start_positions: torch.Tensor | None = None, p_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (B, T, D) with ``start_positions`` (B,), or hidden and ``start_states`` of one shape (..., D).

        Returns the scores with the last dimension dropped. ``start_positions`` wins when both are given.
        """
        if start_positions is not None:
            start = gather_positions(hidden, start_positions)  # (B, D)
            start_states = start[:, None, :].expand_as(hidden)  # (B, T, D)
        elif start_states is None:
            raise ValueError("SpanEndLogits needs start_states or start_positions")
        x = torch.tanh(self.dense_0(torch.cat([hidden, start_states], dim=-1)))
        return mask_scores(self.dense_1(self.LayerNorm(x)).squeeze(-1), p_mask)


class AnswerabilityLogit(nn.Module):
    """Is-impossible logit per sequence from the start and classification-token states: ``dense_1(tanh(dense_0(·)))``."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.dense_0 = nn.Linear(2 * hidden_size, hidden_size)
        self.dense_1 = nn.Linear(hidden_size, 1, bias=False)

    def forward(self, hidden: torch.Tensor, start_states: torch.Tensor | None = None,
                start_positions: torch.Tensor | None = None, cls_index: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (B, T, D); ``start_states`` (B, D) or ``start_positions`` (B,); ``cls_index`` (B,) (default: last).

        Returns (B,). The logit does not depend on the end, so one value serves every candidate span.
        """
        if start_positions is not None:
            start_states = gather_positions(hidden, start_positions)  # (B, D)
        elif start_states is None:
            raise ValueError("AnswerabilityLogit needs start_states or start_positions")
        cls_state = hidden[:, -1, :] if cls_index is None else gather_positions(hidden, cls_index)  # (B, D)
        x = torch.tanh(self.dense_0(torch.cat([start_states, cls_state], dim=-1)))
        return self.dense_1(x).squeeze(-1)


class BeamSpanHead(nn.Module):
    """XLNet's SQuAD answer layer: start scores, end scores given a start, and an answerability logit.

    Training (``start_positions`` and ``end_positions`` given) returns ``{"loss"}``: the mean of the
    start and end cross-entropies (end scores conditioned on the gold start), plus half the binary
    cross-entropy of ``is_impossible`` when it and ``cls_index`` are given -- the weights of XLNet
    and of the reference.

    Inference returns ``start_top_log_probs``/``start_top_index`` (B, start_n_top), for each of those
    starts the best ends ``end_top_log_probs``/``end_top_index`` (B, start_n_top * end_n_top, laid out
    end-major: entry ``e * start_n_top + s`` is the e-th end of the s-th start) and ``cls_logits`` (B,),
    computed from the probability-weighted average start state.
    """

    def __init__(self, hidden_size: int, start_n_top: int, end_n_top: int, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.start_n_top = start_n_top
        self.end_n_top = end_n_top
        self.start_logits = SpanStartLogits(hidden_size)
        self.end_logits = SpanEndLogits(hidden_size, layer_norm_eps)
        self.answer_class = AnswerabilityLogit(hidden_size)

    def forward(self, hidden: torch.Tensor, start_positions: torch.Tensor | None = None,
                end_positions: torch.Tensor | None = None, cls_index: torch.Tensor | None = None,
                is_impossible: torch.Tensor | None = None,
                p_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """hidden (B, T, D); positions, ``cls_index``, ``is_impossible`` (B,) or (B, 1); ``p_mask`` (B, T), 1 = no answer."""
        B, T, D = hidden.shape
        if p_mask is not None and tuple(p_mask.shape) != (B, T):
            raise ValueError(f"p_mask has shape {tuple(p_mask.shape)}, expected (batch, sequence) = ({B}, {T})")
        start_logits = self.start_logits(hidden, p_mask=p_mask)  # (B, T)
        if start_positions is not None and end_positions is not None:
            start_positions, end_positions, cls_index, is_impossible = (
                x.squeeze(-1) if x is not None and x.dim() > 1 else x
                for x in (start_positions, end_positions, cls_index, is_impossible))
            end_logits = self.end_logits(hidden, start_positions=start_positions, p_mask=p_mask)  # (B, T)
            loss = (F.cross_entropy(start_logits, start_positions) + F.cross_entropy(end_logits, end_positions)) / 2
            if cls_index is not None and is_impossible is not None:
                cls_logits = self.answer_class(hidden, start_positions=start_positions, cls_index=cls_index)
                loss = loss + 0.5 * F.binary_cross_entropy_with_logits(cls_logits, is_impossible.to(cls_logits.dtype))
            return {"loss": loss}

        k_start, k_end = self.start_n_top, self.end_n_top
        if max(k_start, k_end) > T:
            raise ValueError(
                f"start_n_top={k_start} / end_n_top={k_end} exceed the sequence length {T}: "
                "lower them in the config or give longer inputs"
            )
        start_log_probs = F.log_softmax(start_logits, dim=-1)  # (B, T)
        start_top_log_probs, start_top_index = start_log_probs.topk(k_start, dim=-1)  # (B, k_start)
        start_states = hidden.gather(1, start_top_index[..., None].expand(B, k_start, D))  # (B, k_start, D)
        start_states = start_states[:, None].expand(B, T, k_start, D)
        hidden_per_start = hidden[:, :, None].expand(B, T, k_start, D)
        end_p_mask = p_mask[..., None] if p_mask is not None else None  # (B, T, 1)
        end_logits = self.end_logits(hidden_per_start, start_states=start_states, p_mask=end_p_mask)  # (B, T, k_start)
        end_log_probs = F.log_softmax(end_logits, dim=1)
        end_top_log_probs, end_top_index = end_log_probs.topk(k_end, dim=1)  # (B, k_end, k_start)
        # The answerability feature is the start state averaged under the start *probabilities* (XLNet).
        expected_start = torch.einsum("btd,bt->bd", hidden, F.softmax(start_logits, dim=-1))
        cls_logits = self.answer_class(hidden, start_states=expected_start, cls_index=cls_index)
        return {
            "start_top_log_probs": start_top_log_probs,
            "start_top_index": start_top_index,
            "end_top_log_probs": end_top_log_probs.reshape(B, k_start * k_end),
            "end_top_index": end_top_index.reshape(B, k_start * k_end),
            "cls_logits": cls_logits,
        }
