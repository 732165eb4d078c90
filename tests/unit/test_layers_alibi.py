"""ALiBi slopes and biases against the closed form of Press et al. (2021)."""

from __future__ import annotations

import math

import pytest
import torch

from tongues.layers.alibi import alibi_bias, alibi_slopes


def closed_form(num_heads: int) -> list[float]:
    """The paper's slopes: 2^(-8 i / n) for the nearest power of two n <= H, then every other slope of 2n."""
    n = 2 ** math.floor(math.log2(num_heads))
    slopes = [2 ** (-8 * i / n) for i in range(1, n + 1)]
    extra = [2 ** (-8 * i / (2 * n)) for i in range(1, 2 * n + 1)][0::2]
    return slopes + extra[: num_heads - n]


@pytest.mark.parametrize("num_heads", [1, 2, 6, 16, 32, 112])
def test_slopes_match_the_closed_form(num_heads):
    slopes = alibi_slopes(num_heads)
    assert slopes.shape == (num_heads,) and slopes.dtype == torch.float32
    torch.testing.assert_close(slopes, torch.tensor(closed_form(num_heads)), atol=0, rtol=1e-6)


def test_power_of_two_slopes_are_a_geometric_series():
    slopes = alibi_slopes(16)
    assert slopes[0] == 2 ** -0.5
    torch.testing.assert_close(slopes[1:] / slopes[:-1], torch.full((15,), 2 ** -0.5))


def test_112_heads_take_every_other_slope_of_the_128_series():
    torch.testing.assert_close(alibi_slopes(112)[64:], alibi_slopes(128)[0::2][:48])
    torch.testing.assert_close(alibi_slopes(112)[:64], alibi_slopes(64))


def test_bias_counts_real_tokens_from_each_rows_first():
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    bias = alibi_bias(mask, 2, torch.float32)  # (B, H, 1, Tk)
    assert bias.shape == (2, 2, 1, 4)
    slopes = alibi_slopes(2)
    torch.testing.assert_close(bias[0, :, 0], slopes[:, None] * torch.tensor([0.0, 1, 2, 3]))
    torch.testing.assert_close(bias[1, :, 0, 2:], bias[0, :, 0, :2])  # left padding shifts nothing
    assert alibi_bias(mask, 2, torch.bfloat16).dtype == torch.bfloat16
