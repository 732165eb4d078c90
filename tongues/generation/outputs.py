"""What ``generate(..., return_dict_in_generate=True)`` returns (attribute, key and index access)."""

from __future__ import annotations

from typing import Any, Optional

import torch

from ..outputs import ModelOutput, output_dataclass

Steps = Optional[tuple[torch.Tensor, ...]]


@output_dataclass
class GenerateDecoderOnlyOutput(ModelOutput):
    """Greedy or sampled generation.

    sequences (B * num_return_sequences, T_total); scores / logits: one (B', V) tensor per new token
    (processed / raw); attentions / hidden_states: per step, the model's per-layer tuples;
    past_key_values: the cache after the last step.
    """

    sequences: Optional[torch.Tensor] = None
    scores: Steps = None
    logits: Steps = None
    attentions: Optional[tuple] = None
    hidden_states: Optional[tuple] = None
    past_key_values: Any = None


@output_dataclass
class GenerateBeamDecoderOnlyOutput(ModelOutput):
    """Beam search.

    sequences (B * num_return_sequences, T_total); sequences_scores (B * num_return_sequences,)
    length-penalised log-probabilities (with ``output_scores``); scores: per step the processed
    log-probabilities of every beam, (B * num_beams, V); beam_indices (B * num_return_sequences,
    new tokens) the beam each token came from, -1 after a sequence ended.
    """

    sequences: Optional[torch.Tensor] = None
    sequences_scores: Optional[torch.Tensor] = None
    scores: Steps = None
    logits: Steps = None
    beam_indices: Optional[torch.Tensor] = None
    attentions: Optional[tuple] = None
    hidden_states: Optional[tuple] = None
    past_key_values: Any = None


# The reference's aliases, kept for code written against them.
GreedySearchDecoderOnlyOutput = GenerateDecoderOnlyOutput
SampleDecoderOnlyOutput = GenerateDecoderOnlyOutput
BeamSearchDecoderOnlyOutput = GenerateBeamDecoderOnlyOutput
BeamSampleDecoderOnlyOutput = GenerateBeamDecoderOnlyOutput
