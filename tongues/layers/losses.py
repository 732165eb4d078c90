"""Task losses and the last-token pooling index the heads share."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def last_token_index(input_ids: torch.Tensor | None, pad_token_id: int | None, batch_size: int) -> torch.Tensor | int:
    """Index of each row's rightmost token that is not padding (works for left and right padding).

    Without ``input_ids`` (embeddings given) or without a pad id, the last column is used; a batch
    of several rows then needs a pad id to know where rows end.
    """
    if pad_token_id is None:
        if batch_size != 1:
            raise ValueError("Cannot pool the last token of a batch of several rows: the config has no pad_token_id.")
        return -1
    if input_ids is None:
        return -1
    not_pad = (input_ids != pad_token_id).to(torch.int32)
    columns = torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32)
    return (columns * not_pad).argmax(-1)


def check_labels(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> None:
    """``labels`` (B, T) must match ``logits`` (B, T, V) and hold ids in ``[0, V)`` or ``ignore_index``.

    Without this, torch fails inside cross-entropy with a batch-size mismatch or an IndexError.
    """
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor of token ids; got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"labels must hold integer ids; got dtype {labels.dtype}")
    if tuple(labels.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"labels has shape {tuple(labels.shape)}, expected {tuple(logits.shape[:-1])} (one label per scored position)"
        )
    real = labels[labels != ignore_index]
    if real.numel() and (int(real.min()) < 0 or int(real.max()) >= logits.shape[-1]):
        bad = int(real.min()) if int(real.min()) < 0 else int(real.max())
        raise ValueError(
            f"labels holds {bad}, outside [0, {logits.shape[-1]}) (use {ignore_index} for positions to ignore)"
        )


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Next-token cross-entropy: position t predicts label t+1; labels of -100 are ignored. Computed in fp32."""
    check_labels(logits, labels, ignore_index)
    labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1).to(logits.device),
                           ignore_index=ignore_index)


def token_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Cross-entropy per position without shifting (masked LM, token classification); computed in fp32."""
    check_labels(logits, labels, ignore_index)
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1).to(logits.device),
                           ignore_index=ignore_index)


def sequence_classification_loss(config, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Regression (MSE), single-label (cross-entropy) or multi-label (BCE) loss, by ``config.problem_type``.

    When the config has no problem type it is inferred once, as the reference does: one label ->
    regression; integer labels -> single-label; otherwise multi-label.
    """
    num_labels = config.num_labels
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    labels = labels.to(logits.device)
    if config.problem_type == "regression":
        if num_labels == 1:
            return F.mse_loss(logits.squeeze(), labels.squeeze())
        return F.mse_loss(logits, labels)
    if config.problem_type == "single_label_classification":
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    return F.binary_cross_entropy_with_logits(logits, labels)


def span_loss(start_logits, end_logits, start_positions, end_positions) -> torch.Tensor:
    """Extractive QA loss: mean of start and end cross-entropies; positions outside the input are ignored."""
    if start_positions.dim() > 1:
        start_positions = start_positions.squeeze(-1)
    if end_positions.dim() > 1:
        end_positions = end_positions.squeeze(-1)
    ignored = start_logits.size(1)
    start_positions = start_positions.clamp(0, ignored)
    end_positions = end_positions.clamp(0, ignored)
    start = F.cross_entropy(start_logits, start_positions, ignore_index=ignored)
    end = F.cross_entropy(end_logits, end_positions, ignore_index=ignored)
    return (start + end) / 2
