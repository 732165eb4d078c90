"""Shared by tests/unit/test_kernels_*.py: odd layer shapes and the closeness check with its stated bound."""

import torch

SHAPES = [(37, 100), (19, 33), (5, 7), (64, 129)]  # (N, K): K never a multiple of 8/16/32/64


def close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5) -> None:
    """Equal within ``rel`` of ``expected``'s largest magnitude (elementwise relative error is unbounded near 0)."""
    torch.testing.assert_close(actual.float(), expected.float(), rtol=rel, atol=rel * expected.abs().max().item())
