"""XGLM models against the oracle (transformers 5.23): outputs, padding, loss, every forward argument,
caches in both formats, the growing position table, generation, checkpoints both ways, bad inputs."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import transformers

from oracle import assert_close
from tongues import AutoConfig, AutoModel, AutoModelForCausalLM, DynamicCache, XGLMConfig, XGLMForCausalLM, XGLMModel
from tongues.configuration import ConfigError
from tongues.cache import EncoderDecoderCache
from xglm_helpers import CONFIGS, DECODER_ONLY, PAD, VOCAB, encoder_inputs, mask_positions, oracle_config, padded, pair

PAIRS = [(transformers.XGLMModel, XGLMModel), (transformers.XGLMForCausalLM, XGLMForCausalLM)]
PAIR_IDS = ["XGLMModel", "XGLMForCausalLM"]


def cross_kwargs(name: str, batch: int, width: int) -> dict:
    if not CONFIGS[name].get("add_cross_attention"):
        return {}
    states, mask = encoder_inputs(batch, 5, width, pads=[0, 2, 1][:batch])
    return dict(encoder_hidden_states=states, encoder_attention_mask=mask)


def oracle_legacy(cache) -> tuple:
    """The oracle's cache as the legacy tuple: (k, v) per layer, plus (cross k, cross v) when it has them."""
    if isinstance(cache, transformers.EncoderDecoderCache):
        own, cross = cache.self_attention_cache.layers, cache.cross_attention_cache.layers
        return tuple((a.keys, a.values, b.keys, b.values) for a, b in zip(own, cross))
    return tuple((layer.keys, layer.values) for layer in cache.layers)


def assert_same_cache(ours, ref) -> None:
    ours = ours.to_legacy_cache() if not isinstance(ours, tuple) else ours
    ref = oracle_legacy(ref)
    assert len(ours) == len(ref)
    for mine, theirs in zip(ours, ref):
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs):
            assert_close(a, b)


def assert_same_outputs(o, r) -> None:
    # The oracle returns cross_attentions=() when there is no encoder; the spec returns none.
    expected = {k for k, v in r.items() if not (isinstance(v, tuple) and len(v) == 0)}
    assert set(o.keys()) == expected
    for key in expected:
        if key == "past_key_values":
            assert_same_cache(o[key], r[key])
        elif isinstance(r[key], tuple):
            assert len(o[key]) == len(r[key])
            for a, b in zip(o[key], r[key]):
                assert_close(a, b)
        else:
            assert_close(o[key], r[key])


# -- outputs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("ref_cls,ours_cls", PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("side", ["left", "right"])
def test_outputs_match_oracle(tmp_path, name, ref_cls, ours_cls, side):
    ref, ours = pair(tmp_path, ref_cls, ours_cls, **CONFIGS[name])
    ids, mask = padded(3, 7, [0, 2, 4], side)
    kwargs = dict(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True,
                  use_cache=True, **cross_kwargs(name, 3, ref.config.d_model))
    if ours_cls is XGLMForCausalLM:
        kwargs["labels"] = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        r, o = ref(**kwargs), ours(**kwargs)
    assert_same_outputs(o, r)


@pytest.mark.parametrize("name", ["gelu-scaled", "silu-cross-attention"])
def test_tuple_outputs_match_oracle(tmp_path, name):
    ref, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS[name])
    ids, mask = padded(2, 6, [0, 2])
    kwargs = dict(input_ids=ids, attention_mask=mask, labels=ids, use_cache=False, output_hidden_states=True,
                  return_dict=False, **cross_kwargs(name, 2, ref.config.d_model))
    with torch.no_grad():
        r, o = ref(**kwargs), ours(**kwargs)
    assert isinstance(o, tuple) and len(o) == len(r) == 3  # loss, logits, hidden states
    assert_close(o[0], r[0])
    assert_close(o[1], r[1])
    for a, b in zip(o[2], r[2]):
        assert_close(a, b)


def test_loss_ignores_minus_100_and_matches_manual_shift(tmp_path):
    ref, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS["gelu-scaled"])
    ids, mask = padded(2, 8, [0, 3], "right")
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        o, r = ours(ids, attention_mask=mask, labels=labels), ref(ids, attention_mask=mask, labels=labels)
    assert_close(o.loss, r.loss)
    manual = torch.nn.functional.cross_entropy(o.logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1))
    assert_close(o.loss, manual)


@pytest.mark.parametrize("name", ["gelu-scaled", "relu-unscaled-odd-heads"])
def test_explicit_position_ids_match_oracle(tmp_path, name):
    ref, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS[name])
    ids, mask = padded(3, 7, [0, 1, 5])
    kwargs = dict(input_ids=ids, attention_mask=mask, position_ids=mask_positions(mask))
    with torch.no_grad():
        assert_close(ours(**kwargs).logits, ref(**kwargs).logits)
        shared = dict(input_ids=ids, position_ids=torch.arange(3, 10)[None])  # (1, T) broadcasts over the batch
        assert_close(ours(**shared).logits, ref(**shared).logits)


@pytest.mark.parametrize("name", ["gelu-scaled", "relu-unscaled-odd-heads"])
def test_inputs_embeds_match_input_ids(tmp_path, name):
    ref, ours = pair(tmp_path, transformers.XGLMModel, XGLMModel, **CONFIGS[name])
    ids, mask = padded(2, 6, [0, 2])
    with torch.no_grad():
        embeds = ours.get_input_embeddings()(ids)  # scaled by sqrt(d_model) when scale_embedding
        assert_close(embeds, ref.get_input_embeddings()(ids))
        o = ours(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        assert_close(o, ref(inputs_embeds=embeds, attention_mask=mask).last_hidden_state)
        assert_close(o, ours(input_ids=ids, attention_mask=mask).last_hidden_state)


def test_shared_embedding_passed_to_the_constructor_is_used(tmp_path):
    ref, _ = pair(tmp_path, transformers.XGLMModel, XGLMModel, **CONFIGS["gelu-scaled"])
    config = XGLMConfig.from_pretrained(tmp_path)
    shared = torch.nn.Embedding(VOCAB, 32, padding_idx=PAD)
    model = XGLMModel(config, embed_tokens=shared).eval()
    assert model.get_input_embeddings() is shared and model.embed_tokens.weight is shared.weight
    ids = torch.randint(3, VOCAB, (1, 4))
    with torch.no_grad():
        # A plain embedding is used as given (the sqrt(d_model) scale belongs to XGLM's own embedding).
        expected = model(inputs_embeds=shared(ids)).last_hidden_state
        assert_close(model(ids).last_hidden_state, expected)


def test_position_table_grows_past_max_positions(tmp_path):
    ref, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM,
                     **{**CONFIGS["gelu-scaled"], "max_position_embeddings": 6})
    ids = torch.randint(3, VOCAB, (2, 11))
    assert ours.model.embed_positions.weights.shape[0] == 6 + 2
    with torch.no_grad():
        assert_close(ours(ids).logits, ref(ids).logits)
    assert ours.model.embed_positions.weights.shape[0] == 11 + 2
    # Cached decoding past the table, one token at a time, grows it again.
    with torch.no_grad():
        out = ours(ids, use_cache=True)
        step = torch.randint(3, VOCAB, (2, 1))
        o = ours(step, past_key_values=out.past_key_values).logits
        r = ref(torch.cat([ids, step], 1)).logits[:, -1:]
    assert_close(o, r)


# -- head masks (the spec's head_mask / cross_attn_head_mask; transformers 5 dropped them) --------------


def oracle_with_head_mask(ref, head_mask: torch.Tensor, attention: str):
    """The oracle with each head's slice of ``<attention>.out_proj`` scaled by its mask value: the same
    function a head mask computes (the mask multiplies that head's probabilities, hence its output)."""
    masked = copy.deepcopy(ref)
    head_dim = ref.config.d_model // ref.config.attention_heads
    with torch.no_grad():
        for layer, values in zip(masked.base_model.layers, head_mask):
            getattr(layer, attention).out_proj.weight.mul_(values.repeat_interleave(head_dim)[None, :])
    return masked


@pytest.mark.parametrize("argument", ["head_mask", "cross_attn_head_mask"])
def test_head_masks_match_scaled_oracle(tmp_path, argument):
    name = "silu-cross-attention"
    ref, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS[name])
    cfg = ref.config
    head_mask = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])
    masked = oracle_with_head_mask(ref, head_mask, "self_attn" if argument == "head_mask" else "encoder_attn")
    ids, mask = padded(3, 6, [0, 2, 1])
    kwargs = dict(input_ids=ids, attention_mask=mask, **cross_kwargs(name, 3, cfg.d_model))
    with torch.no_grad():
        r = masked(**kwargs, output_attentions=True)
        o = ours(**kwargs, output_attentions=True, **{argument: head_mask})
        unmasked = ours(**kwargs)
    assert_close(o.logits, r.logits)
    key = "attentions" if argument == "head_mask" else "cross_attentions"
    for layer, (a, b) in enumerate(zip(o[key], r[key])):
        assert_close(a, b * head_mask[layer][None, :, None, None])
    assert not torch.allclose(o.logits, unmasked.logits)
    # A (H,) mask applies to every layer.
    with torch.no_grad():
        o_all = ours(**kwargs, **{argument: head_mask[0]})
        r_all = oracle_with_head_mask(ref, head_mask[0].expand(2, 3), "self_attn" if argument == "head_mask"
                                      else "encoder_attn")(**kwargs)
    assert_close(o_all.logits, r_all.logits)


# -- caches -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gelu-scaled", "silu-cross-attention"])
@pytest.mark.parametrize("legacy", [False, True], ids=["cache-object", "legacy-tuples"])
def test_cached_decoding_matches_oracle(tmp_path, name, legacy):
    ref, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS[name])
    ids, mask = padded(3, 9, [0, 3, 1])
    enc = cross_kwargs(name, 3, ref.config.d_model)
    with torch.no_grad():
        r1 = ref(ids[:, :6], attention_mask=mask[:, :6], use_cache=True, **enc)
        r2 = ref(ids[:, 6:], attention_mask=mask, past_key_values=r1.past_key_values, **enc)
        o1 = ours(ids[:, :6], attention_mask=mask[:, :6], use_cache=True, **enc)
        past = o1.past_key_values.to_legacy_cache() if legacy else o1.past_key_values
        o2 = ours(ids[:, 6:], attention_mask=mask, past_key_values=past, **enc)
        full = ours(ids, attention_mask=mask, **enc)
    assert_close(o2.logits, r2.logits)
    assert_close(o2.logits, full.logits[:, 6:])
    assert_same_cache(o2.past_key_values, r2.past_key_values)
    if legacy:  # same format out as in: a tuple per layer, 4 tensors with cross-attention
        assert isinstance(o2.past_key_values, tuple)
        assert all(len(layer) == (4 if enc else 2) for layer in o2.past_key_values)
        assert o2.past_key_values[0][0].shape[-2] == 9
    else:
        expected = EncoderDecoderCache if enc else DynamicCache
        assert isinstance(o2.past_key_values, expected)


def test_cross_attention_keys_are_computed_once(tmp_path):
    _, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS["silu-cross-attention"])
    enc = cross_kwargs("silu-cross-attention", 2, 36)
    ids = torch.randint(3, VOCAB, (2, 4))
    with torch.no_grad():
        out = ours(ids, use_cache=True, **enc)
        cache = out.past_key_values
        cross_before = [k.clone() for k in cache.cross_attention_cache.keys]
        # Later steps read the cached cross keys; changing the encoder states would not change them.
        ours(ids[:, :1], past_key_values=cache, **enc)
    assert all(torch.equal(a, b) for a, b in zip(cross_before, cache.cross_attention_cache.keys))
    assert cache.get_seq_length() == 5


def test_use_cache_false_returns_no_cache(tmp_path):
    _, ours = pair(tmp_path, transformers.XGLMModel, XGLMModel, **CONFIGS["gelu-scaled"])
    with torch.no_grad():
        out = ours(torch.randint(3, VOCAB, (1, 4)), use_cache=False)
    assert "past_key_values" not in out.keys()


# -- generation -------------------------------------------------------------------------------------


GENERATE = {
    "greedy": dict(do_sample=False, max_new_tokens=8),
    "beam": dict(do_sample=False, num_beams=3, max_new_tokens=8),
    "beam-return-2": dict(do_sample=False, num_beams=3, num_return_sequences=2, max_new_tokens=6, length_penalty=0.7),
}


@pytest.mark.parametrize("name", DECODER_ONLY)
@pytest.mark.parametrize("mode", GENERATE)
def test_generate_matches_oracle_on_left_padded_batch(tmp_path, name, mode):
    ref, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS[name])
    ids, mask = padded(3, 7, [0, 2, 4])
    kwargs = dict(attention_mask=mask, pad_token_id=PAD, **GENERATE[mode])
    expected = ref.generate(ids, **kwargs)
    assert torch.equal(ours.generate(ids, **kwargs), expected)


# -- checkpoints ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu-unscaled-odd-heads", "silu-cross-attention"])
@pytest.mark.parametrize("ref_cls,ours_cls", PAIRS, ids=PAIR_IDS)
def test_save_then_oracle_loads(tmp_path, name, ref_cls, ours_cls):
    ref, ours = pair(tmp_path / "oracle", ref_cls, ours_cls, **CONFIGS[name])
    ours.save_pretrained(tmp_path / "ours")
    reloaded = ref_cls.from_pretrained(tmp_path / "ours").eval()
    assert set(ours.state_dict_to_save()) == set(ref.state_dict()) - {"lm_head.weight"}
    ids, mask = padded(2, 6, [0, 2])
    kwargs = dict(input_ids=ids, attention_mask=mask, **cross_kwargs(name, 2, ref.config.d_model))
    with torch.no_grad():
        assert_close(reloaded(**kwargs)[0], ref(**kwargs)[0])
        assert_close(ours(**kwargs)[0], ref(**kwargs)[0])


def test_state_dict_keys_match_oracle(tmp_path):
    ref, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS["silu-cross-attention"])
    assert set(ours.state_dict()) == set(ref.state_dict())
    assert ours.lm_head.weight is ours.model.embed_tokens.weight


def test_head_model_loads_bare_checkpoint_and_back(tmp_path):
    ref, bare = pair(tmp_path / "bare", transformers.XGLMModel, XGLMModel, **CONFIGS["gelu-scaled"])
    lm = XGLMForCausalLM.from_pretrained(tmp_path / "bare")
    ids = torch.randint(3, VOCAB, (2, 5))
    with torch.no_grad():
        assert_close(lm.model(ids).last_hidden_state, ref(ids).last_hidden_state)
        assert_close(lm(ids).logits, ref(ids).last_hidden_state @ ref.embed_tokens.weight.T)
    lm.save_pretrained(tmp_path / "lm")
    again = XGLMModel.from_pretrained(tmp_path / "lm")
    with torch.no_grad():
        assert_close(again(ids).last_hidden_state, ref(ids).last_hidden_state)


def test_old_checkpoints_with_a_stored_table_load_cleanly(tmp_path):
    from safetensors.torch import load_file, save_file

    _, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS["gelu-scaled"])
    weights = load_file(tmp_path / "model.safetensors")
    weights["model.embed_positions.weights"] = torch.zeros(26, 32)  # early conversions saved it
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded, info = XGLMForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert info["unexpected_keys"] == [] and info["missing_keys"] == []
    ids = torch.randint(3, VOCAB, (1, 5))
    with torch.no_grad():
        assert_close(loaded(ids).logits, ours(ids).logits)


def test_auto_classes_pick_xglm(tmp_path):
    ref, _ = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS["gelu-scaled"])
    assert type(AutoConfig.from_pretrained(tmp_path)) is XGLMConfig
    assert type(AutoModel.from_pretrained(tmp_path)) is XGLMModel
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(model) is XGLMForCausalLM
    ids = torch.randint(3, VOCAB, (1, 4))
    with torch.no_grad():
        assert_close(model(ids).logits, ref(ids).logits)


def test_bf16_load_matches_oracle_cast(tmp_path):
    ref, _ = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS["gelu-scaled"])
    ours = XGLMForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16)
    ref_bf16 = transformers.XGLMForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    ids = torch.randint(3, VOCAB, (2, 6))
    with torch.no_grad():
        o, r = ours(ids).logits, ref_bf16(ids).logits
    assert o.dtype == torch.bfloat16
    torch.testing.assert_close(o.float(), r.float(), atol=2e-2, rtol=2e-2)


# -- config -----------------------------------------------------------------------------------------


def test_config_defaults_follow_the_spec():
    config = XGLMConfig()
    expected = dict(vocab_size=256008, max_position_embeddings=2048, d_model=1024, ffn_dim=4096, num_layers=24,
                    attention_heads=16, activation_function="gelu", dropout=0.1, attention_dropout=0.1,
                    activation_dropout=0.0, layerdrop=0.0, init_std=0.02, scale_embedding=True, use_cache=True,
                    decoder_start_token_id=2, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                    add_cross_attention=False, tie_word_embeddings=True)
    assert {k: getattr(config, k) for k in expected} == expected
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (1024, 24, 16)
    oracle = transformers.XGLMConfig()
    assert {k: getattr(oracle, k) for k in expected} == expected


def test_config_round_trips_with_oracle(tmp_path):
    oracle_config(d_model=40, attention_heads=5, activation_function="relu", layerdrop=0.1).save_pretrained(tmp_path)
    config = XGLMConfig.from_pretrained(tmp_path)
    assert (config.d_model, config.attention_heads, config.activation_function, config.layerdrop) == (40, 5, "relu", 0.1)
    config.save_pretrained(tmp_path / "again")
    again = transformers.XGLMConfig.from_pretrained(tmp_path / "again")
    assert json.loads(again.to_json_string())["d_model"] == 40 and again.attention_heads == 5


@pytest.mark.parametrize(
    "kwargs,culprit",
    [
        (dict(d_model=30, attention_heads=4), "d_model"),
        (dict(num_layers=0), "num_layers"),
        (dict(ffn_dim=-3), "ffn_dim"),
        (dict(dropout=1.5), "dropout"),
        (dict(layerdrop=-0.1), "layerdrop"),
        (dict(activation_function=3), "activation_function"),
    ],
)
def test_bad_config_names_the_key(kwargs, culprit):
    with pytest.raises(ConfigError, match=culprit):
        XGLMConfig(**kwargs)


def test_unknown_activation_is_named_when_building():
    with pytest.raises(ValueError, match="mish"):
        XGLMModel(XGLMConfig(vocab_size=20, d_model=8, ffn_dim=8, num_layers=1, attention_heads=2,
                             activation_function="mish"))


# -- training-time behaviour ------------------------------------------------------------------------


def test_layerdrop_only_in_training(tmp_path):
    _, ours = pair(tmp_path, transformers.XGLMModel, XGLMModel, **CONFIGS["gelu-scaled"])
    ours.config.layerdrop = 1.0  # every layer dropped when training
    ids = torch.randint(3, VOCAB, (2, 5))
    with torch.no_grad():
        kept = ours(ids, output_hidden_states=True)
        ours.train()
        dropped = ours(ids, output_hidden_states=True)
        ours.eval()
    embedded = dropped.hidden_states[0]
    assert_close(dropped.last_hidden_state, ours.layer_norm(embedded))
    assert "past_key_values" not in dropped.keys()  # skipped layers would leave holes in a cache
    assert not torch.allclose(kept.last_hidden_state, dropped.last_hidden_state)


def test_gradient_checkpointing_gives_same_gradients(tmp_path):
    _, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS["relu-unscaled-odd-heads"])
    ids = torch.randint(3, VOCAB, (2, 6))
    ours.train()
    ours(ids, labels=ids).loss.backward()
    plain = ours.model.layers[0].fc1.weight.grad.clone()
    ours.zero_grad()
    ours.gradient_checkpointing_enable()
    ours(ids, labels=ids).loss.backward()
    assert_close(ours.model.layers[0].fc1.weight.grad, plain)


def test_resize_keeps_embedding_scale_and_tying(tmp_path):
    _, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS["gelu-scaled"])
    ids = torch.randint(3, VOCAB, (1, 5))
    with torch.no_grad():
        before = ours(ids).logits
    ours.resize_token_embeddings(VOCAB + 5)
    assert ours.model.embed_tokens.embed_scale == math.sqrt(32)
    assert ours.lm_head.weight is ours.model.embed_tokens.weight
    with torch.no_grad():
        assert_close(ours(ids).logits[..., :VOCAB], before)


# -- bad inputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,error,culprit",
    [
        (dict(encoder_hidden_states=torch.zeros(2, 3, 32)), ValueError, "add_cross_attention"),
        (dict(position_ids=torch.zeros(2, 3, dtype=torch.long)), ValueError, "position_ids"),
        (dict(position_ids=torch.full((2, 5), -3)), ValueError, "position_ids"),
        (dict(attention_mask=torch.ones(2, 4)), ValueError, "attention_mask"),
        (dict(head_mask=torch.ones(3, 4)), ValueError, "head_mask"),
        (dict(past_key_values=((torch.zeros(2, 4, 3, 8),),)), ValueError, "past_key_values"),
        (dict(past_key_values="cache"), TypeError, "past_key_values"),
        (dict(input_ids=torch.full((2, 5), VOCAB)), ValueError, "input_ids"),
        (dict(inputs_embeds=torch.zeros(2, 5, 32)), ValueError, "exactly one"),
    ],
)
def test_bad_inputs_name_the_culprit(tmp_path, kwargs, error, culprit):
    _, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS["gelu-scaled"])
    kwargs = {"input_ids": torch.randint(3, VOCAB, (2, 5)), **kwargs}
    with pytest.raises(error, match=culprit):
        ours(**kwargs)


def test_bad_encoder_mask_and_cross_cache_are_named(tmp_path):
    _, ours = pair(tmp_path, transformers.XGLMForCausalLM, XGLMForCausalLM, **CONFIGS["silu-cross-attention"])
    ids = torch.randint(3, VOCAB, (2, 5))
    states = torch.zeros(2, 3, 36)
    with pytest.raises(ValueError, match="encoder_attention_mask"):
        ours(ids, encoder_hidden_states=states, encoder_attention_mask=torch.ones(2, 4))
    bad = tuple((torch.zeros(2, 3, 1, 12),) * 3 for _ in range(2))
    with pytest.raises(ValueError, match=r"past_key_values\[0\]"):
        ours(ids, encoder_hidden_states=states, past_key_values=bad)
