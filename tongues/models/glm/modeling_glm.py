"""GLM-4: a pre-norm decoder with grouped-query attention, partial interleaved RoPE, RMSNorm and SwiGLU.

Module names are the checkpoint keys of the ``-hf`` layout (THUDM/glm-4-9b-chat-hf):
``model.embed_tokens``, ``model.layers.N.{input_layernorm, self_attn.{q_proj, k_proj, v_proj, o_proj},
post_attention_layernorm, mlp.{gate_up_proj, down_proj}}``, ``model.norm``, ``lm_head``.
THUDM's original layout (``transformer.encoder.layers.N...``, see convert_chatglm.py) is converted
while it loads.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from ...generation import GenerationMixin
from ...heads import CausalLMHead, HeadModel, LastTokenSequenceClassification, finish
from ...layers.activations import get_activation
from ...layers.attention import attend, layer_head_masks
from ...layers.heads import token_loss
from ...layers.inputs import Collector, check_inputs, prepare_cache, returned_cache
from ...layers.masks import causal_bias, position_ids_from_mask
from ...layers.norms import RMSNorm
from ...layers.rotary import apply_rotary, rotary_cos_sin
from ...modeling import PreTrainedModel, checkpointed
from ...outputs import BaseModelOutputWithPast, CausalLMOutputWithPast, TokenClassifierOutput
from .configuration_glm import GlmConfig
from .convert_chatglm import chatglm_key_to_glm, is_chatglm_key, split_fused_qkv


class GlmAttention(nn.Module):
    def __init__(self, config: GlmConfig, layer_idx: int) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.layer_idx = layer_idx
        self.attention_dropout = config.attention_dropout
        H, H_kv, D = self.num_heads, self.num_kv_heads, self.head_dim
        self.q_proj = nn.Linear(config.hidden_size, H * D, bias=config.attention_bias)
        self.k_proj = nn.Linear(config.hidden_size, H_kv * D, bias=config.attention_bias)
        self.v_proj = nn.Linear(config.hidden_size, H_kv * D, bias=config.attention_bias)
        # GLM-4 has biases on q, k, v only (THUDM's add_qkv_bias=True, add_bias_linear=False).
        self.o_proj = nn.Linear(H * D, config.hidden_size, bias=False)

    def forward(self, x, cos, sin, bias, cache=None, head_mask=None, output_attentions=False):
        B, T, _ = x.shape
        H, H_kv, D = self.num_heads, self.num_kv_heads, self.head_dim
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, H_kv, D).transpose(1, 2)  # (B, H_kv, T, D)
        v = self.v_proj(x).view(B, T, H_kv, D).transpose(1, 2)
        q, k = apply_rotary(q, k, cos, sin, interleaved=True)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        out, probs = attend(q, k, v, bias=bias, scale=D**-0.5, head_mask=head_mask, dropout_p=self.attention_dropout,
                            training=self.training, output_attentions=output_attentions)
        out = out.transpose(1, 2).reshape(B, T, H * D)  # (B, T, H*D)
        return self.o_proj(out), probs


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


class GlmDecoderLayer(nn.Module):
    def __init__(self, config: GlmConfig, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.self_attn = GlmAttention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = GlmMLP(config)

    def forward(self, x, cos, sin, bias, cache=None, head_mask=None, output_attentions=False):
        attn, probs = self.self_attn(self.input_layernorm(x), cos, sin, bias, cache, head_mask, output_attentions)
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x)), probs


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


class GlmModel(GlmPreTrainedModel):
    """The bare GLM-4 decoder: hidden states (B, T, hidden_size) after the final RMSNorm."""

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

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, cache_position=None, head_mask=None, **kwargs):
        """Args follow the spec: ``input_ids`` (B, T) or ``inputs_embeds`` (B, T, hidden); ``attention_mask``
        (B, past + T), 1 for real tokens; ``position_ids`` (B, T) (default: counted from each row's first
        real token, so left padding does not shift positions); ``past_key_values`` a Cache or legacy tuple
        (returned in the same format); ``cache_position`` (T,) the absolute slots of the new tokens, used as
        positions when neither ``attention_mask`` nor ``position_ids`` is given; ``head_mask`` (H,) or (L, H)
        multiplies each head's attention probabilities (1 keeps, 0 drops). Returns BaseModelOutputWithPast."""
        config = self.config
        if kwargs:
            raise TypeError(f"GlmModel.forward got unexpected arguments: {', '.join(sorted(kwargs))}")
        check_inputs(input_ids, inputs_embeds, config.vocab_size, config.hidden_size)
        use_cache = config.use_cache if use_cache is None else use_cache
        use_cache = use_cache and not (self.gradient_checkpointing and self.training)
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        collect = Collector(config.output_hidden_states if output_hidden_states is None else output_hidden_states,
                            output_attentions)
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        B, T, _ = x.shape
        cache, legacy = prepare_cache(past_key_values, use_cache)
        past = cache.get_seq_length() if cache is not None else 0
        position_ids = self._positions(position_ids, attention_mask, cache_position, B, T, past, x.device)
        bias = causal_bias(attention_mask, B, T, past, x.dtype, x.device)  # (B, 1, T, past + T) or None
        cos, sin = rotary_cos_sin(position_ids, config.rotary_dim, config.rope_theta, x.dtype,
                                  config.rope_scaling_factor)  # (B, T, rotary_dim / 2)
        head_masks = layer_head_masks(head_mask, config.num_hidden_layers, config.num_attention_heads)
        for layer, layer_head_mask in zip(self.layers, head_masks):
            collect.add_hidden(x)
            if self.gradient_checkpointing and self.training:
                x, probs = checkpointed(layer, x, cos, sin, bias, None, layer_head_mask, output_attentions)
            else:
                x, probs = layer(x, cos, sin, bias, cache, layer_head_mask, output_attentions)
            collect.add_attention(probs)
        x = self.norm(x)
        collect.add_hidden(x)
        out = BaseModelOutputWithPast(last_hidden_state=x, past_key_values=returned_cache(cache, use_cache, legacy),
                                      hidden_states=collect.hidden, attentions=collect.attentions)
        return finish(out, return_dict, config)

    @staticmethod
    def _positions(position_ids, attention_mask, cache_position, B, T, past, device) -> torch.Tensor:
        """(B, T) absolute positions: given, else from the padding mask, else the cache slots."""
        if position_ids is not None:
            if position_ids.dim() == 1:
                position_ids = position_ids[None]
            if position_ids.shape[-1] != T or position_ids.shape[0] not in (1, B):
                raise ValueError(f"position_ids has shape {tuple(position_ids.shape)}; expected ({B}, {T}) "
                                 "(batch, input length)")
            return position_ids.expand(B, T)
        if attention_mask is not None:
            if attention_mask.dim() != 2 or attention_mask.shape != (B, past + T):
                raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected ({B}, {past + T}) "
                                 "= (batch, past length + input length)")
            return position_ids_from_mask(attention_mask, past, T)
        if cache_position is not None:
            if cache_position.dim() != 1 or cache_position.shape[0] != T:
                raise ValueError(f"cache_position has shape {tuple(cache_position.shape)}; expected ({T},)")
            return cache_position.to(device)[None].expand(B, T)
        return torch.arange(past, past + T, device=device)[None].expand(B, T)


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


class GlmForTokenClassification(HeadModel, GlmPreTrainedModel):
    """GLM-4 with a per-token classifier ``score`` (with bias), after dropout.

    The classifier is named ``score``, not ``classifier`` as in tongues' shared head, because the
    reference's checkpoints name it so. Dropout: ``classifier_dropout``, else ``hidden_dropout``, else 0.1.
    """

    base_model_class = GlmModel

    def __init__(self, config: GlmConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self._build_base(config)
        dropout = next((getattr(config, n) for n in ("classifier_dropout", "hidden_dropout")
                        if getattr(config, n, None) is not None), 0.1)
        self.dropout = nn.Dropout(dropout)
        bias = getattr(config, "token_classification_bias", True)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=bias)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        """Logits (B, T, num_labels); cross-entropy over positions when ``labels`` (B, T), -100 ignored."""
        out = self._run_base(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache,
                             output_attentions=output_attentions, output_hidden_states=output_hidden_states, **kwargs)
        logits = self.score(self.dropout(out.last_hidden_state))
        loss = token_loss(logits, labels) if labels is not None else None
        return finish(TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.get("hidden_states"),
                                            attentions=out.get("attentions")), return_dict, self.config)
