"""tongues.frameworks, the NumPy core of the TF and Flax twins, tested without TF or JAX: weight reading and
matching, generation settings from GenerationConfig, activations, and the rule that neither twin imports the
other."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from tongues.checkpoint.files import CheckpointError
from tongues.frameworks import weights
from tongues.frameworks.activations import activation
from tongues.frameworks.generation import decode_settings
from tongues.generation.configuration import GenerationConfig, GenerationConfigError
from tongues.models.xglm.configuration_xglm import XGLMConfig

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "tongues"


def read(directory):
    return weights.read_pytorch_weights(str(directory), "numpy", np.asarray)


def test_sharded_safetensors_read_into_numpy(tmp_path):
    save_file({"a.weight": np.ones((2, 3), np.float32)}, str(tmp_path / "s1.safetensors"))
    save_file({"b.bias": np.arange(3, dtype=np.float32)}, str(tmp_path / "s2.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a.weight": "s1.safetensors", "b.bias": "s2.safetensors"}}')
    state = read(tmp_path)
    assert sorted(state) == ["a.weight", "b.bias"] and state["b.bias"].tolist() == [0, 1, 2]


def test_key_in_two_shards_is_refused(tmp_path):
    save_file({"w": np.ones(2, np.float32)}, str(tmp_path / "s1.safetensors"))
    save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "s2.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(
        '{"weight_map": {"w": "s1.safetensors", "v": "s2.safetensors"}}')
    with pytest.raises(CheckpointError, match=r"the key 'w' is in both .*s1.safetensors and .*s2.safetensors"):
        read(tmp_path)


def test_index_checks_apply_to_the_twins(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": {"w": "../escape.safetensors"}}')
    with pytest.raises(CheckpointError, match="invalid shard name"):
        read(tmp_path)


def test_bin_only_checkpoint_says_to_resave(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"holds no weights.*numpy models read PyTorch weights from safetensors"):
        read(tmp_path)


def test_corrupt_safetensors_names_the_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
    with pytest.raises(CheckpointError, match=r"model.safetensors is not a readable safetensors file"):
        read(tmp_path)


def test_weights_match_pytorch_keys_across_base_and_head_layouts():
    state = {"transformer.h.0.dense.weight": np.arange(6.0).reshape(2, 3), "transformer.ln_f.bias": np.zeros(3),
             "model.embed_tokens.weight": np.ones((4, 3))}
    head = [("transformer", "h", "0", "dense", "kernel"), ("lm_head", "kernel")]
    values = weights.values_from_pytorch(head, state, "transformer", {"lm_head.weight": "model.embed_tokens.weight"})
    assert values[head[0]].shape == (3, 2) and values[head[1]].shape == (3, 4)  # kernels transposed
    base = [("ln_f", "bias"), ("h", "0", "dense", "kernel"), ("absent", "bias")]
    assert sorted(weights.values_from_pytorch(base, state, "transformer")) == sorted(base[:2])
    assert weights.pt_key(("attentions_._0", "q_lin"), "kernel") == ("attentions.0.q_lin.weight", True)


def test_check_shapes_names_weight_and_both_shapes():
    expected = {("a", "kernel"): (2, 3), ("b", "bias"): (3,)}
    assert weights.check_shapes("ckpt", expected, {("a", "kernel"): np.zeros((2, 3))}) == ["b/bias"]
    with pytest.raises(CheckpointError, match=r"ckpt: weight a/kernel has shape \(3, 2\), the model expects \(2, 3\)"):
        weights.check_shapes("ckpt", expected, {("a", "kernel"): np.zeros((3, 2))})


class _Model:
    def __init__(self, generation_config=None, **config):
        self.config = XGLMConfig(vocab_size=32, d_model=8, num_layers=1, attention_heads=2, ffn_dim=8, **config)
        self.generation_config = generation_config


SUPPORTED = frozenset({"max_length", "max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "num_beams",
                       "pad_token_id", "eos_token_id", "bos_token_id"})


def settings(model, generation_config=None, prompt_length=3, **kwargs):
    return decode_settings(model, generation_config, kwargs, prompt_length, SUPPORTED, "Test")


def test_settings_follow_generation_config_precedence():
    model = _Model(pad_token_id=1, eos_token_id=2)
    s = settings(model)
    assert (s.max_length, s.top_k, s.do_sample, s.pad_token_id, s.eos_token_ids) == (20, 50, False, 1, (2,))
    given = GenerationConfig(max_new_tokens=4, do_sample=True, top_k=5, eos_token_id=[7, 8])
    s = settings(model, given, top_k=9, temperature=None)
    assert (s.max_length, s.top_k, s.do_sample, s.eos_token_ids, s.eos_token_id) == (7, 9, True, (7, 8), 7)
    assert given.top_k == 5  # the caller's config is not changed
    s = settings(_Model(GenerationConfig(max_new_tokens=2, top_p=0.5, do_sample=True), pad_token_id=1), top_p=0.9)
    assert (s.max_length, s.top_p, s.do_sample) == (5, 0.9, True)


def test_pad_falls_back_to_eos_then_zero():
    assert settings(_Model(pad_token_id=None, eos_token_id=2)).pad_token_id == 2
    s = settings(_Model(pad_token_id=None, eos_token_id=None))
    assert (s.pad_token_id, s.eos_token_ids, s.eos_token_id) == (0, (), -1)


def test_settings_errors_name_the_culprit():
    model = _Model()
    with pytest.raises(TypeError, match="unsupported arguments for Test models: num_beam"):
        settings(model, num_beam=2)
    with pytest.raises(TypeError, match=r"Test generate does not support repetition_penalty=1.3"):
        settings(model, repetition_penalty=1.3)
    with pytest.raises(TypeError, match=r"does not support min_length=4"):
        settings(model, GenerationConfig(min_length=4))
    settings(model, repetition_penalty=1.0)  # a default value asks for nothing
    with pytest.raises(TypeError, match="generation_config must be a tongues GenerationConfig; got dict"):
        settings(model, {"max_length": 5})
    with pytest.raises(GenerationConfigError, match="top_p"):
        settings(model, top_p=2.0)
    with pytest.raises(ValueError, match=r"max_length \(3\) must exceed the prompt length \(3\)"):
        settings(model, max_length=3)


def test_activation_names_and_error():
    functions = {"gelu": lambda x, approximate: ("gelu", approximate), "relu": "relu", "silu": "silu", "tanh": "tanh"}
    assert activation("gelu_new", functions, "Test")(0) == ("gelu", True)
    assert activation("gelu", functions, "Test")(0) == ("gelu", False)
    assert activation("swish", functions, "Test") == "silu"
    with pytest.raises(ValueError, match="activation 'mish' is not supported by tongues' Test models; use one of gelu"):
        activation("mish", functions, "Test")


def _imports(pattern: str) -> set[str]:
    """Every module named in an import of the files matching ``pattern`` (relative ones keep their dots)."""
    found = set()
    for path in PACKAGE.glob(pattern):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                found.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("pattern, other", [("tf/*.py", "flax"), ("models/*/modeling_tf_*.py", "flax"),
                                            ("flax/*.py", "tf"), ("models/*/modeling_flax_*.py", "tf"),
                                            ("frameworks/*.py", "tf"), ("frameworks/*.py", "flax")])
def test_twins_do_not_import_each_other(pattern, other):
    imports = _imports(pattern)
    assert imports and not [m for m in imports if m.lstrip(".").split(".")[0] == other or f"tongues.{other}" in m]


def test_core_loads_no_framework_and_no_torch():
    code = ("import sys\n"
            "import tongues.frameworks.weights, tongues.frameworks.generation, tongues.frameworks.outputs\n"
            "import tongues.frameworks.positions, tongues.frameworks.activations\n"
            "print(sorted(m for m in ('jax', 'flax', 'tensorflow', 'tf_keras', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
