"""interleaved_sinusoidal_table: XLM's position table, bit for bit."""

from __future__ import annotations

import math

import pytest
import torch

from tongues.layers.sinusoidal import interleaved_sinusoidal_table


@pytest.mark.parametrize("n, dim", [(512, 64), (100, 33), (7, 2), (1, 1)])
def test_matches_the_oracle_table(n, dim):
    from transformers.models.xlm.modeling_xlm import create_sinusoidal_embeddings

    assert torch.equal(interleaved_sinusoidal_table(n, dim), create_sinusoidal_embeddings(n, dim, torch.empty(n, dim)))


def test_formula():
    table = interleaved_sinusoidal_table(10, 8)
    p, j = 7, 5  # odd column: cosine of the angle of the pair (4, 5)
    assert table[p, j].item() == pytest.approx(math.cos(p / 10000 ** (4 / 8)), abs=1e-7)
    assert table[p, j - 1].item() == pytest.approx(math.sin(p / 10000 ** (4 / 8)), abs=1e-7)
    assert torch.equal(table[0, 1::2], torch.ones(4))


@pytest.mark.parametrize("n, dim", [(0, 4), (4, 0), (2.5, 4), (True, 4)])
def test_bad_sizes(n, dim):
    with pytest.raises(ValueError, match="must be a positive integer"):
        interleaved_sinusoidal_table(n, dim)
