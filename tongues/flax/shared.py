"""Framework-free pieces shared by tongues.flax and tongues.tf (NumPy only).

Both frameworks need the same position tables, the same output containers and the same rule for
naming a framework weight after its PyTorch checkpoint key; they live here once.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import fields

import numpy as np


def alibi_slopes(num_heads: int) -> np.ndarray:
    """Per-head ALiBi slopes (H,) in fp32, the same series as ``tongues.layers.alibi.alibi_slopes``."""
    n = 2 ** math.floor(math.log2(num_heads))
    base = np.float32(2 ** (-(2 ** -(math.log2(n) - 3))))
    slopes = [base ** np.float32(i) for i in range(1, 1 + n)]
    if n != num_heads:
        extra_base = np.float32(2 ** (-(2 ** -(math.log2(2 * n) - 3))))
        slopes += [extra_base ** np.float32(i) for i in range(1, 1 + 2 * min(n, num_heads - n), 2)]
    return np.asarray(slopes, dtype=np.float32)


def sinusoidal_table(num_positions: int, dim: int, padding_idx: int | None = None) -> np.ndarray:
    """fairseq's sinusoidal table (num_positions, dim): sines in the first half, cosines in the second.

    Row ``padding_idx`` is zero, as fairseq (and XGLM's checkpoints) define it.
    """
    half = dim // 2
    freq = np.exp(np.arange(half, dtype=np.float32) * -(math.log(10000) / (half - 1)))
    angles = np.arange(num_positions, dtype=np.float32)[:, None] * freq[None, :]
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    if dim % 2:
        table = np.concatenate([table, np.zeros((num_positions, 1), np.float32)], axis=1)
    if padding_idx is not None:
        table[padding_idx] = 0
    return table.astype(np.float32)


class ModelOutput(OrderedDict):
    """Output container readable by attribute, key and index; ``None`` fields are skipped (torch-free twin of
    ``tongues.outputs.ModelOutput``, which imports torch)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                super().__setitem__(f.name, value)

    def __getitem__(self, key):
        if isinstance(key, str):
            return dict(self.items())[key]
        return self.to_tuple()[key]

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        object.__setattr__(self, key, value)

    def to_tuple(self) -> tuple:
        return tuple(self[k] for k in self.keys())


def pt_key(path: tuple[str, ...], leaf_kind: str) -> tuple[str, bool]:
    """The PyTorch checkpoint key of a framework weight and whether its matrix is stored transposed.

    ``path`` is the weight's module path (``("transformer", "h", "0", "mlp", "dense_h_to_4h")``);
    ``leaf_kind`` its framework name: Flax ``kernel``/``embedding``/``scale``/``bias``, Keras
    ``kernel``/``embeddings``/``weight``/``gamma``/``beta``/``bias``. Dense kernels are (in, out) in
    Flax and Keras but (out, in) in PyTorch.
    """
    # Keras layer lists are named "attentions_._0" (the reference's TF naming); PyTorch says "attentions.0".
    prefix = ".".join(path).replace("_._", ".")
    if leaf_kind == "kernel":
        return prefix + ".weight", True
    if leaf_kind in ("embedding", "embeddings", "scale", "gamma", "weight"):
        return prefix + ".weight", False
    if leaf_kind in ("bias", "beta"):
        return prefix + ".bias", False
    return prefix + "." + leaf_kind, False


def output_fields(name: str, names: tuple[str, ...], base: type, module: str) -> type:
    """A dataclass subclass of ``base`` named ``name`` whose fields ``names`` all default to ``None``."""
    from dataclasses import make_dataclass, field

    cls = make_dataclass(name, [(n, object, field(default=None)) for n in names], bases=(base,))
    cls.__module__ = module
    return cls


def interleaved_sinusoidal_table(num_positions: int, dim: int) -> np.ndarray:
    """XLM's sinusoidal table (sines in even columns, cosines in odd), computed in float64 as
    facebookresearch/XLM does; the NumPy twin of ``tongues.layers.sinusoidal.interleaved_sinusoidal_table``."""
    angles = np.array([[p / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for p in range(num_positions)])
    table = np.zeros((num_positions, dim))
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table.astype(np.float32)


class Collector:
    """Gathers per-layer hidden states and attention probabilities when asked for."""

    def __init__(self, hidden: bool, attentions: bool, cross: bool = False) -> None:
        self.hidden = () if hidden else None
        self.attentions = () if attentions else None
        self.cross = () if (attentions and cross) else None

    def add_hidden(self, x) -> None:
        if self.hidden is not None:
            self.hidden += (x,)

    def add_attention(self, probs, cross_probs=None) -> None:
        if self.attentions is not None:
            self.attentions += (probs,)
        if self.cross is not None:
            self.cross += (cross_probs,)


def read_pytorch_weights(pretrained: str, framework: str, to_fp32, **hub_kwargs) -> dict[str, np.ndarray]:
    """Every tensor of a PyTorch checkpoint's safetensors file(s) as fp32 NumPy arrays, without torch.

    ``framework`` is safetensors' ("flax" or "tf", which understand bfloat16 where NumPy does not) and
    ``to_fp32`` turns one of its tensors into an fp32 NumPy array.
    """
    import json

    from safetensors import safe_open

    from ..checkpoint.files import CheckpointError, resolve_file

    single = resolve_file(pretrained, "model.safetensors", required=False, **hub_kwargs)
    if single is not None:
        files = [single]
    else:
        index = resolve_file(pretrained, "model.safetensors.index.json", required=False, **hub_kwargs)
        if index is None:
            raise CheckpointError(
                f"{pretrained} has neither model.safetensors nor model.safetensors.index.json: {framework} models "
                "read PyTorch weights from safetensors only (re-save the PyTorch model with tongues to get one)"
            )
        with open(index, encoding="utf-8") as f:
            shards = dict.fromkeys(json.load(f)["weight_map"].values())
        files = [resolve_file(pretrained, shard, **hub_kwargs) for shard in shards]
    state = {}
    for path in files:
        with safe_open(path, framework=framework) as f:
            for key in f.keys():
                state[key] = to_fp32(f.get_tensor(key))
    return state
