"""GPT-2: a pre-LayerNorm decoder with learned absolute positions (the architecture of mGPT).

Module names are the checkpoint keys of openai-community/gpt2 and ai-forever/mGPT:
``transformer.{wte, wpe}``, ``transformer.h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
mlp.c_proj}``, ``transformer.ln_f``; ``lm_head`` is tied to ``transformer.wte``. The projections are
``Conv1D``: their weights are stored (in, out), the transpose of ``nn.Linear``'s, and kept so.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ...generation import GenerationMixin
from ...heads import CausalLMHead, LastTokenSequenceClassification, TokenClassification
from ...layers.activations import get_activation
from ...layers.attention import attend
from ...layers.decoder import Decoder, PreNormBlock
from ...layers.masks import absolute_positions, causal_bias
from ...modeling import PreTrainedModel
from ...outputs import BaseModelOutputWithPastAndCrossAttentions, CausalLMOutputWithCrossAttentions
from .configuration_gpt2 import GPT2Config


class Conv1D(nn.Module):
    """A linear layer whose weight is stored (in_features, out_features), as GPT-2's checkpoints hold it.

    Keeping the checkpoint's layout means loading and saving copy tensors unchanged.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    @torch.no_grad()
    def reset_parameters(self, std: float) -> None:
        self.weight.normal_(0.0, std)
        self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        return torch.addmm(self.bias, x.reshape(-1, self.in_features), self.weight).view(*lead, self.out_features)


class GPT2Attention(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx, self.num_heads = layer_idx, config.n_head
        self.head_dim = D = config.n_embd // config.n_head
        # Scores are divided by sqrt(D) (scale_attn_weights) and by the layer's number
        # (scale_attn_by_inverse_layer_idx, from Stanford CRFM's Mistral GPT-2 runs).
        self.scale = (D**-0.5 if config.scale_attn_weights else 1.0) / (
            layer_idx + 1 if config.scale_attn_by_inverse_layer_idx else 1)
        self.upcast = config.reorder_and_upcast_attn
        self.attn_pdrop, self.resid_pdrop = config.attn_pdrop, config.resid_pdrop
        self.c_attn = Conv1D(config.n_embd, 3 * config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd)

    def forward(self, x, cache, head_mask, output_attentions, bias):
        B, T, _ = x.shape
        H, D = self.num_heads, self.head_dim
        # c_attn's columns are (3, H, D): all queries, then all keys, then all values.
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in self.c_attn(x).split(H * D, dim=-1))  # (B, H, T, D)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        dtype = q.dtype
        if self.upcast:  # scores and softmax in fp32 (reorder_and_upcast_attn)
            q, k, v, bias = q.float(), k.float(), v.float(), None if bias is None else bias.float()
        out, probs = attend(q, k, v, bias=bias, scale=self.scale, head_mask=head_mask, dropout_p=self.attn_pdrop,
                            training=self.training, output_attentions=output_attentions)
        out = out.to(dtype).transpose(1, 2).reshape(B, T, H * D)  # (B, T, H*D)
        return F.dropout(self.c_proj(out), self.resid_pdrop, self.training), probs


class GPT2MLP(nn.Module):
    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.c_fc = Conv1D(config.n_embd, inner)
        self.c_proj = Conv1D(inner, config.n_embd)
        self.act = get_activation(config.activation_function)
        self.resid_pdrop = config.resid_pdrop

    def forward(self, x):
        return F.dropout(self.c_proj(self.act(self.c_fc(x))), self.resid_pdrop, self.training)


class GPT2Block(PreNormBlock):
    names = ("ln_1", "attn", "ln_2", "mlp")

    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        norm = partial(nn.LayerNorm, config.n_embd, eps=config.layer_norm_epsilon)
        super().__init__(norm(), GPT2Attention(config, layer_idx), norm(), GPT2MLP(config))


class GPT2PreTrainedModel(PreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    # Old checkpoints stored the causal mask as buffers (attn.bias, attn.masked_bias); it is rebuilt.
    ignore_unexpected = (r"attn\.(bias|masked_bias)$",)

    def _init_module(self, module: nn.Module) -> None:
        super()._init_module(module)  # LayerNorms, embeddings; Conv1D is not an nn.Linear:
        if isinstance(module, Conv1D):
            module.reset_parameters(self._init_std())

    def _max_positions(self) -> int | None:
        return self.config.n_positions


class GPT2Model(Decoder, GPT2PreTrainedModel):
    """The bare GPT-2 decoder: hidden states (B, T, n_embd) after the final LayerNorm."""

    embeddings_name, blocks_name, final_norm_name = "wte", "h", "ln_f"
    output_class = BaseModelOutputWithPastAndCrossAttentions
    empty_cross_attentions = True  # as the reference (transformers 5.23) returns them

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.h = nn.ModuleList(GPT2Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache_position=None):
        """Args follow the reference: ``input_ids`` (B, T) or ``inputs_embeds`` (B, T, D); ``attention_mask``
        (B, past + T), 1 for real tokens; ``token_type_ids`` (B, T), looked up in the token embeddings;
        ``position_ids`` (B or 1, T), default ``past .. past + T - 1`` (generation passes ids counted from
        each row's first real token); ``past_key_values`` a Cache or legacy tuple (returned in the same
        format); ``head_mask`` (H,) or (L, H). Returns BaseModelOutputWithPastAndCrossAttentions."""
        return self.run_decoder(input_ids, inputs_embeds, attention_mask, past_key_values, head_mask, use_cache,
                                output_attentions, output_hidden_states, return_dict, token_type_ids=token_type_ids,
                                position_ids=position_ids, cache_position=cache_position)

    def embed(self, input_ids, inputs_embeds, attention_mask, cache, past, token_type_ids, position_ids,
              cache_position):
        config = self.config
        x = self.wte(input_ids) if inputs_embeds is None else inputs_embeds
        B, T, _ = x.shape
        position_ids = absolute_positions(position_ids, B, T, past, x.device, cache_position=cache_position)
        if int(position_ids.max()) >= config.n_positions or int(position_ids.min()) < 0:
            raise ValueError(f"position {int(position_ids.max())} is outside GPT-2's learned positions "
                             f"[0, {config.n_positions}) (config.n_positions): shorten the input")
        x = x + self.wpe(position_ids)
        if token_type_ids is not None:  # GPT-2 has no segment table: token types index the token embeddings
            if tuple(token_type_ids.shape) != (B, T):
                raise ValueError(f"token_type_ids has shape {tuple(token_type_ids.shape)}, expected ({B}, {T})")
            x = x + self.wte(token_type_ids)
        x = F.dropout(x, config.embd_pdrop, self.training)
        return x, {"bias": causal_bias(attention_mask, B, T, past, x.dtype, x.device)}


class GPT2LMHeadModel(CausalLMHead, GPT2PreTrainedModel, GenerationMixin):
    """GPT-2 with a language-model head (no bias) tied to the token embeddings."""

    base_model_class = GPT2Model
    output_class = CausalLMOutputWithCrossAttentions
    tied_weights = {"lm_head.weight": "transformer.wte.weight"}

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None,
                logits_to_keep: int | torch.Tensor = 0, cache_position=None):
        """Logits (B, T', V) for the kept positions; next-token loss when ``labels`` (B, T). Other arguments as
        :meth:`GPT2Model.forward`; ``position_ids`` is named so generation passes mask-derived ones."""
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, past_key_values=past_key_values,
                               inputs_embeds=inputs_embeds, labels=labels, use_cache=use_cache,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=return_dict, logits_to_keep=logits_to_keep, token_type_ids=token_type_ids,
                               position_ids=position_ids, head_mask=head_mask, cache_position=cache_position)


class GPT2ForSequenceClassification(LastTokenSequenceClassification, GPT2PreTrainedModel):
    """GPT-2 classifying a sequence from its last token that is not ``pad_token_id`` (``score``, no bias)."""

    base_model_class = GPT2Model


class GPT2ForTokenClassification(TokenClassification, GPT2PreTrainedModel):
    """GPT-2 with a per-token ``classifier`` (dropout: classifier_dropout, else hidden_dropout, else 0.1)."""

    base_model_class = GPT2Model
