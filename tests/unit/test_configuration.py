"""PretrainedConfig and BloomConfig: real config files, aliases, round trips, clear errors."""

from __future__ import annotations

import json
import pathlib

import pytest
import transformers

from tongues import AutoConfig, BloomConfig, ConfigError

DATA = pathlib.Path(__file__).parent.parent / "data" / "bloom-560m-config"


def test_real_bloom_560m_config_with_old_key_names():
    config = BloomConfig.from_pretrained(DATA)
    assert (config.hidden_size, config.n_layer, config.n_head, config.vocab_size) == (1024, 24, 16, 250880)
    assert config.num_hidden_layers == 24 and config.num_attention_heads == 16
    assert config.pad_token_id == 3 and config.unk_token_id == 0
    assert config.offset_alibi == 100  # unknown keys are kept


def test_real_bloom_560m_onnx_config():
    config = BloomConfig.from_pretrained(DATA / "onnx")
    assert (config.hidden_size, config.n_layer, config.n_head) == (1024, 24, 16)


def test_matches_oracle_reading_of_the_same_file():
    ours = BloomConfig.from_pretrained(DATA)
    ref = transformers.BloomConfig.from_pretrained(DATA)
    for key in ("hidden_size", "n_layer", "n_head", "vocab_size", "layer_norm_epsilon", "bos_token_id",
                "eos_token_id", "pad_token_id", "apply_residual_connection_post_layernorm", "pretraining_tp"):
        assert getattr(ours, key) == getattr(ref, key), key


def test_spec_defaults():
    c = BloomConfig()
    assert (c.vocab_size, c.hidden_size, c.n_layer, c.n_head) == (250880, 64, 2, 8)
    assert (c.bos_token_id, c.eos_token_id, c.pretraining_tp, c.slow_but_exact) == (1, 2, 1, False)
    assert c.use_cache and c.tie_word_embeddings and c.return_dict


def test_round_trip_keeps_unknown_keys_and_loads_in_oracle(tmp_path):
    c = BloomConfig(hidden_size=32, n_head=4, my_custom_key={"a": [1, 2]}, num_labels=5)
    c.save_pretrained(tmp_path)
    again = BloomConfig.from_pretrained(tmp_path)
    assert again.my_custom_key == {"a": [1, 2]} and again.num_labels == 5 and again.id2label[4] == "LABEL_4"
    assert again.to_dict() == c.to_dict()
    ref = transformers.BloomConfig.from_pretrained(tmp_path)
    assert ref.hidden_size == 32 and ref.n_head == 4 and ref.num_labels == 5


def test_aliases_set_through_either_name():
    c = BloomConfig(num_hidden_layers=5, num_attention_heads=4, hidden_size=32)
    assert c.n_layer == 5 and c.n_head == 4
    c.num_hidden_layers = 7
    assert c.n_layer == 7


def test_auto_config_dispatches_on_model_type():
    assert isinstance(AutoConfig.from_pretrained(DATA), BloomConfig)


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"model_type": "bloom", "n_layer": "two"}), "n_layer"),
        (json.dumps({"model_type": "bloom", "hidden_size": 30, "n_head": 4}), "divisible"),
        (json.dumps({"model_type": "bloom", "n_head": 0}), "n_head"),
        (json.dumps({"model_type": "bloom", "eos_token_id": "x"}), "eos_token_id"),
        (json.dumps({"model_type": "bloom", "num_labels": -1}), "num_labels"),
        (json.dumps({"model_type": "bloom", "problem_type": "ranking"}), "problem_type"),
    ],
)
def test_bad_config_files_give_errors_naming_the_problem(tmp_path, content, fragment):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        BloomConfig.from_pretrained(tmp_path)


def test_unknown_model_type_names_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt-neo-x"}))
    with pytest.raises(ConfigError, match="gpt-neo-x"):
        AutoConfig.from_pretrained(tmp_path)


def test_wrong_family_names_both(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "xlm"}))
    with pytest.raises(ConfigError, match="'xlm'.*BloomConfig"):
        BloomConfig.from_pretrained(tmp_path)


def test_missing_directory_and_missing_file(tmp_path):
    from tongues import CheckpointError

    with pytest.raises(CheckpointError, match="has no config.json"):
        BloomConfig.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="neither a directory nor a hub id"):
        BloomConfig.from_pretrained(str(tmp_path / "no" / "such" / "dir"))


def test_trust_remote_code_is_refused():
    with pytest.raises(ConfigError, match="trust_remote_code"):
        AutoConfig.from_pretrained(DATA, trust_remote_code=True)
