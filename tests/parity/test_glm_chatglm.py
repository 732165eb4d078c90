"""THUDM's original GLM-4 layout (model_type "chatglm"): converted at load time, no remote code."""

import json
import os

import pytest
import torch

from glm_helpers import GLM4_CHAT, left_pad, mask_positions, oracle_model, random_ids, write_chatglm_checkpoint

from tongues import AutoConfig, AutoModelForCausalLM, CheckpointError, ConfigError, GlmConfig, GlmForCausalLM, GlmModel
from tongues.models.glm.convert_chatglm import chatglm_config_to_glm, chatglm_key_to_glm, split_fused_qkv

close = torch.testing.assert_close


def _real_config() -> dict:
    with open(os.path.join(GLM4_CHAT, "config.json"), encoding="utf-8") as f:
        return json.load(f)


def test_real_config_converts():
    config = GlmConfig.from_pretrained(GLM4_CHAT)
    assert (config.vocab_size, config.hidden_size, config.intermediate_size) == (151552, 4096, 13696)
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (40, 32, 2)
    assert config.head_dim == 128 and config.rotary_dim == 64
    assert config.rope_theta == 10000.0 * 500  # rope_ratio scales the base
    assert config.partial_rotary_factor == 0.5
    assert config.rms_norm_eps == 1.5625e-07 and config.max_position_embeddings == 131072
    assert config.attention_bias is True and config.tie_word_embeddings is False
    assert config.eos_token_id == [151329, 151336, 151338] and config.pad_token_id == 151329
    assert config.model_type == "glm"
    assert "rope_ratio" not in config.to_dict() and "multi_query_group_num" not in config.to_dict()
    assert isinstance(AutoConfig.from_pretrained(GLM4_CHAT), GlmConfig)


def test_every_weight_of_the_real_index_maps():
    with open(os.path.join(GLM4_CHAT, "model.safetensors.index.json"), encoding="utf-8") as f:
        index = json.load(f)
    config = GlmConfig.from_pretrained(GLM4_CHAT)
    with torch.device("meta"):
        model = GlmForCausalLM(config)
    expected = {name: p.shape for name, p in model.state_dict().items()}
    covered, dropped = set(), []
    for key in index["weight_map"]:
        glm_key = chatglm_key_to_glm(key)
        if glm_key is None:
            dropped.append(key)
            continue
        rows = 32 * 128 + 2 * 2 * 128 if ".qkv." in glm_key else 0
        for name, _ in split_fused_qkv(glm_key, torch.empty(rows, device="meta"), 32, 2, 128):
            assert name in expected, (key, name)
            covered.add(name)
    assert dropped == ["transformer.rotary_pos_emb.inv_freq"]
    assert covered == set(expected)
    # The index's byte count is the model's bf16 parameters plus the dropped bf16 inv_freq (32 entries).
    params = sum(torch.Size(shape).numel() for shape in expected.values())
    assert index["metadata"]["total_size"] == 2 * params + 2 * 32


def test_unknown_original_key_is_named():
    with pytest.raises(KeyError, match="transformer.prefix_encoder.embedding.weight"):
        chatglm_key_to_glm("transformer.prefix_encoder.embedding.weight")


def test_fused_qkv_split_checks_rows():
    with pytest.raises(ValueError, match="expected 32 \\+ 2 x 8 = 48"):
        list(split_fused_qkv("model.layers.0.self_attn.qkv.weight", torch.zeros(40, 4), 4, 1, 8))


@pytest.mark.parametrize("key, value", [("add_bias_linear", True), ("rmsnorm", False), ("post_layer_norm", False),
                                        ("apply_residual_connection_post_layernorm", True)])
def test_unsupported_original_options_are_refused(key, value):
    data = {**_real_config(), key: value}
    with pytest.raises(ConfigError, match=key):
        chatglm_config_to_glm(data)


def test_bad_rope_ratio():
    with pytest.raises(ConfigError, match="rope_ratio"):
        chatglm_config_to_glm({**_real_config(), "rope_ratio": 0})


def test_without_multi_query_every_head_has_keys():
    data = {**_real_config(), "multi_query_attention": False}
    assert chatglm_config_to_glm(data)["num_key_value_heads"] == 32


@torch.no_grad()
@pytest.mark.parametrize("overrides", [dict(num_key_value_heads=1, attention_bias=True, rope_theta=5e5),
                                       dict(num_key_value_heads=2, attention_bias=False, tie_word_embeddings=True),
                                       dict(num_key_value_heads=4, attention_bias=True)],
                         ids=["mqa-bias-ratio50", "gqa-nobias-tied", "mha-bias"])
def test_tiny_original_checkpoint_matches_oracle_on_hf_layout(tmp_path, overrides):
    ref = oracle_model("GlmForCausalLM", **overrides)
    path = write_chatglm_checkpoint(ref, tmp_path / "chatglm")
    # kernels="none": torch's F.linear, as the oracle runs, so the converted weights must match bit for bit
    ours, info = GlmForCausalLM.from_pretrained(path, output_loading_info=True, kernels="none")
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    ids, mask = left_pad(random_ids(2, 8), [0, 3])
    a = ref(ids, attention_mask=mask, position_ids=mask_positions(mask)).logits
    b = ours(ids, attention_mask=mask).logits
    close(b[mask.bool()], a[mask.bool()], atol=0, rtol=0)
    assert type(AutoModelForCausalLM.from_pretrained(path)) is GlmForCausalLM
    # The bare model takes the same checkpoint (the LM head is reported unused).
    bare, info = GlmModel.from_pretrained(path, output_loading_info=True)
    assert info["unexpected_keys"] == ["transformer.output_layer.weight"] and info["missing_keys"] == []
    close(bare(ids).last_hidden_state, ref.model(ids).last_hidden_state, atol=1e-6, rtol=1e-6)


@torch.no_grad()
def test_original_checkpoint_saves_in_hf_layout_the_oracle_loads(tmp_path):
    import transformers

    ref = oracle_model("GlmForCausalLM", num_key_value_heads=2)
    ours = GlmForCausalLM.from_pretrained(write_chatglm_checkpoint(ref, tmp_path / "chatglm"))
    ours.save_pretrained(tmp_path / "hf")
    with open(tmp_path / "hf" / "config.json", encoding="utf-8") as f:
        assert json.load(f)["model_type"] == "glm"
    back = transformers.GlmForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = random_ids(2, 6)
    close(back(ids).logits, ref(ids).logits, atol=0, rtol=0)


def test_wrong_shapes_name_the_weight(tmp_path):
    ref = oracle_model("GlmForCausalLM", num_key_value_heads=2)
    path = write_chatglm_checkpoint(ref, tmp_path / "chatglm")
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        data = json.load(f)
    data["ffn_hidden_size"] = 40
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
        json.dump(data, f)
    with pytest.raises(CheckpointError, match=r"mlp\.dense_(4h_to_h|h_to_4h)\.weight.*expects"):
        GlmForCausalLM.from_pretrained(path)
