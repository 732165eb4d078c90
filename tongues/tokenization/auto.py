"""``AutoTokenizer``: pick the tokenizer class a checkpoint folder asks for, and load it.

The class comes from ``tokenizer_config.json``'s ``tokenizer_class`` (``"BloomTokenizerFast"``,
``"XGLMTokenizer"``...): its family is found from the name, and the family package
(``tongues.models.<model_type>``, through ``tongues.registry``) exports the class. Without a
``tokenizer_class``, ``config.json``'s ``model_type`` picks the family and its ``TOKENIZERS``. A folder
with only ``tokenizer.json`` gets the generic ``PreTrainedTokenizerFast``.

``auto_map`` entries (custom code shipped with a checkpoint) are never imported or run.
"""

from __future__ import annotations

import os

from .. import registry
from .files import (
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    TokenizerFileError,
    hub_download_kwargs,
    read_json_file,
    resolve_tokenizer_files,
)
from .fast import PreTrainedTokenizerFast
from .slow import PreTrainedTokenizer

CONFIG_FILE = "config.json"

# Class names that are not a family's: the generic bases, under their Transformers 4 and 5 names.
_GENERIC_CLASSES = {
    "PreTrainedTokenizerFast": PreTrainedTokenizerFast,
    "TokenizersBackend": PreTrainedTokenizerFast,
    "PreTrainedTokenizer": PreTrainedTokenizer,
    "PythonBackend": PreTrainedTokenizer,
}

# Tokenizer-name prefixes that differ from the model_type of the family serving them.
_PREFIX_TO_MODEL_TYPE = {
    "chatglm4": "glm",
    "chatglm": "chatglm",
    "glm4": "glm",
}


def _family_of_class_name(class_name: str) -> str | None:
    """The model_type whose family should export ``class_name`` (``"XGLMTokenizerFast"`` -> ``"xglm"``)."""
    base = class_name[: -len("Fast")] if class_name.endswith("Fast") else class_name
    if not base.endswith("Tokenizer"):
        return None
    prefix = base[: -len("Tokenizer")].lower()
    model_type = _PREFIX_TO_MODEL_TYPE.get(prefix, prefix)
    return model_type if model_type in registry.FAMILIES else None


def _class_in_family(model_type: str, name: str | None):
    if name is None:
        return None
    if name in _GENERIC_CLASSES:
        return _GENERIC_CLASSES[name]
    return getattr(registry.family(model_type), name, None)


def _pick_from_family(model_type: str, use_fast: bool, wanted: str | None = None):
    """A class of the family: ``wanted`` (or its fast/slow sibling), else the family's TOKENIZERS entry."""
    family = registry.family(model_type)
    if wanted is not None:
        base = wanted[: -len("Fast")] if wanted.endswith("Fast") else wanted
        for name in (base + "Fast", base) if use_fast else (base, base + "Fast"):
            found = getattr(family, name, None)
            if isinstance(found, type):
                return found
    slow_name, fast_name = getattr(family, "TOKENIZERS", (None, None))
    for name in (fast_name, slow_name) if use_fast else (slow_name, fast_name):
        found = _class_in_family(model_type, name)
        if found is not None:
            return found
    return None


def tokenizer_class_from_name(class_name: str, use_fast: bool = True):
    """The tongues class for a ``tokenizer_class`` name; ``ValueError`` naming it when unknown."""
    if class_name in _GENERIC_CLASSES:
        return _GENERIC_CLASSES[class_name]
    model_type = _family_of_class_name(class_name)
    found = _pick_from_family(model_type, use_fast, class_name) if model_type is not None else None
    if found is None:
        known = [*_GENERIC_CLASSES, *(f"<{name}>Tokenizer[Fast]" for name in registry.FAMILIES)]
        raise ValueError(f"Unknown tokenizer_class {class_name!r}: tongues has no such tokenizer (known: {', '.join(known)}).")
    return found


class AutoTokenizer:
    """Loads the right tokenizer class for a checkpoint: ``AutoTokenizer.from_pretrained(path)``."""

    def __init__(self):
        raise TypeError("AutoTokenizer is not instantiated; use AutoTokenizer.from_pretrained(path).")

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *inputs,
        use_fast: bool = True,
        trust_remote_code: bool = False,
        cache_dir=None,
        force_download: bool = False,
        local_files_only: bool = False,
        token=None,
        revision: str | None = None,
        subfolder: str | None = None,
        **kwargs,
    ):
        """Load the tokenizer of a local folder or hub repo.

        Args:
            use_fast: prefer the ``tokenizers``-backed class when the family has both.
            trust_remote_code: refused when True; tongues never runs checkpoint code.
            **kwargs: forwarded to the class's ``from_pretrained`` (``padding_side="left"``...).
        """
        if trust_remote_code:
            raise ValueError(
                "trust_remote_code=True is refused: tongues never runs code downloaded with a checkpoint; "
                "AutoTokenizer loads the tokenizer classes tongues implements."
            )
        tokenizer_type = kwargs.pop("tokenizer_type", None)
        hub_kwargs = hub_download_kwargs(cache_dir, force_download, local_files_only, token, revision, subfolder)
        source = os.fspath(pretrained_model_name_or_path)
        files = resolve_tokenizer_files(
            source,
            {"tokenizer_config": TOKENIZER_CONFIG_FILE, "config": CONFIG_FILE, "tokenizer_file": TOKENIZER_FILE},
            **hub_kwargs,
        )
        tokenizer_class = cls._choose_class(source, files, use_fast, tokenizer_type)
        return tokenizer_class.from_pretrained(source, *inputs, **hub_kwargs, **kwargs)

    @staticmethod
    def _choose_class(source: str, files: dict[str, str | None], use_fast: bool, tokenizer_type: str | None):
        if tokenizer_type is not None:
            found = _pick_from_family(tokenizer_type, use_fast)
            if found is None:
                raise ValueError(f"tokenizer_type={tokenizer_type!r} names a family with no tokenizer.")
            return found
        if files["tokenizer_config"] is not None:
            config = read_json_file(files["tokenizer_config"], "tokenizer configuration")
            if not isinstance(config, dict):
                raise TokenizerFileError(f"{files['tokenizer_config']} must hold a JSON object.")
            class_name = config.get("tokenizer_class")
            if class_name is not None:
                if not isinstance(class_name, str):
                    raise TokenizerFileError(
                        f"{files['tokenizer_config']}: tokenizer_class must be a class name, got {class_name!r}."
                    )
                try:
                    return tokenizer_class_from_name(class_name, use_fast)
                except ValueError as err:
                    raise ValueError(f"{files['tokenizer_config']}: {err}") from None
        if files["config"] is not None:
            model_config = read_json_file(files["config"], "model configuration")
            model_type = model_config.get("model_type") if isinstance(model_config, dict) else None
            if model_type is not None:
                try:
                    found = _pick_from_family(model_type, use_fast)
                except ValueError as err:
                    raise ValueError(f"{files['config']}: {err}") from None
                if found is not None:
                    return found
        if files["tokenizer_file"] is not None:
            return PreTrainedTokenizerFast
        raise TokenizerFileError(
            f"Cannot tell which tokenizer {source} needs: no tokenizer_class in {TOKENIZER_CONFIG_FILE}, no "
            f"model_type in {CONFIG_FILE}, and no {TOKENIZER_FILE}."
        )

