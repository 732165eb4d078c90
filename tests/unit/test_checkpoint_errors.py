"""Malformed checkpoints give errors naming the file, key or shape; failed saves leave old files intact."""

from __future__ import annotations

import json
import os
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from tongues import BloomConfig, BloomForCausalLM, CheckpointError
from tongues.checkpoint.io import SafetensorsFile, parse_size

VOCAB = 31


def good_checkpoint(path):
    model = BloomForCausalLM.from_config(BloomConfig(vocab_size=VOCAB, hidden_size=16, n_layer=1, n_head=2))
    model.save_pretrained(path)
    return model


def test_zero_byte_safetensors(tmp_path):
    good_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"model.safetensors.*0 bytes"):
        BloomForCausalLM.from_pretrained(tmp_path)


def test_truncated_safetensors(tmp_path):
    good_checkpoint(tmp_path)
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match=r"model.safetensors is truncated"):
        BloomForCausalLM.from_pretrained(tmp_path)


def test_corrupt_header(tmp_path):
    good_checkpoint(tmp_path)
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 10) + b"{not json!" + b"\0" * 64)
    with pytest.raises(CheckpointError, match="header is not valid JSON"):
        BloomForCausalLM.from_pretrained(tmp_path)


def test_header_longer_than_file(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        SafetensorsFile(str(path))


def test_unsupported_dtype_names_tensor(tmp_path):
    header = json.dumps({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(CheckpointError, match=r"'w' has dtype 'C64'"):
        SafetensorsFile(str(path))


def test_wrong_shape_names_key_and_both_shapes(tmp_path):
    good_checkpoint(tmp_path)
    state = {"transformer.word_embeddings.weight": torch.zeros(VOCAB + 1, 16)}
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"transformer.word_embeddings.weight.*\(32, 16\).*\(31, 16\)"):
        BloomForCausalLM.from_pretrained(tmp_path)


def test_ignore_mismatched_sizes_reports_instead(tmp_path):
    model = good_checkpoint(tmp_path)
    state = model.state_dict_to_save()
    state["transformer.ln_f.weight"] = torch.ones(17)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors")
    _, info = BloomForCausalLM.from_pretrained(tmp_path, ignore_mismatched_sizes=True, output_loading_info=True)
    assert info["mismatched_keys"] == [("transformer.ln_f.weight", (17,), (16,))]


def test_no_weights_at_all(tmp_path):
    BloomConfig(vocab_size=VOCAB, hidden_size=16, n_layer=1, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="holds no weights"):
        BloomForCausalLM.from_pretrained(tmp_path)


def test_missing_shard_named_in_index(tmp_path):
    model = good_checkpoint(tmp_path)
    model.save_pretrained(tmp_path, max_shard_size="5KB")
    shard = sorted(p for p in tmp_path.iterdir() if p.name.startswith("model-0000"))[-1]
    shard.unlink()
    with pytest.raises(CheckpointError, match=rf"names the shard {shard.name}, which is missing"):
        BloomForCausalLM.from_pretrained(tmp_path)


def test_index_naming_a_key_twice(tmp_path):
    good_checkpoint(tmp_path)
    os.rename(tmp_path / "model.safetensors", tmp_path / "model-00001-of-00001.safetensors")
    text = ('{"metadata": {}, "weight_map": {"transformer.ln_f.weight": "model-00001-of-00001.safetensors", '
            '"transformer.ln_f.weight": "model-00001-of-00001.safetensors"}}')
    (tmp_path / "model.safetensors.index.json").write_text(text)
    with pytest.raises(CheckpointError, match="names the key 'transformer.ln_f.weight' twice"):
        BloomForCausalLM.from_pretrained(tmp_path)


def test_index_with_path_escaping_shard_name(tmp_path):
    good_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../evil.safetensors"}}))
    with pytest.raises(CheckpointError, match="invalid shard name"):
        BloomForCausalLM.from_pretrained(tmp_path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/tongues_pwned",))


def test_pickle_that_would_run_code_is_refused_not_run(tmp_path):
    good_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    if os.path.exists("/tmp/tongues_pwned"):
        os.remove("/tmp/tongues_pwned")
    with open(tmp_path / "pytorch_model.bin", "wb") as f:
        pickle.dump({"transformer.ln_f.weight": _Exploit()}, f)
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin could not be loaded safely"):
        BloomForCausalLM.from_pretrained(tmp_path)
    assert not os.path.exists("/tmp/tongues_pwned")


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = good_checkpoint(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    import tongues.checkpoint.io as io

    def explode(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(io, "write_safetensors", explode)
    monkeypatch.setattr("tongues.modeling.write_safetensors", explode)
    with torch.no_grad():
        model.transformer.ln_f.weight.add_(1.0)
    with pytest.raises(OSError, match="No space left"):
        model.save_pretrained(tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before


def test_save_into_a_file_path_is_refused(tmp_path):
    model = good_checkpoint(tmp_path / "ok")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        model.save_pretrained(tmp_path / "file")


@pytest.mark.parametrize("bad", ["5XB", "-1", 0, "abc"])
def test_max_shard_size_validation(bad):
    with pytest.raises(ValueError, match="max_shard_size"):
        parse_size(bad)


def test_sizes_parse():
    assert parse_size("5GB") == 5 * 10**9 and parse_size("2MiB") == 2 * 2**20 and parse_size(1000) == 1000


def test_token_ids_outside_vocab_and_empty_input():
    model = BloomForCausalLM.from_config(BloomConfig(vocab_size=VOCAB, hidden_size=16, n_layer=1, n_head=2))
    with pytest.raises(ValueError, match=rf"token id {VOCAB}, outside the vocabulary \[0, {VOCAB}\)"):
        model(torch.tensor([[1, VOCAB]]))
    with pytest.raises(ValueError, match=r"token id -1"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match="empty"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(1, 3))


def test_attention_mask_of_wrong_shape():
    model = BloomForCausalLM.from_config(BloomConfig(vocab_size=VOCAB, hidden_size=16, n_layer=1, n_head=2))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 3\), expected \(1, 4\)"):
        model(torch.tensor([[1, 2, 3, 4]]), attention_mask=torch.ones(1, 3))


def test_malformed_legacy_cache():
    model = BloomForCausalLM.from_config(BloomConfig(vocab_size=VOCAB, hidden_size=16, n_layer=1, n_head=2))
    with pytest.raises(ValueError, match=r"past_key_values\[0\]"):
        model(torch.tensor([[1, 2]]), past_key_values=((torch.zeros(2, 2),),))


def test_head_mask_of_wrong_shape():
    model = BloomForCausalLM.from_config(BloomConfig(vocab_size=VOCAB, hidden_size=16, n_layer=1, n_head=2))
    with pytest.raises(ValueError, match=r"head_mask of shape \(3,\)"):
        model(torch.tensor([[1, 2]]), head_mask=torch.ones(3))


def test_config_object_of_wrong_type_is_refused():
    with pytest.raises(TypeError, match="expects a BloomConfig"):
        BloomForCausalLM({"hidden_size": 4})


def test_bad_dtype_argument(tmp_path):
    good_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="dtype must be"):
        BloomForCausalLM.from_pretrained(tmp_path, dtype="float13")


def test_static_cache_checks_memory_before_allocating():
    from tongues.cache import StaticCache

    with pytest.raises(MemoryError, match=r"KV cache of 24 layers x 64 rows x 10000000 positions needs"):
        StaticCache(24, 64, 16, 64, 10**7)
