"""Flax BLOOM: the PyTorch BLOOM (modeling_bloom.py) in Flax linen, parameter names = its checkpoint keys.

Parameters: ``word_embeddings/embedding``, ``word_embeddings_layernorm``, ``h/N/{input_layernorm,
self_attention/{query_key_value,dense}, post_attention_layernorm, mlp/{dense_h_to_4h,dense_4h_to_h}}``,
``ln_f``; the LM head puts them under ``transformer`` and reuses the embedding (tied).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ...flax.generation import FlaxGenerationMixin
from ...flax.layers import (Collector, FlaxLayerStack, alibi_bias, attend, attention_bias, causal_lm_module,
                            decoder_output, dense, update_cache)
from ...flax.modeling import FlaxPreTrainedModel
from .configuration_bloom import BloomConfig


def gelu_tanh(x):
    return 0.5 * x * (1.0 + jnp.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


class FlaxBloomAttention(nn.Module):
    config: BloomConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact  # compact (not setup) because the cache variables are created on first use
    def __call__(self, x, alibi, key_mask, deterministic, init_cache, output_attentions):
        B, T, _ = x.shape
        H = self.config.n_head
        D = self.config.hidden_size // H
        # BLOOM fuses q, k, v per head: the projection's columns are (H, 3, D).
        qkv = dense(3 * H * D, self.config, self.dtype, name="query_key_value")(x).reshape(B, T, H, 3, D)
        q, k, v = qkv[..., 0, :], qkv[..., 1, :], qkv[..., 2, :]  # (B, T, H, D)
        k, v, offset = update_cache(self, k, v, init_cache)
        bias = attention_bias(key_mask, T, offset, causal=True, dtype=self.dtype) + alibi
        rng = None if deterministic or self.config.attention_dropout == 0 else self.make_rng("dropout")
        out, probs = attend(q, k, v, bias, D**-0.5, self.config.attention_dropout, deterministic, rng, self.dtype)
        return dense(H * D, self.config, self.dtype, name="dense")(out.reshape(B, T, H * D)), probs


class FlaxBloomMLP(nn.Module):
    config: BloomConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.dense_h_to_4h = dense(4 * self.config.hidden_size, self.config, self.dtype)
        self.dense_4h_to_h = dense(self.config.hidden_size, self.config, self.dtype)

    def __call__(self, x):
        return self.dense_4h_to_h(gelu_tanh(self.dense_h_to_4h(x)))


class FlaxBloomBlock(nn.Module):
    config: BloomConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        eps = self.config.layer_norm_epsilon
        self.input_layernorm = nn.LayerNorm(epsilon=eps, dtype=self.dtype)
        self.self_attention = FlaxBloomAttention(self.config, dtype=self.dtype)
        self.post_attention_layernorm = nn.LayerNorm(epsilon=eps, dtype=self.dtype)
        self.mlp = FlaxBloomMLP(self.config, dtype=self.dtype)
        self.dropout = nn.Dropout(self.config.hidden_dropout)

    def __call__(self, x, alibi, key_mask, deterministic, init_cache, output_attentions):
        # Some BLOOM variants take the residual after the norm (Megatron's apply_residual_connection_post_layernorm).
        after_norm = self.config.apply_residual_connection_post_layernorm
        normed = self.input_layernorm(x)
        attn, probs = self.self_attention(normed, alibi, key_mask, deterministic, init_cache, output_attentions)
        x = (normed if after_norm else x) + self.dropout(attn, deterministic=deterministic)
        normed = self.post_attention_layernorm(x)
        x = (normed if after_norm else x) + self.dropout(self.mlp(normed), deterministic=deterministic)
        return x, probs


class FlaxBloomModule(nn.Module):
    config: BloomConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        config = self.config
        self.word_embeddings = nn.Embed(config.vocab_size, config.hidden_size,
                                        embedding_init=jax.nn.initializers.normal(config.initializer_range),
                                        dtype=self.dtype)
        self.word_embeddings_layernorm = nn.LayerNorm(epsilon=config.layer_norm_epsilon, dtype=self.dtype)
        self.h = FlaxLayerStack(config, FlaxBloomBlock, config.n_layer, dtype=self.dtype)
        self.ln_f = nn.LayerNorm(epsilon=config.layer_norm_epsilon, dtype=self.dtype)

    def __call__(self, input_ids, attention_mask, deterministic=True, init_cache=False, output_attentions=False,
                 output_hidden_states=False, return_dict=True):
        collect = Collector(output_hidden_states, output_attentions)
        x = self.word_embeddings_layernorm(self.word_embeddings(input_ids))
        alibi = alibi_bias(attention_mask, self.config.n_head, self.dtype)  # (B, H, 1, Tk)
        x = self.h(x, collect, alibi, attention_mask, deterministic, init_cache, output_attentions)
        return decoder_output(self.ln_f(x), collect, return_dict)


class FlaxBloomPreTrainedModel(FlaxPreTrainedModel):
    config_class = BloomConfig
    base_model_prefix = "transformer"

    def __call__(self, input_ids, attention_mask=None, past_key_values=None, params=None, dropout_rng=None,
                 train: bool = False, output_attentions=None, output_hidden_states=None, return_dict=None):
        """``input_ids`` (B, T); ``attention_mask`` (B, T), or (B, max_length) with a cache from ``init_cache``;
        ``past_key_values`` that cache (returned updated); ``params`` to use instead of ``self.params``;
        ``dropout_rng`` and ``train`` for dropout."""
        return self._run(input_ids, attention_mask, params, past_key_values, dropout_rng, train, output_attentions,
                         output_hidden_states, return_dict)


class FlaxBloomModel(FlaxBloomPreTrainedModel):
    """The bare Flax BLOOM decoder: hidden states (B, T, hidden_size) after the final LayerNorm."""

    module_class = FlaxBloomModule


class FlaxBloomForCausalLM(FlaxGenerationMixin, FlaxBloomPreTrainedModel):
    """Flax BLOOM with the language-model head (tied to the input embeddings)."""

    module_class = causal_lm_module(FlaxBloomModule, "transformer", "word_embeddings")


__all__ = ["FlaxBloomModel", "FlaxBloomForCausalLM", "FlaxBloomPreTrainedModel"]
