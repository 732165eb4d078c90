"""GenerationConfig: unset vs default, update, validation errors, save/load, from_model_config."""

from __future__ import annotations

import json
import types

import pytest

from tongues.generation import GENERATION_DEFAULTS, GenerationConfig, GenerationConfigError


def test_fields_start_unset_and_defaults_are_documented():
    config = GenerationConfig()
    assert config.max_length is None and config.num_beams is None and config.do_sample is None
    assert GENERATION_DEFAULTS["max_length"] == 20 and GENERATION_DEFAULTS["top_k"] == 50
    assert config.generation_mode == "greedy_search"
    assert GenerationConfig(do_sample=True).generation_mode == "sample"
    assert GenerationConfig(num_beams=3).generation_mode == "beam_search"
    assert GenerationConfig(num_beams=3, do_sample=True).generation_mode == "beam_sample"


def test_update_returns_unused_and_keeps_custom_keys():
    config = GenerationConfig(max_new_tokens=5, my_flag="x")
    assert config.my_flag == "x"
    unused = config.update(temperature=0.5, foo=1, max_new_tokens=9)
    assert unused == {"foo": 1}
    assert config.temperature == 0.5 and config.max_new_tokens == 9
    config.update(max_new_tokens=100, top_k=3, defaults_only=True)
    assert config.max_new_tokens == 9 and config.top_k == 3
    assert config.update(bar=2, allow_custom_entries=True) == {} and config.bar == 2


@pytest.mark.parametrize(
    "kwargs, culprit",
    [
        (dict(do_sample=True, temperature=0.0), "temperature"),
        (dict(do_sample=True, temperature=-1.0), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_k=-1), "top_k"),
        (dict(max_new_tokens=-3), "max_new_tokens"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(max_length=0), "max_length"),
        (dict(num_beams=0), "num_beams"),
        (dict(num_beams=2, num_return_sequences=3), "num_return_sequences"),
        (dict(num_return_sequences=2), "num_return_sequences"),
        (dict(early_stopping="sometimes"), "early_stopping"),
        (dict(repetition_penalty=0.0), "repetition_penalty"),
        (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size"),
        (dict(min_new_tokens=-1), "min_new_tokens"),
        (dict(typical_p=0.0), "typical_p"),
        (dict(min_p=2.0), "min_p"),
        (dict(epsilon_cutoff=1.0), "epsilon_cutoff"),
        (dict(eos_token_id="2"), "eos_token_id"),
        (dict(eos_token_id=[]), "eos_token_id"),
        (dict(pad_token_id=1.5), "pad_token_id"),
        (dict(bad_words_ids=[1, 2]), "bad_words_ids"),
        (dict(suppress_tokens=[2], forced_eos_token_id=2), "suppress_tokens"),
        (dict(streamer=object()), "streamer"),
        (dict(exponential_decay_length_penalty=5), "exponential_decay_length_penalty"),
    ],
)
def test_out_of_range_settings_raise_naming_the_argument(kwargs, culprit):
    with pytest.raises(GenerationConfigError, match=culprit) as info:
        GenerationConfig(**kwargs)
    assert isinstance(info.value, ValueError)


def test_update_validates_too():
    config = GenerationConfig(do_sample=True)
    with pytest.raises(ValueError, match="top_p"):
        config.update(top_p=3.0)


def test_temperature_zero_is_fine_without_sampling():
    GenerationConfig(temperature=0.0)  # ignored by greedy decoding, not an error


def test_save_and_load_round_trip(tmp_path):
    config = GenerationConfig(max_new_tokens=7, do_sample=True, top_p=0.9, eos_token_id=[2, 3], custom_key=[1])
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "generation_config.json").read_text())
    assert data["max_new_tokens"] == 7 and data["eos_token_id"] == [2, 3] and "num_beams" not in data
    loaded = GenerationConfig.from_pretrained(tmp_path)
    assert loaded == config and loaded.custom_key == [1]
    loaded, unused = GenerationConfig.from_pretrained(tmp_path, top_k=4, nope=1, return_unused_kwargs=True)
    # As in the reference, unknown kwargs become custom entries of the loaded config.
    assert loaded.top_k == 4 and loaded.nope == 1 and unused == {}


def test_save_refuses_contradictory_settings(tmp_path):
    config = GenerationConfig(temperature=0.5)  # a sampling flag while not sampling
    with pytest.raises(GenerationConfigError, match="temperature"):
        config.save_pretrained(tmp_path)
    config.do_sample = True
    config.save_pretrained(tmp_path)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="generation_config.json"):
        GenerationConfig.from_pretrained(tmp_path)
    (tmp_path / "generation_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="generation_config.json"):
        GenerationConfig.from_pretrained(tmp_path)
    (tmp_path / "generation_config.json").write_text(json.dumps({"top_k": -5}))
    with pytest.raises(ValueError, match="top_k"):
        GenerationConfig.from_pretrained(tmp_path)


def test_from_model_config_takes_generation_fields_only():
    model_config = types.SimpleNamespace(to_dict=lambda: {
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": None, "hidden_size": 32, "use_cache": True,
        "output_hidden_states": True,
    })
    config = GenerationConfig.from_model_config(model_config)
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (1, 2, None)
    assert not hasattr(config, "hidden_size")
    assert config.return_dict_in_generate is True  # an output flag implies a dict
    nested = GenerationConfig.from_model_config({"text_config": {"eos_token_id": 7}, "bos_token_id": 1})
    assert nested.eos_token_id == 7 and nested.bos_token_id == 1


def test_equality_ignores_metadata_and_repr_is_json():
    a = GenerationConfig(max_new_tokens=3)
    b = GenerationConfig(max_new_tokens=3, transformers_version="5.23.0")
    assert a == b and hash(a) == hash(b)
    assert json.loads(repr(a).split(" ", 1)[1]) == {"max_new_tokens": 3}
