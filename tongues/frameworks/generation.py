"""The settings of one TF or Flax ``generate`` call, resolved from a ``GenerationConfig``.

Precedence is the PyTorch ``generate``'s: keyword arguments, then the ``generation_config`` argument,
then the model's generation config (its ``generation_config.json``, else the generation fields of its
config), then ``GENERATION_DEFAULTS``. A setting the framework's ``generate`` does not implement is
refused by name rather than ignored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..generation.configuration import (GENERATION_CONFIG_NAME, GENERATION_DEFAULTS, GENERATION_FIELDS,
                                        GenerationConfig)


@dataclass(frozen=True)
class DecodeSettings:
    """What a TF/Flax decoding loop reads: lengths are totals (prompt + new tokens); a row ends at any of
    ``eos_token_ids`` (empty when the model has none); ``eos_token_id`` is the first of them, or -1."""

    max_length: int
    min_length: int
    do_sample: bool
    temperature: float
    top_k: int
    top_p: float
    num_beams: int
    length_penalty: float
    early_stopping: bool | str
    pad_token_id: int
    eos_token_ids: tuple[int, ...]

    @property
    def eos_token_id(self) -> int:
        return self.eos_token_ids[0] if self.eos_token_ids else -1


def decode_settings(model, generation_config, kwargs: dict, prompt_length: int, supported: frozenset[str],
                    framework: str) -> DecodeSettings:
    """Resolve ``generate(..., generation_config=, **kwargs)`` for ``model`` and a prompt of ``prompt_length``.

    ``supported`` names the GenerationConfig fields the framework implements. Raises TypeError for a
    ``generation_config`` that is not a GenerationConfig, an unknown keyword, or a field outside ``supported``
    set (by the caller) to a non-default value (``num_beams=4`` for TF); ``GenerationConfigError`` (a
    ValueError) for an out-of-range value; ValueError when ``max_length`` leaves no room after the prompt.
    Settings from the model's own generation config that the framework does not implement are not used.
    """
    if generation_config is not None and not isinstance(generation_config, GenerationConfig):
        raise TypeError(f"generation_config must be a tongues GenerationConfig; got "
                        f"{type(generation_config).__name__}. Pass settings as keyword arguments instead, e.g. "
                        "generate(ids, max_new_tokens=20).")
    config = copy.deepcopy(generation_config) if generation_config is not None else GenerationConfig()
    unknown = config.update(**{k: v for k, v in kwargs.items() if v is not None})
    if unknown:
        raise TypeError(f"generate() got unsupported arguments for {framework} models: {', '.join(sorted(unknown))}")
    for name in GENERATION_FIELDS:
        value = getattr(config, name)
        if name not in supported and value is not None and value != GENERATION_DEFAULTS.get(name):
            raise TypeError(f"{framework} generate does not support {name}={value!r} (it implements "
                            f"{', '.join(sorted(supported))}); use the PyTorch model for it")
    model_config = getattr(model, "generation_config", None) or GenerationConfig.from_model_config(model.config)
    config.update(**model_config.to_dict(), defaults_only=True)
    config.update(**GENERATION_DEFAULTS, defaults_only=True)
    eos = config.eos_token_id
    eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (eos,))
    pad = config.pad_token_id if config.pad_token_id is not None else (eos_ids[0] if eos_ids else 0)
    max_length = prompt_length + config.max_new_tokens if config.max_new_tokens is not None else config.max_length
    if max_length <= prompt_length:
        raise ValueError(f"max_length ({max_length}) must exceed the prompt length ({prompt_length}); raise "
                         "max_length or set max_new_tokens")
    return DecodeSettings(max_length=max_length, min_length=config.min_length, do_sample=config.do_sample,
                          temperature=config.temperature, top_k=config.top_k, top_p=config.top_p,
                          num_beams=config.num_beams, length_penalty=config.length_penalty,
                          early_stopping=config.early_stopping, pad_token_id=pad,
                          eos_token_ids=eos_ids)


def load_generation_config(pretrained: str, **hub_kwargs) -> GenerationConfig | None:
    """The checkpoint's ``generation_config.json`` as a GenerationConfig, or None when it has none."""
    from ..checkpoint.files import resolve_file

    if resolve_file(pretrained, GENERATION_CONFIG_NAME, required=False, **hub_kwargs) is None:
        return None
    return GenerationConfig.from_pretrained(pretrained, **hub_kwargs)
