"""THUDM's original GLM-4 layout (``model_type: chatglm``) -> the ``Glm`` classes, at load time.

The original checkpoints (THUDM/glm-4-9b, glm-4-9b-chat, ...) ship their own modeling code; tongues
runs none of it. Their config keys and weight names map one to one onto GLM-4's ``-hf`` layout,
except the fused query/key/value projection, which is split into ``q_proj``/``k_proj``/``v_proj``:

    transformer.embedding.word_embeddings          -> model.embed_tokens
    transformer.encoder.layers.N.input_layernorm   -> model.layers.N.input_layernorm
    ....self_attention.query_key_value (W, b)      -> ....self_attn.{q,k,v}_proj (rows [q | k | v])
    ....self_attention.dense                       -> ....self_attn.o_proj
    ....post_attention_layernorm                   -> (same name)
    ....mlp.dense_h_to_4h                          -> ....mlp.gate_up_proj (rows [gate | up], as is)
    ....mlp.dense_4h_to_h                          -> ....mlp.down_proj
    transformer.encoder.final_layernorm            -> model.norm
    transformer.output_layer                       -> lm_head
    transformer.rotary_pos_emb.inv_freq            -> dropped (recomputed from the config)
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from ...configuration import ConfigError

# chatglm config key -> GlmConfig key, copied as they are.
_RENAMED = {
    "padded_vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "ffn_hidden_size": "intermediate_size",
    "num_layers": "num_hidden_layers",
    "num_attention_heads": "num_attention_heads",
    "kv_channels": "head_dim",
    "layernorm_epsilon": "rms_norm_eps",
    "seq_length": "max_position_embeddings",
    "add_qkv_bias": "attention_bias",
    "attention_dropout": "attention_dropout",
    "use_cache": "use_cache",
    "eos_token_id": "eos_token_id",
    "pad_token_id": "pad_token_id",
    "bos_token_id": "bos_token_id",
    "tie_word_embeddings": "tie_word_embeddings",
    "torch_dtype": "torch_dtype",
    "dtype": "dtype",
    "initializer_range": "initializer_range",
}

# Options of the original code that the Glm architecture does not have: key -> the value Glm implies.
_FIXED = {
    "add_bias_linear": False,  # no bias on the output projection and MLP
    "rmsnorm": True,  # RMSNorm, not LayerNorm
    "post_layer_norm": True,  # a final norm after the last layer
    "apply_residual_connection_post_layernorm": False,  # pre-norm residuals
}

# Keys that describe the original code, training or precision only; read and not carried over.
_DROPPED = ("model_type", "architectures", "auto_map", "_name_or_path", "transformers_version",
            "multi_query_attention", "multi_query_group_num", "rope_ratio", "original_rope", "num_hidden_layers",
            "vocab_size", "apply_query_key_layer_scaling", "attention_softmax_in_fp32", "attn_implementation",
            "bias_dropout_fusion", "fp32_residual_connection", "hidden_dropout", "classifier_dropout",
            "pre_seq_len", "prefix_projection", "quantization_bit")


def chatglm_config_to_glm(data: dict[str, Any]) -> dict[str, Any]:
    """A ``chatglm`` config.json dict -> GlmConfig keyword arguments.

    ``rope_ratio`` scales the RoPE base (``rope_theta = 10000 * rope_ratio``, as THUDM's
    RotaryEmbedding does), ``multi_query_group_num`` gives the key/value heads when
    ``multi_query_attention`` is set, and half of each head is rotated, interleaved.

    Raises:
        ConfigError: the config asks for something the Glm architecture cannot express (the message names the key).
    """
    for key, expected in _FIXED.items():
        if key in data and bool(data[key]) != expected:
            raise ConfigError(f"chatglm config.json sets {key}={data[key]!r}; GLM-4 models (and tongues' Glm classes) "
                              f"need {key}={expected}, so this checkpoint cannot be converted")
    out: dict[str, Any] = {}
    for old, new in _RENAMED.items():
        if old in data:
            out[new] = data[old]
    if "vocab_size" not in out and "vocab_size" in data:
        out["vocab_size"] = data["vocab_size"]
    if "num_hidden_layers" not in out and "num_hidden_layers" in data:
        out["num_hidden_layers"] = data["num_hidden_layers"]
    heads = out.get("num_attention_heads")
    if data.get("multi_query_attention"):
        if "multi_query_group_num" not in data:
            raise ConfigError("chatglm config.json sets multi_query_attention but has no multi_query_group_num")
        out["num_key_value_heads"] = data["multi_query_group_num"]
    else:
        out["num_key_value_heads"] = heads
    if out.get("head_dim") is None and heads:
        out["head_dim"] = out.get("hidden_size", 0) // heads
    rope_ratio = data.get("rope_ratio", 1)
    if isinstance(rope_ratio, bool) or not isinstance(rope_ratio, (int, float)) or rope_ratio <= 0:
        raise ConfigError(f"chatglm config.json: rope_ratio must be a positive number; got {rope_ratio!r}")
    out["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0 * rope_ratio, "partial_rotary_factor": 0.5}
    out["hidden_act"] = "silu"  # the original MLP is SwiGLU
    for key, value in data.items():  # anything else (id2label, custom keys) is kept as it is
        if key not in _RENAMED and key not in _FIXED and key not in _DROPPED and key not in out:
            out[key] = value
    out["model_type"] = "glm"
    return out


_LAYER = r"transformer\.encoder\.layers\.(\d+)\."
_KEYS = [
    (re.compile(r"^transformer\.embedding\.word_embeddings\.weight$"), "model.embed_tokens.weight"),
    (re.compile(r"^transformer\.encoder\.final_layernorm\.weight$"), "model.norm.weight"),
    (re.compile(r"^transformer\.output_layer\.weight$"), "lm_head.weight"),
    (re.compile(_LAYER + r"input_layernorm\.weight$"), r"model.layers.\1.input_layernorm.weight"),
    (re.compile(_LAYER + r"post_attention_layernorm\.weight$"), r"model.layers.\1.post_attention_layernorm.weight"),
    (re.compile(_LAYER + r"self_attention\.dense\.weight$"), r"model.layers.\1.self_attn.o_proj.weight"),
    (re.compile(_LAYER + r"mlp\.dense_h_to_4h\.weight$"), r"model.layers.\1.mlp.gate_up_proj.weight"),
    (re.compile(_LAYER + r"mlp\.dense_4h_to_h\.weight$"), r"model.layers.\1.mlp.down_proj.weight"),
    (re.compile(_LAYER + r"self_attention\.query_key_value\.(weight|bias)$"), r"model.layers.\1.self_attn.qkv.\2"),
]
_DROPPED_KEYS = re.compile(r"^transformer\.rotary_pos_emb\.inv_freq$")
_FUSED_QKV = re.compile(r"^(model\.layers\.\d+\.self_attn)\.qkv\.(weight|bias)$")


def is_chatglm_key(key: str) -> bool:
    """Whether ``key`` is a weight name of the original layout (they all start with ``transformer.``)."""
    return key.startswith("transformer.")


def chatglm_key_to_glm(key: str) -> str | None:
    """The Glm name of an original weight; ``None`` for weights that are dropped.

    The fused projection maps to the placeholder ``...self_attn.qkv.{weight,bias}``, which
    :func:`split_fused_qkv` turns into the three projections.

    Raises:
        KeyError: the name belongs to no known GLM-4 weight (the message names it).
    """
    if _DROPPED_KEYS.match(key):
        return None
    for pattern, replacement in _KEYS:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    raise KeyError(f"checkpoint weight {key!r} has no counterpart in tongues' Glm classes; "
                   "is this a GLM-4 chatglm checkpoint (ChatGLM-6B v1 and prefix-tuning weights are not supported)?")


def split_fused_qkv(key: str, tensor, num_heads: int, num_kv_heads: int, head_dim: int) -> Iterator[tuple[str, Any]]:
    """``(glm_key, tensor)`` pairs for one converted weight, splitting the fused projection.

    THUDM's ``query_key_value`` stacks whole blocks, ``[q (H * D) | k (H_kv * D) | v (H_kv * D)]``
    along its output rows (modeling_chatglm.py splits it the same way), so a row split is exact.
    """
    fused = _FUSED_QKV.match(key)
    if fused is None:
        yield key, tensor
        return
    prefix, kind = fused.groups()
    q_rows, kv_rows = num_heads * head_dim, num_kv_heads * head_dim
    if tensor.shape[0] != q_rows + 2 * kv_rows:
        raise ValueError(f"{prefix}: the fused query_key_value {kind} has {tensor.shape[0]} rows, expected "
                         f"{q_rows} + 2 x {kv_rows} = {q_rows + 2 * kv_rows} for {num_heads} heads, "
                         f"{num_kv_heads} key/value heads of {head_dim} channels")
    # Copies, not views: three parameters sharing one storage would alias on save.
    q, k, v = (part.clone() for part in tensor.split([q_rows, kv_rows, kv_rows], dim=0))
    yield f"{prefix}.q_proj.{kind}", q
    yield f"{prefix}.k_proj.{kind}", k
    yield f"{prefix}.v_proj.{kind}", v
