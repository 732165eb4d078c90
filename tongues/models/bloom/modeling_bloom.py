"""BLOOM: a decoder with ALiBi positions and a LayerNorm after the embeddings.

Module names are the checkpoint keys of bigscience/bloom-*:
``transformer.word_embeddings``, ``transformer.word_embeddings_layernorm``,
``transformer.h.N.{input_layernorm, self_attention.query_key_value, self_attention.dense,
post_attention_layernorm, mlp.dense_h_to_4h, mlp.dense_4h_to_h}``, ``transformer.ln_f``.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ...generation import GenerationMixin
from ...heads import CausalLMHead, LastTokenSequenceClassification, SpanQuestionAnswering, TokenClassification
from ...layers.activations import gelu_tanh
from ...layers.alibi import alibi_bias
from ...layers.attention import attend
from ...layers.decoder import Decoder, PreNormBlock
from ...layers.masks import causal_bias
from ...modeling import PreTrainedModel
from ...outputs import BaseModelOutputWithPastAndCrossAttentions, CausalLMOutputWithCrossAttentions
from .configuration_bloom import BloomConfig


def tp_linear(x: torch.Tensor, linear: nn.Linear, pretraining_tp: int) -> torch.Tensor:
    """``linear(x)`` summed slice by slice over the input dimension, in Megatron's order.

    # BLOOM was trained with tensor parallelism; summing the TP slices one at a time reproduces its
    # rounding exactly (config.slow_but_exact, see pytorch issue 76232).
    """
    width = linear.weight.shape[-1] / pretraining_tp
    out = torch.zeros(*x.shape[:-1], linear.weight.shape[0], dtype=x.dtype, device=x.device)
    for i in range(pretraining_tp):
        lo, hi = int(i * width), int((i + 1) * width)
        out = out + F.linear(x[..., lo:hi], linear.weight[:, lo:hi])
    return out + linear.bias


class BloomAttention(nn.Module):
    def __init__(self, config: BloomConfig, layer_idx: int) -> None:
        super().__init__()
        self.num_heads = config.n_head
        self.head_dim = config.hidden_size // config.n_head
        self.layer_idx = layer_idx
        self.tp = config.pretraining_tp if config.slow_but_exact else 1
        self.attention_dropout = config.attention_dropout
        self.query_key_value = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x, bias, cache=None, head_mask=None, output_attentions=False):
        B, T, _ = x.shape
        H, D = self.num_heads, self.head_dim
        # BLOOM fuses q, k, v per head: the projection's columns are (H, 3, D), not (3, H, D).
        qkv = self.query_key_value(x).view(B, T, H, 3, D)
        q, k, v = (qkv[..., i, :].transpose(1, 2) for i in range(3))  # (B, H, T, D)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        out, probs = attend(q, k, v, bias=bias, scale=D**-0.5, head_mask=head_mask, dropout_p=self.attention_dropout,
                            training=self.training, output_attentions=output_attentions)
        out = out.transpose(1, 2).reshape(B, T, H * D)  # (B, T, H*D)
        out = tp_linear(out, self.dense, self.tp) if self.tp > 1 else self.dense(out)
        return out, probs


class BloomMLP(nn.Module):
    def __init__(self, config: BloomConfig) -> None:
        super().__init__()
        self.tp = config.pretraining_tp if config.slow_but_exact else 1
        self.dense_h_to_4h = nn.Linear(config.hidden_size, 4 * config.hidden_size)
        self.dense_4h_to_h = nn.Linear(4 * config.hidden_size, config.hidden_size)

    def forward(self, x):
        x = gelu_tanh(self.dense_h_to_4h(x))
        return tp_linear(x, self.dense_4h_to_h, self.tp) if self.tp > 1 else self.dense_4h_to_h(x)


class BloomBlock(PreNormBlock):
    names = ("input_layernorm", "self_attention", "post_attention_layernorm", "mlp")

    def __init__(self, config: BloomConfig, layer_idx: int) -> None:
        norm = partial(nn.LayerNorm, config.hidden_size, eps=config.layer_norm_epsilon)
        super().__init__(norm(), BloomAttention(config, layer_idx), norm(), BloomMLP(config))
        # Some BLOOM variants take the residual after the norm (Megatron's apply_residual_connection_post_layernorm).
        self.residual_after_norm = config.apply_residual_connection_post_layernorm
        self.hidden_dropout = config.hidden_dropout

    def forward(self, x, cache, head_mask, output_attentions, bias):
        normed = self.input_layernorm(x)
        attn, probs = self.self_attention(normed, bias, cache, head_mask, output_attentions)
        if self.training:
            attn = F.dropout(attn, self.hidden_dropout, True)
        # In place on the fresh sum of the products (a + b == b + a exactly): one op fewer per residual.
        x = attn.add_(normed if self.residual_after_norm else x)
        normed = self.post_attention_layernorm(x)
        h = self.mlp(normed)
        if self.training:
            h = F.dropout(h, self.hidden_dropout, True)
        return h.add_(normed if self.residual_after_norm else x), probs


class BloomPreTrainedModel(PreTrainedModel):
    config_class = BloomConfig
    base_model_prefix = "transformer"


class BloomModel(Decoder, BloomPreTrainedModel):
    """The bare BLOOM decoder: hidden states (B, T, hidden_size) after the final LayerNorm."""

    blocks_name, final_norm_name = "h", "ln_f"
    embeddings_name = "word_embeddings"
    output_class = BaseModelOutputWithPastAndCrossAttentions
    # The fused QKV rows are grouped per head, (H, 3, D), so an even split of rows is a split of heads.
    tp_plan = {"h.*.self_attention.query_key_value": "colwise", "h.*.self_attention.dense": "rowwise",
               "h.*.mlp.dense_h_to_4h": "colwise", "h.*.mlp.dense_4h_to_h": "rowwise",
               "word_embeddings": "vocab_embedding"}
    alibi_heads = slice(None)  # under tensor parallelism, the slopes of this rank's heads

    def __init__(self, config: BloomConfig) -> None:
        super().__init__(config)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.word_embeddings_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.h = nn.ModuleList(BloomBlock(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, head_mask=None, inputs_embeds=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                cache_position=None, **kwargs):
        """Args follow the spec: ``input_ids`` (B, T) or ``inputs_embeds`` (B, T, D); ``attention_mask``
        (B, past + T) with 1 for real tokens; ``past_key_values`` a Cache or legacy tuple (returned in the
        same format); ``head_mask`` (H,) or (L, H). Returns BaseModelOutputWithPastAndCrossAttentions."""
        return self.run_decoder(input_ids, inputs_embeds, attention_mask, past_key_values, head_mask, use_cache,
                                output_attentions, output_hidden_states, return_dict)

    def embed(self, input_ids, inputs_embeds, attention_mask, cache, past):
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        B, T, _ = x.shape
        if attention_mask is None:
            attention_mask = torch.ones(B, past + T, dtype=torch.long, device=x.device)
        bias = causal_bias(attention_mask, B, T, past, x.dtype, x.device)  # (B, 1, T, past + T) or None
        alibi = alibi_bias(attention_mask.long(), self.config.n_head, x.dtype)[:, self.alibi_heads]  # (B, H, 1, past + T)
        return self.word_embeddings_layernorm(x), {"bias": alibi if bias is None else alibi + bias}


class BloomForCausalLM(CausalLMHead, BloomPreTrainedModel, GenerationMixin):
    """BLOOM with a language-model head tied to the input embeddings."""

    base_model_class = BloomModel
    output_class = CausalLMOutputWithCrossAttentions
    tied_weights = {"lm_head.weight": "transformer.word_embeddings.weight"}


class BloomForSequenceClassification(LastTokenSequenceClassification, BloomPreTrainedModel):
    """BLOOM classifying a sequence from its last non-pad token."""

    base_model_class = BloomModel


class BloomForTokenClassification(TokenClassification, BloomPreTrainedModel):
    """BLOOM with a per-token classifier (dropout: classifier_dropout, else hidden_dropout)."""

    base_model_class = BloomModel


class BloomForQuestionAnswering(SpanQuestionAnswering, BloomPreTrainedModel):
    """BLOOM with a span-extraction head (start/end logits)."""

    base_model_class = BloomModel
