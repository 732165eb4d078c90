"""Flax XGLM: the PyTorch XGLM (modeling_xglm.py) in Flax linen, parameter names = its checkpoint keys.

Parameters: ``embed_tokens/embedding``, ``layers/N/{self_attn/{q,k,v,out}_proj, self_attn_layer_norm,
[encoder_attn/..., encoder_attn_layer_norm,] fc1, fc2, final_layer_norm}``, ``layer_norm``; the LM
head puts them under ``model`` and reuses the embedding (tied). The sinusoidal table is a constant.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ...flax.generation import FlaxGenerationMixin
from ...flax.layers import (Collector, FlaxLayerStack, attend, attention_bias, causal_lm_module, decoder_output,
                            dense, get_activation, sinusoidal_positions, update_cache)
from ...flax.modeling import FlaxPreTrainedModel, cache_index
from .configuration_xglm import XGLMConfig

# fairseq reserves rows 0..1 of the sinusoidal table (padding_idx=1 and the row below), so position p reads row p + 2.
POSITION_OFFSET = 2


class FlaxXGLMAttention(nn.Module):
    """Multi-head attention; with ``key_value_states`` it is cross-attention (recomputed each step, never cached)."""

    config: XGLMConfig
    dtype: jnp.dtype = jnp.float32
    causal: bool = True

    @nn.compact  # compact (not setup) because the cache variables are created on first use
    def __call__(self, x, key_mask, deterministic, init_cache, key_value_states=None):
        B, T, Dm = x.shape
        H = self.config.attention_heads
        D = Dm // H
        source = x if key_value_states is None else key_value_states
        S = source.shape[1]
        q = dense(Dm, self.config, self.dtype, name="q_proj")(x).reshape(B, T, H, D)
        k = dense(Dm, self.config, self.dtype, name="k_proj")(source).reshape(B, S, H, D)
        v = dense(Dm, self.config, self.dtype, name="v_proj")(source).reshape(B, S, H, D)
        offset = 0
        if key_value_states is None:
            k, v, offset = update_cache(self, k, v, init_cache)
        if key_mask is None:
            key_mask = jnp.ones((B, k.shape[1]), "i4")
        bias = attention_bias(key_mask, T, offset, causal=self.causal, dtype=self.dtype)
        rate = self.config.attention_dropout
        rng = None if deterministic or rate == 0 else self.make_rng("dropout")
        out, probs = attend(q, k, v, bias, D**-0.5, rate, deterministic, rng, self.dtype)
        return dense(Dm, self.config, self.dtype, name="out_proj")(out.reshape(B, T, Dm)), probs


class FlaxXGLMDecoderLayer(nn.Module):
    """Pre-LayerNorm block: self-attention, optional cross-attention, feed-forward; each adds to the residual."""

    config: XGLMConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        config = self.config
        self.self_attn = FlaxXGLMAttention(config, dtype=self.dtype)
        self.self_attn_layer_norm = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype)
        if config.add_cross_attention:
            self.encoder_attn = FlaxXGLMAttention(config, dtype=self.dtype, causal=False)
            self.encoder_attn_layer_norm = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype)
        self.fc1 = dense(config.ffn_dim, config, self.dtype)
        self.fc2 = dense(config.d_model, config, self.dtype)
        self.final_layer_norm = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype)
        self.activation_fn = get_activation(config.activation_function)
        self.dropout = nn.Dropout(config.dropout)
        self.activation_dropout = nn.Dropout(config.activation_dropout)

    def __call__(self, x, key_mask, encoder_states, encoder_mask, deterministic, init_cache):
        h, probs = self.self_attn(self.self_attn_layer_norm(x), key_mask, deterministic, init_cache)
        x = x + self.dropout(h, deterministic=deterministic)
        cross_probs = None
        if encoder_states is not None:
            h, cross_probs = self.encoder_attn(self.encoder_attn_layer_norm(x), encoder_mask, deterministic, False,
                                               key_value_states=encoder_states)
            x = x + self.dropout(h, deterministic=deterministic)
        h = self.activation_fn(self.fc1(self.final_layer_norm(x)))
        h = self.fc2(self.activation_dropout(h, deterministic=deterministic))
        return x + self.dropout(h, deterministic=deterministic), probs, cross_probs


class FlaxXGLMModule(nn.Module):
    config: XGLMConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        config = self.config
        self.embed_scale = config.d_model**0.5 if config.scale_embedding else 1.0
        self.embed_tokens = nn.Embed(config.vocab_size, config.d_model,
                                     embedding_init=jax.nn.initializers.normal(config.init_std), dtype=self.dtype)
        self.embed_positions = sinusoidal_positions(config.max_position_embeddings + POSITION_OFFSET, config.d_model,
                                                    config.pad_token_id)
        self.layers = FlaxLayerStack(config, FlaxXGLMDecoderLayer, config.num_layers, dtype=self.dtype,
                                     layerdrop=config.layerdrop)
        self.layer_norm = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype)
        self.dropout = nn.Dropout(config.dropout)

    def __call__(self, input_ids, attention_mask, position_ids=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, deterministic=True, init_cache=False, output_attentions=False,
                 output_hidden_states=False, return_dict=True):
        B, T = input_ids.shape
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(T)[None, :], (B, T))
        collect = Collector(output_hidden_states, output_attentions, cross=encoder_hidden_states is not None)
        x = self.embed_tokens(input_ids) * self.embed_scale
        x = x + self.embed_positions[position_ids + POSITION_OFFSET].astype(x.dtype)
        x = self.dropout(x, deterministic=deterministic)
        x = self.layers(x, collect, attention_mask, encoder_hidden_states, encoder_attention_mask, deterministic,
                        init_cache, deterministic=deterministic)
        return decoder_output(self.layer_norm(x), collect, return_dict)


class FlaxXGLMPreTrainedModel(FlaxPreTrainedModel):
    config_class = XGLMConfig
    base_model_prefix = "model"

    def dummy_inputs(self, input_shape) -> dict:
        inputs = super().dummy_inputs(input_shape)
        if self.config.add_cross_attention:
            inputs["encoder_hidden_states"] = jnp.zeros(input_shape + (self.config.d_model,), self.dtype)
            inputs["encoder_attention_mask"] = inputs["attention_mask"]
        return inputs

    def __call__(self, input_ids, attention_mask=None, position_ids=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, params=None, past_key_values=None, dropout_rng=None,
                 train: bool = False, output_attentions=None, output_hidden_states=None, return_dict=None):
        """``input_ids`` (B, T); ``attention_mask`` (B, T), or (B, max_length) with a cache from ``init_cache``;
        ``position_ids`` (B, T), default counting on from the cache; ``encoder_hidden_states`` (B, S, d_model)
        and ``encoder_attention_mask`` (B, S) for cross-attention (``config.add_cross_attention``);
        ``past_key_values`` the cache (returned updated); ``params``, ``dropout_rng``, ``train`` as in Flax."""
        input_ids = jnp.asarray(input_ids, dtype="i4")
        B, T = input_ids.shape
        if encoder_hidden_states is not None and not self.config.add_cross_attention:
            raise ValueError("encoder_hidden_states was given, but this XGLM model has no cross-attention layers "
                             "(build it with config.add_cross_attention=True)")
        if position_ids is None:
            start = cache_index(past_key_values) if past_key_values is not None else 0
            position_ids = jnp.broadcast_to(start + jnp.arange(T)[None, :], (B, T))
        position_ids = jnp.asarray(position_ids, dtype="i4")
        if position_ids.shape != (B, T):
            raise ValueError(f"position_ids has shape {tuple(position_ids.shape)}, expected ({B}, {T})")
        if encoder_hidden_states is not None and encoder_attention_mask is not None:
            encoder_attention_mask = jnp.asarray(encoder_attention_mask, "i4")
            S = encoder_hidden_states.shape[1]
            if encoder_attention_mask.shape != (B, S):
                raise ValueError(f"encoder_attention_mask has shape {tuple(encoder_attention_mask.shape)}, expected "
                                 f"({B}, {S}) = (batch, encoder length)")
        return self._run(input_ids, attention_mask, params, past_key_values, dropout_rng, train, output_attentions,
                         output_hidden_states, return_dict, position_ids=position_ids,
                         encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask)


class FlaxXGLMModel(FlaxXGLMPreTrainedModel):
    """The bare Flax XGLM decoder: hidden states (B, T, d_model) after the final LayerNorm."""

    module_class = FlaxXGLMModule


class FlaxXGLMForCausalLM(FlaxGenerationMixin, FlaxXGLMPreTrainedModel):
    """Flax XGLM with the language-model head (no bias, tied to the input embeddings)."""

    module_class = causal_lm_module(FlaxXGLMModule, "model", "embed_tokens")
    takes_position_ids = True


__all__ = ["FlaxXGLMModel", "FlaxXGLMForCausalLM", "FlaxXGLMPreTrainedModel"]
