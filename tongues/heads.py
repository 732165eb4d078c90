"""Task heads over a family's bare model, written once; families declare them as differences.

A family declares a head by naming its bare model and whatever differs from the defaults below::

    class BloomForCausalLM(CausalLMHead, BloomPreTrainedModel, GenerationMixin):
        base_model_class = BloomModel

    class GlmForTokenClassification(TokenClassification, GlmPreTrainedModel):
        base_model_class = GlmModel
        classifier_name = "score"        # the reference's checkpoints name the layer so

The bare model lives under the family's ``base_model_prefix`` (a checkpoint key), is called with
``return_dict=True`` and must return an output with ``last_hidden_state`` first. Keywords a head
does not use are passed to the bare model, so every family argument (``head_mask``, ``langs``,
``position_ids``, ``lengths`` ...) reaches it.

Declarations (class attributes): ``classifier_name`` (checkpoint name of the task layer;
``lm_head_name`` for the masked-LM head), ``classifier_bias``, ``dropout_names`` (config fields
tried in order for the head's dropout, then ``default_dropout``), ``output_class``; pooling is the
head's kind (last real token, a ``SequenceSummary``, every token, a span).
"""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .layers.decoder import finish
from .layers.losses import causal_lm_loss, last_token_index, sequence_classification_loss, span_loss, token_loss
from .layers.masks import padding_mask
from .layers.summary import BeamSpanHead, SequenceSummary
from .layers.vocab_projection import VocabProjection
from .outputs import (
    BeamQuestionAnsweringOutput,
    CausalLMOutputWithPast,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    SequenceClassifierOutputWithPast,
    TokenClassifierOutput,
)

logger = logging.getLogger("tongues")


def keep_last(hidden: torch.Tensor, logits_to_keep: int | torch.Tensor) -> torch.Tensor:
    """Hidden states of the positions whose logits are wanted: the last ``n`` (0 = all) or given indices."""
    if isinstance(logits_to_keep, int):
        return hidden if logits_to_keep == 0 else hidden[:, -logits_to_keep:]
    return hidden[:, logits_to_keep]


def extras(out, output_class: type) -> dict[str, Any]:
    """The bare model's outputs other than ``last_hidden_state`` that ``output_class`` holds (cache, hidden
    states, attentions, cross-attentions)."""
    names = {f.name for f in fields(output_class)} - {"last_hidden_state"}
    return {k: v for k, v in out.items() if k in names}


class HeadModel:
    """Mixin: builds the bare model under ``base_model_prefix``, then the task layer, and runs them."""

    base_model_class: ClassVar[type[nn.Module]]
    classifier_name: ClassVar[str] = "classifier"
    classifier_bias: ClassVar[bool] = True
    dropout_names: ClassVar[tuple[str, ...]] = ("classifier_dropout", "hidden_dropout")
    default_dropout: ClassVar[float] = 0.1

    def __init__(self, config, *inputs: Any, **kwargs: Any) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        setattr(self, self.base_model_prefix, self.base_model_class(config))
        self.build_head(config)
        self.post_init()

    def build_head(self, config) -> None:
        raise NotImplementedError

    def head_dropout(self, config) -> float:
        values = (getattr(config, name, None) for name in self.dropout_names)
        return next((v for v in values if v is not None), self.default_dropout)

    @property
    def head(self) -> nn.Module:
        return getattr(self, self.classifier_name)

    def _run_base(self, **kwargs: Any):
        kwargs["return_dict"] = True
        return getattr(self, self.base_model_prefix)(**kwargs)


class CausalLMHead(HeadModel):
    """Language-model head: ``lm_head`` (hidden -> vocab, no bias), tied to the input embeddings."""

    output_class: ClassVar[type] = CausalLMOutputWithPast
    lm_head_bias: ClassVar[bool] = False
    tp_plan: ClassVar[dict] = {"lm_head": "vocab_head"}

    def build_head(self, config) -> None:
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=self.lm_head_bias)

    def forward(self, input_ids=None, attention_mask=None, past_key_values=None, inputs_embeds=None, labels=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                logits_to_keep: int | torch.Tensor = 0, num_logits_to_keep: int | None = None, **kwargs):
        """Logits (B, T', V) for the kept positions, the loss of next-token prediction when ``labels`` (B, T)."""
        if num_logits_to_keep is not None:  # the spec's name for logits_to_keep
            logits_to_keep = num_logits_to_keep
        out = self._run_base(input_ids=input_ids, attention_mask=attention_mask, past_key_values=past_key_values,
                             inputs_embeds=inputs_embeds, use_cache=use_cache, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states, **kwargs)
        logits = self.lm_head(keep_last(out.last_hidden_state, logits_to_keep))
        loss = causal_lm_loss(logits, labels) if labels is not None else None
        output = self.output_class(loss=loss, logits=logits, **extras(out, self.output_class))
        return finish(output, return_dict, self.config)


class MaskedLMHead(HeadModel):
    """Language-model head scored at each position against that position's label (masked-LM style, no shift).

    ``lm_head_name`` holds the :class:`VocabProjection` that ``vocab_projection(config)`` builds: a
    linear ``proj``, tied to the input embeddings by the family's ``tied_weights``, or an adaptive
    softmax, whose scores are log-probabilities and which ties nothing.
    """

    output_class: ClassVar[type] = MaskedLMOutput
    lm_head_name: ClassVar[str] = "lm_head"

    def vocab_projection(self, config) -> VocabProjection:
        return VocabProjection(config.hidden_size, config.vocab_size)

    def build_head(self, config) -> None:
        setattr(self, self.lm_head_name, self.vocab_projection(config))
        if self.lm_output.adaptive:
            self.tied_weights = {}  # an adaptive softmax has no single output matrix to tie

    @property
    def lm_output(self) -> VocabProjection:
        return getattr(self, self.lm_head_name)

    def get_output_embeddings(self):
        return self.lm_output.proj

    def set_output_embeddings(self, value):
        self.lm_output.proj = value

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        """Resize the input embeddings and the output projection, bias included (new bias entries are 0)."""
        if self.lm_output.adaptive:
            raise ValueError("resize_token_embeddings is not supported with an adaptive softmax: its clusters are "
                             f"fixed by its cutoffs {self.lm_output.proj.cutoffs[:-1]}")
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        self.lm_output.resize_bias(embeddings.weight.shape[0])
        return embeddings

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep: int | torch.Tensor = 0, **kwargs):
        """Scores (B, T', V) for the kept positions (all by default); the loss when ``labels`` (B, T), -100 ignored."""
        out = self._run_base(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                             output_attentions=output_attentions, output_hidden_states=output_hidden_states, **kwargs)
        scores, loss = self.lm_output(keep_last(out.last_hidden_state, logits_to_keep), labels)
        return finish(self.output_class(loss=loss, logits=scores, hidden_states=out.get("hidden_states"),
                                        attentions=out.get("attentions")), return_dict, self.config)


class LastTokenSequenceClassification(HeadModel):
    """Classifies a sequence from its last real token (``score``: hidden -> labels, no bias)."""

    classifier_name = "score"
    classifier_bias = False

    def build_head(self, config) -> None:
        setattr(self, self.classifier_name, nn.Linear(config.hidden_size, config.num_labels, bias=self.classifier_bias))

    def forward(self, input_ids=None, attention_mask=None, past_key_values=None, inputs_embeds=None, labels=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        """Logits (B, num_labels) pooled at each row's last non-pad token; loss by ``config.problem_type``."""
        out = self._run_base(input_ids=input_ids, attention_mask=attention_mask, past_key_values=past_key_values,
                             inputs_embeds=inputs_embeds, use_cache=use_cache, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states, **kwargs)
        logits = self.head(out.last_hidden_state)
        B = logits.shape[0]
        last = last_token_index(input_ids, self.config.pad_token_id, B)
        pooled = logits[torch.arange(B, device=logits.device), last]
        loss = sequence_classification_loss(self.config, pooled, labels) if labels is not None else None
        output = SequenceClassifierOutputWithPast(loss=loss, logits=pooled,
                                                  **extras(out, SequenceClassifierOutputWithPast))
        return finish(output, return_dict, self.config)


class TokenClassification(HeadModel):
    """Per-token classifier: dropout (the first of ``dropout_names`` set, else 0.1), then ``classifier``."""

    def build_head(self, config) -> None:
        self.dropout = nn.Dropout(self.head_dropout(config))
        setattr(self, self.classifier_name, nn.Linear(config.hidden_size, config.num_labels, bias=self.classifier_bias))

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        """Logits (B, T, num_labels); cross-entropy over positions when ``labels`` (B, T), -100 ignored."""
        out = self._run_base(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                             output_attentions=output_attentions, output_hidden_states=output_hidden_states, **kwargs)
        logits = self.head(self.dropout(out.last_hidden_state))
        loss = token_loss(logits, labels) if labels is not None else None
        return finish(TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.get("hidden_states"),
                                            attentions=out.get("attentions")), return_dict, self.config)


class SpanQuestionAnswering(HeadModel):
    """Extractive QA: ``qa_outputs`` (hidden -> 2) gives start and end logits per token.

    ``span_width_from_num_labels``: the layer has ``config.num_labels`` outputs (which must be 2), as
    in checkpoints that size it so.
    """

    span_width_from_num_labels: ClassVar[bool] = False

    def build_head(self, config) -> None:
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels if self.span_width_from_num_labels else 2)

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, start_positions=None,
                end_positions=None, output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        """Start and end logits (B, T); loss when both ``start_positions`` and ``end_positions`` (B,) are given."""
        if self.qa_outputs.out_features != 2:
            raise ValueError(f"{type(self).__name__} needs config.num_labels == 2 (start and end); "
                             f"this model has {self.qa_outputs.out_features}")
        out = self._run_base(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                             output_attentions=output_attentions, output_hidden_states=output_hidden_states, **kwargs)
        start, end = self.qa_outputs(out.last_hidden_state).split(1, dim=-1)
        start, end = start.squeeze(-1).contiguous(), end.squeeze(-1).contiguous()
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start, end, start_positions, end_positions)
        return finish(QuestionAnsweringModelOutput(loss=loss, start_logits=start, end_logits=end,
                                                   hidden_states=out.get("hidden_states"),
                                                   attentions=out.get("attentions")), return_dict, self.config)


class BeamSpanQuestionAnswering(HeadModel):
    """XLNet's beam-search SQuAD head (``qa_outputs``: start, end given start, answerability).

    Training (both positions given): the loss. Otherwise the top start/end candidates with their
    log-probabilities and ``cls_logits``, in ``output_class``.
    """

    output_class: ClassVar[type] = BeamQuestionAnsweringOutput

    def build_head(self, config) -> None:
        self.qa_outputs = BeamSpanHead(config.hidden_size, config.start_n_top, config.end_n_top, config.layer_norm_eps)

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, start_positions=None,
                end_positions=None, is_impossible=None, cls_index=None, p_mask=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        """``p_mask`` (B, T): 1 where a token cannot be in an answer; ``cls_index`` (B,) the classification token."""
        out = self._run_base(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                             output_attentions=output_attentions, output_hidden_states=output_hidden_states, **kwargs)
        result = self.qa_outputs(out.last_hidden_state, start_positions=start_positions, end_positions=end_positions,
                                 cls_index=cls_index, is_impossible=is_impossible, p_mask=p_mask)
        return finish(self.output_class(**result, hidden_states=out.get("hidden_states"),
                                        attentions=out.get("attentions")), return_dict, self.config)


class SummaryHead(HeadModel):
    """Pools the sequence with ``sequence_summary`` (by ``config.summary_type``, XLNet/XLM style).

    ``summary_mask`` gives the padding mask of the computed positions to the ``"attn"`` summary.
    """

    def build_head(self, config) -> None:
        self.sequence_summary = SequenceSummary.from_config(config)

    def summary_mask(self, input_ids, attention_mask, hidden, lengths=None, **kwargs) -> torch.Tensor | None:
        """(B, T) real-token mask of the T computed positions (:func:`padding_mask`: ``attention_mask``, else
        ``lengths``, else the ids that are not ``pad_token_id``) for the ``"attn"`` summary; else ``None``."""
        if self.sequence_summary.summary_type != "attn":
            return None
        S = input_ids.shape[1] if input_ids is not None else hidden.shape[1]
        mask = padding_mask(input_ids, attention_mask, lengths, self.config.pad_token_id, hidden.shape[0], S,
                            hidden.device)
        return mask[:, mask.shape[1] - hidden.shape[1]:]

    def pooled(self, input_ids, attention_mask, inputs_embeds, output_attentions, output_hidden_states, **kwargs):
        out = self._run_base(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                             output_attentions=output_attentions, output_hidden_states=output_hidden_states, **kwargs)
        hidden = out.last_hidden_state
        mask = self.summary_mask(input_ids, attention_mask, hidden, **kwargs)
        return self.sequence_summary(hidden, attention_mask=mask), out


class SummarySequenceClassification(SummaryHead):
    """A pooled classifier/regressor: ``sequence_summary`` projects to ``num_labels``."""

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        """Logits (B, num_labels); loss by ``config.problem_type`` when ``labels`` (B,) or (B, num_labels)."""
        logits, out = self.pooled(input_ids, attention_mask, inputs_embeds, output_attentions, output_hidden_states,
                                  **kwargs)
        loss = sequence_classification_loss(self.config, logits, labels) if labels is not None else None
        return finish(SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.get("hidden_states"),
                                               attentions=out.get("attentions")), return_dict, self.config)


class SummaryMultipleChoice(SummaryHead):
    """Scores each of C choices: pooled summary -> ``logits_proj`` -> one logit per choice.

    ``per_choice_inputs``: the bare model's other per-example inputs, split among the choices.
    """

    per_choice_inputs: ClassVar[tuple[str, ...]] = ("token_type_ids", "position_ids")

    def build_head(self, config) -> None:
        super().build_head(config)
        self.logits_proj = nn.Linear(config.num_labels, 1)

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        """Inputs (B, C, S) (embeddings (B, C, S, D)); logits (B, C); cross-entropy when ``labels`` (B,).

        Each of ``per_choice_inputs`` is split among the choices; a 1-D one (a per-example ``lengths``
        (B,)) cannot say which choice it measures and is dropped with a warning, as the reference does.
        """
        full = input_ids if input_ids is not None else inputs_embeds
        if full is None:
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if full.dim() < 3:
            raise ValueError(f"multiple-choice inputs must be (batch, choices, sequence); got shape {tuple(full.shape)}")
        B, C = full.shape[:2]
        for name in self.per_choice_inputs:
            value = kwargs.get(name)
            if value is None:
                continue
            value = torch.as_tensor(value)
            if tuple(value.shape[:2]) == (B, C):
                kwargs[name] = value.reshape(B * C, *value.shape[2:])
            elif value.dim() >= 2:
                kwargs[name] = value.reshape(-1, value.shape[-1])
            else:
                logger.warning("%s ignores %s of shape %s: give (batch, choices) or use the attention mask.",
                               type(self).__name__, name, tuple(value.shape))
                kwargs[name] = None
        input_ids = input_ids.reshape(B * C, -1) if input_ids is not None else None
        attention_mask = attention_mask.reshape(B * C, -1) if attention_mask is not None else None
        inputs_embeds = inputs_embeds.reshape(B * C, *inputs_embeds.shape[-2:]) if inputs_embeds is not None else None
        pooled, out = self.pooled(input_ids, attention_mask, inputs_embeds, output_attentions, output_hidden_states,
                                  **kwargs)
        logits = self.logits_proj(pooled).view(B, C)
        loss = F.cross_entropy(logits, labels.to(logits.device)) if labels is not None else None
        return finish(MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=out.get("hidden_states"),
                                                attentions=out.get("attentions")), return_dict, self.config)
