"""Masks as additive biases, and the one pad convention for positions derived from a padding mask."""

from __future__ import annotations

import pytest
import torch

from tongues.layers.masks import absolute_positions, causal_bias, padding_bias, position_ids_from_mask

NEG = torch.finfo(torch.float32).min


def test_causal_bias_hides_future_and_padded_keys():
    mask = torch.tensor([[1, 1, 1], [0, 1, 1]])
    bias = causal_bias(mask, 2, 3, 0, torch.float32, torch.device("cpu"))
    assert bias.shape == (2, 1, 3, 3)
    visible = bias == 0
    assert visible[0, 0].tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert visible[1, 0].tolist() == [[False, False, False], [False, True, False], [False, True, True]]
    assert (bias[~visible] == NEG).all()


def test_causal_bias_with_a_cache_offsets_the_queries():
    bias = causal_bias(torch.ones(1, 5, dtype=torch.long), 1, 2, 3, torch.float32, torch.device("cpu"))
    assert (bias == 0)[0, 0].tolist() == [[True, True, True, True, False], [True, True, True, True, True]]


def test_causal_bias_is_none_when_nothing_is_masked():
    cpu = torch.device("cpu")
    assert causal_bias(None, 2, 1, 4, torch.float32, cpu) is None
    assert causal_bias(torch.ones(2, 5), 2, 1, 4, torch.float32, cpu) is None
    assert causal_bias(torch.ones(2, 4), 2, 4, 0, torch.float32, cpu, causal=False) is None
    with pytest.raises(ValueError, match=r"expected \(2, 5\)"):
        causal_bias(torch.ones(2, 4), 2, 1, 4, torch.float32, cpu)


def test_padding_bias_hides_padded_keys_from_every_query():
    bias = padding_bias(torch.tensor([[1, 0, 1]]), torch.bfloat16)
    assert bias.shape == (1, 1, 1, 3) and bias.dtype == torch.bfloat16
    assert bias[0, 0, 0].tolist() == [0, torch.finfo(torch.bfloat16).min, 0]
    assert padding_bias(None, torch.float32) is None


def test_position_ids_count_real_tokens_and_pads_get_zero():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [0, 1, 2, 0, 0]]
    assert position_ids_from_mask(mask, past_length=3, query_length=2).tolist() == [[1, 2], [3, 4], [0, 0]]
    assert position_ids_from_mask(mask.bool()).dtype == torch.long


def test_absolute_positions_given_then_mask_then_cache_slots():
    cpu = torch.device("cpu")
    assert absolute_positions(None, 2, 3, 4, cpu).tolist() == [[4, 5, 6]] * 2
    assert absolute_positions(torch.tensor([7, 8, 9]), 2, 3, 0, cpu).tolist() == [[7, 8, 9]] * 2
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    assert absolute_positions(None, 2, 2, 2, cpu, attention_mask=mask).tolist() == [[1, 2], [2, 3]]
    assert absolute_positions(None, 1, 2, 0, cpu, cache_position=torch.tensor([5, 6])).tolist() == [[5, 6]]
    with pytest.raises(ValueError, match=r"position_ids has shape \(3, 3\)"):
        absolute_positions(torch.zeros(3, 3, dtype=torch.long), 2, 3, 0, cpu)
    with pytest.raises(ValueError, match="attention_mask has shape"):
        absolute_positions(None, 2, 2, 0, cpu, attention_mask=mask)
    with pytest.raises(ValueError, match="cache_position has shape"):
        absolute_positions(None, 1, 2, 0, cpu, cache_position=torch.tensor([1]))
