"""``PretrainedConfig``: a model's hyper-parameters, read from and written to ``config.json``.

A family config subclasses :class:`PretrainedConfig`, sets ``model_type``, declares its own
arguments in ``__init__`` and passes the rest to ``super().__init__(**kwargs)``. Keys the class does
not know are kept as attributes and written back on save, so a config survives a round trip
through tongues untouched. ``attribute_map`` gives the common names (``hidden_size``,
``num_hidden_layers`` ...) to a family's own names (``n_embed``, ``n_layer`` ...).

Example::

    config = BloomConfig.from_pretrained("path/to/bloom-560m")
    config.num_hidden_layers          # 24, read through the alias of ``n_layer``
    config.save_pretrained("out/")    # writes out/config.json atomically
"""

from __future__ import annotations

import copy
import difflib
import inspect
import json
import logging
import os
from typing import Any, ClassVar

from .checkpoint.files import atomic_write_text, resolve_file

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
TONGUES_VERSION = "0.1.0"


class ConfigError(ValueError):
    """A config file or argument is malformed; the message names the file, key or value."""


# Arguments every config accepts, with their defaults (the names and defaults users know).
_COMMON_DEFAULTS: dict[str, Any] = {
    "return_dict": True,
    "output_hidden_states": False,
    "output_attentions": False,
    "dtype": None,
    "tie_word_embeddings": True,
    "is_encoder_decoder": False,
    "is_decoder": False,
    "add_cross_attention": False,
    "architectures": None,
    "problem_type": None,
    "bos_token_id": None,
    "eos_token_id": None,
    "pad_token_id": None,
    "sep_token_id": None,
    "decoder_start_token_id": None,
    "chunk_size_feed_forward": 0,
    "pruned_heads": None,
    "tokenizer_class": None,
}

# Norm epsilons of every family: a string or a negative value would only fail (or give NaN) in the forward.
_POSITIVE_FLOAT_FIELDS = ("layer_norm_epsilon", "layer_norm_eps", "rms_norm_eps")

_PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")

# Keywords of the reference's from_pretrained that tongues does not take, with what to do instead.
_KEYWORD_ADVICE = {
    "load_in_8bit": "tongues quantizes with quantization=\"int8\" (weight-only, CPU)",
    "load_in_4bit": "tongues quantizes with quantization=\"int4\" (weight-only, CPU)",
    "quantization_config": "tongues quantizes with quantization=\"int8\" or quantization=\"int4\"",
    "use_auth_token": "pass token= instead",
    "from_tf": "tongues reads PyTorch and safetensors weights; use TF<Model>.from_pretrained for TF weights",
    "from_flax": "tongues reads PyTorch and safetensors weights; use Flax<Model>.from_pretrained for Flax weights",
}

# Keys that describe the saving library, not the model: read and dropped.
_VOLATILE_KEYS = ("transformers_version", "tongues_version", "_name_or_path", "_commit_hash")


class PretrainedConfig:
    """Base class of every tongues config.

    Args (all keyword, shared by every family): ``return_dict``, ``output_hidden_states``,
    ``output_attentions``, ``dtype`` (alias ``torch_dtype``), ``tie_word_embeddings``,
    ``architectures``, ``problem_type``, ``id2label``/``label2id``/``num_labels``, the special token
    ids, and any further key, which is kept.

    Raises:
        ConfigError: an argument has the wrong type or value (the message names it).
    """

    model_type: ClassVar[str] = ""
    attribute_map: ClassVar[dict[str, str]] = {}
    # Names whose value must be a positive int when set; families extend it.
    positive_int_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **kwargs: Any) -> None:
        if "torch_dtype" in kwargs:
            torch_dtype = kwargs.pop("torch_dtype")
            kwargs.setdefault("dtype", torch_dtype)
        for key in _VOLATILE_KEYS:
            kwargs.pop(key, None)
        kwargs.pop("model_type", None)
        self._name_or_path = ""
        for key, default in _COMMON_DEFAULTS.items():
            setattr(self, key, kwargs.pop(key, default))
        self._set_labels(kwargs.pop("id2label", None), kwargs.pop("label2id", None), kwargs.pop("num_labels", None))
        for key, value in kwargs.items():
            try:
                setattr(self, key, value)
            except AttributeError as err:
                raise ConfigError(f"{type(self).__name__}: cannot set {key!r}: {err}") from None
        self.warn_close_unknown_keys(kwargs, type(self).__name__)
        self.validate()

    # -- aliases -------------------------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        key = type(self).attribute_map.get(key, key)
        super().__setattr__(key, value)

    def __getattr__(self, key: str) -> Any:
        # Only called when normal lookup fails: follow an alias.
        mapped = type(self).attribute_map.get(key)
        if mapped is not None:
            return getattr(self, mapped)
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    @property
    def torch_dtype(self):
        return self.dtype

    # -- labels --------------------------------------------------------------------------
    def _set_labels(self, id2label, label2id, num_labels) -> None:
        if id2label is not None:
            if not isinstance(id2label, dict):
                raise ConfigError(f"id2label must be a dict of index -> label; got {type(id2label).__name__}")
            try:
                id2label = {int(k): v for k, v in id2label.items()}
            except (TypeError, ValueError):
                raise ConfigError(f"id2label keys must be integers; got {list(id2label)[:5]}") from None
        if num_labels is not None:
            if not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 1:
                raise ConfigError(f"num_labels must be a positive integer; got {num_labels!r}")
            if id2label is None or len(id2label) != num_labels:
                id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
        if id2label is None:
            id2label = {0: "LABEL_0", 1: "LABEL_1"}
        if label2id is None:
            label2id = {v: k for k, v in id2label.items()}
        elif not isinstance(label2id, dict):
            raise ConfigError(f"label2id must be a dict of label -> index; got {type(label2id).__name__}")
        self.id2label = id2label
        self.label2id = dict(label2id)

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, value: int) -> None:
        self._set_labels(None, None, value)

    # -- checks --------------------------------------------------------------------------
    def validate(self) -> None:
        """Check types and ranges; raise :class:`ConfigError` naming the key."""
        for name in type(self).positive_int_fields:
            value = getattr(self, name, None)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{type(self).__name__}.{name} must be a positive integer; got {value!r}")
        for name in _POSITIVE_FLOAT_FIELDS:
            value = self.__dict__.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
                raise ConfigError(f"{type(self).__name__}.{name} must be a positive number; got {value!r}")
        if self.problem_type is not None and self.problem_type not in _PROBLEM_TYPES:
            raise ConfigError(f"problem_type must be one of {_PROBLEM_TYPES}; got {self.problem_type!r}")
        for name in ("bos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ConfigError(f"{name} must be an integer or null; got {value!r}")
        eos = self.eos_token_id
        if eos is not None:
            ids = eos if isinstance(eos, (list, tuple)) else [eos]
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                raise ConfigError(f"eos_token_id must be an integer or a list of integers; got {eos!r}")

    def check_divisible(self, numerator: str, denominator: str) -> None:
        """Raise unless ``getattr(numerator)`` is divisible by ``getattr(denominator)``."""
        a, b = getattr(self, numerator), getattr(self, denominator)
        for name, value in ((numerator, a), (denominator, b)):
            # Checked here too: a None or float would otherwise fail below with a bare TypeError.
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{type(self).__name__}.{name} must be a positive integer; got {value!r}")
        if b and a % b:
            raise ConfigError(
                f"{type(self).__name__}: {numerator}={a} must be divisible by {denominator}={b}"
            )

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every attribute, JSON-ready, with ``model_type`` and the library version."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if key.startswith("_"):
                continue
            out[key] = copy.deepcopy(value)
        out["model_type"] = self.model_type
        if out.get("dtype") is not None and not isinstance(out["dtype"], str):
            out["dtype"] = str(out["dtype"]).replace("torch.", "")
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["tongues_version"] = TONGUES_VERSION
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PretrainedConfig) and self.to_dict() == other.to_dict()

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write ``config.json`` into ``save_directory`` (created if needed), atomically."""
        if os.path.isfile(save_directory):
            raise ConfigError(f"save_directory {save_directory!s} is a file, not a directory")
        os.makedirs(save_directory, exist_ok=True)
        atomic_write_text(os.path.join(save_directory, CONFIG_NAME), self.to_json_string())

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> "PretrainedConfig":
        if not isinstance(config_dict, dict):
            raise ConfigError(f"a config must be a JSON object; got {type(config_dict).__name__}")
        merged = {**config_dict, **kwargs}
        try:
            return cls(**merged)
        except ConfigError:
            raise
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{cls.__name__}: invalid config: {err}") from None

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> dict[str, Any]:
        """Read a JSON object from ``path``, with errors naming the file."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object; found {type(data).__name__}")
        return data

    @classmethod
    def get_config_dict(cls, pretrained: str | os.PathLike, **hub_kwargs: Any) -> dict[str, Any]:
        path = resolve_file(pretrained, CONFIG_NAME, **hub_kwargs)
        return cls.load_json(path)

    @classmethod
    def from_pretrained(cls, pretrained: str | os.PathLike, **kwargs: Any) -> "PretrainedConfig":
        """Load from a directory holding ``config.json``, a path to the file, or a hub id.

        Hub keywords (``revision``, ``cache_dir``, ``local_files_only``, ``token``) are passed to
        ``huggingface_hub``; other keywords override config values.
        """
        hub_kwargs = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
        kwargs.pop("trust_remote_code", None) and _refuse_remote_code()
        data = cls.get_config_dict(pretrained, **hub_kwargs)
        found = data.get("model_type")
        if cls.model_type and found and found != cls.model_type and found not in cls.accepted_model_types():
            raise ConfigError(
                f"{pretrained}: config.json has model_type {found!r}, but {cls.__name__} reads {cls.model_type!r}"
            )
        config = cls.from_dict(cls.convert_foreign(data), **kwargs)
        config._name_or_path = str(pretrained)
        return config

    @classmethod
    def known_keys(cls) -> frozenset[str]:
        """Every key this class declares: its ``__init__`` arguments (and its bases'), the common keys, aliases."""
        keys = set(_COMMON_DEFAULTS) | {"torch_dtype", "id2label", "label2id", "num_labels"}
        for klass in cls.__mro__:
            keys |= set(getattr(klass, "attribute_map", {}))
            init = klass.__dict__.get("__init__")
            if init is not None:
                keys |= {name for name, p in inspect.signature(init).parameters.items()
                         if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        return frozenset(keys)

    def warn_close_unknown_keys(self, keys, where: str) -> None:
        """Log a warning for each of ``keys`` this class does not declare but that is close to one it does
        (``n_heads`` for ``n_head``): such a key is kept, yet the model is built without it."""
        known = self.known_keys()
        for key in keys:
            if key in known or key.startswith("_"):
                continue
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
            if close:
                logger.warning("%s: unknown key %r is kept but not used; did you mean %r?", where, key, close[0])

    @classmethod
    def accepted_model_types(cls) -> tuple[str, ...]:
        """Other model_types this config can convert from (see :meth:`convert_foreign`)."""
        return ()

    @classmethod
    def convert_foreign(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Hook: map a foreign layout's config dict to this class's keys (default: unchanged)."""
        return data


def check_from_pretrained_keywords(owner: str, keywords: dict[str, Any], config: PretrainedConfig) -> None:
    """Raise ``TypeError`` for a keyword of ``owner`` (``"BloomForCausalLM.from_pretrained"``) that is neither
    one of its options nor a field of ``config`` (declared, or present in its config.json).

    The message says what to use instead: ``quantization="int8"`` for ``load_in_8bit``, the close known
    name for a misspelling (``n_heads`` -> ``n_head``).
    """
    known = config.known_keys() | {k for k in config.__dict__ if not k.startswith("_")}
    for key in keywords:
        if key in known:
            continue
        advice = _KEYWORD_ADVICE.get(key)
        if advice is None:
            close = difflib.get_close_matches(key, sorted(known | set(_FROM_PRETRAINED_OPTIONS)), n=1, cutoff=0.75)
            advice = (f"did you mean {close[0]!r}?" if close else
                      f"it is neither a from_pretrained option nor a {type(config).__name__} field, and tongues "
                      f"does not ignore keywords silently")
        raise TypeError(f"{owner}() got an unexpected keyword argument {key!r}: {advice}")


# from_pretrained's own options (PreTrainedModel.from_pretrained), offered as close matches for misspellings.
_FROM_PRETRAINED_OPTIONS = ("config", "dtype", "torch_dtype", "output_loading_info", "ignore_mismatched_sizes",
                            "trust_remote_code", "quantization", "device", "revision", "cache_dir",
                            "local_files_only", "token", "force_download", "subfolder", "device_map",
                            "low_cpu_mem_usage", "use_safetensors", "attn_implementation")


def _refuse_remote_code() -> None:
    raise ConfigError(
        "trust_remote_code is not supported: tongues never executes code shipped with a checkpoint. "
        "Every supported family is built in."
    )
