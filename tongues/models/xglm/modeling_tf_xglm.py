"""TensorFlow XGLM: the PyTorch XGLM (modeling_xglm.py) as tf-keras layers named like its checkpoint keys.

Weights: ``model/embed_tokens/weight``, ``model/layers.N/{self_attn/{q,k,v,out}_proj,
self_attn_layer_norm, [encoder_attn/..., encoder_attn_layer_norm,] fc1, fc2, final_layer_norm}``,
``model/layer_norm``, ``lm_head/kernel`` (read from ``model.embed_tokens.weight`` when the PyTorch
checkpoint stores it tied). The sinusoidal table is a constant, never a weight.
"""

from __future__ import annotations

from ...tf.generation import TFGenerationMixin
from ...tf.layers import (Collector, SharedEmbedding, TFBaseModelOutputWithPastAndCrossAttentions,
                          TFCausalLMOutputWithCrossAttentions, attend, attention_bias, check_ids, check_mask, dense,
                          finish, get_activation, layer_head_masks, masked_cross_entropy, sinusoidal_positions)
from ...tf.modeling import TFPreTrainedModel, keras, tf, unpack_inputs
from .configuration_xglm import XGLMConfig

# fairseq reserves rows 0..1 of the sinusoidal table (padding_idx=1 and the row below), so position p reads row p + 2.
POSITION_OFFSET = 2


class TFXGLMAttention(keras.layers.Layer):
    """Multi-head attention; with ``key_value_states`` it is cross-attention over the encoder's states."""

    def __init__(self, config: XGLMConfig, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = config.attention_heads
        self.head_dim = config.d_model // config.attention_heads
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            setattr(self, proj, dense(config.d_model, config, name=proj))
        self.dropout = keras.layers.Dropout(config.attention_dropout)

    def _heads(self, x, proj):
        B, T = tf.shape(x)[0], tf.shape(x)[1]
        return tf.transpose(tf.reshape(proj(x), (B, T, self.num_heads, self.head_dim)), (0, 2, 1, 3))  # (B, H, T, D)

    def call(self, x, bias, past=None, key_value_states=None, head_mask=None, training=False):
        q = self._heads(x, self.q_proj)
        if key_value_states is None:
            k, v = self._heads(x, self.k_proj), self._heads(x, self.v_proj)
            if past is not None:
                k, v = tf.concat([past[0], k], axis=2), tf.concat([past[1], v], axis=2)
        elif past is not None:
            k, v = past  # the encoder's states do not change between decoding steps
        else:
            k, v = self._heads(key_value_states, self.k_proj), self._heads(key_value_states, self.v_proj)
        out, probs = attend(q, k, v, bias, self.head_dim**-0.5, self.dropout, training, head_mask)
        B, T = tf.shape(x)[0], tf.shape(x)[1]
        out = tf.reshape(tf.transpose(out, (0, 2, 1, 3)), (B, T, self.num_heads * self.head_dim))  # (B, T, D)
        return self.out_proj(out), probs, (k, v)


class TFXGLMDecoderLayer(keras.layers.Layer):
    """Pre-LayerNorm block: self-attention, optional cross-attention, feed-forward; each adds to the residual."""

    def __init__(self, config: XGLMConfig, **kwargs):
        super().__init__(**kwargs)
        self.self_attn = TFXGLMAttention(config, name="self_attn")
        self.self_attn_layer_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="self_attn_layer_norm")
        if config.add_cross_attention:
            self.encoder_attn = TFXGLMAttention(config, name="encoder_attn")
            self.encoder_attn_layer_norm = keras.layers.LayerNormalization(epsilon=1e-5,
                                                                           name="encoder_attn_layer_norm")
        self.fc1 = dense(config.ffn_dim, config, name="fc1")
        self.fc2 = dense(config.d_model, config, name="fc2")
        self.final_layer_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_layer_norm")
        self.activation_fn = get_activation(config.activation_function)
        self.dropout = keras.layers.Dropout(config.dropout)
        self.activation_dropout = keras.layers.Dropout(config.activation_dropout)

    def call(self, x, bias, past, encoder_states, encoder_bias, head_mask, cross_head_mask, training=False):
        h, probs, self_kv = self.self_attn(self.self_attn_layer_norm(x), bias, None if past is None else past[:2],
                                           head_mask=head_mask, training=training)
        x = x + self.dropout(h, training=training)
        cross_probs, cross_kv = None, ()
        if encoder_states is not None:
            cross_past = past[2:] if past is not None and len(past) == 4 else None
            h, cross_probs, cross_kv = self.encoder_attn(self.encoder_attn_layer_norm(x), encoder_bias, cross_past,
                                                         key_value_states=encoder_states, head_mask=cross_head_mask,
                                                         training=training)
            x = x + self.dropout(h, training=training)
        h = self.activation_fn(self.fc1(self.final_layer_norm(x)))
        h = self.fc2(self.activation_dropout(h, training=training))
        return x + self.dropout(h, training=training), probs, cross_probs, self_kv + tuple(cross_kv)


class TFXGLMMainLayer(keras.layers.Layer):
    def __init__(self, config: XGLMConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.embed_tokens = SharedEmbedding(config.vocab_size, config.d_model, config.init_std, name="embed_tokens")
        self.embed_scale = config.d_model**0.5 if config.scale_embedding else 1.0
        self.positions_table = sinusoidal_positions(config.max_position_embeddings + POSITION_OFFSET, config.d_model,
                                                    config.pad_token_id)
        self.decoder_layers = [TFXGLMDecoderLayer(config, name=f"layers.{i}") for i in range(config.num_layers)]
        self.layer_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="layer_norm")
        self.dropout = keras.layers.Dropout(config.dropout)

    def call(self, input_ids=None, attention_mask=None, position_ids=None, encoder_hidden_states=None,
             encoder_attention_mask=None, head_mask=None, cross_attn_head_mask=None, past_key_values=None,
             inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False):
        config = self.config
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        cross = encoder_hidden_states is not None
        if cross and not config.add_cross_attention:
            raise ValueError("encoder_hidden_states was given, but this XGLM model has no cross-attention layers "
                             "(build it with config.add_cross_attention=True)")
        use_cache = config.use_cache if use_cache is None else use_cache
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = config.return_dict if return_dict is None else return_dict
        collect = Collector(output_hidden_states, output_attentions, cross)
        if inputs_embeds is None:
            input_ids = tf.cast(input_ids, tf.int32)
            check_ids(input_ids, config.vocab_size)
            inputs_embeds = self.embed_tokens(input_ids) * self.embed_scale
        x = inputs_embeds
        B, T = x.shape[0], x.shape[1]
        if past_key_values is not None and len(past_key_values) != config.num_layers:
            raise ValueError(f"past_key_values has {len(past_key_values)} layers, the model has {config.num_layers}")
        past = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if position_ids is None:
            position_ids = tf.range(past, past + T)[None, :]
        position_ids = tf.cast(position_ids, tf.int32)
        x = x + tf.cast(tf.gather(self.positions_table, position_ids + POSITION_OFFSET), x.dtype)
        x = self.dropout(x, training=training)
        mask = None
        if attention_mask is not None:
            mask = check_mask(tf.convert_to_tensor(attention_mask), B, past + T)
        bias = attention_bias(mask, B, T, past, causal=True, dtype=x.dtype)
        encoder_bias = None
        if cross and encoder_attention_mask is not None:
            S = encoder_hidden_states.shape[1]
            enc_mask = check_mask(tf.convert_to_tensor(encoder_attention_mask), B, S, "encoder_attention_mask")
            encoder_bias = attention_bias(enc_mask, B, T, S - T, causal=False, dtype=x.dtype)
        head_masks = layer_head_masks(head_mask, config.num_layers, config.attention_heads)
        cross_head_masks = layer_head_masks(cross_attn_head_mask, config.num_layers, config.attention_heads)
        new_cache = () if use_cache else None
        for i, layer in enumerate(self.decoder_layers):
            collect.add_hidden(x)
            layer_past = None if past_key_values is None else past_key_values[i]
            x, probs, cross_probs, kv = layer(x, bias, layer_past, encoder_hidden_states, encoder_bias, head_masks[i],
                                              cross_head_masks[i], training=training)
            collect.add_attention(probs, cross_probs)
            if use_cache:
                new_cache += (kv,)
        x = self.layer_norm(x)
        collect.add_hidden(x)
        out = TFBaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=x, past_key_values=new_cache, hidden_states=collect.hidden,
            attentions=collect.attentions, cross_attentions=collect.cross)
        return finish(out, return_dict)


class TFXGLMPreTrainedModel(TFPreTrainedModel):
    config_class = XGLMConfig
    base_model_prefix = "model"

    @property
    def dummy_inputs(self) -> dict:
        inputs = {"input_ids": tf.constant([[3, 4, 5, 6, 7]] * 2, dtype=tf.int32) % self.config.vocab_size}
        if self.config.add_cross_attention:
            inputs["encoder_hidden_states"] = tf.zeros((2, 3, self.config.d_model))
        return inputs


class TFXGLMModel(TFXGLMPreTrainedModel):
    """The bare TF XGLM decoder: hidden states (B, T, d_model) after the final LayerNorm."""

    def __init__(self, config: XGLMConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.model = TFXGLMMainLayer(config, name="model")

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, position_ids=None, encoder_hidden_states=None,
             encoder_attention_mask=None, head_mask=None, cross_attn_head_mask=None, past_key_values=None,
             inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False):
        """Inputs as keywords, a list in this order, or a dict. ``attention_mask`` (B, past + T);
        ``position_ids`` (B, T), default ``past .. past + T - 1``; ``past_key_values`` a tuple per layer of
        (key, value[, cross key, cross value]) of shape (B, H, past, D). Returns
        TFBaseModelOutputWithPastAndCrossAttentions (or its tuple)."""
        return self.model(input_ids, attention_mask, position_ids, encoder_hidden_states, encoder_attention_mask,
                          head_mask, cross_attn_head_mask, past_key_values, inputs_embeds, use_cache,
                          output_attentions, output_hidden_states, return_dict, training=training)


class TFXGLMForCausalLM(TFGenerationMixin, TFXGLMPreTrainedModel):
    """TF XGLM with a language-model head (no bias); loss when ``labels`` are given."""

    tied_sources = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: XGLMConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.model = TFXGLMMainLayer(config, name="model")
        self.lm_head = dense(config.vocab_size, config, name="lm_head", use_bias=False)

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, position_ids=None, encoder_hidden_states=None,
             encoder_attention_mask=None, head_mask=None, cross_attn_head_mask=None, past_key_values=None,
             inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False):
        """Logits (B, T, V) and, with ``labels`` (B, T), the mean next-token cross-entropy (shape (1,), -100
        ignored). Other inputs as :meth:`TFXGLMModel.call`."""
        return_dict = self.config.return_dict if return_dict is None else return_dict
        out = self.model(input_ids, attention_mask, position_ids, encoder_hidden_states, encoder_attention_mask,
                         head_mask, cross_attn_head_mask, past_key_values, inputs_embeds, use_cache,
                         output_attentions, output_hidden_states, True, training=training)
        logits = self.lm_head(out.last_hidden_state)
        loss = None
        if labels is not None:
            loss = masked_cross_entropy(tf.convert_to_tensor(labels)[:, 1:], logits[:, :-1])
        result = TFCausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions, cross_attentions=out.cross_attentions)
        return finish(result, return_dict)


__all__ = ["TFXGLMModel", "TFXGLMForCausalLM", "TFXGLMPreTrainedModel", "TFXGLMMainLayer"]
