"""AutoTokenizer: which class a folder gets, and the errors when it cannot tell."""

from __future__ import annotations

import json
import os

import pytest
from tokenizer_fixtures import BLOOM_560M_DIR, bloom_tokenizer_dir, copy_tokenizer_dir

from tongues.models.bloom.tokenization_bloom_fast import BloomTokenizerFast
from tongues.tokenization import AutoTokenizer, PreTrainedTokenizer, PreTrainedTokenizerFast, TokenizerFileError
from tongues.tokenization.auto import _family_of_class_name, tokenizer_class_from_name


def write_config(folder, **changes):
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    config = {key: value for key, value in config.items() if value is not None}
    path.write_text(json.dumps(config))


def test_bloom_layout_gets_bloom_tokenizer():
    tokenizer = AutoTokenizer.from_pretrained(bloom_tokenizer_dir())
    assert type(tokenizer) is BloomTokenizerFast
    assert tokenizer.padding_side == "left"
    assert type(AutoTokenizer.from_pretrained(bloom_tokenizer_dir(), use_fast=False)) is BloomTokenizerFast
    assert AutoTokenizer.from_pretrained(bloom_tokenizer_dir(), padding_side="right").padding_side == "right"


@pytest.mark.parametrize(
    "class_name, expected",
    [
        ("BloomTokenizerFast", BloomTokenizerFast),
        ("BloomTokenizer", BloomTokenizerFast),  # what bloom-560m's onnx/ config says
        ("PreTrainedTokenizerFast", PreTrainedTokenizerFast),
        ("TokenizersBackend", PreTrainedTokenizerFast),  # what transformers 5 writes
    ],
)
def test_tokenizer_class_names(tmp_path, class_name, expected):
    folder = copy_tokenizer_dir(bloom_tokenizer_dir(), tmp_path / "tok")
    write_config(folder, tokenizer_class=class_name)
    assert type(AutoTokenizer.from_pretrained(folder)) is expected
    assert tokenizer_class_from_name("PreTrainedTokenizer") is PreTrainedTokenizer


def test_family_from_class_name():
    assert _family_of_class_name("BloomTokenizerFast") == "bloom"
    assert _family_of_class_name("XGLMTokenizer") == "xglm"
    assert _family_of_class_name("XGLMTokenizerFast") == "xglm"
    assert _family_of_class_name("XLMTokenizer") == "xlm"
    assert _family_of_class_name("ChatGLM4Tokenizer") == "glm"
    assert _family_of_class_name("GPT2TokenizerFast") == "gpt2"  # the fifth family, found by its folder
    assert _family_of_class_name("LlamaTokenizerFast") is None
    assert _family_of_class_name("Bloom") is None


def test_model_type_when_config_has_no_class(tmp_path):
    folder = copy_tokenizer_dir(bloom_tokenizer_dir(), tmp_path / "tok")
    write_config(folder, tokenizer_class=None)
    (folder / "config.json").write_text(json.dumps({"model_type": "bloom"}))
    assert type(AutoTokenizer.from_pretrained(folder)) is BloomTokenizerFast
    # the real bloom-560m config.json is not copied into tests; a folder with only tokenizer.json is generic
    os.remove(folder / "config.json")
    os.remove(folder / "tokenizer_config.json")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert type(tokenizer) is PreTrainedTokenizerFast
    assert tokenizer.padding_side == "right"
    assert tokenizer.pad_token == "<pad>"  # from special_tokens_map.json


def test_unknown_class_and_model_type_are_named(tmp_path):
    folder = copy_tokenizer_dir(bloom_tokenizer_dir(), tmp_path / "tok")
    write_config(folder, tokenizer_class="FooTokenizer")
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: Unknown tokenizer_class 'FooTokenizer'"):
        AutoTokenizer.from_pretrained(folder)
    write_config(folder, tokenizer_class=None)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt9"}))
    with pytest.raises(ValueError, match=r"config\.json: Unknown model_type 'gpt9'"):
        AutoTokenizer.from_pretrained(folder)
    write_config(folder, tokenizer_class=["BloomTokenizerFast"])
    with pytest.raises(TokenizerFileError, match="tokenizer_class must be a class name"):
        AutoTokenizer.from_pretrained(folder)


def test_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerFileError, match="Cannot tell which tokenizer"):
        AutoTokenizer.from_pretrained(tmp_path / "empty")
    with pytest.raises(TokenizerFileError, match="not a local directory"):
        AutoTokenizer.from_pretrained(str(tmp_path / "missing"))


def test_remote_code_is_never_run(tmp_path):
    folder = copy_tokenizer_dir(bloom_tokenizer_dir(), tmp_path / "tok")
    marker = tmp_path / "ran"
    (folder / "tokenization_evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nclass EvilTokenizer: pass\n")
    write_config(folder, auto_map={"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]})
    assert type(AutoTokenizer.from_pretrained(folder)) is BloomTokenizerFast
    assert not marker.exists()
    write_config(folder, tokenizer_class="EvilTokenizer")
    with pytest.raises(ValueError, match="EvilTokenizer"):
        AutoTokenizer.from_pretrained(folder)
    assert not marker.exists()
    with pytest.raises(ValueError, match="trust_remote_code=True is refused"):
        AutoTokenizer.from_pretrained(folder, trust_remote_code=True)


def test_real_bloom_config_files_are_kept_verbatim():
    config = json.loads((BLOOM_560M_DIR / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BloomTokenizerFast" and config["padding_side"] == "left"
    assert (BLOOM_560M_DIR / "LICENSE").read_text().startswith("BigScience RAIL License")
