"""GlmConfig: the spec's arguments and defaults, both RoPE key layouts, validation, and the oracle reading ours."""

import json

import pytest

from tongues import ConfigError, GlmConfig


def test_spec_defaults():
    config = GlmConfig()
    expected = dict(vocab_size=151552, hidden_size=4096, intermediate_size=13696, num_hidden_layers=40,
                    num_attention_heads=32, num_key_value_heads=2, head_dim=128, hidden_act="silu",
                    attention_dropout=0.0, max_position_embeddings=131072, initializer_range=0.02,
                    rms_norm_eps=1.5625e-07, use_cache=True, tie_word_embeddings=False, rope_theta=10000.0,
                    pad_token_id=151329, eos_token_id=[151329, 151336, 151338], bos_token_id=None,
                    attention_bias=True, partial_rotary_factor=0.5)
    for key, value in expected.items():
        assert getattr(config, key) == value, key
    assert config.model_type == "glm" and config.rotary_dim == 64


def test_seed_era_flat_keys():
    config = GlmConfig.from_dict({"rope_theta": 5e6, "partial_rotary_factor": 0.25, "head_dim": 64})
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 5e6, "partial_rotary_factor": 0.25}
    assert config.rope_theta == 5e6 and config.rotary_dim == 16


def test_todays_rope_parameters_win_over_flat_keys():
    config = GlmConfig.from_dict({"rope_parameters": {"rope_type": "default", "rope_theta": 123.0},
                                  "rope_theta": 999.0})
    assert config.rope_theta == 123.0 and config.partial_rotary_factor == 0.5
    linear = GlmConfig(rope_parameters={"rope_type": "linear", "factor": 4.0})
    assert linear.rope_scaling_factor == 4.0
    old = GlmConfig.from_dict({"rope_scaling": {"type": "linear", "factor": 2.0}})
    assert old.rope_parameters["rope_type"] == "linear" and old.rope_scaling_factor == 2.0


def test_flat_names_are_views_of_rope_parameters():
    config = GlmConfig()
    config.rope_theta = 42.0
    config.partial_rotary_factor = 1.0
    assert config.rope_parameters["rope_theta"] == 42.0 and config.rotary_dim == 128


def test_defaults_fill_missing_heads():
    config = GlmConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=None, head_dim=None)
    assert config.num_key_value_heads == 4 and config.head_dim == 16


def test_saved_json_has_both_layouts_and_round_trips(tmp_path):
    config = GlmConfig(num_hidden_layers=3, rope_theta=500.0, num_labels=4)
    config.save_pretrained(tmp_path)
    with open(tmp_path / "config.json", encoding="utf-8") as f:
        data = json.load(f)
    assert data["model_type"] == "glm"
    assert data["rope_theta"] == 500.0 and data["partial_rotary_factor"] == 0.5
    assert data["rope_parameters"] == {"rope_type": "default", "rope_theta": 500.0, "partial_rotary_factor": 0.5}
    again = GlmConfig.from_pretrained(tmp_path)
    assert again == config and again.num_labels == 4


def test_the_oracle_loads_our_config(tmp_path):
    import transformers

    ours = GlmConfig(vocab_size=300, hidden_size=48, num_key_value_heads=1, rope_theta=2e5, partial_rotary_factor=0.25,
                     tie_word_embeddings=True, attention_bias=False, custom_key="kept")
    ours.save_pretrained(tmp_path)
    ref = transformers.GlmConfig.from_pretrained(str(tmp_path))
    assert ref.rope_parameters["rope_theta"] == 2e5 and ref.rope_parameters["partial_rotary_factor"] == 0.25
    for key in ("vocab_size", "hidden_size", "num_key_value_heads", "tie_word_embeddings", "attention_bias",
                "eos_token_id", "pad_token_id", "rms_norm_eps", "head_dim"):
        assert getattr(ref, key) == getattr(ours, key), key
    # And we read what the oracle writes.
    ref.save_pretrained(str(tmp_path / "ref"))
    back = GlmConfig.from_pretrained(tmp_path / "ref")
    assert back.rope_parameters == ours.rope_parameters and back.custom_key == "kept"


@pytest.mark.parametrize("kwargs, culprit", [
    (dict(num_attention_heads=32, num_key_value_heads=3), "num_key_value_heads"),
    (dict(num_key_value_heads=0), "num_key_value_heads"),
    (dict(vocab_size=-1), "vocab_size"),
    (dict(partial_rotary_factor=1.5), "partial_rotary_factor"),
    (dict(head_dim=6, partial_rotary_factor=0.5), "rotary channels"),
    (dict(rope_theta=0), "rope_theta"),
    (dict(rope_parameters={"rope_type": "yarn", "factor": 2.0}), "rope_type"),
    (dict(rope_parameters={"rope_type": "linear"}), "factor"),
    (dict(rope_parameters="default"), "rope_parameters"),
    (dict(attention_dropout=1.0), "attention_dropout"),
    (dict(eos_token_id=["x"]), "eos_token_id"),
])
def test_bad_values_name_the_key(kwargs, culprit):
    with pytest.raises(ConfigError, match=culprit):
        GlmConfig(**kwargs)


def test_wrong_model_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bloom"}))
    with pytest.raises(ConfigError, match="bloom"):
        GlmConfig.from_pretrained(tmp_path)
