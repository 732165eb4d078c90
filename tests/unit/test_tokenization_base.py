"""The shared tokenizer API: BatchEncoding, argument checking, special tokens, pad(), loading and saving errors."""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from tokenizer_fixtures import bloom_tokenizer_dir, copy_tokenizer_dir, udhr_lines

from tongues.checkpoint.files import CheckpointError
from tongues.tokenization import BatchEncoding, PreTrainedTokenizerFast, TokenizerFileError


@pytest.fixture()
def tokenizer():
    return PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir())


def test_import_does_not_load_torch_or_transformers():
    code = "import sys, tongues.tokenization; print('torch' in sys.modules, 'transformers' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


# -- BatchEncoding ------------------------------------------------------------------------------


def test_batch_encoding_is_a_dict_with_attributes():
    encoding = BatchEncoding({"input_ids": [[1, 2], [3, 4]], "attention_mask": [[1, 1], [1, 0]]})
    assert encoding.input_ids == encoding["input_ids"] == [[1, 2], [3, 4]]
    assert dict(encoding) == {"input_ids": [[1, 2], [3, 4]], "attention_mask": [[1, 1], [1, 0]]}
    assert encoding[:1] == {"input_ids": [[1, 2]], "attention_mask": [[1, 1]]}
    assert not encoding.is_fast and encoding.encodings is None
    with pytest.raises(AttributeError, match="labels"):
        encoding.labels
    with pytest.raises(KeyError, match="row indices"):
        encoding[0]
    with pytest.raises(ValueError, match="fast tokenizer"):
        encoding.word_ids()
    again = pickle.loads(pickle.dumps(encoding))
    assert dict(again) == dict(encoding)
    assert dict(copy.deepcopy(encoding)) == dict(encoding)


def test_batch_encoding_tensors():
    encoding = BatchEncoding({"input_ids": [[1, 2], [3, 4]]}, tensor_type="pt")
    assert encoding.input_ids.dtype == torch.int64 and encoding.input_ids.shape == (2, 2)
    assert encoding.to("cpu") is encoding
    with pytest.raises(TypeError, match="device"):
        encoding.to(torch.float16)
    assert BatchEncoding({"input_ids": [1, 2]}, tensor_type="np", prepend_batch_axis=True).input_ids.shape == (1, 2)
    assert BatchEncoding({"input_ids": [[]]}, tensor_type="np").input_ids.dtype == np.int64
    ragged = {"input_ids": [[1, 2, 3], [4]]}
    with pytest.raises(ValueError, match=r"'input_ids'.*padding=True"):
        BatchEncoding(ragged, tensor_type="pt")
    assert BatchEncoding(ragged, tensor_type="np").input_ids.dtype == object  # as transformers does
    with pytest.raises(ValueError, match="return_tensors='tf'"):
        BatchEncoding(ragged, tensor_type="tf")


# -- arguments ----------------------------------------------------------------------------------


def test_bad_arguments_are_named(tokenizer):
    with pytest.raises(ValueError, match="padding='longer'"):
        tokenizer("text", padding="longer")
    with pytest.raises(ValueError, match="truncation='first_only'"):
        tokenizer("text", truncation="first_only")
    with pytest.raises(ValueError, match="return_tensors='jax'"):
        tokenizer("text", return_tensors="jax")
    with pytest.raises(ValueError, match="padding_side"):
        tokenizer("text", padding=True, padding_side="middle")
    with pytest.raises(ValueError, match="max_length"):
        tokenizer("text", truncation=True, max_length=-1)
    with pytest.raises(ValueError, match="pad_to_multiple_of=8"):
        tokenizer("text", padding="max_length", truncation=True, max_length=10, pad_to_multiple_of=8)
    with pytest.raises(ValueError, match="`text`"):
        tokenizer()
    with pytest.raises(TypeError, match="text must be"):
        tokenizer(42)
    with pytest.raises(TypeError, match=r"text\[1\]"):
        tokenizer(["fine", 3])
    with pytest.raises(ValueError, match="text_pair has 1"):
        tokenizer(["a", "b"], ["c"])
    with pytest.raises(TypeError, match="text_pair must be a list"):
        tokenizer(["a", "b"], "c")
    with pytest.raises(ValueError, match="is_split_into_words=True expects a list of words"):
        tokenizer("a b", is_split_into_words=True)
    with pytest.raises(ValueError, match="padding_side must be"):
        PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir(), padding_side="up")


def test_padding_needs_a_pad_token(tokenizer):
    tokenizer.pad_token = None
    assert tokenizer.pad_token is None and tokenizer.pad_token_id is None
    with pytest.raises(ValueError, match="no pad_token"):
        tokenizer(["a", "bb"], padding=True)
    tokenizer.pad_token = tokenizer.eos_token
    assert tokenizer(["a", "b c d"], padding=True)["input_ids"][0][0] == tokenizer.eos_token_id


def test_special_token_attributes(tokenizer):
    assert tokenizer.special_tokens_map == {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    assert tokenizer.sep_token is None and tokenizer.sep_token_id is None
    tokenizer.sep_token_id = 2
    assert tokenizer.sep_token == "</s>"
    with pytest.raises(TypeError, match="cls_token"):
        tokenizer.cls_token = 5
    with pytest.raises(ValueError, match="unknown key 'sep'"):
        tokenizer.add_special_tokens({"sep": "<sep>"})
    with pytest.raises(TypeError, match="add_tokens"):
        tokenizer.add_tokens([3])
    assert tokenizer.add_special_tokens({"cls_token": "<cls>", "additional_special_tokens": ["<a>", "<b>"]}) == 3
    assert tokenizer.cls_token_id == 2000 and tokenizer.additional_special_tokens_ids == [2001, 2002]
    assert tokenizer.add_special_tokens({"additional_special_tokens": ["<c>"]}, replace_additional_special_tokens=False) == 1
    assert tokenizer.additional_special_tokens == ["<a>", "<b>", "<c>"]
    assert tokenizer.extra_special_tokens == tokenizer.additional_special_tokens
    assert tokenizer.all_special_tokens == ["<s>", "</s>", "<unk>", "<pad>", "<cls>", "<a>", "<b>", "<c>"]


def test_pad_inputs(tokenizer):
    rows = [tokenizer(text) for text in udhr_lines("swe")]
    padded = tokenizer.pad(rows, padding_side="right", return_tensors="pt")
    assert padded["input_ids"].shape[0] == 3 and padded["attention_mask"][0].sum() == len(rows[0]["input_ids"])
    single = tokenizer.pad({"input_ids": [5, 6]}, padding="max_length", max_length=4)
    assert single["input_ids"] == [3, 3, 5, 6] and single["attention_mask"] == [0, 0, 1, 1]
    arrays = tokenizer.pad({"input_ids": [np.array([5, 6]), np.array([7])]})
    assert isinstance(arrays["input_ids"], np.ndarray) and arrays["input_ids"].tolist() == [[5, 6], [3, 7]]
    with pytest.raises(ValueError, match="'input_ids'"):
        tokenizer.pad({"attention_mask": [1]})
    with pytest.raises(ValueError, match="'attention_mask' has 1 rows"):
        tokenizer.pad({"input_ids": [[1], [2]], "attention_mask": [[1]]})
    with pytest.raises(TypeError, match="pad\\(\\) takes"):
        tokenizer.pad("not inputs")


def test_decode_inputs(tokenizer):
    ids = tokenizer("Hello world")["input_ids"]
    assert tokenizer.decode(torch.tensor(ids)) == tokenizer.decode(np.array(ids)) == "Hello world"
    assert tokenizer.decode(ids[0]) == tokenizer.convert_ids_to_tokens(ids[0])
    assert tokenizer.decode([ids, ids]) == ["Hello world", "Hello world"]
    assert tokenizer.batch_decode(torch.tensor([ids])) == ["Hello world"]
    with pytest.raises(TypeError, match="decode\\(\\) takes token ids"):
        tokenizer.decode("Hello")


def test_too_long_sequence_warns_once(tokenizer, caplog):
    tokenizer.model_max_length = 4
    with caplog.at_level("WARNING"):
        tokenizer(["one two three four five six", "seven eight nine ten eleven"])
    assert sum("model_max_length=4" in record.message for record in caplog.records) == 1
    assert len(tokenizer("one two three four five six", truncation=True)["input_ids"]) == 4


# -- loading and saving -------------------------------------------------------------------------


def test_missing_folder_is_named(tmp_path):
    missing = str(tmp_path / "no" / "such" / "folder")
    with pytest.raises(TokenizerFileError, match="no/such/folder"):
        PreTrainedTokenizerFast.from_pretrained(missing)
    with pytest.raises(CheckpointError, match="not a local directory"):
        PreTrainedTokenizerFast.from_pretrained("nobody-here/no-such-model", local_files_only=True)


def test_missing_tokenizer_json_is_named(tmp_path):
    folder = copy_tokenizer_dir(bloom_tokenizer_dir(), tmp_path / "tok")
    os.remove(folder / "tokenizer.json")
    with pytest.raises(TokenizerFileError, match=r"has no tokenizer\.json"):
        PreTrainedTokenizerFast.from_pretrained(folder)
    from tongues.models.bloom.tokenization_bloom_fast import BloomTokenizerFast

    with pytest.raises(TokenizerFileError, match=r"tokenizer\.json \(or merges\.txt, vocab\.json\)"):
        BloomTokenizerFast.from_pretrained(folder)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("tokenizer_config.json", '{"padding_side": "left",', r"tokenizer_config\.json is not valid JSON \(line 1"),
        ("tokenizer_config.json", "[1, 2]", r"tokenizer_config\.json must hold a JSON object"),
        ("special_tokens_map.json", "{oops}", r"special_tokens_map\.json is not valid JSON"),
        ("tokenizer.json", '{"model": {}}', r"tokenizer\.json is not a valid tokenizers serialization"),
        ("chat_template.jinja", b"\xff\xfe{{", r"chat_template\.jinja"),
    ],
)
def test_malformed_files_are_named(tmp_path, name, content, message):
    folder = copy_tokenizer_dir(bloom_tokenizer_dir(), tmp_path / "tok")
    if isinstance(content, bytes):
        (folder / name).write_bytes(content)
    else:
        (folder / name).write_text(content)
    with pytest.raises(TokenizerFileError, match=message):
        PreTrainedTokenizerFast.from_pretrained(folder)


def test_added_token_entries_are_checked(tmp_path):
    folder = copy_tokenizer_dir(bloom_tokenizer_dir(), tmp_path / "tok")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["added_tokens_decoder"] = {"5": {"lstrip": True}}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(TokenizerFileError, match=r"tokenizer_config\.json: an added token must be an object with a 'content'"):
        PreTrainedTokenizerFast.from_pretrained(folder)


def test_remote_code_is_refused():
    with pytest.raises(ValueError, match="trust_remote_code=True is refused"):
        PreTrainedTokenizerFast.from_pretrained(bloom_tokenizer_dir(), trust_remote_code=True)


def test_config_paths_are_ignored(tmp_path):
    # A config naming a file elsewhere must not make the loader open it.
    folder = copy_tokenizer_dir(bloom_tokenizer_dir(), tmp_path / "tok")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_file"] = "/etc/passwd"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert PreTrainedTokenizerFast.from_pretrained(folder)("Hello")["input_ids"]


def test_failed_save_leaves_folder_untouched(tokenizer, tmp_path, monkeypatch):
    tokenizer.save_pretrained(tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    tokenizer.padding_side = "right"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(tokenizer), "save_vocabulary", broken)
    with pytest.raises(OSError, match="disk full"):
        tokenizer.save_pretrained(tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before


def test_saved_config_content(tokenizer, tmp_path):
    tokenizer.add_special_tokens({"additional_special_tokens": ["<x>"]})
    tokenizer.save_pretrained(tmp_path, filename_prefix="pre")
    assert sorted(os.listdir(tmp_path)) == ["pre-special_tokens_map.json", "pre-tokenizer.json", "pre-tokenizer_config.json"]
    config = json.loads((tmp_path / "pre-tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert config["additional_special_tokens"] == ["<x>"]
    assert config["padding_side"] == "left"
    assert not {"name_or_path", "tokenizer_file", "special_tokens_map_file", "added_tokens_decoder"} & set(config)
    special = json.loads((tmp_path / "pre-special_tokens_map.json").read_text())
    assert special == {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                       "additional_special_tokens": ["<x>"]}
    with pytest.raises(TypeError, match="unexpected keyword"):
        tokenizer.save_pretrained(tmp_path, compress=True)
