"""What the TF and Flax tests share: a left-padded batch, the fp32 comparison, saved PyTorch checkpoints."""

from __future__ import annotations

import numpy as np
import torch

from tongues.models.xglm import XGLMConfig
from tongues.models.xglm.modeling_xglm import XGLMModel

IDS = np.array([[1, 1, 5, 6, 7, 8], [3, 9, 3, 4, 5, 60]])
MASK = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])  # row 0 left-padded
POS = np.maximum(MASK.cumsum(-1) - 1, 0)
REAL = MASK.astype(bool)


def close(ours, ref, where=None, atol=1e-4):
    """assert_allclose on two arrays or tensors (torch, TF or JAX), optionally only at ``where``."""
    ours, ref = (np.asarray(t.numpy() if hasattr(t, "numpy") else t) for t in (ours, ref))
    if where is not None:
        ours, ref = ours[where], ref[where]
    np.testing.assert_allclose(ours, ref, atol=atol, rtol=1e-4)


def saved_pytorch(model_class, config, path, seed: int = 0):
    """``model_class(config)`` initialised under ``seed`` and saved to ``path``; returns ``(path, model)``."""
    torch.manual_seed(seed)
    model = model_class(config).eval()
    model.save_pretrained(path)
    return path, model


def cross_attention_reference(path):
    """Save an XGLM with cross-attention to ``path``; return an encoder batch (B, 3, 16), its mask and the
    PyTorch model's output on IDS/MASK with attentions."""
    config = XGLMConfig(vocab_size=64, d_model=16, ffn_dim=32, num_layers=2, attention_heads=2,
                        max_position_embeddings=32, add_cross_attention=True, dropout=0.0, attention_dropout=0.0)
    _, model = saved_pytorch(XGLMModel, config, path, seed=1)
    enc = np.random.default_rng(0).standard_normal((2, 3, 16)).astype(np.float32)
    enc_mask = np.array([[1, 1, 0], [1, 1, 1]])
    with torch.no_grad():
        ref = model(torch.tensor(IDS), attention_mask=torch.tensor(MASK), encoder_hidden_states=torch.tensor(enc),
                    encoder_attention_mask=torch.tensor(enc_mask), output_attentions=True)
    return enc, enc_mask, ref
