"""Flax building blocks every Flax family shares: outputs, masks, the attention kernel, the KV cache,
ALiBi and sinusoidal positions.

The cache follows the reference's Flax convention: a fixed-size buffer per attention layer in the
``"cache"`` collection (``cached_key``, ``cached_value`` of shape (B, max_length, H, D) and a scalar
``cache_index``), created by ``model.init_cache(batch, max_length)`` and written in place with
``lax.dynamic_update_slice``, so a decode step has static shapes and compiles once under ``jax.jit``.
With a cache, ``attention_mask`` covers the whole buffer: (B, max_length).
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional

from . import require_flax

require_flax()

import flax  # noqa: E402
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from ..frameworks.activations import activation  # noqa: E402
from ..frameworks.outputs import Collector, ModelOutput  # noqa: E402,F401 (Collector re-exported)
from ..frameworks.positions import alibi_slopes, sinusoidal_table  # noqa: E402

Array = Any


@flax.struct.dataclass
class FlaxBaseModelOutputWithPastAndCrossAttentions(ModelOutput):
    last_hidden_state: Array = None
    past_key_values: Optional[dict] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None
    cross_attentions: Optional[tuple] = None


@flax.struct.dataclass
class FlaxCausalLMOutputWithCrossAttentions(ModelOutput):
    logits: Array = None
    past_key_values: Optional[dict] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None
    cross_attentions: Optional[tuple] = None


# The reference names these outputs without "WithCrossAttentions" for BLOOM; the fields are the same.
FlaxBaseModelOutput = FlaxBaseModelOutputWithPastAndCrossAttentions
FlaxCausalLMOutput = FlaxCausalLMOutputWithCrossAttentions


class FlaxLayerStack(nn.Module):
    """``num_layers`` layers of ``layer_class`` named "0", "1", ... as in the checkpoint (``h/0/...``).

    ``stack(x, collect, *args)`` runs ``layer(x, *args)``, which returns ``(x, probs[, cross_probs])``, layer
    after layer; ``collect`` gathers each layer's input and probabilities. With ``layerdrop`` (Fan et al.,
    2019) training skips whole layers (a traced choice, so jit works).
    """

    config: Any
    layer_class: Any
    num_layers: int
    dtype: jnp.dtype = jnp.float32
    layerdrop: float = 0.0

    @nn.compact
    def __call__(self, x: Array, collect: Collector, *args, deterministic: bool = True) -> Array:
        for i in range(self.num_layers):
            collect.add_hidden(x)
            out, *probs = self.layer_class(self.config, dtype=self.dtype, name=str(i))(x, *args)
            if not deterministic and self.layerdrop > 0:
                out = jnp.where(jax.random.uniform(self.make_rng("dropout")) < self.layerdrop, x, out)
            x = out
            collect.add_attention(*probs)
        return x


def decoder_output(x: Array, collect: Collector, return_dict: bool):
    """A decoder's output from its final hidden state (B, T, D) and what ``collect`` gathered."""
    collect.add_hidden(x)
    fields = dict(last_hidden_state=x, hidden_states=collect.hidden, attentions=collect.attentions,
                  cross_attentions=collect.cross)
    if not return_dict:
        return tuple(v for v in fields.values() if v is not None)
    return FlaxBaseModelOutputWithPastAndCrossAttentions(**fields)


class FlaxCausalLMModule(nn.Module):
    """A decoder plus the language-model head; a family declares only its decoder (:func:`causal_lm_module`).

    Subclasses set ``decoder_class`` (the bare decoder module), ``decoder_name`` (its checkpoint prefix,
    ``transformer`` / ``model``) and ``embedding_name`` (the decoder's token embedding, which the head
    reuses transposed when ``config.tie_word_embeddings``; otherwise the head is its own ``lm_head``).
    Keyword inputs go to the decoder unchanged.
    """

    config: Any
    dtype: jnp.dtype = jnp.float32
    decoder_class: ClassVar[type]
    decoder_name: ClassVar[str]
    embedding_name: ClassVar[str]

    def setup(self):
        setattr(self, self.decoder_name, self.decoder_class(self.config, dtype=self.dtype))
        if not self.config.tie_word_embeddings:
            self.lm_head = dense(self.config.vocab_size, self.config, self.dtype, use_bias=False)

    def __call__(self, input_ids, attention_mask, return_dict=True, **decoder_inputs):
        decoder = getattr(self, self.decoder_name)
        out = decoder(input_ids, attention_mask, return_dict=return_dict, **decoder_inputs)
        x = out[0]
        if self.config.tie_word_embeddings:
            logits = getattr(decoder, self.embedding_name).attend(x)  # x @ embeddingᵀ
        else:
            logits = self.lm_head(x)
        if not return_dict:
            return (logits,) + tuple(out[1:])
        return FlaxCausalLMOutputWithCrossAttentions(logits=logits, hidden_states=out.hidden_states,
                                                     attentions=out.attentions, cross_attentions=out.cross_attentions)


def causal_lm_module(decoder_class: type, decoder_name: str, embedding_name: str) -> type:
    """The :class:`FlaxCausalLMModule` over ``decoder_class`` (``FlaxBloomModule`` ->
    ``FlaxBloomForCausalLMModule``), its parameters under ``decoder_name``."""
    name = decoder_class.__name__.replace("Module", "ForCausalLMModule")
    attributes = dict(decoder_class=decoder_class, decoder_name=decoder_name, embedding_name=embedding_name,
                      __module__=decoder_class.__module__, __qualname__=name)
    return type(name, (FlaxCausalLMModule,), attributes)


def dense(features: int, config, dtype, name: str | None = None, use_bias: bool = True) -> nn.Dense:
    """A Dense layer with the family's normal(initializer_range) init."""
    std = getattr(config, "initializer_range", None) or getattr(config, "init_std", 0.02)
    return nn.Dense(features, use_bias=use_bias, dtype=dtype, kernel_init=jax.nn.initializers.normal(std), name=name)


def update_cache(module: nn.Module, k: Array, v: Array, init_cache: bool):
    """Write this step's keys/values (B, T, H, D) into ``module``'s fixed-size cache.

    Returns ``(keys, values, offset)``: the whole buffer (B, max_length, H, D) and the absolute
    position of the first query. Without a cache (or while ``init_cache`` builds it) returns the
    inputs and offset 0.
    """
    initialized = module.has_variable("cache", "cached_key")
    if not (initialized or init_cache):
        return k, v, 0
    cached_key = module.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
    cached_value = module.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
    cache_index = module.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
    if not initialized:
        return k, v, 0
    offset, T = cache_index.value, k.shape[1]
    k = lax.dynamic_update_slice(cached_key.value, k.astype(cached_key.value.dtype), (0, offset, 0, 0))
    v = lax.dynamic_update_slice(cached_value.value, v.astype(cached_value.value.dtype), (0, offset, 0, 0))
    cached_key.value, cached_value.value = k, v
    cache_index.value = offset + T
    return k, v, offset


def attention_bias(key_mask: Array, query_length: int, offset, causal: bool, dtype) -> Array:
    """Additive bias (B, 1, Tq, Tk): 0 where query ``i`` (absolute position ``offset + i``) may see a
    key, the dtype's minimum elsewhere. ``key_mask`` (B, Tk) is 1 for real tokens."""
    allowed = key_mask[:, None, None, :].astype(bool)
    if causal:
        q_pos = offset + jnp.arange(query_length)[:, None]
        k_pos = jnp.arange(key_mask.shape[-1])[None, :]
        allowed = allowed & (k_pos <= q_pos)[None, None]
    return jnp.where(allowed, 0.0, jnp.finfo(dtype).min).astype(dtype)


def alibi_bias(key_mask: Array, num_heads: int, dtype) -> Array:
    """ALiBi scores (B, H, 1, Tk) = slope_h * (key's position among the row's real tokens), so left
    padding leaves a row's biases unchanged (same rule as tongues.layers.alibi)."""
    mask = key_mask.astype(jnp.int32)
    positions = ((jnp.cumsum(mask, axis=-1) - 1) * mask)[:, None, None, :]  # (B, 1, 1, Tk)
    slopes = jnp.asarray(alibi_slopes(num_heads))[None, :, None, None]  # (1, H, 1, 1)
    return (slopes * positions).astype(dtype)


def sinusoidal_positions(num_positions: int, dim: int, padding_idx: int | None = None) -> Array:
    """fairseq's sinusoidal table as a constant jnp array (num_positions, dim)."""
    return jnp.asarray(sinusoidal_table(num_positions, dim, padding_idx))


def attend(q: Array, k: Array, v: Array, bias: Array | None, scale: float, dropout_rate: float,
           deterministic: bool, dropout_rng, dtype) -> tuple[Array, Array]:
    """softmax(q kᵀ · scale + bias) v with the softmax in fp32.

    q (B, Tq, H, D), k/v (B, Tk, H, D), bias broadcastable to (B, H, Tq, Tk).
    Returns out (B, Tq, H, D) and the probabilities (B, H, Tq, Tk).
    """
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) * scale  # (B, H, Tq, Tk)
    if bias is not None:
        scores = scores + bias.astype(scores.dtype)
    probs = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(dtype)
    if not deterministic and dropout_rate > 0.0:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
        probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0.0).astype(dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs, v)  # (B, Tq, H, D)
    return out, probs


def get_activation(name: str):
    """The activation called ``name`` in a config (``activation_function``, ``hidden_act``)."""
    return activation(name, {"gelu": jax.nn.gelu, "relu": jax.nn.relu, "silu": jax.nn.silu, "tanh": jnp.tanh}, "Flax")
