"""Tiny XGLM models built by the oracle (transformers 5.23) and loaded by tongues, for parity and property tests."""

from __future__ import annotations

import pathlib

import torch
import transformers

VOCAB = 97
PAD = 1  # fairseq's <pad>
DATA = pathlib.Path(__file__).parent / "data" / "xglm"
SPM_MODEL = DATA / "sentencepiece.bpe.model"

CONFIGS = {
    "gelu-scaled": dict(d_model=32, ffn_dim=37, num_layers=2, attention_heads=4),
    "relu-unscaled-odd-heads": dict(d_model=30, ffn_dim=41, num_layers=3, attention_heads=5, scale_embedding=False,
                                    activation_function="relu"),
    "gelu_new-three-heads": dict(d_model=42, ffn_dim=50, num_layers=2, attention_heads=3,
                                 activation_function="gelu_new"),
    "silu-cross-attention": dict(d_model=36, ffn_dim=40, num_layers=2, attention_heads=3, activation_function="silu",
                                 add_cross_attention=True),
}
DECODER_ONLY = [name for name, cfg in CONFIGS.items() if not cfg.get("add_cross_attention")]


def oracle_config(**overrides) -> transformers.XGLMConfig:
    kwargs = dict(vocab_size=VOCAB, max_position_embeddings=24, dropout=0.0, attention_dropout=0.0)
    kwargs.update(overrides)
    return transformers.XGLMConfig(**kwargs)


def pair(tmp_path, ref_cls, ours_cls, **cfg):
    """(oracle model, tongues model loaded from the oracle's save), both in eval mode."""
    torch.manual_seed(0)
    ref = ref_cls(oracle_config(**cfg)).eval()
    ref.save_pretrained(tmp_path)
    return ref, ours_cls.from_pretrained(tmp_path)


def padded(batch: int, length: int, pads: list[int], side: str = "left"):
    """Random ids (B, T) in [3, VOCAB) with ``pads[b]`` <pad> tokens on ``side`` of row b, and the mask."""
    ids = torch.randint(3, VOCAB, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    for b, n in enumerate(pads):
        if n:
            cols = slice(0, n) if side == "left" else slice(length - n, length)
            ids[b, cols] = PAD
            mask[b, cols] = 0
    return ids, mask


def mask_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids counted from each row's first real token (pads at 0), as generation makes them."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def encoder_inputs(batch: int, length: int, width: int, pads: list[int] | None = None):
    states = torch.randn(batch, length, width)
    mask = torch.ones(batch, length, dtype=torch.long)
    for b, n in enumerate(pads or []):
        if n:
            mask[b, length - n:] = 0
    return states, mask
