"""tongues.layers.sinusoidal: the fairseq sinusoidal table."""

from __future__ import annotations

import math

import pytest
import torch
from transformers.models.xglm.modeling_xglm import XGLMSinusoidalPositionalEmbedding as OracleSinusoidal

from tongues.layers.sinusoidal import sinusoidal_table


@pytest.mark.parametrize("num_positions,dim,padding_idx", [(10, 8, None), (22, 30, 1), (7, 33, 0), (3, 4, 2)])
def test_matches_oracle_table(num_positions, dim, padding_idx):
    expected = OracleSinusoidal.get_embedding(num_positions, dim, padding_idx)
    torch.testing.assert_close(sinusoidal_table(num_positions, dim, padding_idx), expected, atol=0, rtol=0)


def test_layout_sines_then_cosines():
    table = sinusoidal_table(5, 6)  # half = 3, frequencies 1, 1e-2, 1e-4
    frequencies = [10000 ** (-i / 2) for i in range(3)]
    for p in range(5):
        expected = [math.sin(p * f) for f in frequencies] + [math.cos(p * f) for f in frequencies]
        torch.testing.assert_close(table[p], torch.tensor(expected), atol=1e-6, rtol=1e-6)


def test_odd_dim_gets_zero_column_and_padding_row_is_zero():
    table = sinusoidal_table(6, 9, padding_idx=1)
    assert table.shape == (6, 9)
    assert torch.all(table[:, -1] == 0)
    assert torch.all(table[1] == 0)
    assert torch.any(table[2] != 0)


def test_longer_table_extends_shorter_one():
    short, long = sinusoidal_table(12, 16, padding_idx=1), sinusoidal_table(40, 16, padding_idx=1)
    torch.testing.assert_close(long[:12], short, atol=0, rtol=0)


def test_follows_default_dtype():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        table = sinusoidal_table(4, 8)
    finally:
        torch.set_default_dtype(old)
    assert table.dtype == torch.float64
    torch.testing.assert_close(table.float(), sinusoidal_table(4, 8), atol=0, rtol=0)


@pytest.mark.parametrize(
    "args,culprit",
    [((0, 8, None), "num_positions"), ((5, 3, None), "dim"), ((5, 8, 5), "padding_idx"), ((5, 8, -1), "padding_idx")],
)
def test_bad_arguments_name_the_culprit(args, culprit):
    with pytest.raises(ValueError, match=culprit):
        sinusoidal_table(*args)
