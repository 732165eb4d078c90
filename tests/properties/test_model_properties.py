"""Properties every family must have, one runner over all of them (no oracle needed).

Shapes, a batch == its rows, left padding invisible to real tokens, cached steps == one full forward,
save -> load == same outputs, return_dict=False == the tuple, dtype on load, gradient checkpointing ==
plain gradients. Each family's own extras stay in ``test_<family>_properties.py``.

A family enters with a tiny config and how it caches: decoders feed only the new tokens with
``past_key_values``; XLM (an encoder whose CLM checkpoints generate) feeds the whole sequence with
its spec's ``cache`` dict.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import pytest
import torch

import tongues
from oracle import assert_close, left_padded
from tongues.layers.masks import position_ids_from_mask

VOCAB = 61
PAD = 0


@dataclass
class Family:
    config: str
    lm: str
    base: str
    kwargs: dict[str, Any]
    whole_sequence_cache: bool = False  # XLM's cache protocol: the whole sequence in, the new positions out


FAMILIES = {
    "bloom": Family("BloomConfig", "BloomForCausalLM", "BloomModel", dict(hidden_size=32, n_layer=2, n_head=4)),
    "glm": Family("GlmConfig", "GlmForCausalLM", "GlmModel",
                  dict(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=8)),
    "xglm": Family("XGLMConfig", "XGLMForCausalLM", "XGLMModel",
                   dict(d_model=32, ffn_dim=48, num_layers=2, attention_heads=4, max_position_embeddings=64,
                        dropout=0.0, attention_dropout=0.0)),
    "xlm-clm": Family("XLMConfig", "XLMWithLMHeadModel", "XLMModel",
                      dict(emb_dim=32, n_layers=2, n_heads=4, causal=True, max_position_embeddings=64,
                           dropout=0.0, attention_dropout=0.0, n_langs=1), whole_sequence_cache=True),
    "gpt2": Family("GPT2Config", "GPT2LMHeadModel", "GPT2Model",
                   dict(n_embd=32, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0)),
}


def build(name: str, cls_name: str | None = None, seed: int = 0):
    family = FAMILIES[name]
    config = getattr(tongues, family.config)(vocab_size=VOCAB, pad_token_id=PAD, **family.kwargs)
    torch.manual_seed(seed)
    model = getattr(tongues, cls_name or family.lm)(config).eval()
    with torch.no_grad():  # non-trivial biases and norms, so that no term can hide
        for key, p in model.named_parameters():
            if key.endswith("bias") or "norm" in key:
                p.normal_(0.3 if "norm" in key and key.endswith("weight") else 0.0, 0.1)
    return model


def tokens(B: int, T: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(5, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))


def mask_positions(model, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Positions counted from each row's first real token, for families that take them (learned or
    sinusoidal positions default to 0..T-1, as in the reference; generation passes these)."""
    takes = "position_ids" in inspect.signature(model.forward).parameters
    return {"position_ids": position_ids_from_mask(mask)} if takes else {}


def columns(inputs: dict[str, torch.Tensor], start: int, end: int) -> dict[str, torch.Tensor]:
    return {k: v[:, start:end] for k, v in inputs.items()}


@pytest.fixture(params=list(FAMILIES))
def family(request):
    return request.param


@torch.no_grad()
def test_output_shapes(family):
    model = build(family)
    config = model.config
    L, H, D = config.num_hidden_layers, config.num_attention_heads, config.hidden_size
    ids = tokens(2, 5)
    out = model(ids, output_hidden_states=True, output_attentions=True)
    assert out.logits.shape == (2, 5, VOCAB)
    assert len(out.hidden_states) == L + 1 and all(h.shape == (2, 5, D) for h in out.hidden_states)
    assert len(out.attentions) == L and all(a.shape == (2, H, 5, 5) for a in out.attentions)
    base = build(family, FAMILIES[family].base)
    assert base(ids).last_hidden_state.shape == (2, 5, D)


@torch.no_grad()
def test_batch_equals_rows_and_left_padding_is_invisible(family):
    model = build(family)
    ids, mask = left_padded(3, 7, VOCAB, [0, 2, 4], pad_id=PAD, low=5)
    batch = model(ids, attention_mask=mask, **mask_positions(model, mask)).logits
    for b in range(3):
        n = int(mask[b].sum())
        alone = model(ids[b:b + 1, -n:]).logits
        assert_close(batch[b:b + 1, -n:], alone, atol=1e-5, rtol=1e-4)


@torch.no_grad()
@pytest.mark.parametrize("split", [1, 4])
@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "left-padded"])
def test_cached_steps_equal_one_full_forward(family, split, padded):
    model = build(family)
    ids, mask = left_padded(2, 8, VOCAB, [0, 3] if padded else [0, 0], pad_id=PAD, low=5)
    positions = mask_positions(model, mask)
    full = model(ids, attention_mask=mask, **positions).logits
    if FAMILIES[family].whole_sequence_cache:
        cache: dict = {}
        steps = [model(ids[:, :end], attention_mask=mask[:, :end], cache=cache, **columns(positions, 0, end)).logits
                 for end in (split, *range(split + 1, 9))]
        assert cache["slen"] == 8
    else:
        out = model(ids[:, :split], attention_mask=mask[:, :split], use_cache=True, **columns(positions, 0, split))
        steps, cache = [out.logits], out.past_key_values
        for t in range(split, 8):
            out = model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=cache, use_cache=True,
                        **columns(positions, t, t + 1))
            steps.append(out.logits)
            cache = out.past_key_values
        assert cache.get_seq_length() == 8
    assert_close(torch.cat(steps, dim=1), full, mask=mask, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_save_load_round_trip_and_return_tuples(family, tmp_path):
    model = build(family, seed=3)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    again = type(model).from_pretrained(tmp_path).eval()
    assert set(again.state_dict()) == set(model.state_dict())
    ids = tokens(2, 6, seed=1)
    assert_close(again(ids).logits, model(ids).logits)
    as_tuple = model(ids, return_dict=False)
    assert isinstance(as_tuple, tuple)
    assert_close(as_tuple[0], model(ids).logits)
    tied = again.get_input_embeddings().weight is again.get_output_embeddings().weight
    assert tied == model.config.tie_word_embeddings  # GLM-4 unties by default, the others tie


@torch.no_grad()
def test_dtype_on_load(family, tmp_path):
    model = build(family, seed=5)
    model.save_pretrained(tmp_path)
    half = type(model).from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert half.dtype == torch.bfloat16
    ids = tokens(1, 6)
    got = half(ids).logits
    assert got.dtype == torch.bfloat16 and torch.isfinite(got).all()
    assert_close(got.float(), model(ids).logits, atol=0.15, rtol=0.1)


def test_gradient_checkpointing_gives_the_same_gradients(family):
    model = build(family, seed=4).train()
    ids = tokens(2, 6)
    model(ids, labels=ids).loss.backward()
    plain = {key: p.grad.clone() for key, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    out = model(ids, labels=ids)
    assert out.get("past_key_values") is None  # no cache while checkpointing in training
    out.loss.backward()
    for key, p in model.named_parameters():
        if key in plain:
            assert_close(p.grad, plain[key], atol=1e-6, rtol=1e-5)
