"""XGLM properties: cached == uncached, a batch == its rows, left padding changes nothing in generation,
save -> load gives the same model."""

from __future__ import annotations

import pytest
import torch
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle import assert_close
from tongues import DynamicCache, XGLMForCausalLM
from xglm_helpers import CONFIGS, PAD, VOCAB, encoder_inputs, mask_positions, padded, pair


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One tongues model per config, loaded from an oracle checkpoint (built once for the module)."""
    loaded = {}
    for name, cfg in CONFIGS.items():
        _, ours = pair(tmp_path_factory.mktemp(name), transformers.XGLMForCausalLM, XGLMForCausalLM, **cfg)
        loaded[name] = ours
    return loaded


def enc_for(name: str, batch: int):
    if not CONFIGS[name].get("add_cross_attention"):
        return {}
    states, mask = encoder_inputs(batch, 4, CONFIGS[name]["d_model"], pads=[0, 1, 2][:batch])
    return dict(encoder_hidden_states=states, encoder_attention_mask=mask)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("legacy", [False, True], ids=["cache", "legacy"])
def test_token_by_token_equals_full_forward(models, name, legacy):
    model = models[name]
    ids, mask = padded(2, 8, [0, 3])
    positions = mask_positions(mask)
    enc = enc_for(name, 2)
    with torch.no_grad():
        full = model(ids, attention_mask=mask, position_ids=positions, **enc).logits
        past = () if legacy else DynamicCache()  # an empty tuple is a legacy cache of no layers
        steps = []
        for t in range(ids.shape[1]):
            out = model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], position_ids=positions[:, t:t + 1],
                        past_key_values=past, use_cache=True, **enc)
            past = out.past_key_values
            steps.append(out.logits)
    real = mask.bool()
    assert_close(torch.cat(steps, 1)[real], full[real])
    assert isinstance(past, tuple) == legacy


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pads=st.lists(st.integers(0, 5), min_size=2, max_size=3), side=st.sampled_from(["left", "right"]),
       name=st.sampled_from(sorted(CONFIGS)))
def test_batch_equals_rows(models, pads, side, name):
    model = models[name]
    ids, mask = padded(len(pads), 7, pads, side)
    enc = enc_for(name, len(pads))
    with torch.no_grad():
        batch = model(ids, attention_mask=mask, position_ids=mask_positions(mask), **enc).logits
        for b in range(len(pads)):
            keep = mask[b].bool()
            row_enc = {k: v[b:b + 1] for k, v in enc.items()}
            if row_enc:  # the row alone needs no encoder padding
                keep_enc = row_enc["encoder_attention_mask"][0].bool()
                row_enc = dict(encoder_hidden_states=row_enc["encoder_hidden_states"][:, keep_enc])
            alone = model(ids[b:b + 1, keep], **row_enc).logits
            assert_close(batch[b, keep], alone[0])


@pytest.mark.parametrize("name", ["gelu-scaled", "relu-unscaled-odd-heads", "gelu_new-three-heads"])
@pytest.mark.parametrize("num_beams", [1, 3])
def test_left_padding_does_not_change_generation(models, name, num_beams):
    model = models[name]
    ids, mask = padded(3, 7, [0, 2, 5])
    kwargs = dict(do_sample=False, num_beams=num_beams, max_new_tokens=6, pad_token_id=PAD, eos_token_id=None)
    batch = model.generate(ids, attention_mask=mask, **kwargs)
    for b in range(3):
        row = ids[b:b + 1, mask[b].bool()]
        alone = model.generate(row, **kwargs)
        assert torch.equal(batch[b, ids.shape[1]:], alone[0, row.shape[1]:])


@pytest.mark.parametrize("name", ["relu-unscaled-odd-heads", "silu-cross-attention"])
def test_save_load_round_trip(models, tmp_path, name):
    model = models[name]
    model.save_pretrained(tmp_path)
    again = XGLMForCausalLM.from_pretrained(tmp_path)
    assert set(again.state_dict()) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    ids, mask = padded(2, 6, [0, 2])
    enc = enc_for(name, 2)
    with torch.no_grad():
        assert torch.equal(again(ids, attention_mask=mask, **enc).logits, model(ids, attention_mask=mask, **enc).logits)


def test_random_init_is_finite_and_tied():
    from tongues import XGLMConfig

    model = XGLMForCausalLM(XGLMConfig(vocab_size=VOCAB, d_model=16, ffn_dim=20, num_layers=2, attention_heads=2,
                                       max_position_embeddings=8))
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert torch.all(model.model.embed_tokens.weight[PAD] == 0)  # fairseq's padding row starts at zero
    with torch.no_grad():
        assert torch.isfinite(model.eval()(torch.randint(0, VOCAB, (2, 12))).logits).all()


def test_generation_with_cross_attention_equals_uncached_greedy_loop(models):
    """Greedy generation over encoder states (cross-attention keys cached once) equals an argmax loop of
    full uncached forwards. (transformers 5.23 cannot serve as the oracle here: its generate puts the
    cross keys into the self-attention cache and fails on the mask shape.)"""
    model = models["silu-cross-attention"]
    ids, mask = padded(3, 6, [0, 2, 3])
    enc = enc_for("silu-cross-attention", 3)
    generated = model.generate(ids, attention_mask=mask, pad_token_id=PAD, eos_token_id=None, max_new_tokens=5,
                               do_sample=False, **enc)
    sequence, seen = ids, mask
    with torch.no_grad():
        for _ in range(5):
            logits = model(sequence, attention_mask=seen, position_ids=mask_positions(seen), use_cache=False,
                           **enc).logits
            token = logits[:, -1].argmax(-1, keepdim=True)
            sequence, seen = torch.cat([sequence, token], 1), torch.cat([seen, torch.ones_like(token)], 1)
    assert torch.equal(generated, sequence)
