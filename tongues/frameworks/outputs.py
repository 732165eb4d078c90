"""Output containers of the TF and Flax models, and the collector of per-layer outputs."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import field, fields, make_dataclass


class ModelOutput(OrderedDict):
    """Output container readable by attribute, key and index; ``None`` fields are skipped (torch-free twin of
    ``tongues.outputs.ModelOutput``, which imports torch)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                super().__setitem__(f.name, value)

    def __getitem__(self, key):
        if isinstance(key, str):
            return dict(self.items())[key]
        return self.to_tuple()[key]

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        object.__setattr__(self, key, value)

    def to_tuple(self) -> tuple:
        return tuple(self[k] for k in self.keys())


def output_fields(name: str, names: tuple[str, ...], base: type, module: str) -> type:
    """A dataclass subclass of ``base`` named ``name`` whose fields ``names`` all default to ``None``."""
    cls = make_dataclass(name, [(n, object, field(default=None)) for n in names], bases=(base,))
    cls.__module__ = module
    return cls


class Collector:
    """Gathers per-layer hidden states and attention probabilities when asked for."""

    def __init__(self, hidden: bool, attentions: bool, cross: bool = False) -> None:
        self.hidden = () if hidden else None
        self.attentions = () if attentions else None
        self.cross = () if (attentions and cross) else None

    def add_hidden(self, x) -> None:
        if self.hidden is not None:
            self.hidden += (x,)

    def add_attention(self, probs, cross_probs=None) -> None:
        if self.attentions is not None:
            self.attentions += (probs,)
        if self.cross is not None:
            self.cross += (cross_probs,)
