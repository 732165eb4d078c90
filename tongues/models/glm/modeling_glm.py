"""GLM-4: a pre-norm decoder with grouped-query attention, partial interleaved RoPE, RMSNorm and SwiGLU.

Module names are the checkpoint keys of the ``-hf`` layout (THUDM/glm-4-9b-chat-hf):
``model.embed_tokens``, ``model.layers.N.{input_layernorm, self_attn.{q_proj, k_proj, v_proj, o_proj},
post_attention_layernorm, mlp.{gate_up_proj, down_proj}}``, ``model.norm``, ``lm_head``.
THUDM's original layout (``transformer.encoder.layers.N...``, see convert_chatglm.py) is converted
while it loads.
"""

from __future__ import annotations

from functools import partial
from typing import Iterator

import torch
from torch import nn

from ...generation import GenerationMixin
from ...heads import CausalLMHead, LastTokenSequenceClassification, TokenClassification
from ...layers.activations import get_activation
from ...layers.attention import MultiHeadAttention
from ...layers.decoder import Decoder, PreNormBlock
from ...layers.masks import absolute_positions, causal_bias
from ...layers.norms import RMSNorm
from ...layers.rotary import rotary_cos_sin
from ...modeling import PreTrainedModel
from ...outputs import CausalLMOutputWithPast
from .configuration_glm import GlmConfig
from .convert_chatglm import chatglm_key_to_glm, is_chatglm_key, split_fused_qkv


class GlmMLP(nn.Module):
    """SwiGLU with the gate and up projections fused in one matrix, gate rows first."""

    def __init__(self, config: GlmConfig) -> None:
        super().__init__()
        self.gate_up_proj = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act = get_activation(config.hidden_act)

    def forward(self, x):
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(up * self.act(gate))


class GlmDecoderLayer(PreNormBlock):
    def __init__(self, config: GlmConfig, layer_idx: int) -> None:
        norm = partial(RMSNorm, config.hidden_size, eps=config.rms_norm_eps)
        # GLM-4 has biases on q, k, v only (THUDM's add_qkv_bias=True, add_bias_linear=False).
        attention = MultiHeadAttention(config.hidden_size, config.num_attention_heads, layer_idx,
                                       config.attention_dropout, config.num_key_value_heads, config.head_dim,
                                       qkv_bias=config.attention_bias, out_bias=False,
                                       names=("q_proj", "k_proj", "v_proj", "o_proj"), interleaved_rotary=True)
        super().__init__(norm(), attention, norm(), GlmMLP(config))


class GlmPreTrainedModel(PreTrainedModel):
    config_class = GlmConfig
    base_model_prefix = "model"

    def convert_checkpoint_tensor(self, key: str, tensor: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        """THUDM's original layout is renamed and its fused q/k/v split; ``-hf`` weights pass unchanged."""
        if not is_chatglm_key(key):
            yield key, tensor
            return
        try:
            glm_key = chatglm_key_to_glm(key)
        except KeyError:  # not a GLM-4 weight: reported among the unexpected keys
            yield key, tensor
            return
        if glm_key is None:
            return
        config = self.config
        yield from split_fused_qkv(glm_key, tensor, config.num_attention_heads, config.num_key_value_heads,
                                   config.head_dim)


class GlmModel(Decoder, GlmPreTrainedModel):
    """The bare GLM-4 decoder: hidden states (B, T, hidden_size) after the final RMSNorm."""

    # gate_up_proj fuses two blocks (gate, up): each rank takes its part of both.
    tp_plan = {"layers.*.self_attn.q_proj": "colwise", "layers.*.self_attn.k_proj": "kv_colwise",
               "layers.*.self_attn.v_proj": "kv_colwise", "layers.*.self_attn.o_proj": "rowwise",
               "layers.*.mlp.gate_up_proj": ("colwise", 2), "layers.*.mlp.down_proj": "rowwise",
               "embed_tokens": "vocab_embedding"}

    def __init__(self, config: GlmConfig) -> None:
        super().__init__(config)
        pad = config.pad_token_id
        if pad is not None and not 0 <= pad < config.vocab_size:
            raise ValueError(f"GlmConfig.pad_token_id={pad} is outside the vocabulary [0, {config.vocab_size}): "
                             "set pad_token_id to a token id below vocab_size (or None)")
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=pad)
        self.layers = nn.ModuleList(GlmDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, cache_position=None, head_mask=None, **kwargs):
        """Args follow the spec: ``input_ids`` (B, T) or ``inputs_embeds`` (B, T, hidden); ``attention_mask``
        (B, past + T), 1 for real tokens; ``position_ids`` (B, T) (default: counted from each row's first
        real token, so left padding does not shift positions); ``past_key_values`` a Cache or legacy tuple
        (returned in the same format); ``cache_position`` (T,) the absolute slots of the new tokens, used as
        positions when neither ``attention_mask`` nor ``position_ids`` is given; ``head_mask`` (H,) or (L, H)
        multiplies each head's attention probabilities (1 keeps, 0 drops). Returns BaseModelOutputWithPast."""
        if kwargs:
            raise TypeError(f"GlmModel.forward got unexpected arguments: {', '.join(sorted(kwargs))}")
        return self.run_decoder(input_ids, inputs_embeds, attention_mask, past_key_values, head_mask, use_cache,
                                output_attentions, output_hidden_states, return_dict, position_ids=position_ids,
                                cache_position=cache_position)

    def embed(self, input_ids, inputs_embeds, attention_mask, cache, past, position_ids, cache_position):
        config = self.config
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        B, T, _ = x.shape
        # RoPE is relative, so positions counted from each row's first real token change nothing for
        # real tokens and keep left-padded rows equal to unpadded ones.
        position_ids = absolute_positions(position_ids, B, T, past, x.device, attention_mask, cache_position)
        cos, sin = rotary_cos_sin(position_ids, config.rotary_dim, config.rope_theta, x.dtype,
                                  config.rope_scaling_factor)  # (B, T, rotary_dim / 2)
        return x, {"cos": cos, "sin": sin, "bias": causal_bias(attention_mask, B, T, past, x.dtype, x.device)}


class GlmForCausalLM(CausalLMHead, GlmPreTrainedModel, GenerationMixin):
    """GLM-4 with a language-model head (untied from the embeddings unless ``tie_word_embeddings``)."""

    base_model_class = GlmModel
    output_class = CausalLMOutputWithPast
    tied_weights = {"lm_head.weight": "model.embed_tokens.weight"}


class GlmForSequenceClassification(LastTokenSequenceClassification, GlmPreTrainedModel):
    """GLM-4 classifying a sequence from its last token that is not ``pad_token_id``.

    The rightmost non-pad token is found per row, so left and right padding both work; as in the
    reference, a row ending in a real ``<|endoftext|>`` (GLM-4's pad id) is pooled before it.
    """

    base_model_class = GlmModel


class GlmForTokenClassification(TokenClassification, GlmPreTrainedModel):
    """GLM-4 with a per-token classifier ``score`` (with bias), after dropout.

    Dropout: ``classifier_dropout``, else ``hidden_dropout``, else 0.1.
    """

    base_model_class = GlmModel
    classifier_name = "score"  # the reference's checkpoints name it so, not "classifier"
