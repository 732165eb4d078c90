"""BLOOM against the oracle (transformers 5.23): every head, padded batches, losses, caches, round trips."""

from __future__ import annotations

import pytest
import torch
import transformers

from oracle import assert_close, left_padded, right_padded
from tongues import (
    BloomForCausalLM,
    BloomForQuestionAnswering,
    BloomForSequenceClassification,
    BloomForTokenClassification,
    BloomModel,
    DynamicCache,
)

VOCAB = 97
CONFIGS = {
    "pow2-heads": dict(hidden_size=32, n_layer=2, n_head=4),
    "odd-heads": dict(hidden_size=48, n_layer=3, n_head=6),
    "post-ln-residual": dict(hidden_size=40, n_layer=2, n_head=5, apply_residual_connection_post_layernorm=True),
    "tp-slow-but-exact": dict(hidden_size=32, n_layer=2, n_head=4, pretraining_tp=2, slow_but_exact=True),
}
PAIRS = [
    (transformers.BloomModel, BloomModel),
    (transformers.BloomForCausalLM, BloomForCausalLM),
    (transformers.BloomForSequenceClassification, BloomForSequenceClassification),
    (transformers.BloomForTokenClassification, BloomForTokenClassification),
    (transformers.BloomForQuestionAnswering, BloomForQuestionAnswering),
]


def oracle_config(**overrides):
    kwargs = dict(vocab_size=VOCAB, pad_token_id=0, num_labels=3)
    kwargs.update(overrides)
    return transformers.BloomConfig(**kwargs)


def pair(tmp_path, ref_cls, ours_cls, **cfg):
    ref = ref_cls(oracle_config(**cfg)).eval()
    ref.save_pretrained(tmp_path)
    ours = ours_cls.from_pretrained(tmp_path)
    return ref, ours


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("ref_cls,ours_cls", PAIRS, ids=[p[1].__name__ for p in PAIRS])
@pytest.mark.parametrize("padding", ["left", "right"])
def test_outputs_match_oracle(tmp_path, name, ref_cls, ours_cls, padding):
    ref, ours = pair(tmp_path, ref_cls, ours_cls, **CONFIGS[name])
    make = left_padded if padding == "left" else right_padded
    ids, mask = make(3, 7, VOCAB, [0, 2, 4])
    kwargs = dict(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    if ours_cls is BloomForCausalLM:
        kwargs["labels"] = ids.masked_fill(mask == 0, -100)
    elif ours_cls is BloomForSequenceClassification:
        kwargs["labels"] = torch.tensor([0, 2, 1])
    elif ours_cls is BloomForTokenClassification:
        kwargs["labels"] = torch.randint(0, 3, ids.shape)
    elif ours_cls is BloomForQuestionAnswering:
        kwargs["start_positions"], kwargs["end_positions"] = torch.tensor([1, 3, 5]), torch.tensor([2, 6, 9])
    with torch.no_grad():
        r, o = ref(**kwargs), ours(**kwargs)
    for key in r.keys():
        if key == "past_key_values":
            continue
        if key == "hidden_states":
            for a, b in zip(o[key], r[key]):
                assert_close(a, b)
        else:
            assert_close(o[key], r[key])
    assert set(o.keys()) == set(r.keys())


@pytest.mark.parametrize("name", ["odd-heads", "post-ln-residual"])
def test_attentions_match_oracle(tmp_path, name):
    ref, ours = pair(tmp_path, transformers.BloomModel, BloomModel, **CONFIGS[name])
    ids, mask = left_padded(2, 6, VOCAB, [0, 3])
    with torch.no_grad():
        r = ref(ids, attention_mask=mask, output_attentions=True)
        o = ours(ids, attention_mask=mask, output_attentions=True)
    assert len(o.attentions) == len(r.attentions)
    for a, b in zip(o.attentions, r.attentions):
        assert_close(a, b)


def test_tuple_outputs_match_oracle(tmp_path):
    ref, ours = pair(tmp_path, transformers.BloomForCausalLM, BloomForCausalLM, **CONFIGS["pow2-heads"])
    ids = torch.randint(1, VOCAB, (2, 5))
    with torch.no_grad():
        r = ref(ids, labels=ids, return_dict=False, use_cache=False)
        o = ours(ids, labels=ids, return_dict=False, use_cache=False)
    assert isinstance(o, tuple) and len(o) == len(r)
    for a, b in zip(o, r):
        assert_close(a, b)


def test_cached_decode_matches_oracle_step_by_step(tmp_path):
    ref, ours = pair(tmp_path, transformers.BloomForCausalLM, BloomForCausalLM, **CONFIGS["odd-heads"])
    ids, mask = left_padded(2, 9, VOCAB, [0, 3])
    with torch.no_grad():
        r = ref(ids[:, :6], attention_mask=mask[:, :6], use_cache=True)
        o = ours(ids[:, :6], attention_mask=mask[:, :6], use_cache=True)
        for t in range(6, 9):
            r = ref(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=r.past_key_values, use_cache=True)
            o = ours(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=o.past_key_values, use_cache=True)
            assert_close(o.logits, r.logits)


def test_save_loads_into_oracle_with_identical_weights(tmp_path):
    ours = BloomForCausalLM.from_config(_our_config(**CONFIGS["odd-heads"]))
    ours.save_pretrained(tmp_path / "ours")
    ref = transformers.BloomForCausalLM.from_pretrained(tmp_path / "ours").eval()
    ours_state, ref_state = ours.state_dict(), ref.state_dict()
    assert set(ours_state) == set(ref_state)
    for key in ours_state:
        torch.testing.assert_close(ours_state[key], ref_state[key], atol=0, rtol=0)
    ids = torch.randint(0, VOCAB, (2, 5))
    with torch.no_grad():
        assert_close(ours.eval()(ids).logits, ref(ids).logits)


def test_state_dict_keys_equal_oracle(tmp_path):
    for ref_cls, ours_cls in PAIRS:
        ref, ours = pair(tmp_path / ours_cls.__name__, ref_cls, ours_cls, **CONFIGS["pow2-heads"])
        assert set(ours.state_dict()) == set(ref.state_dict()), ours_cls.__name__


def test_head_model_loads_bare_checkpoint_and_reports_new_head(tmp_path):
    ref = transformers.BloomModel(oracle_config(**CONFIGS["pow2-heads"]))
    ref.save_pretrained(tmp_path)
    model, info = BloomForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == ["score.weight"]
    assert info["unexpected_keys"] == []
    torch.testing.assert_close(model.transformer.h[0].mlp.dense_h_to_4h.weight, ref.h[0].mlp.dense_h_to_4h.weight)
    assert model.score.weight.abs().sum() > 0  # initialised, not left empty
    bare, info = BloomModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


def test_bare_model_loads_head_checkpoint(tmp_path):
    ref = transformers.BloomForCausalLM(oracle_config(**CONFIGS["pow2-heads"])).eval()
    ref.save_pretrained(tmp_path)
    bare = BloomModel.from_pretrained(tmp_path)
    ids = torch.randint(0, VOCAB, (1, 4))
    with torch.no_grad():
        assert_close(bare(ids).last_hidden_state, ref.transformer(ids).last_hidden_state)


def test_bf16_padded_batch_has_no_nan(tmp_path):
    _, ours = pair(tmp_path, transformers.BloomForCausalLM, BloomForCausalLM, **CONFIGS["odd-heads"])
    ours = ours.to(torch.bfloat16)
    ids, mask = left_padded(2, 6, VOCAB, [0, 5])
    with torch.no_grad():
        out = ours(ids, attention_mask=mask, output_attentions=True)
    assert torch.isfinite(out.logits.float()).all()
    assert all(torch.isfinite(a.float()).all() for a in out.attentions)


def _our_config(**kwargs):
    from tongues import BloomConfig

    return BloomConfig(vocab_size=VOCAB, pad_token_id=0, **kwargs)
