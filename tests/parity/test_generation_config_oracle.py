"""generation_config.json written by the oracle reads the same in tongues, and the other way round."""

from __future__ import annotations

import json

import pytest
import transformers

from tongues.generation import GenerationConfig
from tongues.generation.configuration import GENERATION_DEFAULTS, GENERATION_FIELDS

SETTINGS = [
    dict(max_new_tokens=12, do_sample=True, temperature=0.7, top_p=0.9, top_k=20),
    dict(num_beams=4, num_return_sequences=2, length_penalty=0.8, early_stopping="never", eos_token_id=[2, 5]),
    dict(max_length=30, min_new_tokens=2, repetition_penalty=1.1, no_repeat_ngram_size=3, pad_token_id=0,
         bad_words_ids=[[3], [4, 5]], suppress_tokens=[7]),
]


def fields_of(config) -> dict:
    return {name: getattr(config, name, None) for name in GENERATION_FIELDS}


@pytest.mark.parametrize("settings", SETTINGS)
def test_oracle_file_loads_in_tongues(tmp_path, settings):
    transformers.GenerationConfig(**settings).save_pretrained(tmp_path)
    ours = GenerationConfig.from_pretrained(tmp_path)
    ref = transformers.GenerationConfig.from_pretrained(tmp_path)
    assert fields_of(ours) == fields_of(ref)


@pytest.mark.parametrize("settings", SETTINGS)
def test_tongues_file_loads_in_oracle(tmp_path, settings):
    GenerationConfig(**settings).save_pretrained(tmp_path)
    ref = transformers.GenerationConfig.from_pretrained(tmp_path)
    assert fields_of(ref) == fields_of(GenerationConfig(**settings))
    written = json.loads((tmp_path / "generation_config.json").read_text())
    expected = json.loads(transformers.GenerationConfig(**settings).to_json_string())
    expected.pop("transformers_version")
    written.pop("tongues_version")
    assert written == expected


def test_from_model_config_matches_oracle(tmp_path):
    hf_model_config = transformers.BloomConfig(vocab_size=50, hidden_size=16, n_layer=1, n_head=2, pad_token_id=3)
    ref = transformers.GenerationConfig.from_model_config(hf_model_config)
    ours = GenerationConfig.from_model_config(hf_model_config.to_dict())
    assert fields_of(ours) == fields_of(ref)
    # A saved oracle model's generation_config.json (with `_from_model_config`) reads the same.
    transformers.BloomForCausalLM(hf_model_config).save_pretrained(tmp_path)
    assert fields_of(GenerationConfig.from_pretrained(tmp_path)) == fields_of(
        transformers.GenerationConfig.from_pretrained(tmp_path)
    )


def test_defaults_match_the_oracle():
    expected = transformers.GenerationConfig._get_default_generation_params()
    for key, value in GENERATION_DEFAULTS.items():
        assert expected[key] == value, key
