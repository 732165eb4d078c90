"""Decoding loops: greedy / multinomial sampling and beam search, as small named steps.

A loop talks to the model through two hooks of :class:`~tongues.generation.GenerationMixin`:
``prepare_inputs_for_generation`` (what one forward receives) and the state update after it
(cache, attention mask and position ids grow by one column per step). ``prefill`` runs the
prompt once; ``decode_one_token`` feeds only the newest token against the cache.

Both loops follow the reference step by step (same processors, same ``torch.multinomial`` /
``torch.topk`` calls on the same tensors), so greedy and beam outputs are token-identical to it and
sampling draws the same tokens under the same seed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .. import native
from ..fast.select import decode_threads
from .outputs import GenerateBeamDecoderOnlyOutput, GenerateDecoderOnlyOutput

# A score low enough that a beam never wins, yet finite so arithmetic on it stays finite.
BEAM_BLOCKED = -1.0e9


# ----------------------------------------------------------------------------------------------
# Model steps
# ----------------------------------------------------------------------------------------------


def prefill(model, input_ids: torch.Tensor, model_kwargs: dict[str, Any], mask_length: int | None = None):
    """Run the whole prompt ``input_ids (B, T)`` through the model; returns its output (logits, cache).

    When a non-empty cache is passed in and ``input_ids`` still holds the tokens it covers (the
    attention mask is as long as ``input_ids``), only the uncached tail is fed.
    """
    next_sequence_length = None
    cache = model_kwargs.get("past_key_values")
    if cache is not None and hasattr(cache, "get_seq_length"):
        mask = model_kwargs.get("attention_mask")
        covered = mask.shape[1] if mask is not None else (mask_length if mask_length is not None else -1)
        if covered == input_ids.shape[1]:
            next_sequence_length = input_ids.shape[1] - cache.get_seq_length()
    inputs = model.prepare_inputs_for_generation(
        input_ids, next_sequence_length=next_sequence_length, is_first_iteration=True, **model_kwargs
    )
    return model._forward_for_generation(inputs)


def decode_one_token(model, input_ids: torch.Tensor, model_kwargs: dict[str, Any]):
    """One forward for the next position: the newest token against the cache (or everything without one)."""
    next_sequence_length = 1 if model_kwargs.get("use_cache") and model_kwargs.get("past_key_values") is not None else None
    inputs = model.prepare_inputs_for_generation(input_ids, next_sequence_length=next_sequence_length, **model_kwargs)
    return model._forward_for_generation(inputs)


def update_model_kwargs(outputs, model_kwargs: dict[str, Any], num_new_tokens: int = 1) -> dict[str, Any]:
    """After a forward: keep the returned cache; grow the attention mask, position ids and token types."""
    cache = getattr(outputs, "past_key_values", None)
    if cache is not None:
        model_kwargs["past_key_values"] = cache
    token_type_ids = model_kwargs.get("token_type_ids")
    if token_type_ids is not None:
        model_kwargs["token_type_ids"] = torch.cat([token_type_ids, token_type_ids[:, -num_new_tokens:]], dim=-1)
    position_ids = model_kwargs.get("position_ids")
    if position_ids is not None:
        step = torch.arange(num_new_tokens, dtype=position_ids.dtype, device=position_ids.device)
        step = step.view(*([1] * (position_ids.dim() - 1)), -1)
        model_kwargs["position_ids"] = torch.cat([position_ids, position_ids[..., -1:] + 1 + step], dim=-1)
    mask = model_kwargs.get("attention_mask")
    if mask is not None:
        model_kwargs["attention_mask"] = torch.cat([mask, mask.new_ones((mask.shape[0], num_new_tokens))], dim=-1)
    return model_kwargs


def next_token_logits(outputs, device: torch.device) -> torch.Tensor:
    """Last position's logits as a float32 copy, (B, V): processors and sampling work in fp32."""
    return outputs.logits[:, -1, :].to(copy=True, dtype=torch.float32, device=device)


# ----------------------------------------------------------------------------------------------
# Token choice
# ----------------------------------------------------------------------------------------------


def logits_to_probs(scores: torch.Tensor) -> torch.Tensor:
    """Processed scores (B, V) -> probabilities (B, V)."""
    return F.softmax(scores, dim=-1)


def sample(scores: torch.Tensor, do_sample: bool) -> torch.Tensor:
    """Next token per row (B,): a multinomial draw from the scores' softmax, or their argmax."""
    if do_sample:
        return torch.multinomial(logits_to_probs(scores), num_samples=1).squeeze(1)
    return native.argmax(scores)


# ----------------------------------------------------------------------------------------------
# Greedy / sampling
# ----------------------------------------------------------------------------------------------


def sample_search(
    model,
    input_ids: torch.Tensor,
    processors,
    stopping,
    config,
    model_kwargs: dict[str, Any],
    pad_token_id: torch.Tensor | None = None,
    streamer=None,
    mask_length: int | None = None,
):
    """Greedy decoding (``do_sample=False``) or multinomial sampling until every row stops.

    A row that emitted an end-of-sequence id keeps receiving ``pad_token_id`` until the others finish.

    Returns the sequences (B, T_total), or a :class:`GenerateDecoderOnlyOutput` with
    ``return_dict_in_generate``.
    """
    want = config.return_dict_in_generate
    scores = () if want and config.output_scores else None
    raw_logits = () if want and config.output_logits else None
    attentions = () if want and config.output_attentions else None
    hidden_states = () if want and config.output_hidden_states else None
    pads_finished_rows = any(hasattr(criterion, "eos_token_id") for criterion in stopping)
    if pad_token_id is not None:
        pad_token_id = pad_token_id.to(input_ids.device)

    unfinished = torch.ones(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    outputs = prefill(model, input_ids, model_kwargs, mask_length)
    first = True
    finished = False
    with decode_threads(model, input_ids.shape[0]):  # torch's ops on one thread between the kernels' products
        while not finished:
            if not first:
                outputs = decode_one_token(model, input_ids, model_kwargs)
            first = False
            model_kwargs = update_model_kwargs(outputs, model_kwargs)
            logits = next_token_logits(outputs, input_ids.device)
            step_scores = processors(input_ids, logits)
            if want:
                if scores is not None:
                    scores += (step_scores,)
                if raw_logits is not None:
                    raw_logits += (logits,)
                if attentions is not None:
                    attentions += (getattr(outputs, "attentions", None),)
                if hidden_states is not None:
                    hidden_states += (getattr(outputs, "hidden_states", None),)

            next_tokens = sample(step_scores, config.do_sample)
            if pads_finished_rows:
                next_tokens = next_tokens * unfinished + pad_token_id * (1 - unfinished)
            input_ids = torch.cat([input_ids, next_tokens[:, None]], dim=-1)
            unfinished = unfinished & ~stopping(input_ids, scores)
            if streamer is not None:
                streamer.put(next_tokens.cpu())
            finished = bool(unfinished.max() == 0)
            del outputs

    if streamer is not None:
        streamer.end()
    if not want:
        return input_ids
    return GenerateDecoderOnlyOutput(
        sequences=input_ids,
        scores=scores,
        logits=raw_logits,
        attentions=attentions,
        hidden_states=hidden_states,
        past_key_values=model_kwargs.get("past_key_values"),
    )


# ----------------------------------------------------------------------------------------------
# Beam search
# ----------------------------------------------------------------------------------------------


def flatten_beams(tensor: torch.Tensor) -> torch.Tensor:
    """(B, beams, ...) -> (B * beams, ...)."""
    return tensor.reshape(tensor.shape[0] * tensor.shape[1], *tensor.shape[2:])


def unflatten_beams(tensor: torch.Tensor, batch_size: int, num_beams: int) -> torch.Tensor:
    """(B * beams, ...) -> (B, beams, ...)."""
    return tensor.reshape(batch_size, num_beams, *tensor.shape[1:])


def gather_beams(tensor: torch.Tensor, beam_indices: torch.Tensor) -> torch.Tensor:
    """Pick beams ``beam_indices (B, K)`` out of ``tensor (B, beams, ...)`` -> (B, K, ...)."""
    while beam_indices.dim() < tensor.dim():
        beam_indices = beam_indices.unsqueeze(-1)
    return torch.take_along_dim(tensor, beam_indices, dim=1)


def top_k_continuations(
    accumulated: torch.Tensor,
    running_sequences: torch.Tensor,
    running_beam_indices: torch.Tensor,
    cur_len: int,
    prompt_len: int,
    do_sample: bool,
    beams_to_keep: int,
    num_beams: int,
):
    """The ``beams_to_keep`` best (or sampled) continuations over all beams of each prompt.

    ``accumulated`` is (B, beams * V): each beam's score plus each next token's log-probability.
    Keeping more than ``num_beams`` (one extra set per end-of-sequence id) guarantees ``num_beams``
    live beams even when the best ones all end here.
    Returns their scores (B, K), sequences (B, K, max_length) and beam origins (B, K, max_new).
    """
    if do_sample:
        picked = torch.multinomial(F.softmax(accumulated, dim=-1), num_samples=beams_to_keep)
        picked_scores = torch.gather(accumulated, 1, picked)
    else:
        picked_scores, picked = torch.topk(accumulated, k=beams_to_keep)
    vocab_size = accumulated.shape[-1] // num_beams
    source_beam = picked // vocab_size  # (B, K)
    token = picked % vocab_size
    sequences = gather_beams(running_sequences, source_beam)
    origins = gather_beams(running_beam_indices, source_beam)
    sequences[:, :, cur_len] = token
    # Beam origins are recorded as rows of the flattened (B * beams) batch.
    batch_offset = torch.arange(accumulated.shape[0], device=token.device).view(-1, 1) * num_beams
    origins[:, :, cur_len - prompt_len] = source_beam + batch_offset
    return picked_scores, sequences, origins


def next_running_beams(scores, sequences, origins, hits_stop, num_beams):
    """The ``num_beams`` best continuations that did not just stop: they are decoded next step."""
    scores = scores + hits_stop.to(torch.float32) * BEAM_BLOCKED
    best = torch.topk(scores, k=num_beams)[1]
    return gather_beams(sequences, best), gather_beams(scores, best), gather_beams(origins, best)


def update_finished_beams(
    sequences, candidates, beam_scores, candidate_scores, beam_indices, candidate_origins,
    improvement_possible, is_sent_finished, hits_stop, top_num_beam_mask,
    num_beams, cur_len, prompt_len, length_penalty, early_stopping,
):
    """Merge continuations that just stopped into each prompt's ``num_beams`` best finished hypotheses.

    A finished hypothesis scores ``sum log p / new_length ** length_penalty``. Only the top
    ``num_beams`` candidates may finish (the others exist only to keep beams alive); nothing
    more is admitted once a prompt is full under ``early_stopping=True`` or cannot improve.
    """
    just_finished = hits_stop & top_num_beam_mask[None, :]
    candidate_scores = candidate_scores / ((cur_len + 1 - prompt_len) ** length_penalty)
    full = torch.all(is_sent_finished, dim=-1, keepdim=True) & (early_stopping is True)
    candidate_scores += full.to(torch.float32) * BEAM_BLOCKED
    candidate_scores += (~improvement_possible).to(torch.float32) * BEAM_BLOCKED
    candidate_scores += (~just_finished) * BEAM_BLOCKED

    merged_sequences = torch.cat((sequences, candidates), dim=1)
    merged_scores = torch.cat((beam_scores, candidate_scores), dim=1)
    merged_indices = torch.cat((beam_indices, candidate_origins), dim=1)
    merged_finished = torch.cat((is_sent_finished, just_finished), dim=1)
    best = torch.topk(merged_scores, k=num_beams)[1]
    return (
        gather_beams(merged_sequences, best),
        gather_beams(merged_scores, best),
        gather_beams(merged_indices, best),
        gather_beams(merged_finished, best),
    )


def improvement_still_possible(
    previous, running_scores, beam_scores, is_sent_finished, cur_len, max_length, prompt_len,
    early_stopping, length_penalty,
):
    """(B, 1): can the best live beam still beat the worst finished hypothesis?

    The best live beam's final score is estimated at the current length, or at ``max_length``
    with ``early_stopping="never"`` and a positive length penalty (longer then scores higher).
    """
    if early_stopping == "never" and length_penalty > 0.0:
        best_length = max_length - prompt_len
    else:
        best_length = cur_len - prompt_len
    best_running = running_scores[:, :1] / (best_length**length_penalty)
    worst_finished = torch.where(is_sent_finished, torch.min(beam_scores, dim=1, keepdim=True)[0], BEAM_BLOCKED)
    return previous & torch.any(best_running > worst_finished, dim=-1, keepdim=True)


def beam_search_should_continue(improvement_possible, is_sent_finished, hits_stop, early_stopping) -> bool:
    """Go on while some prompt can improve, is not full under early stopping, and has a live continuation."""
    can_improve = torch.any(improvement_possible)
    open_beam = ~(torch.all(is_sent_finished) & (early_stopping is True))
    can_continue = ~torch.all(hits_stop)
    return bool(can_improve & open_beam & can_continue)


def _reorder_cache(model, model_kwargs, beam_idx: torch.Tensor) -> None:
    cache = model_kwargs.get("past_key_values")
    if cache is None:
        return
    if hasattr(model, "_reorder_cache"):
        model_kwargs["past_key_values"] = model._reorder_cache(cache, beam_idx)
    elif hasattr(cache, "reorder_cache"):
        cache.reorder_cache(beam_idx)
    else:
        raise ValueError(
            f"{type(model).__name__} returned a cache of type {type(cache).__name__}, which cannot be reordered "
            "for beam search; return a tongues Cache."
        )


def beam_search(
    model,
    input_ids: torch.Tensor,
    processors,
    stopping,
    config,
    model_kwargs: dict[str, Any],
    eos_token_id: torch.Tensor | None = None,
    pad_token_id: torch.Tensor | None = None,
    mask_length: int | None = None,
):
    """Beam search (``do_sample=True``: beam sampling) over ``input_ids (B * num_beams, T)``.

    Returns the ``num_return_sequences`` best hypotheses per prompt, best first,
    (B * num_return_sequences, T_total), or a :class:`GenerateBeamDecoderOnlyOutput`.
    """
    num_beams = config.num_beams
    max_length = config.max_length
    length_penalty = config.length_penalty
    early_stopping = config.early_stopping
    want = config.return_dict_in_generate
    batch_size = input_ids.shape[0] // num_beams
    cur_len = prompt_len = input_ids.shape[1]
    device = input_ids.device

    n_eos = eos_token_id.shape[0] if eos_token_id is not None else 0
    beams_to_keep = max(2, 1 + n_eos) * num_beams
    top_num_beam_mask = torch.cat(
        (torch.ones(num_beams, dtype=torch.bool), torch.zeros(beams_to_keep - num_beams, dtype=torch.bool))
    ).to(device)

    all_scores = () if want and config.output_scores else None
    raw_logits = () if want and config.output_logits else None
    attentions = () if want and config.output_attentions else None
    hidden_states = () if want and config.output_hidden_states else None

    # Positions after a hypothesis ends are filled with pad -- except that the reference picks the
    # fill as `pad or eos[0]`, so a pad id of 0 (falsy) fills with the first EOS id instead, and
    # without EOS ids the fill is -1. Kept, since it is visible in the returned sequences.
    if eos_token_id is None:
        fill = -1
    elif pad_token_id is not None and int(pad_token_id) != 0:
        fill = int(pad_token_id)
    else:
        fill = int(eos_token_id[0])
    running_sequences = torch.full((batch_size, num_beams, max_length), fill, dtype=torch.int64, device=device)
    running_sequences[:, :, :cur_len] = unflatten_beams(input_ids, batch_size, num_beams)
    sequences = running_sequences.detach().clone()

    # Only the first beam is live at the start, so the identical beams do not pick the same tokens.
    running_scores = torch.zeros((batch_size, num_beams), dtype=torch.float, device=device)
    running_scores[:, 1:] = BEAM_BLOCKED
    beam_scores = torch.full((batch_size, num_beams), BEAM_BLOCKED, dtype=torch.float, device=device)
    is_sent_finished = torch.zeros((batch_size, num_beams), dtype=torch.bool, device=device)
    improvement_possible = torch.ones((batch_size, 1), dtype=torch.bool, device=device)
    hits_stop = torch.zeros((batch_size, num_beams), dtype=torch.bool, device=device)
    running_origins = torch.full(
        (batch_size, num_beams, max_length - cur_len), -1, dtype=torch.int32, device=device
    )
    beam_indices = running_origins.detach().clone()

    flat_running = input_ids
    outputs = prefill(model, input_ids, model_kwargs, mask_length)
    first = True
    while True:
        if not first:
            flat_running = flatten_beams(running_sequences[:, :, :cur_len])
            outputs = decode_one_token(model, flat_running, model_kwargs)
        first = False
        model_kwargs = update_model_kwargs(outputs, model_kwargs)
        logits = next_token_logits(outputs, device)
        log_probs = processors(flat_running, F.log_softmax(logits, dim=-1))
        if want:
            if raw_logits is not None:
                raw_logits += (logits.clone(),)
            if all_scores is not None:
                all_scores += (log_probs.clone(),)
            if attentions is not None:
                attentions += (getattr(outputs, "attentions", None),)
            if hidden_states is not None:
                hidden_states += (getattr(outputs, "hidden_states", None),)
        del outputs

        accumulated = unflatten_beams(log_probs, batch_size, num_beams) + running_scores[:, :, None]
        accumulated = accumulated.reshape(batch_size, -1)  # (B, beams * V)
        candidate_scores, candidates, candidate_origins = top_k_continuations(
            accumulated, running_sequences, running_origins, cur_len, prompt_len,
            config.do_sample, beams_to_keep, num_beams,
        )
        hits_stop = stopping(flatten_beams(candidates[:, :, : cur_len + 1]), all_scores)
        hits_stop = unflatten_beams(hits_stop, batch_size, beams_to_keep)
        running_sequences, running_scores, running_origins = next_running_beams(
            candidate_scores, candidates, candidate_origins, hits_stop, num_beams
        )
        sequences, beam_scores, beam_indices, is_sent_finished = update_finished_beams(
            sequences, candidates, beam_scores, candidate_scores, beam_indices, candidate_origins,
            improvement_possible, is_sent_finished, hits_stop, top_num_beam_mask,
            num_beams, cur_len, prompt_len, length_penalty, early_stopping,
        )
        # The cache rows follow the beams kept for the next step.
        _reorder_cache(model, model_kwargs, flatten_beams(running_origins[..., cur_len - prompt_len]))

        cur_len += 1
        improvement_possible = improvement_still_possible(
            improvement_possible, running_scores, beam_scores, is_sent_finished, cur_len, max_length,
            prompt_len, early_stopping, length_penalty,
        )
        if not beam_search_should_continue(improvement_possible, is_sent_finished, hits_stop, early_stopping):
            break

    num_return = config.num_return_sequences
    sequences = flatten_beams(sequences[:, :num_return, :])
    beam_scores = flatten_beams(beam_scores[:, :num_return])
    beam_indices = flatten_beams(beam_indices[:, :num_return, :])
    # Finished hypotheses may be shorter than cur_len: crop to the longest one returned.
    generated = (beam_indices + 1).bool().sum(dim=1).max()
    sequences = sequences[:, : prompt_len + generated]
    beam_indices = beam_indices[:, :generated]
    if not want:
        return sequences
    return GenerateBeamDecoderOnlyOutput(
        sequences=sequences,
        sequences_scores=beam_scores if config.output_scores else None,
        scores=all_scores,
        logits=raw_logits,
        beam_indices=beam_indices,
        attentions=attentions,
        hidden_states=hidden_states,
        past_key_values=model_kwargs.get("past_key_values"),
    )
