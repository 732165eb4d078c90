"""Task heads over a family's bare model, written once.

A family declares its heads as the difference from these::

    class BloomForCausalLM(BloomPreTrainedModel, CausalLMHead, GenerationMixin):
        base_model_class = BloomModel

The bare model lives under the family's ``base_model_prefix`` (a checkpoint key), is called with
``return_dict=True`` and must return an output with ``last_hidden_state`` first. Keywords a head
does not use are passed to the bare model, so every family argument (``head_mask``, ``langs``,
``position_ids`` ...) reaches it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from .layers.heads import causal_lm_loss, last_token_index, sequence_classification_loss, span_loss, token_loss
from .outputs import (
    CausalLMOutputWithPast,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutputWithPast,
    TokenClassifierOutput,
)


def finish(output, return_dict: bool | None, config):
    """Return ``output`` itself, or its tuple form when ``return_dict`` (or the config's) is False."""
    return_dict = config.return_dict if return_dict is None else return_dict
    return output if return_dict else output.to_tuple()


def keep_last(hidden: torch.Tensor, logits_to_keep: int | torch.Tensor) -> torch.Tensor:
    """Hidden states of the positions whose logits are wanted: the last ``n`` (0 = all) or given indices."""
    if isinstance(logits_to_keep, int):
        return hidden if logits_to_keep == 0 else hidden[:, -logits_to_keep:]
    return hidden[:, logits_to_keep]


class HeadModel:
    """Mixin: builds the bare model under ``base_model_prefix`` and runs it."""

    base_model_class: ClassVar[type[nn.Module]]

    def _build_base(self, config) -> None:
        setattr(self, self.base_model_prefix, self.base_model_class(config))

    def _run_base(self, **kwargs: Any):
        kwargs["return_dict"] = True
        return getattr(self, self.base_model_prefix)(**kwargs)


class CausalLMHead(HeadModel):
    """Language-model head: ``lm_head`` (hidden -> vocab, no bias), tied to the input embeddings."""

    output_class: ClassVar[type] = CausalLMOutputWithPast
    lm_head_bias: ClassVar[bool] = False

    def __init__(self, config) -> None:
        super().__init__(config)
        self._build_base(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=self.lm_head_bias)
        self.post_init()

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
        fields = {k: v for k, v in out.items() if k != "last_hidden_state"}
        return finish(self.output_class(loss=loss, logits=logits, **fields), return_dict, self.config)


class LastTokenSequenceClassification(HeadModel):
    """Classifies a sequence from its last real token (``score``: hidden -> labels, no bias)."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self._build_base(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, past_key_values=None, inputs_embeds=None, labels=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        """Logits (B, num_labels) pooled at each row's last non-pad token; loss by ``config.problem_type``."""
        out = self._run_base(input_ids=input_ids, attention_mask=attention_mask, past_key_values=past_key_values,
                             inputs_embeds=inputs_embeds, use_cache=use_cache, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states, **kwargs)
        logits = self.score(out.last_hidden_state)
        B = logits.shape[0]
        last = last_token_index(input_ids, self.config.pad_token_id, B)
        pooled = logits[torch.arange(B, device=logits.device), last]
        loss = sequence_classification_loss(self.config, pooled, labels) if labels is not None else None
        fields = {k: v for k, v in out.items() if k != "last_hidden_state"}
        return finish(SequenceClassifierOutputWithPast(loss=loss, logits=pooled, **fields), return_dict, self.config)


class TokenClassification(HeadModel):
    """Per-token classifier: dropout then ``classifier`` (hidden -> labels)."""

    def classifier_dropout_prob(self, config) -> float:
        for name in ("classifier_dropout", "hidden_dropout"):
            value = getattr(config, name, None)
            if value is not None:
                return value
        return 0.1

    def __init__(self, config) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self._build_base(config)
        self.dropout = nn.Dropout(self.classifier_dropout_prob(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        """Logits (B, T, num_labels); cross-entropy over positions when ``labels`` (B, T), -100 ignored."""
        out = self._run_base(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                             output_attentions=output_attentions, output_hidden_states=output_hidden_states, **kwargs)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = token_loss(logits, labels) if labels is not None else None
        return finish(TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.get("hidden_states"),
                                            attentions=out.get("attentions")), return_dict, self.config)


class SpanQuestionAnswering(HeadModel):
    """Extractive QA: ``qa_outputs`` (hidden -> 2) gives start and end logits per token."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self._build_base(config)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, start_positions=None,
                end_positions=None, output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        """Start and end logits (B, T); loss when both ``start_positions`` and ``end_positions`` (B,) are given."""
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
