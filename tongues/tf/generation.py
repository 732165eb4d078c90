"""Generation for TF causal LMs: greedy and sampling over the legacy tuple cache, run eagerly.

Like PyTorch ``generate`` (and unlike Flax), sequences stop growing once every row has produced
``eos_token_id``; finished rows are padded with ``pad_token_id``.
"""

from __future__ import annotations

from . import require_tf

require_tf()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..frameworks.generation import decode_settings  # noqa: E402

# The GenerationConfig fields TF generate implements; any other set to a non-default value is refused.
SUPPORTED_SETTINGS = frozenset({"max_length", "max_new_tokens", "do_sample", "temperature", "top_k", "top_p",
                                "pad_token_id", "eos_token_id", "bos_token_id"})


def warp_logits(logits, temperature: float, top_k: int, top_p: float):
    """Temperature, top-k, then nucleus filtering of (N, V) fp32 logits (removed -> -inf)."""
    if temperature != 1.0:
        logits = logits / temperature
    if top_k:
        kth = tf.math.top_k(logits, k=min(top_k, logits.shape[-1])).values[:, -1:]
        logits = tf.where(logits < kth, -np.inf, logits)
    if top_p < 1.0:
        sorted_logits = tf.sort(logits, direction="DESCENDING", axis=-1)
        probs = tf.nn.softmax(sorted_logits, axis=-1)
        remove = (tf.cumsum(probs, axis=-1) - probs) >= top_p
        cutoff = tf.reduce_min(tf.where(remove, np.inf, sorted_logits), axis=-1, keepdims=True)
        logits = tf.where(logits < cutoff, -np.inf, logits)
    return logits


class TFGenerationMixin:
    """``generate`` for TF causal LMs whose call takes ``input_ids, attention_mask, position_ids, past_key_values``."""

    def generate(self, input_ids, attention_mask=None, generation_config=None, seed=None, **kwargs):
        """Greedy (default) or sampling (``do_sample=True``, with ``seed``) continuation of ``input_ids`` (B, T).

        ``generation_config`` (a ``tongues.GenerationConfig``) and keyword settings (``max_new_tokens``,
        ``max_length``, ``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``pad_token_id``,
        ``eos_token_id``) resolve as in ``tongues.frameworks.generation``. Rows of different lengths are
        left-padded (pass ``attention_mask``); positions count from each row's first real token.
        Returns (B, T + new) token ids as a tf.Tensor.
        """
        input_ids = tf.cast(input_ids, tf.int32)
        B, T = input_ids.shape
        s = decode_settings(self, generation_config, kwargs, T, SUPPORTED_SETTINGS, "TF")
        max_length, pad, eos = s.max_length, s.pad_token_id, tf.constant(s.eos_token_ids or (-1,), tf.int32)
        mask = tf.ones_like(input_ids) if attention_mask is None else tf.cast(attention_mask, tf.int32)
        positions = tf.maximum(tf.cumsum(mask, axis=-1) - 1, 0)
        generator = tf.random.Generator.from_seed(seed) if seed is not None else tf.random.get_global_generator()
        sequences, tokens, past = input_ids, input_ids, None
        done = tf.zeros((B,), tf.bool)
        while sequences.shape[1] < max_length:
            out = self(tokens, attention_mask=mask, position_ids=positions, past_key_values=past, use_cache=True,
                       return_dict=True, training=False)
            logits = tf.cast(out.logits[:, -1], tf.float32)
            if s.do_sample:
                logits = warp_logits(logits, s.temperature, s.top_k, s.top_p)
                seed = generator.make_seeds(1)[:, 0]
                next_token = tf.cast(tf.random.stateless_categorical(logits, 1, seed=seed)[:, 0], tf.int32)
            else:
                next_token = tf.argmax(logits, axis=-1, output_type=tf.int32)
            next_token = tf.where(done, pad, next_token)
            done = done | tf.reduce_any(next_token[:, None] == eos[None, :], axis=-1)
            sequences = tf.concat([sequences, next_token[:, None]], axis=1)
            tokens, past = next_token[:, None], out.past_key_values
            mask = tf.concat([mask, tf.ones((B, 1), tf.int32)], axis=1)
            positions = positions[:, -1:] + 1
            if bool(tf.reduce_all(done)):
                break
        return sequences


__all__ = ["TFGenerationMixin", "warp_logits"]
