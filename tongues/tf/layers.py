"""TensorFlow building blocks the TF families share: outputs, masks, the attention kernel, losses,
sinusoidal tables, activations.

Caches are the legacy format of the spec: a tuple per layer of key and value tensors
(B, H, past, D), grown by concatenation and returned as ``past_key_values``.
"""

from __future__ import annotations

from typing import Any

from . import require_tf

require_tf()

import tensorflow as tf  # noqa: E402

from ..frameworks.activations import activation  # noqa: E402
from ..frameworks.outputs import Collector, ModelOutput, output_fields  # noqa: E402,F401 (Collector re-exported)
from ..frameworks.positions import sinusoidal_table  # noqa: E402
from .modeling import keras  # noqa: E402

Tensor = Any


def _output(name: str, *fields: str):
    """A TF output dataclass with the given fields, all defaulting to None."""
    return output_fields(name, fields, ModelOutput, module=__name__)


TFBaseModelOutputWithPastAndCrossAttentions = _output(
    "TFBaseModelOutputWithPastAndCrossAttentions", "last_hidden_state", "past_key_values", "hidden_states",
    "attentions", "cross_attentions")
TFCausalLMOutputWithCrossAttentions = _output(
    "TFCausalLMOutputWithCrossAttentions", "loss", "logits", "past_key_values", "hidden_states", "attentions",
    "cross_attentions")
TFBaseModelOutput = _output("TFBaseModelOutput", "last_hidden_state", "hidden_states", "attentions")
TFSequenceClassifierOutput = _output("TFSequenceClassifierOutput", "loss", "logits", "hidden_states", "attentions")
TFMultipleChoiceModelOutput = _output("TFMultipleChoiceModelOutput", "loss", "logits", "hidden_states", "attentions")
TFTokenClassifierOutput = _output("TFTokenClassifierOutput", "loss", "logits", "hidden_states", "attentions")
TFQuestionAnsweringModelOutput = _output("TFQuestionAnsweringModelOutput", "loss", "start_logits", "end_logits",
                                         "hidden_states", "attentions")


def finish(output, return_dict: bool):
    """The output object, or its tuple (``None`` fields dropped) when ``return_dict`` is False."""
    return output if return_dict else output.to_tuple()


def dense(features: int, config, name: str, use_bias: bool = True) -> keras.layers.Dense:
    std = getattr(config, "init_std", None) or getattr(config, "initializer_range", 0.02)
    return keras.layers.Dense(features, use_bias=use_bias, name=name,
                              kernel_initializer=keras.initializers.TruncatedNormal(stddev=std))


def attention_bias(key_mask: Tensor | None, batch: int, query_length: int, past_length: int, causal: bool,
                   dtype=tf.float32) -> Tensor | None:
    """Additive bias (B, 1, Tq, past + Tq): 0 where a query may attend, the dtype's minimum elsewhere.

    ``key_mask`` (B, past + Tq) is 1 for real tokens; query ``i`` sits at position ``past + i``.
    """
    total = past_length + query_length
    allowed = tf.ones((batch, 1, query_length, total), dtype=tf.bool)
    if causal:
        q_pos = tf.range(past_length, total)[:, None]
        k_pos = tf.range(total)[None, :]
        allowed = allowed & (k_pos <= q_pos)[None, None]
    if key_mask is not None:
        allowed = allowed & tf.cast(key_mask, tf.bool)[:, None, None, :]
    return tf.where(allowed, tf.zeros((), dtype), tf.fill((), dtype.min))


def check_mask(mask: Tensor, batch: int, length: int, name: str = "attention_mask") -> Tensor:
    if mask.shape.rank != 2 or mask.shape[0] != batch or mask.shape[1] != length:
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, expected ({batch}, {length})")
    return mask


def attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, scale: float, dropout: keras.layers.Dropout,
           training: bool, head_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ · scale + bias) v, softmax in fp32. q (B, H, Tq, D), k/v (B, H, Tk, D), bias broadcastable
    to (B, H, Tq, Tk), head_mask (H,) multiplies the probabilities. Returns out (B, H, Tq, D), probs."""
    scores = tf.matmul(q, k, transpose_b=True) * scale
    if bias is not None:
        scores = scores + tf.cast(bias, scores.dtype)
    probs = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), q.dtype)
    if head_mask is not None:
        probs = probs * tf.reshape(tf.cast(head_mask, probs.dtype), (1, -1, 1, 1))
    out = tf.matmul(dropout(probs, training=training), v)
    return out, probs


def layer_head_masks(head_mask, num_layers: int, num_heads: int) -> list:
    """Per-layer head masks from ``head_mask`` (H,) or (L, H); ``None`` entries when absent."""
    if head_mask is None:
        return [None] * num_layers
    head_mask = tf.convert_to_tensor(head_mask, tf.float32)
    if head_mask.shape.rank == 1:
        head_mask = tf.tile(head_mask[None], (num_layers, 1))
    if tuple(head_mask.shape) != (num_layers, num_heads):
        raise ValueError(f"head_mask has shape {tuple(head_mask.shape)}, expected ({num_heads},) or "
                         f"({num_layers}, {num_heads})")
    return [head_mask[i] for i in range(num_layers)]


def sinusoidal_positions(num_positions: int, dim: int, padding_idx: int | None = None) -> Tensor:
    return tf.constant(sinusoidal_table(num_positions, dim, padding_idx))


def get_activation(name: str):
    """The activation called ``name`` in a config (``activation_function``, ``hidden_act``)."""
    return activation(name, {"gelu": tf.nn.gelu, "relu": tf.nn.relu, "silu": tf.nn.silu, "tanh": tf.math.tanh}, "TF")


def masked_cross_entropy(labels: Tensor, logits: Tensor) -> Tensor:
    """Mean cross-entropy over labels != -100, shape (1,) as the reference's TF losses return it."""
    labels = tf.reshape(tf.cast(labels, tf.int32), (-1,))
    logits = tf.reshape(tf.cast(logits, tf.float32), (-1, logits.shape[-1]))
    keep = labels != -100
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.where(keep, labels, 0), logits)
    losses = tf.where(keep, losses, 0.0)
    return tf.reshape(tf.reduce_sum(losses) / tf.maximum(tf.reduce_sum(tf.cast(keep, tf.float32)), 1.0), (1,))


__all__ = [name for name in dir() if name.startswith("TF")] + ["attend", "attention_bias", "dense", "finish",
                                                               "get_activation", "masked_cross_entropy"]


class SharedEmbedding(keras.layers.Layer):
    """A (vocab, dim) table stored as ``<name>/weight`` (the reference's TF layout): looks ids up, or with
    ``mode="linear"`` projects hidden states onto the vocabulary (a tied output layer)."""

    def __init__(self, vocab_size: int, hidden_size: int, init_std: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.hidden_size, self.init_std = vocab_size, hidden_size, init_std

    def build(self, input_shape=None):
        self.weight = self.add_weight("weight", shape=(self.vocab_size, self.hidden_size),
                                      initializer=keras.initializers.TruncatedNormal(stddev=self.init_std))
        super().build(input_shape)

    def call(self, inputs, mode: str = "embedding"):
        if mode == "linear":
            return tf.matmul(inputs, self.weight, transpose_b=True)
        return tf.gather(self.weight, inputs)


def check_ids(input_ids, vocab_size: int, name: str = "input_ids") -> None:
    """Raise naming the largest bad id when ``input_ids`` leaves [0, vocab_size) (eager inputs only)."""
    if tf.executing_eagerly():
        low, high = int(tf.reduce_min(input_ids)), int(tf.reduce_max(input_ids))
        if low < 0 or high >= vocab_size:
            bad = high if high >= vocab_size else low
            raise ValueError(f"{name} holds id {bad}, outside the vocabulary [0, {vocab_size})")
