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
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...cache import Cache
from ...configuration import ConfigError
from ...generation import GenerationMixin
from ...heads import (
    BeamSpanQuestionAnswering,
    SpanQuestionAnswering,
    SummaryMultipleChoice,
    SummarySequenceClassification,
    TokenClassification,
    keep_last,
)
from ...layers.attention import MultiHeadAttention
from ...layers.decoder import Decoder, finish
from ...layers.inputs import last_columns
from ...layers.losses import token_loss
from ...layers.masks import causal_bias, position_ids_from_mask
from ...layers.embeddings import FrozenSinusoidalEmbedding
from ...modeling import PreTrainedModel
from ...outputs import BaseModelOutput, BeamQuestionAnsweringOutput, MaskedLMOutput
from .configuration_xlm import XLMConfig


class XLMForQuestionAnsweringOutput(BeamQuestionAnsweringOutput):
    """Output of :class:`XLMForQuestionAnswering` (loss, or the top start/end candidates and ``cls_logits``)."""


class DictCache(Cache):
    """The spec's ``cache`` dict seen as a Cache: ``{"slen": cached length, layer_idx: (key, value)}``.

    Keys and values are (B, H, T, D); updates are written into the caller's dict, as the spec says
    ("modified in-place"), and the model advances ``"slen"`` after each forward.
    """

    def __init__(self, store: dict) -> None:
        slen = store.get("slen", 0)
        if not isinstance(slen, int) or isinstance(slen, bool) or slen < 0:
            raise ValueError(f'cache["slen"] must be a non-negative integer (the cached length); got {slen!r}')
        self.store = store
        self.length = slen

    def commit(self) -> None:
        """Advance ``"slen"`` once every layer has been updated."""
        self.store["slen"] = self.length

    def update(self, key, value, layer_idx):
        if layer_idx in self.store:
            past_key, past_value = self.store[layer_idx]
            key = torch.cat([past_key, key], dim=-2)
            value = torch.cat([past_value, value], dim=-2)
        self.store[layer_idx] = (key, value)
        return key, value

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.store.get("slen", 0)

    def __len__(self) -> int:
        return sum(1 for k in self.store if isinstance(k, int))

    def layers(self):
        return (self.store[i] for i in range(len(self)))


class TransformerFFN(nn.Module):
    def __init__(self, config: XLMConfig) -> None:
        super().__init__()
        self.lin1 = nn.Linear(config.emb_dim, 4 * config.emb_dim)
        self.lin2 = nn.Linear(4 * config.emb_dim, config.emb_dim)
        self.act = F.gelu if config.gelu_activation else F.relu  # exact (erf) GELU, as XLM trained with
        self.dropout = config.dropout

    def forward(self, x):
        return F.dropout(self.lin2(self.act(self.lin1(x))), self.dropout, self.training)


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

    def summary_mask(self, input_ids, attention_mask, hidden, lengths=None, **kwargs):
        """The padding mask of the computed positions (from ``lengths`` too), for the ``"attn"`` summary."""
        if self.sequence_summary.summary_type != "attn":
            return None
        S = input_ids.shape[1] if input_ids is not None else hidden.shape[1]
        mask = self.transformer.padding_mask(input_ids, attention_mask, lengths, hidden.shape[0], S, hidden.device)
        return mask[:, mask.shape[1] - hidden.shape[1]:]


class XLMModel(Decoder, XLMPreTrainedModel):
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
        if config.sinusoidal_embeddings:
            self.position_embeddings = FrozenSinusoidalEmbedding(config.max_position_embeddings, dim)
        else:
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, dim)
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

    def padding_mask(self, input_ids=None, attention_mask=None, lengths=None, batch_size=None, length=None,
                     device=None) -> torch.Tensor:
        """(B, S) mask of real tokens: ``attention_mask``, else the first ``lengths`` tokens of each row.

        Without either, a row's length is its count of non-pad ids (as in the reference, which assumes
        right padding: pass ``attention_mask`` for left-padded input).
        """
        if input_ids is not None:
            batch_size, length, device = input_ids.shape[0], input_ids.shape[1], input_ids.device
        if attention_mask is not None:
            if attention_mask.dim() != 2 or tuple(attention_mask.shape) != (batch_size, length):
                raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected "
                                 f"({batch_size}, {length}) = (batch, whole sequence length)")
            return attention_mask
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=device)
            if lengths.dim() != 1 or lengths.shape[0] != batch_size:
                raise ValueError(f"lengths has shape {tuple(lengths.shape)}, expected ({batch_size},): one length per row")
            if int(lengths.min()) < 0 or int(lengths.max()) > length:
                raise ValueError(f"lengths holds {lengths.tolist()}; each must lie in [0, {length}] (the sequence length)")
        elif input_ids is not None:
            lengths = (input_ids != self.config.pad_token_id).sum(dim=1)
        else:
            return torch.ones(batch_size, length, dtype=torch.long, device=device)
        return (torch.arange(length, device=device)[None, :] < lengths[:, None]).long()

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

    def prepare_cache(self, cache, use_cache, **inputs):
        """The spec's dict cache (or a Cache) is used as given; XLM starts none of its own."""
        if isinstance(cache, dict):
            cache = DictCache(cache)
        elif cache is not None and not isinstance(cache, Cache):
            raise TypeError(f'cache must be a dict {{"slen": n, layer: (key, value)}} or a tongues Cache; '
                            f"got {type(cache).__name__}")
        if cache is not None and self.gradient_checkpointing and self.training:
            # A checkpointed layer runs twice (forward, then again in backward): it would fill the cache twice.
            raise ValueError("cache cannot be used while training with gradient checkpointing; pass cache=None")
        return cache, False

    def returned_cache(self, cache, use_cache, legacy):
        if isinstance(cache, DictCache):
            cache.commit()
        return None

    def blocks(self):
        return [partial(self._layer, i) for i in range(self.config.n_layers)]

    def embed(self, input_ids, inputs_embeds, attention_mask, cache, past, langs, token_type_ids, position_ids,
              lengths):
        config = self.config
        full = input_ids if input_ids is not None else inputs_embeds
        B, S = full.shape[:2]
        device = full.device
        if past >= S:
            raise ValueError(f"the cache already holds {past} positions but the input has {S}: with a cache, pass "
                             "the whole sequence (cached prefix + new tokens), as the spec's cache format expects")
        if isinstance(cache, DictCache):
            cache.length = S
        T = S - past
        mask = self.padding_mask(input_ids, attention_mask, lengths, B, S, device)  # (B, S)
        if position_ids is None:
            if S > config.max_position_embeddings:
                raise ValueError(f"the input has {S} positions but XLM's position table has "
                                 f"{config.max_position_embeddings} (config.max_position_embeddings)")
            position_ids = torch.arange(past, S, device=device)[None, :]  # (1, T)
        else:
            position_ids = last_columns(position_ids, "position_ids", B, S, T)
            if int(position_ids.min()) < 0 or int(position_ids.max()) >= config.max_position_embeddings:
                low, high = int(position_ids.min()), int(position_ids.max())
                raise ValueError(f"position_ids must lie in [0, {config.max_position_embeddings}) "
                                 f"(config.max_position_embeddings); got {low}..{high}")
        langs = last_columns(langs, "langs", B, S, T)
        token_type_ids = last_columns(token_type_ids, "token_type_ids", B, S, T)

        x = self.embeddings(input_ids[:, past:]) if inputs_embeds is None else inputs_embeds[:, past:]  # (B, T, D)
        x = x + self.position_embeddings(position_ids).expand_as(x)
        if langs is not None and hasattr(self, "lang_embeddings"):
            if int(langs.min()) < 0 or int(langs.max()) >= config.n_langs:
                raise ValueError(f"langs holds language id {int(langs.max())}, outside [0, {config.n_langs}) "
                                 "(config.n_langs); see config.lang2id")
            x = x + self.lang_embeddings(langs)
        if token_type_ids is not None:
            if int(token_type_ids.min()) < 0 or int(token_type_ids.max()) >= config.vocab_size:
                raise ValueError(f"token_type_ids index the word embeddings and must lie in [0, {config.vocab_size}); "
                                 f"got {int(token_type_ids.min())}..{int(token_type_ids.max())}")
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


class XLMPredLayer(nn.Module):
    """Output layer: a linear projection (tied to the word embeddings) or an adaptive softmax (``config.asm``)."""

    def __init__(self, config: XLMConfig) -> None:
        super().__init__()
        self.asm = config.asm
        if config.asm:
            self.proj = nn.AdaptiveLogSoftmaxWithLoss(config.emb_dim, config.vocab_size, cutoffs=config.asm_cutoffs,
                                                      div_value=float(config.asm_div_value), head_bias=True)
        else:
            self.proj = nn.Linear(config.emb_dim, config.vocab_size)

    def forward(self, hidden: torch.Tensor, labels: torch.Tensor | None = None):
        """hidden (B, T, D) -> (scores (B, T, V), loss or None); labels (B, T) with -100 ignored, not shifted.

        With the adaptive softmax the scores are log-probabilities (whose argmax is the prediction)
        and the loss is their negative log-likelihood.
        """
        if not self.asm:
            logits = self.proj(hidden)
            return logits, (token_loss(logits, labels) if labels is not None else None)
        lead, D = hidden.shape[:-1], hidden.shape[-1]
        log_probs = self.proj.log_prob(hidden.reshape(-1, D)).view(*lead, -1)  # (B, T, V)
        loss = None
        if labels is not None:
            if tuple(labels.shape) != tuple(lead):
                raise ValueError(f"labels has shape {tuple(labels.shape)}, expected {tuple(lead)}")
            loss = F.nll_loss(log_probs.float().reshape(-1, log_probs.shape[-1]), labels.reshape(-1).to(hidden.device),
                              ignore_index=-100)
        return log_probs, loss


class XLMWithLMHeadModel(XLMPreTrainedModel, GenerationMixin):
    """XLM with its language-model head (``pred_layer``), for masked-LM scoring and for generation.

    The loss compares each position's scores with the label at the same position (masked-LM style,
    no shift); positions labelled -100 are ignored.
    """

    tied_weights = {"pred_layer.proj.weight": "transformer.embeddings.weight"}
    tp_plan = {"pred_layer.proj": "vocab_head"}

    def __init__(self, config: XLMConfig) -> None:
        super().__init__(config)
        if config.asm:
            self.tied_weights = {}  # an adaptive softmax has no single output matrix to tie
        self.transformer = XLMModel(config)
        self.pred_layer = XLMPredLayer(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.pred_layer.proj

    def set_output_embeddings(self, value):
        self.pred_layer.proj = value

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        """Resize the word embeddings and the output projection, bias included (new bias entries are 0)."""
        if self.config.asm:
            raise ValueError("resize_token_embeddings is not supported with an adaptive softmax (config.asm=True): "
                             "its clusters are fixed by config.asm_cutoffs")
        old_bias = self.pred_layer.proj.bias
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        proj, V = self.pred_layer.proj, embeddings.weight.shape[0]
        if proj.bias is not None and proj.bias.shape[0] != V:
            bias = torch.zeros(V, dtype=old_bias.dtype, device=old_bias.device)
            n = min(V, old_bias.shape[0])
            bias[:n] = old_bias.detach()[:n]
            proj.bias = nn.Parameter(bias)
        proj.out_features = V
        return embeddings

    def forward(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
                lengths=None, cache=None, head_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep: int | torch.Tensor = 0):
        """Scores (B, T', V) for the kept positions (all by default); masked-LM loss when ``labels`` (B, T)."""
        out = self.transformer(input_ids=input_ids, attention_mask=attention_mask, langs=langs,
                               token_type_ids=token_type_ids, position_ids=position_ids, lengths=lengths, cache=cache,
                               head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                               output_hidden_states=output_hidden_states, return_dict=True)
        logits, loss = self.pred_layer(keep_last(out.last_hidden_state, logits_to_keep), labels)
        return finish(MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                     attentions=out.attentions), return_dict, self.config)

    # -- generation ------------------------------------------------------------------------------
    def _max_positions(self) -> int | None:
        return self.config.max_position_embeddings - 1  # one slot goes to the appended mask token

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, past_key_values=None,
                                      attention_mask=None, position_ids=None, is_first_iteration=False,
                                      **kwargs: Any) -> dict[str, Any]:
        """XLM predicts the next token at an appended ``mask_token_id``, every token tagged ``lang_id``.

        The whole sequence is run each step (XLM's generation keeps no cache). Given a padding mask
        (left-padded prompts), the mask-token column joins it and positions count real tokens only.
        """
        B = input_ids.shape[0]
        mask_token = input_ids.new_full((B, 1), self.config.mask_token_id)
        input_ids = torch.cat([input_ids, mask_token], dim=1)  # (B, T + 1)
        lang_id = self.config.lang_id
        inputs: dict[str, Any] = {
            "input_ids": input_ids,
            "langs": torch.full_like(input_ids, lang_id) if lang_id is not None else None,
        }
        if attention_mask is not None:
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((B, 1))], dim=1)
            inputs["attention_mask"] = attention_mask
            inputs["position_ids"] = position_ids_from_mask(attention_mask)
        for name in ("logits_to_keep", "output_attentions", "output_hidden_states", "head_mask"):
            if kwargs.get(name) is not None:
                inputs[name] = kwargs[name]
        return inputs


class XLMForSequenceClassification(SummarySequenceClassification, XLMPreTrainedModel):
    """XLM with a pooled classifier/regressor (``sequence_summary``, by ``config.summary_type``)."""

    base_model_class = XLMModel
    summary_mask = XLMPreTrainedModel.summary_mask


class XLMForMultipleChoice(SummaryMultipleChoice, XLMPreTrainedModel):
    """XLM scoring each of C choices: pooled summary -> ``logits_proj`` -> one logit per choice.

    ``lengths`` may be (B, C); the spec's (B,) cannot say which choice it measures and is ignored
    with a warning, as the reference does.
    """

    base_model_class = XLMModel
    summary_mask = XLMPreTrainedModel.summary_mask
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
