"""XGLM: a fairseq pre-LayerNorm decoder with sinusoidal positions and scaled token embeddings.

Module names are the checkpoint keys of facebook/xglm-*:
``model.embed_tokens``, ``model.layers.N.{self_attn.{q,k,v,out}_proj, self_attn_layer_norm,
encoder_attn.{q,k,v,out}_proj, encoder_attn_layer_norm, fc1, fc2, final_layer_norm}``,
``model.layer_norm``, ``lm_head`` (tied to ``model.embed_tokens``). The sinusoidal table
(``model.embed_positions.weights``) is computed, never stored.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...generation import GenerationMixin
from ...heads import CausalLMHead
from ...layers.activations import get_activation
from ...layers.attention import layer_head_masks
from ...layers.cross_attention import CrossAttention
from ...layers.decoder import Decoder, PerLayer
from ...layers.inputs import prepare_encoder_decoder_cache
from ...layers.masks import absolute_positions, causal_bias, padding_bias
from ...layers.embeddings import GrowingSinusoidalPositions, ScaledEmbedding
from ...modeling import PreTrainedModel
from ...outputs import BaseModelOutputWithPastAndCrossAttentions, CausalLMOutputWithCrossAttentions
from .configuration_xglm import XGLMConfig


class XGLMAttention(CrossAttention):
    """Multi-head attention; with ``key_value_states`` it is cross-attention over the encoder's states."""

    def __init__(self, config: XGLMConfig, layer_idx: int) -> None:
        super().__init__(config.d_model, config.attention_heads, layer_idx, config.attention_dropout)


class XGLMDecoderLayer(nn.Module):
    """Pre-LayerNorm block: self-attention, optional cross-attention, feed-forward; each adds to the residual."""

    def __init__(self, config: XGLMConfig, layer_idx: int) -> None:
        super().__init__()
        D = config.d_model
        self.self_attn = XGLMAttention(config, layer_idx)
        self.self_attn_layer_norm = nn.LayerNorm(D)
        if config.add_cross_attention:
            self.encoder_attn = XGLMAttention(config, layer_idx)
            self.encoder_attn_layer_norm = nn.LayerNorm(D)
        act = config.activation_function
        self.activation_fn = act if callable(act) else get_activation(act)
        self.fc1 = nn.Linear(D, config.ffn_dim)
        self.fc2 = nn.Linear(config.ffn_dim, D)
        self.final_layer_norm = nn.LayerNorm(D)
        self.dropout = config.dropout
        self.activation_dropout = config.activation_dropout

    def forward(self, x, cache, head_mask, output_attentions, bias, encoder_states=None, encoder_bias=None,
                cross_head_mask=None):
        # Dropout only in training: in eval each call is still an op dispatched per layer and step.
        dropout = (lambda h, p: F.dropout(h, p, True)) if self.training else (lambda h, p: h)
        h, probs = self.self_attn(self.self_attn_layer_norm(x), cache, head_mask, output_attentions, bias)
        x = x + dropout(h, self.dropout)
        cross_probs = None
        if encoder_states is not None:
            h, cross_probs = self.encoder_attn(self.encoder_attn_layer_norm(x), cache, cross_head_mask,
                                               output_attentions, encoder_bias, key_value_states=encoder_states)
            x = x + dropout(h, self.dropout)
        h = self.activation_fn(self.fc1(self.final_layer_norm(x)))
        h = self.fc2(dropout(h, self.activation_dropout))
        x = x + dropout(h, self.dropout)
        return x, probs, cross_probs


class XGLMPreTrainedModel(PreTrainedModel):
    config_class = XGLMConfig
    base_model_prefix = "model"
    # Early conversions stored the sinusoidal table (or fairseq's _float_tensor); it is rebuilt instead.
    ignore_unexpected = (r"embed_positions\.(weights|_float_tensor)$",)

    def _resized_rows(self, module, rows, mean_resizing):
        new = super()._resized_rows(module, rows, mean_resizing)
        if isinstance(module, ScaledEmbedding):  # keep the sqrt(d_model) scale on the resized embedding
            scaled = ScaledEmbedding(rows, new.embedding_dim, new.padding_idx, embed_scale=module.embed_scale,
                                     device=new.weight.device, dtype=new.weight.dtype)
            scaled.weight = new.weight
            return scaled
        return new


class XGLMModel(Decoder, XGLMPreTrainedModel):
    """The bare XGLM decoder: hidden states (B, T, d_model) after the final LayerNorm.

    Args:
        config: an :class:`XGLMConfig`.
        embed_tokens: an embedding to use instead of building one (shared with another module).
    """

    tp_plan = {"layers.*.self_attn.q_proj": "colwise", "layers.*.self_attn.k_proj": "colwise",
               "layers.*.self_attn.v_proj": "colwise", "layers.*.self_attn.out_proj": "rowwise",
               "layers.*.fc1": "colwise", "layers.*.fc2": "rowwise", "embed_tokens": "vocab_embedding"}

    final_norm_name = "layer_norm"
    output_class = BaseModelOutputWithPastAndCrossAttentions

    def __init__(self, config: XGLMConfig, embed_tokens: nn.Embedding | None = None) -> None:
        super().__init__(config)
        if embed_tokens is None:
            scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
            embed_tokens = ScaledEmbedding(config.vocab_size, config.d_model, config.pad_token_id, embed_scale=scale)
        self.embed_tokens = embed_tokens
        # fairseq reserves rows 0..1 (padding_idx=1 and the row below it), so position p reads row p + 2.
        self.embed_positions = GrowingSinusoidalPositions(config.max_position_embeddings, config.d_model,
                                                          config.pad_token_id, offset=2)
        self.layers = nn.ModuleList(XGLMDecoderLayer(config, i) for i in range(config.num_layers))
        self.layer_norm = nn.LayerNorm(config.d_model)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, encoder_hidden_states=None,
                encoder_attention_mask=None, head_mask=None, cross_attn_head_mask=None, past_key_values=None,
                inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, cache_position=None):
        """Run the decoder.

        Args follow the spec: ``input_ids`` (B, T) or ``inputs_embeds`` (B, T, D); ``attention_mask``
        (B, past + T), 1 for real tokens; ``position_ids`` (B or 1, T), default ``past .. past + T - 1``
        (generation passes ids counted from each row's first real token, so left padding shifts
        nothing); ``encoder_hidden_states`` (B, S, D) and ``encoder_attention_mask`` (B, S) for the
        cross-attention layers (``config.add_cross_attention``); ``head_mask`` /
        ``cross_attn_head_mask`` (L, H) or (H,), 1 keeps a head; ``past_key_values`` a Cache or
        the legacy tuple (returned in the same format: 2 tensors per layer, 4 with cross-attention).
        ``cache_position`` is accepted and unused: positions come from ``position_ids`` and the cache.

        Returns:
            BaseModelOutputWithPastAndCrossAttentions (or its tuple when ``return_dict=False``).
        """
        if encoder_hidden_states is not None and not self.config.add_cross_attention:
            raise ValueError("encoder_hidden_states was given, but this XGLM model has no cross-attention layers "
                             "(build it with config.add_cross_attention=True)")
        return self.run_decoder(input_ids, inputs_embeds, attention_mask, past_key_values, head_mask, use_cache,
                                output_attentions, output_hidden_states, return_dict, position_ids=position_ids,
                                encoder_hidden_states=encoder_hidden_states,
                                encoder_attention_mask=encoder_attention_mask,
                                cross_attn_head_mask=cross_attn_head_mask)

    def prepare_cache(self, past_key_values, use_cache, encoder_hidden_states=None, **inputs):
        """Legacy tuples of 2 or 4 tensors per layer become an EncoderDecoderCache when cross-attention is
        on, so cross keys/values survive the round trip."""
        return prepare_encoder_decoder_cache(past_key_values, use_cache, cross=encoder_hidden_states is not None)

    def embed(self, input_ids, inputs_embeds, attention_mask, cache, past, position_ids, encoder_hidden_states,
              encoder_attention_mask, cross_attn_head_mask):
        config = self.config
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        B, T, _ = x.shape
        position_ids = absolute_positions(position_ids, B, T, past, x.device)
        positions = self.embed_positions(position_ids, past).to(device=x.device, dtype=x.dtype)
        x = F.dropout(x + positions, config.dropout, self.training)
        keywords = {"bias": causal_bias(attention_mask, B, T, past, x.dtype, x.device)}
        if encoder_hidden_states is not None:
            encoder_bias = None
            if encoder_attention_mask is not None:
                S = encoder_hidden_states.shape[1]
                if encoder_attention_mask.dim() != 2 or tuple(encoder_attention_mask.shape) != (B, S):
                    raise ValueError(f"encoder_attention_mask has shape {tuple(encoder_attention_mask.shape)}, "
                                     f"expected ({B}, {S}) = (batch, encoder length)")
                encoder_bias = padding_bias(encoder_attention_mask.to(x.device), x.dtype)
            cross_head_masks = layer_head_masks(cross_attn_head_mask, config.num_layers, config.attention_heads)
            keywords.update(encoder_states=encoder_hidden_states, encoder_bias=encoder_bias,
                            cross_head_mask=PerLayer(cross_head_masks))
        return x, keywords


class XGLMForCausalLM(CausalLMHead, XGLMPreTrainedModel, GenerationMixin):
    """XGLM with a language-model head (no bias) tied to the input embeddings."""

    base_model_class = XGLMModel
    output_class = CausalLMOutputWithCrossAttentions
    tied_weights = {"lm_head.weight": "model.embed_tokens.weight"}

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, encoder_hidden_states=None,
                encoder_attention_mask=None, head_mask=None, cross_attn_head_mask=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, logits_to_keep: int | torch.Tensor = 0, cache_position=None):
        """Logits (B, T', V) for the kept positions (all, or the last ``logits_to_keep``), and the mean
        next-token cross-entropy when ``labels`` (B, T) are given (-100 ignored). Other arguments as
        :meth:`XGLMModel.forward`. Returns CausalLMOutputWithCrossAttentions (or its tuple)."""
        # Named here (not left to **kwargs) so generation sees position_ids and passes mask-derived ones.
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               encoder_hidden_states=encoder_hidden_states,
                               encoder_attention_mask=encoder_attention_mask, head_mask=head_mask,
                               cross_attn_head_mask=cross_attn_head_mask, past_key_values=past_key_values,
                               inputs_embeds=inputs_embeds, labels=labels, use_cache=use_cache,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=return_dict, logits_to_keep=logits_to_keep)
