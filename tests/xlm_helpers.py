"""Tiny XLM checkpoints built by the oracle (transformers) for the XLM parity and property tests."""

from __future__ import annotations

import torch

VOCAB = 99
PAD = 2
# Token ids of ordinary words: above the special indices (bos 0, eos 1, pad 2, unk 3, mask 5).
WORDS = (6, VOCAB)

# name -> config overrides; together they cover 1 and several languages (with and without language
# embeddings), causal and bidirectional attention, learned and sinusoidal positions, GELU and ReLU.
VARIANTS = {
    "mono_mlm": dict(n_langs=1),
    "multi_mlm_sinusoidal_relu": dict(n_langs=3, sinusoidal_embeddings=True, gelu_activation=False),
    "multi_no_lang_emb": dict(n_langs=3, use_lang_emb=False),
    "causal_clm": dict(n_langs=2, causal=True),
    "causal_sinusoidal_relu": dict(n_langs=1, causal=True, sinusoidal_embeddings=True, gelu_activation=False),
}


def config_kwargs(**overrides) -> dict:
    kwargs = dict(vocab_size=VOCAB, emb_dim=32, n_layers=2, n_heads=4, max_position_embeddings=40, dropout=0.0,
                  attention_dropout=0.0, summary_first_dropout=0.0, start_n_top=3, end_n_top=2)
    kwargs.update(overrides)
    return kwargs


def oracle_and_ours(class_name: str, tmp_path, **overrides):
    """(oracle model, our model) of ``class_name`` with the same weights, both in eval mode."""
    import transformers

    import tongues

    torch.manual_seed(0)
    config = transformers.XLMConfig(**config_kwargs(**overrides))
    oracle = getattr(transformers, class_name)(config).eval()
    path = tmp_path / class_name
    oracle.save_pretrained(str(path))
    ours, report = getattr(tongues, class_name).from_pretrained(str(path), output_loading_info=True)
    assert report["missing_keys"] == [] and report["unexpected_keys"] == [], report
    return oracle, ours.eval()


def batch(B: int = 3, S: int = 7, pads=(0, 2, 4), n_langs: int = 1, seed: int = 1):
    """Right-padded ids (B, S) with their mask, language ids and token types (pads use the pad id)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(*WORDS, (B, S), generator=g)
    mask = torch.ones(B, S, dtype=torch.long)
    for b, n in enumerate(pads[:B]):
        if n:
            ids[b, -n:] = PAD
            mask[b, -n:] = 0
    langs = torch.randint(0, n_langs, (B, S), generator=g)
    token_types = torch.randint(0, 2, (B, S), generator=g)
    return ids, mask, langs, token_types
