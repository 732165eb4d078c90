"""tongues.layers.rotary: RoPE cos/sin tables and their application (half and interleaved pairing, partial)."""

import math

import pytest
import torch

from tongues.layers.rotary import apply_rotary, rotary_cos_sin, rotary_inverse_frequencies


def test_inverse_frequencies():
    inv = rotary_inverse_frequencies(8, 10000.0)
    expected = torch.tensor([10000.0 ** (-i / 8) for i in (0, 2, 4, 6)])
    torch.testing.assert_close(inv, expected)
    torch.testing.assert_close(rotary_inverse_frequencies(8, 10000.0, scaling_factor=4.0), expected / 4)


@pytest.mark.parametrize("rotary_dim, base, factor", [(7, 1e4, 1.0), (0, 1e4, 1.0), (8, 0.0, 1.0), (8, 1e4, 0.0)])
def test_inverse_frequencies_reject_bad_arguments(rotary_dim, base, factor):
    with pytest.raises(ValueError):
        rotary_inverse_frequencies(rotary_dim, base, factor)


def test_cos_sin_shapes_and_values():
    positions = torch.tensor([[0, 1, 5], [2, 3, 4]])
    cos, sin = rotary_cos_sin(positions, rotary_dim=4, base=100.0)
    assert cos.shape == sin.shape == (2, 3, 2)
    assert cos.dtype == torch.float32
    assert math.isclose(float(cos[0, 2, 1]), math.cos(5 * 100.0 ** -0.5), rel_tol=1e-6)
    assert math.isclose(float(sin[1, 0, 0]), math.sin(2.0), rel_tol=1e-6)
    half, _ = rotary_cos_sin(positions, 4, 100.0, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16


def _rotate_pairs(x, angles, pairs):
    # Reference: rotate each channel pair (a, b) by its angle, one at a time.
    out = x.clone()
    for i, (a, b) in enumerate(pairs):
        c, s = torch.cos(angles[..., i]), torch.sin(angles[..., i])
        out[..., a] = x[..., a] * c - x[..., b] * s
        out[..., b] = x[..., b] * c + x[..., a] * s
    return out


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("rotary_dim", [4, 8])
def test_apply_rotates_pairs_and_passes_the_rest(interleaved, rotary_dim):
    B, H, T, D = 2, 3, 5, 8
    q, k = torch.randn(B, H, T, D), torch.randn(B, 1, T, D)
    positions = torch.arange(T)[None].expand(B, T) + torch.tensor([[0], [3]])
    cos, sin = rotary_cos_sin(positions, rotary_dim, 10000.0)
    q2, k2 = apply_rotary(q, k, cos, sin, interleaved=interleaved)
    half = rotary_dim // 2
    pairs = [(2 * i, 2 * i + 1) for i in range(half)] if interleaved else [(i, i + half) for i in range(half)]
    angles = positions[:, None, :, None].float() * rotary_inverse_frequencies(rotary_dim, 10000.0)
    torch.testing.assert_close(q2, _rotate_pairs(q, angles, pairs))
    torch.testing.assert_close(k2, _rotate_pairs(k, angles, pairs))
    torch.testing.assert_close(q2[..., rotary_dim:], q[..., rotary_dim:], atol=0, rtol=0)


@pytest.mark.parametrize("interleaved", [False, True])
def test_scores_depend_on_relative_position_only(interleaved):
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(p_q, p_k):
        cq, sq = rotary_cos_sin(torch.tensor([[p_q]]), 8, 10000.0)
        ck, sk = rotary_cos_sin(torch.tensor([[p_k]]), 8, 10000.0)
        rq, _ = apply_rotary(q, q, cq, sq, interleaved)
        _, rk = apply_rotary(k, k, ck, sk, interleaved)
        return float((rq * rk).sum())

    assert math.isclose(score(7, 3), score(104, 100), rel_tol=1e-4, abs_tol=1e-5)
    assert math.isclose(score(0, 0), float((q * k).sum()), rel_tol=1e-5, abs_tol=1e-6)


def test_positions_shared_by_the_batch():
    q, k = torch.randn(2, 2, 4, 8), torch.randn(2, 2, 4, 8)
    cos, sin = rotary_cos_sin(torch.arange(4), 8, 10000.0)  # (T, R/2)
    a = apply_rotary(q, k, cos, sin, interleaved=True)
    b = apply_rotary(q, k, cos[None].expand(2, 4, 4), sin[None].expand(2, 4, 4), interleaved=True)
    torch.testing.assert_close(a, b)


def test_rotary_wider_than_the_head_is_refused():
    cos, sin = rotary_cos_sin(torch.arange(3)[None], 16, 10000.0)
    with pytest.raises(ValueError, match="16 channels"):
        apply_rotary(torch.randn(1, 1, 3, 8), torch.randn(1, 1, 3, 8), cos, sin)
