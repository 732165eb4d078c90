"""GLM-4 properties beyond the shared runner (test_model_properties.py): GQA/RoPE-scaled caching, static
cache, every head's round trip, tying, tuples, head masks, errors."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tongues import (
    DynamicCache,
    GlmConfig,
    GlmForCausalLM,
    GlmForSequenceClassification,
    GlmForTokenClassification,
    GlmModel,
    StaticCache,
)

close = torch.testing.assert_close


def tiny(seed=0, **overrides):
    torch.manual_seed(seed)
    config = GlmConfig(**{**dict(vocab_size=64, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, head_dim=8, pad_token_id=0,
                                 eos_token_id=[60, 61]), **overrides})
    model = GlmForCausalLM(config).eval()
    with torch.no_grad():  # non-trivial biases and norms
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.normal_(0.3 if "norm" in name else 0.0, 0.1)
    return model


@torch.no_grad()
@settings(max_examples=12, deadline=None)
@given(kv=st.sampled_from([1, 2, 4]), factor=st.sampled_from([0.5, 1.0]), split=st.integers(1, 8),
       pad=st.integers(0, 3), seed=st.integers(0, 3))
def test_cached_decode_equals_full_forward(kv, factor, split, pad, seed):
    model = tiny(seed, num_key_value_heads=kv, partial_rotary_factor=factor)
    ids = torch.randint(1, 60, (2, 9))
    mask = torch.ones_like(ids)
    ids[1, :pad], mask[1, :pad] = 0, 0
    full = model(ids, attention_mask=mask).logits
    out = model(ids[:, :split], attention_mask=mask[:, :split], use_cache=True)
    logits, cache = [out.logits], out.past_key_values
    for t in range(split, 9):  # one token at a time
        out = model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=cache, use_cache=True)
        logits.append(out.logits)
        cache = out.past_key_values
    real = mask.bool()
    close(torch.cat(logits, 1)[real], full[real], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_static_cache_equals_dynamic_cache():
    model = tiny(2)
    ids = torch.randint(1, 60, (2, 6))
    config = model.config
    static = StaticCache(config.num_hidden_layers, 2, config.num_key_value_heads, config.head_dim, max_cache_len=10)
    a = model(ids[:, :4], past_key_values=static, use_cache=True)
    a2 = model(ids[:, 4:], past_key_values=a.past_key_values, use_cache=True)
    b = model(ids[:, :4], past_key_values=DynamicCache(), use_cache=True)
    b2 = model(ids[:, 4:], past_key_values=b.past_key_values, use_cache=True)
    close(a2.logits, b2.logits, atol=1e-6, rtol=1e-6)


@torch.no_grad()
@pytest.mark.parametrize("cls", [GlmModel, GlmForCausalLM, GlmForSequenceClassification, GlmForTokenClassification])
def test_save_load_round_trip(tmp_path, cls):
    torch.manual_seed(3)
    config = tiny().config
    model = cls(config).eval()
    model.save_pretrained(tmp_path)
    # kernels="none": the same F.linear as the model built from the config, so the round trip is bit-exact
    again = cls.from_pretrained(tmp_path, kernels="none").eval()
    ids = torch.randint(1, 60, (2, 5))
    a, b = model(ids), again(ids)
    close(b[0], a[0], atol=0, rtol=0)
    assert again.config == model.config


def test_tied_embeddings_stay_tied_after_load(tmp_path):
    model = tiny(tie_word_embeddings=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    model.save_pretrained(tmp_path)
    again = GlmForCausalLM.from_pretrained(tmp_path)
    assert again.lm_head.weight is again.model.embed_tokens.weight


@torch.no_grad()
def test_return_dict_false_gives_tuples():
    model = tiny()
    ids = torch.randint(1, 60, (1, 4))
    out = model(ids, return_dict=False, use_cache=True)
    assert isinstance(out, tuple) and out[0].shape == (1, 4, 64)
    assert isinstance(out[1], DynamicCache) and len(out[1]) == 2  # tongues' shared rule: a tuple only if one came in
    bare = model.model(ids, return_dict=False, use_cache=False)
    assert isinstance(bare, tuple) and len(bare) == 1


@torch.no_grad()
def test_head_mask_scales_heads():
    model = tiny(6)
    ids = torch.randint(1, 60, (2, 5))
    plain = model(ids).logits
    close(model(ids, head_mask=torch.ones(4)).logits, plain, atol=1e-6, rtol=1e-6)
    silenced = torch.ones(2, 4)
    silenced[0] = 0  # every head of layer 0: its attention adds nothing to the residual stream
    masked = model(ids, head_mask=silenced).logits
    model.model.layers[0].self_attn.o_proj.weight.zero_()
    close(masked, model(ids).logits, atol=1e-6, rtol=1e-6)


def test_bad_inputs_name_the_culprit():
    model = tiny()
    ids = torch.randint(1, 60, (2, 4))
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()
    with pytest.raises(ValueError, match="token id 64"):
        model(torch.tensor([[1, 64]]))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 3\)"):
        model(ids, attention_mask=torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="position_ids has shape"):
        model(ids, position_ids=torch.arange(5)[None])
    with pytest.raises(ValueError, match="cache_position"):
        model(ids, cache_position=torch.arange(3))
    with pytest.raises(ValueError, match="head_mask of shape"):
        model(ids, head_mask=torch.ones(3))
    with pytest.raises(TypeError, match="unexpected arguments: langs"):
        model.model(ids, langs=ids)
    with pytest.raises(TypeError, match="past_key_values"):
        model(ids, past_key_values="cache")
    with pytest.raises(ValueError, match="pad_token_id=100"):
        GlmModel(GlmConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, head_dim=8,
                           pad_token_id=100))
    classifier = GlmForSequenceClassification(GlmConfig(**{**tiny().config.to_dict(), "pad_token_id": None}))
    with pytest.raises(ValueError, match="pad_token_id"):
        classifier(ids)
