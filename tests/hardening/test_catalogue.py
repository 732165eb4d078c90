"""The bad-input catalogue (docs/errors.md): the cases no other test file covers.

Each test checks the error type and that the message names the culprit (file, key, shape,
argument or value). Cases already tested elsewhere are listed in docs/errors.md with their test.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys

import pytest
import torch
from safetensors.torch import save_file

import tongues
from tongues import (
    AutoConfig,
    BloomConfig,
    BloomForCausalLM,
    CheckpointError,
    ConfigError,
    GenerationConfig,
    XGLMConfig,
    XGLMTokenizer,
    XGLMTokenizerFast,
)

HERE = os.path.dirname(__file__)
DATA = os.path.join(HERE, "..", "data")
VOCAB = 31


def bloom(path=None):
    model = BloomForCausalLM.from_config(BloomConfig(vocab_size=VOCAB, hidden_size=16, n_layer=1, n_head=2)).eval()
    if path is not None:
        model.save_pretrained(path)
    return model


def _with_config(path):
    BloomConfig(vocab_size=VOCAB, hidden_size=16, n_layer=1, n_head=2).save_pretrained(path)
    return path


def write_safetensors_header(path, header: dict, data: bytes = b"\0" * 8) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


# -- weights files --------------------------------------------------------------------------------


def test_safetensors_header_entry_without_offsets(tmp_path):
    write_safetensors_header(tmp_path / "model.safetensors", {"w": {"dtype": "F32", "shape": [2]}})
    with pytest.raises(CheckpointError, match=r"model\.safetensors: header entry 'w' is malformed"):
        BloomForCausalLM.from_pretrained(_with_config(tmp_path))


def test_safetensors_offsets_that_do_not_fit_the_shape(tmp_path):
    write_safetensors_header(tmp_path / "model.safetensors",
                             {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})
    with pytest.raises(CheckpointError, match=r"tensor 'w' of shape \(2,\) and dtype F32 needs 8 bytes but its "
                                              r"offsets span 0\.\.4"):
        BloomForCausalLM.from_pretrained(_with_config(tmp_path))


def test_safetensors_negative_dimension(tmp_path):
    write_safetensors_header(tmp_path / "model.safetensors",
                             {"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})
    with pytest.raises(CheckpointError, match=r"tensor 'w' has an invalid shape \[-2\]"):
        BloomForCausalLM.from_pretrained(_with_config(tmp_path))


def test_index_that_is_not_json_or_has_no_weight_map(tmp_path):
    _with_config(tmp_path)
    index = tmp_path / "model.safetensors.index.json"
    index.write_text("{bad")
    with pytest.raises(CheckpointError, match=r"model\.safetensors\.index\.json is not valid JSON"):
        BloomForCausalLM.from_pretrained(tmp_path)
    index.write_text('{"weight_map": 3}')
    with pytest.raises(CheckpointError, match=r"model\.safetensors\.index\.json has no 'weight_map' object"):
        BloomForCausalLM.from_pretrained(tmp_path)


def test_a_key_stored_in_two_shards(tmp_path):
    state = {k: v.contiguous() for k, v in bloom().state_dict_to_save().items()}
    keys = sorted(state)
    first, second = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    save_file({k: state[k] for k in keys[:2]}, tmp_path / first)
    save_file({k: state[k] for k in keys[1:]}, tmp_path / second)  # keys[1] again
    weight_map = {k: (first if i < 2 else second) for i, k in enumerate(keys)}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError, match=rf"the key '{keys[1]}' is in both .*{first} and .*{second}"):
        BloomForCausalLM.from_pretrained(_with_config(tmp_path))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/tongues_catalogue_pwned",))


def test_torch_save_archive_that_would_run_code_is_refused_not_run(tmp_path):
    marker = "/tmp/tongues_catalogue_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    torch.save({"transformer.ln_f.weight": _Exploit()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin could not be loaded safely \(weights only; no "
                                              r"code is executed\)"):
        BloomForCausalLM.from_pretrained(_with_config(tmp_path))
    assert not os.path.exists(marker)


def test_zero_byte_bin(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin is empty \(0 bytes\)"):
        BloomForCausalLM.from_pretrained(_with_config(tmp_path))


def test_corrupt_bin(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin could not be loaded safely"):
        BloomForCausalLM.from_pretrained(_with_config(tmp_path))


def test_bin_holding_something_else_than_a_state_dict(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin does not hold a dict of name -> tensor"):
        BloomForCausalLM.from_pretrained(_with_config(tmp_path))


def test_legacy_non_zip_bin_still_loads_weights_only(tmp_path):
    model = bloom()
    state = {k: v.clone() for k, v in model.state_dict_to_save().items()}
    torch.save(state, tmp_path / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    loaded = BloomForCausalLM.from_pretrained(_with_config(tmp_path))
    torch.testing.assert_close(loaded.transformer.ln_f.weight, model.transformer.ln_f.weight)


# -- config.json ----------------------------------------------------------------------------------


def test_config_that_is_not_utf8(tmp_path):
    (tmp_path / "config.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(ConfigError, match=r"config\.json is not UTF-8 text"):
        AutoConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("content, culprit", [
    ({}, "has no 'model_type'"),
    ({"model_type": ["bloom"]}, r"model_type \['bloom'\], which tongues does not support"),
    ({"model_type": "bloom", "hidden_size": None}, r"hidden_size must be a positive integer; got None"),
    ({"model_type": "bloom", "label2id": 5}, "label2id must be a dict"),
    ({"model_type": "bloom", "layer_norm_epsilon": "1e-5"}, r"layer_norm_epsilon must be a positive number; got '1e-5'"),
    ({"model_type": "glm", "rms_norm_eps": -1}, r"rms_norm_eps must be a positive number; got -1"),
    ({"model_type": "xglm", "d_model": 30, "attention_heads": 4}, "d_model=30 must be divisible by attention_heads=4"),
    ({"model_type": "glm", "num_attention_heads": 6, "num_key_value_heads": 4},
     "num_attention_heads=6 must be divisible by num_key_value_heads=4"),
    ({"model_type": "xlm", "emb_dim": 30, "n_heads": 4}, "emb_dim=30 must be divisible by n_heads=4"),
])
def test_hand_edited_config_values(tmp_path, content, culprit):
    (tmp_path / "config.json").write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=culprit):
        AutoConfig.from_pretrained(tmp_path)


def test_unknown_activation_is_named_when_the_model_is_built():
    config = XGLMConfig(vocab_size=20, d_model=8, ffn_dim=8, num_layers=1, attention_heads=2, activation_function="nope")
    with pytest.raises(ValueError, match="Unknown activation function 'nope'"):
        tongues.XGLMForCausalLM(config)


# -- model inputs, every family ---------------------------------------------------------------------

FAMILIES = {
    "bloom": lambda: tongues.BloomForCausalLM(BloomConfig(vocab_size=VOCAB, hidden_size=16, n_layer=1, n_head=2)),
    "xglm": lambda: tongues.XGLMForCausalLM(XGLMConfig(vocab_size=VOCAB, d_model=16, ffn_dim=16, num_layers=1,
                                                       attention_heads=2)),
    "glm": lambda: tongues.GlmForCausalLM(tongues.GlmConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=16,
                                                            num_hidden_layers=1, num_attention_heads=2,
                                                            num_key_value_heads=1, head_dim=8, pad_token_id=0,
                                                            eos_token_id=2)),
    "xlm": lambda: tongues.XLMWithLMHeadModel(tongues.XLMConfig(vocab_size=VOCAB, emb_dim=16, n_layers=1, n_heads=2,
                                                                max_position_embeddings=16)),
    "gpt2": lambda: tongues.GPT2LMHeadModel(tongues.GPT2Config(vocab_size=VOCAB, n_embd=16, n_layer=1, n_head=2,
                                                               n_positions=16)),
}


@pytest.fixture(params=list(FAMILIES))
def lm(request):
    return FAMILIES[request.param]().eval()


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m(torch.tensor([[1, VOCAB]])), ValueError, rf"token id {VOCAB}, outside the vocabulary \[0, {VOCAB}\)"),
    (lambda m: m(torch.tensor([[-1, 2]])), ValueError, r"token id -1, outside the vocabulary"),
    (lambda m: m(torch.zeros(2, 0, dtype=torch.long)), ValueError, r"input_ids is empty \(shape \(2, 0\)\)"),
    (lambda m: m(torch.tensor([[4, 5, 6]]), attention_mask=torch.ones(1, 2)), ValueError,
     r"attention_mask has shape \(1, 2\), expected \(1, 3\)"),
    (lambda m: m([[4, 5]]), TypeError, r"input_ids must be a torch\.Tensor; got list"),
    (lambda m: m(inputs_embeds=torch.zeros(1, 2, 7)), ValueError,
     r"inputs_embeds has shape \(1, 2, 7\): its last dimension must be the model's hidden size 16"),
    (lambda m: m(torch.tensor([[4, 5]]), labels=torch.tensor([[4, 5, 6]])), ValueError,
     r"labels has shape \(1, 3\), expected \(1, 2\)"),
    (lambda m: m(torch.tensor([[4, 5]]), labels=torch.tensor([[4, 500]])), ValueError,
     rf"labels holds 500, outside \[0, {VOCAB}\)"),
    (lambda m: m(torch.tensor([[4, 5]]), labels=torch.tensor([[4.0, 5.0]])), TypeError,
     "labels must hold integer ids"),
], ids=["id>=vocab", "negative-id", "empty", "mask-shape", "list-ids", "embeds-width", "labels-shape",
        "labels-range", "float-labels"])
def test_forward_inputs_of_every_family(lm, call, error, message):
    with pytest.raises(error, match=message):
        call(lm)


def test_ignored_labels_are_allowed(lm):
    assert torch.isfinite(lm(torch.tensor([[4, 5, 6]]), labels=torch.tensor([[-100, 5, 6]])).loss)


# -- generation: learned positions and memory ---------------------------------------------------------


def test_xlm_generate_refuses_a_prompt_beyond_its_learned_positions():
    model = FAMILIES["xlm"]().eval()
    assert model._max_positions() == 15  # one of the 16 positions goes to the appended mask token
    with pytest.raises(ValueError, match=r"The prompt has 16 tokens but XLMWithLMHeadModel has learned positions "
                                         r"for only 15 \(config\.max_position_embeddings\)"):
        model.generate(torch.full((1, 16), 7), max_new_tokens=2)
    with pytest.raises(ValueError, match=r"max_length=19 \(the prompt's 14 tokens \+ new tokens\) goes beyond what "
                                         r"XLMWithLMHeadModel's learned positions allow.*at most 2 new tokens"):
        model.generate(torch.full((1, 14), 7), max_new_tokens=5)
    assert model.generate(torch.full((1, 14), 7), max_new_tokens=2).shape[1] <= 16
    with pytest.warns(UserWarning, match="default max_length"):  # a default length stops at the table's end
        assert model.generate(torch.full((1, 10), 7)).shape[1] <= 16


def test_generate_checks_kv_cache_memory_before_decoding(monkeypatch):
    import tongues.cache

    model = FAMILIES["glm"]().eval()
    assert model._kv_cache_bytes(rows=3, positions=10) == 2 * 1 * 3 * 1 * 8 * 10 * 4
    monkeypatch.setattr(tongues.cache, "available_memory", lambda device="cpu": 1000)
    with pytest.raises(MemoryError, match=r"generate's KV cache \(1 layers x 3 rows x 12 positions\) needs 2\.25 KiB "
                                          r"but only 1000 bytes is free on cpu; lower max_new_tokens"):
        model.generate(torch.tensor([[4, 5]] * 3), max_new_tokens=10)


def test_generate_without_a_cache_skips_the_memory_check(monkeypatch):
    import tongues.cache

    model = FAMILIES["glm"]().eval()
    monkeypatch.setattr(tongues.cache, "available_memory", lambda device="cpu": 1000)
    assert model.generate(torch.tensor([[4, 5]]), max_new_tokens=2, use_cache=False).shape == (1, 4)


# -- tokenizer files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [XGLMTokenizer, XGLMTokenizerFast], ids=["slow", "fast"])
@pytest.mark.parametrize("content, message", [
    (b"garbage bytes", r"bad\.model"),
    (b"", r"bad\.model"),
])
def test_xglm_sentencepiece_model_corrupt_or_empty(tmp_path, cls, content, message):
    from tongues.tokenization import TokenizerFileError

    (tmp_path / "bad.model").write_bytes(content)
    with pytest.raises(TokenizerFileError, match=message):
        cls(vocab_file=str(tmp_path / "bad.model"))


def test_xglm_sentencepiece_model_missing(tmp_path):
    from tongues.tokenization import TokenizerFileError

    with pytest.raises(TokenizerFileError, match=r"nope\.model does not exist"):
        XGLMTokenizer(str(tmp_path / "nope.model"))


@pytest.fixture
def glm4_folder(tmp_path):
    source = os.path.join(DATA, "glm4", "glm-4-9b-chat")
    folder = tmp_path / "glm4"
    folder.mkdir()
    for name in ("tokenizer_config.json", "tokenizer.model"):
        shutil.copy(os.path.join(source, name), folder / name)
    return folder


@pytest.mark.parametrize("content, message", [
    ("not base64 at all\n", r"tokenizer\.model, line 1: expected '<base64 token> <rank>'"),
    ("", r"tokenizer\.model holds no tokens"),
    (None, r"ChatGLM4Tokenizer needs its tokenizer\.model"),
])
def test_glm4_tiktoken_file_malformed_empty_or_missing(glm4_folder, content, message):
    from tongues.tokenization import TokenizerFileError

    if content is None:
        (glm4_folder / "tokenizer.model").unlink()
    else:
        (glm4_folder / "tokenizer.model").write_text(content)
    with pytest.raises(TokenizerFileError, match=message):
        tongues.ChatGLM4Tokenizer.from_pretrained(glm4_folder)


@pytest.mark.parametrize("text, name, index", [("ok \udc80", "text", 3), (["fine", "\ud83dx"], r"text\[1\]", 0)])
def test_lone_surrogate_is_named(text, name, index):
    sys.path.insert(0, os.path.join(HERE, ".."))
    from tokenizer_fixtures import bloom_tokenizer_dir

    tok = tongues.BloomTokenizerFast.from_pretrained(bloom_tokenizer_dir())
    with pytest.raises(ValueError, match=rf"{name} holds a lone surrogate U\+D[0-9A-F]{{3}} at index {index}"):
        tok(text)


# -- atomic saving: generation configs and tokenizers ----------------------------------------------------


def test_failed_generation_config_write_leaves_the_old_file(tmp_path, monkeypatch):
    GenerationConfig(max_new_tokens=5).save_pretrained(tmp_path)
    before = (tmp_path / "generation_config.json").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        GenerationConfig(max_new_tokens=9).save_pretrained(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "generation_config.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generation_config.json"]  # no temporary left behind


def test_model_save_failing_at_the_generation_config_changes_nothing(tmp_path, monkeypatch):
    model = bloom(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def explode(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(GenerationConfig, "save_pretrained", explode)
    with torch.no_grad():
        model.transformer.ln_f.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_slow_tokenizer_save_failing_midway_changes_nothing(tmp_path, monkeypatch):
    from xglm_helpers import SPM_MODEL

    tok = XGLMTokenizer(str(SPM_MODEL))
    tok.save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def explode(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(XGLMTokenizer, "save_vocabulary", explode)
    tok.model_max_length = 77
    with pytest.raises(OSError, match="disk full"):
        tok.save_pretrained(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

