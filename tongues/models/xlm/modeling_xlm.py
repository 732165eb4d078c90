"""XLM: a post-LayerNorm Transformer encoder with learned or sinusoidal positions and language embeddings.

The same network serves the MLM/TLM checkpoints (bidirectional) and the CLM ones (``causal=True``).
Module names are the checkpoint keys of FacebookAI/xlm-*: ``transformer.{embeddings,
position_embeddings, lang_embeddings, layer_norm_emb}``, ``transformer.attentions.N.{q_lin, k_lin,
v_lin, out_lin}``, ``transformer.layer_norm1.N``, ``transformer.ffns.N.{lin1, lin2}``,
``transformer.layer_norm2.N``; heads ``pred_layer.proj``, ``sequence_summary.summary``,
``logits_proj``, ``classifier``, ``qa_outputs``.

Where we follow the spec rather than today's reference, the reason is in docs/models/xlm.md.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ...configuration import ConfigError
from ...heads import (BeamSpanQuestionAnswering, MaskedLMHead, SpanQuestionAnswering, SummaryMultipleChoice,
                      SummarySequenceClassification, TokenClassification)
from ...layers.attention import MultiHeadAttention
from ...layers.decoder import Decoder
from ...layers.embeddings import FrozenSinusoidalEmbedding
from ...layers.feed_forward import FeedForward
from ...layers.masks import causal_bias, padding_mask
from ...layers.vocab_projection import VocabProjection
from ...modeling import PreTrainedModel
from ...outputs import BaseModelOutput, BeamQuestionAnsweringOutput
from .cache_xlm import DictCacheHooks, new_positions
from .configuration_xlm import XLMConfig
from .generation_xlm import MaskTokenGeneration
from .inputs_xlm import new_columns


class XLMForQuestionAnsweringOutput(BeamQuestionAnsweringOutput):
    """Output of :class:`XLMForQuestionAnswering` (loss, or the top start/end candidates and ``cls_logits``)."""


class TransformerFFN(FeedForward):
    names = ("lin1", "lin2")

    def __init__(self, config: XLMConfig) -> None:
        act = F.gelu if config.gelu_activation else F.relu  # exact (erf) GELU, as XLM trained with
        D = config.emb_dim
        super().__init__(nn.Linear(D, 4 * D), nn.Linear(4 * D, D), act, config.dropout)


class XLMPreTrainedModel(PreTrainedModel):
    config_class = XLMConfig
    base_model_prefix = "transformer"
    # transformers < 4.31 saved the position_ids buffer into checkpoints.
    ignore_unexpected = (r"(^|\.)position_ids$",)

    @torch.no_grad()
    def _init_module(self, module: nn.Module) -> None:
        """Linear weights ~ N(0, init_std); embeddings ~ N(0, embed_init_std), padding row zero; sinusoids fixed."""
        super()._init_module(module)
        if isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, self.config.embed_init_std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        if isinstance(module, FrozenSinusoidalEmbedding):
            module.reset_table()


class XLMModel(DictCacheHooks, Decoder, XLMPreTrainedModel):
    """The bare XLM encoder: hidden states (B, T, emb_dim) after the last layer's LayerNorm.

    Every per-token input (``input_ids``, ``inputs_embeds``, ``attention_mask``, ``langs``,
    ``token_type_ids``, ``position_ids``) describes the whole sequence; with a non-empty ``cache``
    only the positions after the cached ones are computed (``langs``, ``token_type_ids`` and
    ``position_ids`` may also be given for those positions only).
    """

    tp_plan = {"attentions.*.q_lin": "colwise", "attentions.*.k_lin": "colwise", "attentions.*.v_lin": "colwise",
               "attentions.*.out_lin": "rowwise", "ffns.*.lin1": "colwise", "ffns.*.lin2": "rowwise",
               "embeddings": "vocab_embedding"}

    final_norm_name = None  # post-norm: each layer ends with its LayerNorm
    embeddings_name = "embeddings"
    output_class = BaseModelOutput

    def __init__(self, config: XLMConfig) -> None:
        super().__init__(config)
        if not config.is_encoder:
            raise ConfigError("XLMConfig.is_encoder=False asks for an XLM decoder, which neither tongues nor the "
                              "reference implements; XLM checkpoints are encoders (use causal=True for a CLM).")
        dim = config.emb_dim
        table = FrozenSinusoidalEmbedding if config.sinusoidal_embeddings else nn.Embedding
        self.position_embeddings = table(config.max_position_embeddings, dim)
        # Only multilingual checkpoints carry language embeddings (and only when use_lang_emb).
        if config.n_langs > 1 and config.use_lang_emb:
            self.lang_embeddings = nn.Embedding(config.n_langs, dim)
        self.embeddings = nn.Embedding(config.vocab_size, dim, padding_idx=config.pad_token_id)
        self.layer_norm_emb = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        # Parallel per-layer lists rather than blocks: these are the checkpoint's key names.
        self.attentions = nn.ModuleList(MultiHeadAttention(dim, config.n_heads, i, config.attention_dropout,
                                                           names=("q_lin", "k_lin", "v_lin", "out_lin"))
                                        for i in range(config.n_layers))
        self.layer_norm1 = nn.ModuleList(nn.LayerNorm(dim, eps=config.layer_norm_eps) for _ in range(config.n_layers))
        self.ffns = nn.ModuleList(TransformerFFN(config) for _ in range(config.n_layers))
        self.layer_norm2 = nn.ModuleList(nn.LayerNorm(dim, eps=config.layer_norm_eps) for _ in range(config.n_layers))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
                lengths=None, cache=None, head_mask=None, inputs_embeds=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        """Args follow the spec: ``input_ids`` (B, S) or ``inputs_embeds`` (B, S, D); ``attention_mask`` (B, S),
        1 for real tokens; ``langs`` (B, S) language ids; ``token_type_ids`` (B, S), looked up in the word
        embeddings as XLM does; ``position_ids`` (B, S); ``lengths`` (B,) instead of a mask; ``cache`` a dict
        ``{"slen": n, layer: (k, v)}`` (or a tongues Cache) updated in place; ``head_mask`` (H,) or (L, H).
        Returns BaseModelOutput (last_hidden_state, hidden_states, attentions)."""
        return self.run_decoder(input_ids, inputs_embeds, attention_mask, cache, head_mask, None, output_attentions,
                                output_hidden_states, return_dict, langs=langs, token_type_ids=token_type_ids,
                                position_ids=position_ids, lengths=lengths)

    def blocks(self):
        return [partial(self._layer, i) for i in range(self.config.n_layers)]

    def embed(self, input_ids, inputs_embeds, attention_mask, cache, past, langs, token_type_ids, position_ids,
              lengths):
        config = self.config
        full = input_ids if input_ids is not None else inputs_embeds
        B, S = full.shape[:2]
        device = full.device
        T = new_positions(cache, past, S)
        mask = padding_mask(input_ids, attention_mask, lengths, config.pad_token_id, B, S, device)  # (B, S)
        lang_table = hasattr(self, "lang_embeddings")
        langs, token_type_ids, position_ids = new_columns(config, B, S, past, device, langs, token_type_ids,
                                                          position_ids, lang_table)
        x = self.embeddings(input_ids[:, past:]) if inputs_embeds is None else inputs_embeds[:, past:]  # (B, T, D)
        x = x + self.position_embeddings(position_ids).expand_as(x)
        if langs is not None and lang_table:
            x = x + self.lang_embeddings(langs)
        if token_type_ids is not None:
            # XLM has no segment table: token types index the word embeddings (facebookresearch/XLM does the same).
            x = x + self.embeddings(token_type_ids)
        x = F.dropout(self.layer_norm_emb(x), config.dropout, self.training)
        keep = mask[:, past:, None].to(x.dtype)  # (B, T, 1): padded positions are zeroed after every layer
        # Padded keys are hidden in causal mode too (the reference hides them only in bidirectional mode).
        return x * keep, {"bias": causal_bias(mask, B, T, past, x.dtype, device, causal=config.causal), "keep": keep}

    def _layer(self, i, x, cache, head_mask, output_attentions, bias, keep):
        """One post-LayerNorm block: x = LN1(x + attn(x)); x = LN2(x + ffn(x)); padding zeroed."""
        attn, probs = self.attentions[i](x, cache, head_mask, output_attentions, bias)
        x = self.layer_norm1[i](x + F.dropout(attn, self.config.dropout, self.training))
        x = self.layer_norm2[i](x + self.ffns[i](x))
        return x * keep, probs


class XLMPredLayer(VocabProjection):
    """Output layer ``proj``: linear (tied to the word embeddings), or an adaptive softmax (``config.asm``)."""

    def __init__(self, config: XLMConfig) -> None:
        super().__init__(config.emb_dim, config.vocab_size, config.asm_cutoffs if config.asm else None,
                         config.asm_div_value)


class XLMWithLMHeadModel(MaskedLMHead, XLMPreTrainedModel, MaskTokenGeneration):
    """XLM with its language-model head (``pred_layer``), for masked-LM scoring and for generation.

    The loss compares each position's scores with the label at the same position (masked-LM style,
    no shift); positions labelled -100 are ignored.
    """

    base_model_class = XLMModel
    lm_head_name = "pred_layer"
    tied_weights = {"pred_layer.proj.weight": "transformer.embeddings.weight"}
    tp_plan = {"pred_layer.proj": "vocab_head"}

    def vocab_projection(self, config: XLMConfig) -> XLMPredLayer:
        return XLMPredLayer(config)

    def forward(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
                lengths=None, cache=None, head_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep: int | torch.Tensor = 0):
        """Scores (B, T', V) for the kept positions (all by default); masked-LM loss when ``labels`` (B, T).
        Other arguments as :meth:`XLMModel.forward` (named here for generation and positional calls)."""
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, langs=langs,
                               token_type_ids=token_type_ids, position_ids=position_ids, lengths=lengths, cache=cache,
                               head_mask=head_mask, inputs_embeds=inputs_embeds, labels=labels,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=return_dict, logits_to_keep=logits_to_keep)


class XLMForSequenceClassification(SummarySequenceClassification, XLMPreTrainedModel):
    """XLM with a pooled classifier/regressor (``sequence_summary``, by ``config.summary_type``)."""

    base_model_class = XLMModel


class XLMForMultipleChoice(SummaryMultipleChoice, XLMPreTrainedModel):
    """XLM scoring each of C choices: pooled summary -> ``logits_proj``; ``lengths`` (B, C), a (B,) one is ignored."""

    base_model_class = XLMModel
    per_choice_inputs = ("langs", "token_type_ids", "position_ids", "lengths")


class XLMForTokenClassification(TokenClassification, XLMPreTrainedModel):
    """XLM with a per-token classifier (dropout ``config.dropout``, then ``classifier``)."""

    base_model_class = XLMModel
    dropout_names = ("dropout",)


class XLMForQuestionAnsweringSimple(SpanQuestionAnswering, XLMPreTrainedModel):
    """XLM with a span head: ``qa_outputs`` (emb_dim -> num_labels = 2) gives start and end logits."""

    base_model_class = XLMModel
    span_width_from_num_labels = True


class XLMForQuestionAnswering(BeamSpanQuestionAnswering, XLMPreTrainedModel):
    """XLM with XLNet's beam-search SQuAD head (``qa_outputs``: start, end given start, answerability)."""

    base_model_class = XLMModel
    output_class = XLMForQuestionAnsweringOutput
