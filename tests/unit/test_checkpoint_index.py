"""tongues.checkpoint.index: finding a checkpoint's weight files (single or sharded) and refusing bad indexes.

The module is torch-free (TF and Flax load through it); nothing here imports torch, and one test checks
in a fresh interpreter that the lookup runs without it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tongues.checkpoint.files import CheckpointError
from tongues.checkpoint.index import claim_key, find_weight_files, read_index, shards_of_index


def write_index(directory, weight_map, raw: str | None = None):
    path = directory / "model.safetensors.index.json"
    path.write_text(raw if raw is not None else json.dumps({"metadata": {}, "weight_map": weight_map}))
    return path


def touch(directory, *names):
    for name in names:
        (directory / name).write_bytes(b"x")


def test_single_file_wins_and_safetensors_before_bin(tmp_path):
    touch(tmp_path, "model.safetensors", "pytorch_model.bin")
    assert find_weight_files(str(tmp_path)) == ([str(tmp_path / "model.safetensors")], "safetensors")
    assert find_weight_files(str(tmp_path), formats=("bin",)) == ([str(tmp_path / "pytorch_model.bin")], "bin")


def test_sharded_index_lists_each_shard_once_in_order(tmp_path):
    touch(tmp_path, "b.safetensors", "a.safetensors")
    write_index(tmp_path, {"x": "b.safetensors", "y": "a.safetensors", "z": "b.safetensors"})
    files, fmt = find_weight_files(str(tmp_path))
    assert fmt == "safetensors"
    assert files == [str(tmp_path / "b.safetensors"), str(tmp_path / "a.safetensors")]


def test_bin_index_is_found_when_there_is_no_safetensors(tmp_path):
    touch(tmp_path, "pytorch_model-00001-of-00001.bin")
    (tmp_path / "pytorch_model.bin.index.json").write_text(
        json.dumps({"weight_map": {"w": "pytorch_model-00001-of-00001.bin"}}))
    assert find_weight_files(str(tmp_path)) == ([str(tmp_path / "pytorch_model-00001-of-00001.bin")], "bin")


def test_missing_shard_names_index_shard_and_checkpoint(tmp_path):
    touch(tmp_path, "a.safetensors")
    index = write_index(tmp_path, {"x": "a.safetensors", "y": "gone.safetensors"})
    with pytest.raises(CheckpointError, match=rf"{index}.*names the shard gone.safetensors, which is missing from"):
        find_weight_files(str(tmp_path))


def test_key_named_twice_in_index(tmp_path):
    raw = '{"weight_map": {"h.0.w": "a.safetensors", "h.0.w": "b.safetensors"}}'
    index = write_index(tmp_path, None, raw=raw)
    with pytest.raises(CheckpointError, match=r"names the key 'h.0.w' twice"):
        read_index(str(index))


@pytest.mark.parametrize("shard", ["../outside.safetensors", "sub/a.safetensors", "sub\\a.safetensors",
                                   ".hidden.safetensors", "", 7, None])
def test_shard_names_that_leave_the_folder_or_are_not_names(tmp_path, shard):
    touch(tmp_path, "a.safetensors")
    write_index(tmp_path, {"ok": "a.safetensors", "w": shard})
    with pytest.raises(CheckpointError, match=r"key 'w' maps to an invalid shard name"):
        find_weight_files(str(tmp_path))


@pytest.mark.parametrize("raw, message", [
    ("{not json", "is not valid JSON"),
    (b"\xff\xfe".decode("latin-1"), "is not valid JSON"),
    ("[1, 2]", "has no 'weight_map' object"),
    ('{"weight_map": ["a.safetensors"]}', "has no 'weight_map' object"),
    ('{"metadata": {}}', "has no 'weight_map' object"),
])
def test_malformed_index(tmp_path, raw, message):
    index = write_index(tmp_path, None, raw=raw)
    with pytest.raises(CheckpointError, match=message) as err:
        shards_of_index(str(tmp_path), str(index))
    assert str(index) in str(err.value)


def test_no_weights_names_what_was_looked_for(tmp_path):
    with pytest.raises(CheckpointError, match="holds no weights: expected model.safetensors, "
                       "model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json$"):
        find_weight_files(str(tmp_path))
    touch(tmp_path, "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"expected model.safetensors or model.safetensors.index.json: "
                                              r"read safetensors only"):
        find_weight_files(str(tmp_path), formats=("safetensors",), advice="read safetensors only")


@pytest.mark.parametrize("formats", [(), ("gguf",), ("safetensors", "pt")])
def test_unknown_format_is_a_caller_error(tmp_path, formats):
    with pytest.raises(ValueError, match="formats must name some of safetensors, bin"):
        find_weight_files(str(tmp_path), formats=formats)


def test_claim_key_names_both_files():
    owners: dict[str, str] = {}
    claim_key(owners, "w", "a.safetensors")
    claim_key(owners, "v", "b.safetensors")
    with pytest.raises(CheckpointError, match=r"the key 'w' is in both a.safetensors and b.safetensors"):
        claim_key(owners, "w", "b.safetensors")


def test_lookup_runs_without_torch(tmp_path):
    touch(tmp_path, "a.safetensors")
    write_index(tmp_path, {"x": "a.safetensors"})
    code = ("import sys\n"
            "from tongues.checkpoint.index import find_weight_files\n"
            f"print(find_weight_files({str(tmp_path)!r})[1], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["safetensors", "False"]
