"""Auto classes: pick a family's class from a checkpoint's ``model_type`` through :mod:`tongues.registry`.

Example::

    model = AutoModelForCausalLM.from_pretrained("path/to/checkpoint")
    tokenizer = AutoTokenizer.from_pretrained("path/to/checkpoint")
"""

from __future__ import annotations

import os
from typing import Any

from . import registry
from .configuration import PretrainedConfig, _refuse_remote_code


class AutoConfig:
    """``AutoConfig.from_pretrained(path)`` returns the family config named by ``config.json``'s ``model_type``."""

    def __init__(self) -> None:
        raise TypeError("AutoConfig is not instantiated: use AutoConfig.from_pretrained(path) or AutoConfig.for_model(type)")

    @staticmethod
    def config_class(model_type: str | None) -> type[PretrainedConfig]:
        fam = registry.family(model_type)
        return getattr(fam, fam.CONFIG)

    @classmethod
    def for_model(cls, model_type: str, **kwargs: Any) -> PretrainedConfig:
        return cls.config_class(model_type)(**kwargs)

    @classmethod
    def from_pretrained(cls, pretrained: str | os.PathLike, **kwargs: Any) -> PretrainedConfig:
        if kwargs.pop("trust_remote_code", False):
            _refuse_remote_code()
        hub_kwargs = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
        data = PretrainedConfig.get_config_dict(pretrained, **hub_kwargs)
        if "model_type" not in data:
            raise registry_error(pretrained, None)
        try:
            config_cls = cls.config_class(data["model_type"])
        except ValueError:
            raise registry_error(pretrained, data["model_type"]) from None
        return config_cls.from_pretrained(pretrained, **hub_kwargs, **kwargs)


def registry_error(pretrained, model_type) -> ValueError:
    from .configuration import ConfigError

    known = ", ".join(sorted(registry.FAMILIES))
    if model_type is None:
        return ConfigError(f"{pretrained}: config.json has no 'model_type'; tongues knows {known}")
    return ConfigError(f"{pretrained}: config.json has model_type {model_type!r}, which tongues does not support "
                       f"(known: {known})")


class _AutoModel:
    task: str = "base"

    def __init__(self) -> None:
        raise TypeError(f"{type(self).__name__} is not instantiated: use .from_pretrained(path) or .from_config(config)")

    @classmethod
    def model_class(cls, config: PretrainedConfig):
        fam = registry.family(config.model_type)
        name = fam.MODELS.get(cls.task)
        if name is None:
            raise ValueError(
                f"{config.model_type} has no model for the task {cls.task!r} ({cls.__name__}); "
                f"it has: {', '.join(fam.MODELS)}"
            )
        return getattr(fam, name)

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs: Any):
        return cls.model_class(config).from_config(config, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained: str | os.PathLike, *args: Any, config: PretrainedConfig | None = None,
                        **kwargs: Any):
        if kwargs.pop("trust_remote_code", False):
            _refuse_remote_code()
        if config is None:
            hub_kwargs = {k: kwargs[k] for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
            config = AutoConfig.from_pretrained(pretrained, **hub_kwargs)
        return cls.model_class(config).from_pretrained(pretrained, *args, config=config, **kwargs)


class AutoModel(_AutoModel):
    task = "base"


class AutoModelForCausalLM(_AutoModel):
    task = "causal-lm"


class AutoModelForMaskedLM(_AutoModel):
    task = "masked-lm"


class AutoModelForSequenceClassification(_AutoModel):
    task = "sequence-classification"


class AutoModelForTokenClassification(_AutoModel):
    task = "token-classification"


class AutoModelForQuestionAnswering(_AutoModel):
    task = "question-answering"


class AutoModelForMultipleChoice(_AutoModel):
    task = "multiple-choice"


def __getattr__(name: str):
    if name == "AutoTokenizer":  # lives with the tokenizers; re-exported here for `from tongues.auto import *`
        from .tokenization.auto import AutoTokenizer

        return AutoTokenizer
    raise AttributeError(name)
