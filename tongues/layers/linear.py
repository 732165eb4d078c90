"""A plain ``nn.Linear`` around given parameters: what the fast and quantised layer modules hand back
when ``prepare_for_decode("none")`` undoes them (``as_linear``)."""

from __future__ import annotations

from torch import nn


def plain_linear(in_features: int, out_features: int, weight: nn.Parameter, bias: nn.Parameter | None,
                 training: bool) -> nn.Linear:
    """An ``nn.Linear`` holding ``weight`` (out_features, in_features) and ``bias`` themselves (no copy,
    so tying and ``state_dict`` keys are kept), in training mode or not as ``training`` says."""
    plain = nn.Linear.__new__(nn.Linear)
    nn.Module.__init__(plain)
    plain.in_features, plain.out_features = in_features, out_features
    plain.weight, plain.bias = weight, bias
    plain.train(training)
    return plain
