"""GLM-4 configuration (THUDM / Zhipu AI, https://arxiv.org/abs/2406.12793)."""

from __future__ import annotations

from typing import Any

from ...configuration import ConfigError, PretrainedConfig

# RoPE variants this family computes: plain, and linear position interpolation.
ROPE_TYPES = ("default", "linear")
_DEFAULT_ROPE_THETA = 10000.0
# GLM-4 rotates half of each head's channels (THUDM's RotaryEmbedding(rotary_dim // 2)).
_DEFAULT_PARTIAL_ROTARY_FACTOR = 0.5


class GlmConfig(PretrainedConfig):
    """Hyper-parameters of a GLM-4 model; the defaults give the shape of THUDM/glm-4-9b-chat.

    Args:
        vocab_size: tokens in the vocabulary (151552).
        hidden_size: width of the residual stream (4096).
        intermediate_size: width of the SwiGLU MLP (13696).
        num_hidden_layers: decoder layers (40).
        num_attention_heads: query heads (32).
        num_key_value_heads: key/value heads; must divide ``num_attention_heads`` (2; 1 is
            multi-query attention; ``None`` means one per query head).
        head_dim: channels per head (128; ``None`` means ``hidden_size // num_attention_heads``).
        hidden_act: the MLP's gate activation ("silu").
        attention_dropout: dropout on attention probabilities in training (0.0).
        max_position_embeddings: longest sequence the model was trained for (131072).
        initializer_range: std of the normal init (0.02).
        rms_norm_eps: RMSNorm epsilon (1.5625e-07).
        use_cache: return key/value caches (True).
        tie_word_embeddings: share the input embeddings with the LM head (False).
        rope_theta: RoPE base (10000.0). Read from ``rope_parameters`` when that is given.
        partial_rotary_factor: fraction of each head's channels that are rotated (0.5).
        rope_parameters: today's layout of the two above, a dict with ``rope_type``
            ("default" or "linear", with ``factor``), ``rope_theta`` and ``partial_rotary_factor``.
            ``rope_scaling`` (older name) is read too.
        pad_token_id: 151329 (``<|endoftext|>``, also an end-of-turn token).
        eos_token_id: ``[151329, 151336, 151338]`` (``<|endoftext|>``, ``<|user|>``, ``<|observation|>``).
        bos_token_id: None.
        attention_bias: biases on the query, key and value projections (True).

    Raises:
        ConfigError: a value is out of range (the message names the key).
    """

    model_type = "glm"
    positive_int_fields = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                           "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings")

    def __init__(self, vocab_size=151552, hidden_size=4096, intermediate_size=13696, num_hidden_layers=40,
                 num_attention_heads=32, num_key_value_heads=2, head_dim=128, hidden_act="silu",
                 attention_dropout=0.0, max_position_embeddings=131072, initializer_range=0.02,
                 rms_norm_eps=1.5625e-07, use_cache=True, tie_word_embeddings=False, rope_theta=None,
                 partial_rotary_factor=None, rope_parameters=None, pad_token_id=151329, eos_token_id=None,
                 bos_token_id=None, attention_bias=True, **kwargs):
        self.rope_parameters = _rope_parameters(rope_parameters or kwargs.pop("rope_scaling", None),
                                                rope_theta, partial_rotary_factor)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_attention_heads if num_key_value_heads is None else num_key_value_heads
        self.head_dim = head_dim if head_dim is not None else _floor_div(hidden_size, num_attention_heads)
        self.hidden_act = hidden_act
        self.attention_dropout = attention_dropout
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.use_cache = use_cache
        self.attention_bias = attention_bias
        if eos_token_id is None:
            eos_token_id = [151329, 151336, 151338]
        super().__init__(pad_token_id=pad_token_id, eos_token_id=eos_token_id, bos_token_id=bos_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)

    # The spec's flat names, kept as views of ``rope_parameters`` so the two never disagree.
    @property
    def rope_theta(self) -> float:
        return self.rope_parameters["rope_theta"]

    @rope_theta.setter
    def rope_theta(self, value: float) -> None:
        self.rope_parameters["rope_theta"] = value

    @property
    def partial_rotary_factor(self) -> float:
        return self.rope_parameters["partial_rotary_factor"]

    @partial_rotary_factor.setter
    def partial_rotary_factor(self, value: float) -> None:
        self.rope_parameters["partial_rotary_factor"] = value

    @property
    def rotary_dim(self) -> int:
        """Channels rotated per head: ``int(head_dim * partial_rotary_factor)``."""
        return int(self.head_dim * self.partial_rotary_factor)

    @property
    def rope_scaling_factor(self) -> float:
        """Linear position-interpolation factor (1.0 for plain RoPE)."""
        return float(self.rope_parameters.get("factor", 1.0)) if self.rope_parameters["rope_type"] == "linear" else 1.0

    def validate(self) -> None:
        super().validate()
        self.check_divisible("num_attention_heads", "num_key_value_heads")
        rope = self.rope_parameters
        if rope["rope_type"] not in ROPE_TYPES:
            raise ConfigError(f"GlmConfig.rope_parameters['rope_type'] must be one of {ROPE_TYPES}; got "
                              f"{rope['rope_type']!r} (other RoPE scalings are not implemented for GLM)")
        theta = rope["rope_theta"]
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or theta <= 0:
            raise ConfigError(f"GlmConfig.rope_theta must be a positive number; got {theta!r}")
        factor = rope["partial_rotary_factor"]
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor <= 1:
            raise ConfigError(f"GlmConfig.partial_rotary_factor must be in (0, 1]; got {factor!r}")
        if self.rotary_dim < 2 or self.rotary_dim % 2:
            raise ConfigError(f"GlmConfig: head_dim={self.head_dim} x partial_rotary_factor={factor} gives "
                              f"{self.rotary_dim} rotary channels; it must be a positive even number")
        if rope["rope_type"] == "linear":
            scale = rope.get("factor")
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale < 1:
                raise ConfigError(f"GlmConfig.rope_parameters['factor'] must be a number >= 1 for linear RoPE; "
                                  f"got {scale!r}")
        if not isinstance(self.attention_dropout, (int, float)) or not 0 <= self.attention_dropout < 1:
            raise ConfigError(f"GlmConfig.attention_dropout must be in [0, 1); got {self.attention_dropout!r}")
        if not isinstance(self.hidden_act, str):
            raise ConfigError(f"GlmConfig.hidden_act must be an activation name; got {self.hidden_act!r}")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        # Written flat as well, for readers of the spec era (transformers 4.46 reads these two keys).
        out["rope_theta"] = self.rope_theta
        out["partial_rotary_factor"] = self.partial_rotary_factor
        return out

    @classmethod
    def accepted_model_types(cls) -> tuple[str, ...]:
        return ("chatglm",)

    @classmethod
    def convert_foreign(cls, data: dict[str, Any]) -> dict[str, Any]:
        """THUDM's original ``chatglm`` config.json -> GlmConfig keys (see convert_chatglm.py)."""
        if data.get("model_type") == "chatglm":
            from .convert_chatglm import chatglm_config_to_glm

            return chatglm_config_to_glm(data)
        return data


def _floor_div(a, b):
    return a // b if isinstance(a, int) and isinstance(b, int) and b > 0 else None


def _rope_parameters(given, rope_theta, partial_rotary_factor) -> dict[str, Any]:
    """One RoPE dict from today's ``rope_parameters`` (wins) and the flat keys of the spec era."""
    if given is not None and not isinstance(given, dict):
        raise ConfigError(f"GlmConfig.rope_parameters must be a dict; got {type(given).__name__}")
    rope = dict(given or {})
    if "type" in rope:  # the older rope_scaling spelling
        rope.setdefault("rope_type", rope.pop("type"))
    rope.setdefault("rope_type", "default")
    rope.setdefault("rope_theta", _DEFAULT_ROPE_THETA if rope_theta is None else rope_theta)
    rope.setdefault("partial_rotary_factor",
                    _DEFAULT_PARTIAL_ROTARY_FACTOR if partial_rotary_factor is None else partial_rotary_factor)
    return rope
