"""How XLM generates: the next token is predicted at an appended mask token, the whole sequence run each step."""

from __future__ import annotations

from typing import Any

import torch

from ...generation import GenerationMixin
from ...layers.masks import position_ids_from_mask


class MaskTokenGeneration(GenerationMixin):
    """GenerationMixin for XLM's LM head: ``config.mask_token_id`` appended, every token tagged ``config.lang_id``."""

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
