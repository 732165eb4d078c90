"""Fuzzing each family's base and causal models (tiny configs) with random shapes, padding masks and
cache states: a forward either succeeds with finite outputs or raises one of our documented errors
(ValueError / TypeError naming the argument). Derandomized and bounded, so CI is deterministic.
"""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tongues

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

VOCAB = 48
FAMILIES = {
    # name: (config class, config kwargs, base class, causal class, takes a KV cache)
    "bloom": ("BloomConfig", dict(vocab_size=VOCAB, hidden_size=16, n_layer=2, n_head=2, pad_token_id=0),
              "BloomModel", "BloomForCausalLM", True),
    "xglm": ("XGLMConfig", dict(vocab_size=VOCAB, d_model=16, ffn_dim=24, num_layers=2, attention_heads=2,
                                max_position_embeddings=16, pad_token_id=1),
             "XGLMModel", "XGLMForCausalLM", True),
    "glm": ("GlmConfig", dict(vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=8, pad_token_id=0,
                              eos_token_id=2),
            "GlmModel", "GlmForCausalLM", True),
    "xlm": ("XLMConfig", dict(vocab_size=VOCAB, emb_dim=16, n_layers=2, n_heads=2, max_position_embeddings=16,
                              causal=True, pad_index=2),
            "XLMModel", "XLMWithLMHeadModel", False),
    "gpt2": ("GPT2Config", dict(vocab_size=VOCAB, n_embd=16, n_layer=2, n_head=2, n_positions=16, pad_token_id=0),
             "GPT2Model", "GPT2LMHeadModel", True),
}


@functools.lru_cache(maxsize=None)
def model(family: str, kind: str):
    config_name, kwargs, base, causal, _ = FAMILIES[family]
    torch.manual_seed(0)
    config = getattr(tongues, config_name)(**kwargs)
    return getattr(tongues, base if kind == "base" else causal)(config).eval()


def output_tensor(out):
    return out.logits if hasattr(out, "logits") and out.logits is not None else out.last_hidden_state


@st.composite
def batches(draw, max_len: int = 8):
    """(ids (B, T), mask (B, T) left-padded (a row may be all padding), cached prefix length)."""
    B = draw(st.integers(1, 3))
    T = draw(st.integers(1, max_len))
    ids = torch.tensor(draw(st.lists(st.lists(st.integers(3, VOCAB - 1), min_size=T, max_size=T),
                                     min_size=B, max_size=B)))
    pads = draw(st.lists(st.integers(0, T), min_size=B, max_size=B))  # T: a fully padded row
    mask = torch.ones(B, T, dtype=torch.long)
    for row, pad in enumerate(pads):
        mask[row, :pad] = 0
    prefix = draw(st.integers(0, T - 1))
    return ids, mask, prefix


@pytest.mark.parametrize("kind", ["base", "causal"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_random_shapes_masks_and_cache_states_stay_finite(family, kind):
    m = model(family, kind)
    takes_cache = FAMILIES[family][4]

    @FUZZ
    @given(batches(), st.booleans())
    def check(batch, legacy):
        ids, mask, prefix = batch
        with torch.no_grad():
            full = output_tensor(m(ids, attention_mask=mask))
            assert torch.isfinite(full).all()
            if not takes_cache or prefix == 0:
                return
            first = m(ids[:, :prefix], attention_mask=mask[:, :prefix], use_cache=True)
            past = first.past_key_values
            if legacy and not isinstance(past, tuple):
                past = past.to_legacy_cache()
            rest = m(ids[:, prefix:], attention_mask=mask, past_key_values=past, use_cache=True)
            out = output_tensor(rest)
            assert torch.isfinite(out).all()
            # Real tokens: the cached continuation equals the uncached forward.
            real = mask[:, prefix:].bool()
            torch.testing.assert_close(out[real], full[:, prefix:][real], atol=1e-4, rtol=1e-4)

    check()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_random_bad_inputs_raise_only_documented_errors(family):
    m = model(family, "causal")

    @FUZZ
    @given(
        st.integers(0, 3), st.integers(0, 6),
        st.integers(-3, VOCAB + 3),
        st.one_of(st.none(), st.tuples(st.integers(0, 4), st.integers(0, 8))),
        st.sampled_from(["long", "int", "float", "bool"]),
    )
    def check(B, T, token, mask_shape, dtype):
        ids = torch.full((B, T), token, dtype=getattr(torch, dtype))
        mask = None if mask_shape is None else torch.ones(mask_shape, dtype=torch.long)
        try:
            with torch.no_grad():
                out = output_tensor(m(ids, attention_mask=mask))
        except (ValueError, TypeError) as err:
            message = str(err)
            assert any(word in message for word in ("input_ids", "attention_mask", "token id", "empty")), message
            return
        assert torch.isfinite(out).all()

    check()
