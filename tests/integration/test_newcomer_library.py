"""Issue 18, library side: files honour the umask, hub ids offline fail fast, unknown keywords are named."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tongues.checkpoint.files import CheckpointError, atomic_write_text, resolve_file
from tongues.models.bloom import BloomConfig
from tongues.models.bloom.modeling_bloom import BloomForCausalLM

ROOT = Path(__file__).resolve().parents[2]


def tiny_bloom():
    torch.manual_seed(0)
    return BloomForCausalLM(BloomConfig(vocab_size=64, hidden_size=16, n_layer=1, n_head=2))


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_saved_files_honour_the_umask(tmp_path, umask, mask):
    umask(mask)
    model = tiny_bloom()
    model.save_pretrained(tmp_path / "out", max_shard_size="2KB")  # shards + index go through atomic writes too
    found = modes(tmp_path / "out")
    assert {"config.json", "generation_config.json", "model.safetensors.index.json"} <= set(found)
    assert set(found.values()) == {0o666 & ~mask}, found
    atomic_write_text(str(tmp_path / "plain.txt"), "x")
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o666 & ~mask


def test_a_failed_save_leaves_the_old_files(tmp_path, umask, monkeypatch):
    model = tiny_bloom()
    model.save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    import safetensors.torch

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with torch.no_grad():
        model.transformer.word_embeddings.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert set(modes(tmp_path).values()) == {0o644}


def run_python(code: str, **env):
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=60)


@pytest.mark.parametrize("env, why", [
    ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
    ({"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}, "127.0.0.1:9"),
])
def test_hub_id_offline_says_the_hub_could_not_be_reached(tmp_path, env, why):
    code = ("from tongues.checkpoint.files import resolve_file\n"
            "try:\n    resolve_file('someone/some-model', 'config.json')\n"
            "except Exception as err:\n    print(type(err).__name__, err)\n")
    done = run_python(code, HF_HUB_CACHE=str(tmp_path), **env)
    assert done.returncode == 0, done.stderr
    assert "CheckpointError" in done.stdout and "'someone/some-model'" in done.stdout
    assert "could not be reached" in done.stdout and why in done.stdout and "has no config.json" not in done.stdout
    assert "Retrying" not in done.stderr  # no rounds of retries before the answer


def test_local_directory_without_config_still_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="has no config.json"):
        resolve_file(tmp_path, "config.json")


@pytest.fixture(scope="module")
def saved_bloom(tmp_path_factory):
    path = tmp_path_factory.mktemp("bloom")
    tiny_bloom().save_pretrained(path)
    return path


@pytest.mark.parametrize("keyword, message", [
    ("load_in_8bit", 'quantization="int8"'),
    ("load_in_4bit", 'quantization="int4"'),
    ("quantization_config", 'quantization="int8"'),
    ("n_heads", "did you mean 'n_head'?"),
    ("quantisation", "did you mean 'quantization'?"),
    ("frobnicate", "neither a from_pretrained option nor a BloomConfig field"),
])
def test_from_pretrained_refuses_keywords_it_does_not_know(saved_bloom, keyword, message):
    from tongues import AutoModelForCausalLM

    for load in (BloomForCausalLM.from_pretrained, AutoModelForCausalLM.from_pretrained):
        with pytest.raises(TypeError) as caught:
            load(saved_bloom, **{keyword: True})
        assert f"unexpected keyword argument {keyword!r}" in str(caught.value) and message in str(caught.value)


def test_from_pretrained_keeps_config_overrides_and_refuses_remote_code(saved_bloom):
    from tongues.configuration import ConfigError

    model = BloomForCausalLM.from_pretrained(saved_bloom, output_attentions=True, attn_implementation="eager")
    assert model.config.output_attentions is True
    config = json.loads((saved_bloom / "config.json").read_text())
    doubled = config["n_head"] * 2
    assert BloomForCausalLM.from_pretrained(saved_bloom, n_head=doubled).config.n_head == doubled
    with pytest.raises(ConfigError, match="trust_remote_code"):
        BloomForCausalLM.from_pretrained(saved_bloom, trust_remote_code=True)


def test_misspelled_config_key_warns_naming_both(caplog):
    with caplog.at_level("WARNING", logger="tongues.configuration"):
        config = BloomConfig(n_heads=4, hidden_size=16)
    assert config.n_head != 4  # kept as an attribute, not used
    assert "'n_heads'" in caplog.text and "'n_head'" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tongues.configuration"):
        BloomConfig(n_head=4, hidden_size=16, my_own_note="x")  # far from every known key: kept quietly
    assert caplog.text == ""


def test_training_arguments_warn_when_warm_up_covers_the_run():
    from tongues.training import TrainingArguments

    with pytest.warns(UserWarning, match="warmup_steps=100 is not shorter than max_steps=30"):
        TrainingArguments(output_dir="x", max_steps=30, warmup_steps=100)


def test_stop_strings_error_names_what_is_needed():
    model = tiny_bloom()
    with pytest.raises(ValueError, match=r"tokenizer=.*tongues generate --stop"):
        model.generate(torch.tensor([[1, 2]]), max_new_tokens=2, stop_strings=["x"])
