"""Flax BLOOM and XGLM against tongues' PyTorch models: same weights, same outputs (fp32), same tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from tongues.checkpoint.files import CheckpointError  # noqa: E402
from tongues.generation.configuration import GenerationConfig  # noqa: E402
from tongues.models.bloom import BloomConfig  # noqa: E402
from tongues.models.bloom.modeling_bloom import BloomForCausalLM  # noqa: E402
from tongues.models.bloom.modeling_flax_bloom import FlaxBloomForCausalLM, FlaxBloomModel  # noqa: E402
from tongues.models.xglm import XGLMConfig  # noqa: E402
from tongues.models.xglm.modeling_flax_xglm import FlaxXGLMForCausalLM, FlaxXGLMModel  # noqa: E402
from tongues.models.xglm.modeling_xglm import XGLMForCausalLM  # noqa: E402
from twin_helpers import IDS, MASK, POS, REAL, close, cross_attention_reference, saved_pytorch  # noqa: E402


@pytest.fixture(scope="module")
def bloom_dir(tmp_path_factory):
    config = BloomConfig(vocab_size=96, hidden_size=32, n_layer=2, n_head=4, pad_token_id=0, eos_token_id=2)
    return saved_pytorch(BloomForCausalLM, config, tmp_path_factory.mktemp("bloom"))


@pytest.fixture(scope="module")
def xglm_dir(tmp_path_factory):
    config = XGLMConfig(vocab_size=96, d_model=32, ffn_dim=64, num_layers=2, attention_heads=4,
                        max_position_embeddings=64, dropout=0.0, attention_dropout=0.0)
    return saved_pytorch(XGLMForCausalLM, config, tmp_path_factory.mktemp("xglm"))


@pytest.fixture(scope="module")
def flax_bloom(bloom_dir):
    return FlaxBloomForCausalLM.from_pretrained(bloom_dir[0])


@pytest.fixture(scope="module")
def flax_xglm(xglm_dir):
    return FlaxXGLMForCausalLM.from_pretrained(xglm_dir[0])


def test_bloom_logits_hidden_states_and_attentions_match_pytorch(bloom_dir, flax_bloom):
    _, pt = bloom_dir
    with torch.no_grad():
        ref = pt(torch.tensor(IDS), attention_mask=torch.tensor(MASK), output_hidden_states=True,
                 output_attentions=True)
    out = flax_bloom(IDS, attention_mask=MASK, output_hidden_states=True, output_attentions=True)
    close(out.logits, ref.logits.numpy(), REAL)
    assert len(out.hidden_states) == len(ref.hidden_states) == 3
    for ours, theirs in zip(out.hidden_states, ref.hidden_states):
        close(ours, theirs.numpy(), REAL)
    for ours, theirs in zip(out.attentions, ref.attentions):
        close(ours[1], theirs[1].numpy())  # the unpadded row, every query


def test_bloom_base_model_loads_from_head_checkpoint(bloom_dir):
    path, pt = bloom_dir
    base = FlaxBloomModel.from_pretrained(path)
    assert "transformer" not in base.params
    with torch.no_grad():
        ref = pt.transformer(torch.tensor(IDS), attention_mask=torch.tensor(MASK)).last_hidden_state.numpy()
    close(base(IDS, MASK).last_hidden_state, ref, REAL)
    # return_dict=False gives the tuple, hidden state first
    close(base(IDS, MASK, return_dict=False)[0], ref, REAL)


def test_xglm_logits_and_base_model_match_pytorch(xglm_dir, flax_xglm):
    path, pt = xglm_dir
    with torch.no_grad():
        ref = pt(torch.tensor(IDS), attention_mask=torch.tensor(MASK), position_ids=torch.tensor(POS),
                 output_hidden_states=True).logits.numpy()
        # default positions count from 0, as in PyTorch
        ref_default = pt(torch.tensor(IDS), attention_mask=torch.tensor(MASK)).logits.numpy()
    close(flax_xglm(IDS, attention_mask=MASK, position_ids=POS).logits, ref, REAL)
    close(flax_xglm(IDS, attention_mask=MASK).logits, ref_default, REAL)
    base = FlaxXGLMModel.from_pretrained(path)
    with torch.no_grad():
        ref_base = pt.model(torch.tensor(IDS), attention_mask=torch.tensor(MASK)).last_hidden_state.numpy()
    close(base(IDS, MASK).last_hidden_state, ref_base, REAL)


def test_xglm_cross_attention_matches_pytorch(tmp_path):
    enc, enc_mask, ref = cross_attention_reference(tmp_path)
    fx = FlaxXGLMModel.from_pretrained(tmp_path)
    out = fx(IDS, MASK, encoder_hidden_states=enc, encoder_attention_mask=enc_mask, output_attentions=True)
    close(out.last_hidden_state, ref.last_hidden_state, REAL)
    close(out.cross_attentions[0][1], ref.cross_attentions[0][1])


@pytest.mark.parametrize("family", ["bloom", "xglm"])
def test_cached_decoding_equals_full_forward(family, flax_bloom, flax_xglm):
    model = flax_bloom if family == "bloom" else flax_xglm
    full = model(IDS, attention_mask=MASK, **({"position_ids": POS} if family == "xglm" else {})).logits
    max_length = IDS.shape[1]
    cache = model.init_cache(2, max_length)
    mask = np.ones((2, max_length), "i4")
    mask[:, :4] = MASK[:, :4]
    kw = {"position_ids": POS[:, :4]} if family == "xglm" else {}
    out = model(IDS[:, :4], attention_mask=mask, past_key_values=cache, **kw)
    close(out.logits, np.asarray(full)[:, :4], REAL[:, :4])
    for t in (4, 5):
        kw = {"position_ids": POS[:, t:t + 1]} if family == "xglm" else {}
        out = model(IDS[:, t:t + 1], attention_mask=mask, past_key_values=out.past_key_values, **kw)
        close(out.logits[:, 0], np.asarray(full)[:, t])


@pytest.mark.parametrize("family", ["bloom", "xglm"])
def test_greedy_and_beam_generation_token_identical_to_pytorch(family, bloom_dir, xglm_dir, flax_bloom, flax_xglm):
    pt, fx = (bloom_dir[1], flax_bloom) if family == "bloom" else (xglm_dir[1], flax_xglm)
    for kwargs in ({}, {"num_beams": 3}):
        with torch.no_grad():
            ref = pt.generate(torch.tensor(IDS), attention_mask=torch.tensor(MASK), max_new_tokens=5,
                              do_sample=False, **kwargs).numpy()
        ours = np.asarray(fx.generate(IDS, attention_mask=MASK, max_new_tokens=5, **kwargs).sequences)
        np.testing.assert_array_equal(ours[:, : ref.shape[1]], ref)


def test_sampling_is_reproducible_and_top_k_one_is_greedy(flax_xglm):
    key = jax.random.PRNGKey(3)
    a = flax_xglm.generate(IDS, attention_mask=MASK, max_new_tokens=4, do_sample=True, top_p=0.9, prng_key=key)
    b = flax_xglm.generate(IDS, attention_mask=MASK, max_new_tokens=4, do_sample=True, top_p=0.9, prng_key=key)
    np.testing.assert_array_equal(a.sequences, b.sequences)
    one = flax_xglm.generate(IDS, attention_mask=MASK, max_new_tokens=4, do_sample=True, top_k=1, prng_key=key)
    greedy = flax_xglm.generate(IDS, attention_mask=MASK, max_new_tokens=4)
    np.testing.assert_array_equal(one.sequences, greedy.sequences)
    eager = flax_xglm.generate(IDS, attention_mask=MASK, max_new_tokens=2, trace=False)
    np.testing.assert_array_equal(eager.sequences, greedy.sequences[:, : IDS.shape[1] + 2])


def test_generation_settings_come_from_generation_config(tmp_path, xglm_dir, flax_xglm):
    def sequences(model, **kwargs):
        return np.asarray(model.generate(IDS, attention_mask=MASK, **kwargs).sequences)

    three = sequences(flax_xglm, max_new_tokens=3)
    assert three.shape == (2, 9)
    np.testing.assert_array_equal(sequences(flax_xglm, generation_config=GenerationConfig(max_new_tokens=3)), three)
    np.testing.assert_array_equal(
        sequences(flax_xglm, generation_config=GenerationConfig(max_new_tokens=5), max_new_tokens=3), three)
    # The checkpoint's generation_config.json is the model's default, and save_pretrained keeps it.
    flax_xglm.save_pretrained(tmp_path / "a")
    GenerationConfig(max_new_tokens=3).save_pretrained(tmp_path / "a")
    loaded = FlaxXGLMForCausalLM.from_pretrained(tmp_path / "a")
    np.testing.assert_array_equal(sequences(loaded), three)
    loaded.save_pretrained(tmp_path / "b")
    assert GenerationConfig.from_pretrained(tmp_path / "b").max_new_tokens == 3
    with pytest.raises(TypeError, match=r"Flax generate does not support repetition_penalty=1.3"):
        flax_xglm.generate(IDS, repetition_penalty=1.3)
    # Every id of a list-valued eos_token_id ends a row, as in PyTorch.
    stop = int(three[0, IDS.shape[1]])
    ends = sequences(flax_xglm, max_new_tokens=3, eos_token_id=[95, stop], pad_token_id=1)
    with torch.no_grad():
        ref = xglm_dir[1].generate(torch.tensor(IDS), attention_mask=torch.tensor(MASK), max_new_tokens=3,
                                   eos_token_id=[95, stop], pad_token_id=1, do_sample=False).numpy()
    assert ends[0, IDS.shape[1] + 1:].tolist() == [1, 1]
    np.testing.assert_array_equal(ends[:, : ref.shape[1]], ref)


def test_msgpack_round_trip_and_do_init_false(tmp_path, flax_bloom):
    flax_bloom.save_pretrained(tmp_path)
    assert (tmp_path / "flax_model.msgpack").exists() and (tmp_path / "config.json").exists()
    again = FlaxBloomForCausalLM.from_pretrained(tmp_path)
    close(again(IDS, MASK).logits, flax_bloom(IDS, MASK).logits, atol=0)
    model, params = FlaxBloomForCausalLM.from_pretrained(tmp_path, _do_init=False)
    close(model(IDS, MASK, params=params).logits, flax_bloom(IDS, MASK).logits, atol=0)
    with pytest.raises(ValueError, match="_do_init=False"):
        model(IDS, MASK)
    base = FlaxBloomModel.from_pretrained(tmp_path)  # head msgpack -> base model
    assert set(base.params) == {"word_embeddings", "word_embeddings_layernorm", "h", "ln_f"}


def test_half_precision_dtypes_run_close_to_fp32(bloom_dir, flax_bloom):
    ref = np.asarray(flax_bloom(IDS, MASK).logits)
    for dtype in (jnp.bfloat16, "float16"):
        model = FlaxBloomForCausalLM.from_pretrained(bloom_dir[0], dtype=dtype)
        out = np.asarray(model(IDS, MASK).logits, dtype=np.float32)
        assert model(IDS, MASK).logits.dtype == (jnp.bfloat16 if dtype is jnp.bfloat16 else jnp.float16)
        close(out, ref, REAL, atol=5e-2)


def test_dropout_needs_train_and_rng(tmp_path):
    config = BloomConfig(vocab_size=32, hidden_size=16, n_layer=1, n_head=2, hidden_dropout=0.5)
    model = FlaxBloomModel(config, seed=1)
    eval_out = model(IDS % 32, MASK).last_hidden_state
    rng = jax.random.PRNGKey(0)
    a = model(IDS % 32, MASK, train=True, dropout_rng=rng).last_hidden_state
    b = model(IDS % 32, MASK, train=True, dropout_rng=rng).last_hidden_state
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, eval_out)
    # XGLM's LayerDrop is a traced choice, so it runs under the jit-compiled forward
    xglm = FlaxXGLMModel(XGLMConfig(vocab_size=32, d_model=16, ffn_dim=16, num_layers=2, attention_heads=2,
                                    layerdrop=0.5), seed=1)
    assert xglm(IDS % 32, MASK, train=True, dropout_rng=rng).last_hidden_state.shape == (2, 6, 16)


def test_bad_inputs_name_the_culprit(tmp_path, flax_bloom):
    with pytest.raises(ValueError, match="attention_mask has shape"):
        flax_bloom(IDS, attention_mask=MASK[:, :3])
    cache = flax_bloom.init_cache(2, 8)
    with pytest.raises(ValueError, match="max_length"):
        flax_bloom(IDS, attention_mask=MASK, past_key_values=cache)
    with pytest.raises(ValueError, match="dtype"):
        FlaxBloomModel(BloomConfig(vocab_size=32, hidden_size=16, n_head=2), dtype="int8")
    with pytest.raises(ValueError, match="prompt length"):
        flax_bloom.generate(IDS, max_length=3)
    with pytest.raises(TypeError, match="num_beam"):
        flax_bloom.generate(IDS, num_beam=2)
    BloomConfig(vocab_size=32, hidden_size=16, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        FlaxBloomModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="cross-attention"):
        FlaxXGLMModel(XGLMConfig(vocab_size=32, d_model=16, ffn_dim=16, num_layers=1, attention_heads=2))(
            IDS % 32, encoder_hidden_states=np.zeros((2, 2, 16), np.float32))
