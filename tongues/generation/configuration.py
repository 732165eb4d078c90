"""``GenerationConfig``: the knobs of ``generate``, read from and written to ``generation_config.json``.

Every field defaults to ``None``, meaning "not set": ``generate`` fills unset fields first from the
model's own generation config, then from :data:`GENERATION_DEFAULTS` (``max_length=20`` new
tokens, ``num_beams=1``, ``top_k=50`` ...). Keeping "unset" apart from "set to the default value" is
what lets a saved file hold only what its author chose, and lets ``generate`` tell
``max_length=20`` given by a user (a total length) from the default (20 new tokens) -- the
reference (transformers 5.x) draws the same line.

Example::

    config = GenerationConfig(max_new_tokens=32, do_sample=True, top_p=0.9)
    unused = config.update(temperature=0.7, foo=1)   # -> {"foo": 1}
    config.save_pretrained("out/")                   # writes out/generation_config.json
    GenerationConfig.from_pretrained("out/") == config
"""

from __future__ import annotations

import copy
import json
import logging
import os
from typing import Any

GENERATION_CONFIG_NAME = "generation_config.json"

logger = logging.getLogger(__name__)

# Applied by `generate` to fields still unset after the model's own generation config.
GENERATION_DEFAULTS: dict[str, Any] = {
    "max_length": 20,
    "min_length": 0,
    "do_sample": False,
    "use_cache": True,
    "early_stopping": False,
    "num_beams": 1,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "typical_p": 1.0,
    "repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "num_return_sequences": 1,
    "output_scores": False,
    "return_dict_in_generate": False,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "remove_invalid_values": False,
    "exponential_decay_length_penalty": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "encoder_repetition_penalty": 1.0,
}

# The fields a GenerationConfig knows, in the order they are documented (names as users know them).
GENERATION_FIELDS: tuple[str, ...] = (
    # length
    "max_length", "max_new_tokens", "min_length", "min_new_tokens", "early_stopping", "max_time",
    "stop_strings",
    # strategy
    "do_sample", "num_beams",
    # cache
    "use_cache", "cache_implementation", "cache_config", "max_cache_len",
    # logits manipulation
    "temperature", "top_k", "top_p", "min_p", "top_h", "typical_p", "epsilon_cutoff", "eta_cutoff",
    "repetition_penalty", "encoder_repetition_penalty", "length_penalty", "no_repeat_ngram_size",
    "bad_words_ids", "renormalize_logits", "forced_bos_token_id", "forced_eos_token_id",
    "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens",
    "begin_suppress_tokens", "sequence_bias", "token_healing", "guidance_scale", "watermarking_config",
    # outputs
    "num_return_sequences", "output_attentions", "output_hidden_states", "output_scores",
    "output_logits", "return_dict_in_generate",
    # special tokens
    "pad_token_id", "bos_token_id", "eos_token_id", "encoder_no_repeat_ngram_size",
    "decoder_start_token_id",
    # chunked prefill
    "prefill_chunk_size",
)

# Keys describing who wrote a file, not how to generate: kept aside, never compared.
METADATA_FIELDS = ("_from_model_config", "transformers_version", "tongues_version", "_commit_hash")
TONGUES_VERSION = "0.1.0"

# Only sampling reads these; set without do_sample they are ignored (a warning, not an error).
_SAMPLING_ONLY = {"temperature": 1.0, "top_p": 1.0, "min_p": None, "top_h": None, "typical_p": 1.0, "top_k": 50,
                  "epsilon_cutoff": 0.0, "eta_cutoff": 0.0}
_BEAM_ONLY = {"early_stopping": False, "length_penalty": 1.0}
EXTRA_OUTPUT_FLAGS = ("output_attentions", "output_hidden_states", "output_scores", "output_logits")
# Arguments of `generate` itself that people put in the config by mistake.
_GENERATE_ARGUMENTS = ("logits_processor", "stopping_criteria", "prefix_allowed_tokens_fn", "synced_gpus",
                       "assistant_model", "streamer", "negative_prompt_ids", "negative_prompt_attention_mask")


class GenerationConfigError(ValueError):
    """A generation setting is out of range or of the wrong type; the message names it and its value."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class GenerationConfig:
    """Parameters of text generation.

    Args (keyword only, all optional; ``None`` means "unset"):
        max_length / max_new_tokens: total length cap / new-token cap (``max_new_tokens`` wins).
        min_length / min_new_tokens: end-of-sequence ids are suppressed until reached.
        do_sample, num_beams, num_return_sequences: the decoding strategy.
        temperature, top_k, top_p, min_p, typical_p, epsilon_cutoff, eta_cutoff: sampling warpers.
        repetition_penalty, no_repeat_ngram_size, bad_words_ids, sequence_bias, suppress_tokens,
        begin_suppress_tokens, forced_bos_token_id, forced_eos_token_id,
        exponential_decay_length_penalty, remove_invalid_values, renormalize_logits: score processors.
        length_penalty, early_stopping (``True``/``False``/``"never"``): beam search.
        output_scores, output_logits, output_attentions, output_hidden_states,
        return_dict_in_generate: what ``generate`` returns.
        pad_token_id, bos_token_id, eos_token_id (int or list of ints): special tokens.
        Any other key is kept as an attribute (and saved), except when reading a model config.

    Raises:
        GenerationConfigError: a value is out of range (the message names the argument and value).
    """

    def __init__(self, **kwargs: Any) -> None:
        for name in GENERATION_FIELDS:
            setattr(self, name, kwargs.pop(name, None))
        kwargs.pop("_commit_hash", None)
        self._from_model_config = kwargs.pop("_from_model_config", None)
        self.transformers_version = kwargs.pop("transformers_version", None)
        self.tongues_version = kwargs.pop("tongues_version", None)
        # Reading a model's config.json: its non-generation keys (hidden_size ...) are not ours to keep.
        if not self._from_model_config:
            for key, value in kwargs.items():
                setattr(self, key, value)
        self.validate()

    # -- checks --------------------------------------------------------------------------
    def validate(self, strict: bool = False) -> None:
        """Raise :class:`GenerationConfigError` for values no generation can use.

        Settings that are merely ignored (a sampling flag without ``do_sample``, an output flag
        without ``return_dict_in_generate``) are logged as warnings, or raised with ``strict=True``.
        """
        self._check_ranges()
        issues = self._ignored_settings()
        if issues:
            message = "\n".join(f"- `{name}`: {text}" for name, text in issues.items())
            if strict:
                raise GenerationConfigError("GenerationConfig has settings that would be ignored:\n" + message)
            logger.info("GenerationConfig has settings that would be ignored:\n%s", message)

    def _check_ranges(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise GenerationConfigError(f"`{name}` must be {expected}; got {getattr(self, name)!r}")

        for name in ("max_length", "num_beams", "num_return_sequences", "max_cache_len", "prefill_chunk_size"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                fail(name, "a positive integer")
        if self.max_new_tokens is not None and (not _is_int(self.max_new_tokens) or self.max_new_tokens <= 0):
            fail("max_new_tokens", "a positive integer (the number of tokens to generate)")
        for name in ("min_length", "min_new_tokens", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                fail(name, "a non-negative integer")
        if self.early_stopping not in (None, True, False, "never"):
            fail("early_stopping", "True, False or 'never'")
        if self.max_time is not None and (not _is_number(self.max_time) or self.max_time <= 0):
            fail("max_time", "a positive number of seconds")
        if self.do_sample is not None and not isinstance(self.do_sample, bool):
            fail("do_sample", "True or False")
        if self.temperature is not None:
            if not _is_number(self.temperature):
                fail("temperature", "a number")
            if self.do_sample is True and not self.temperature > 0:
                raise GenerationConfigError(
                    f"`temperature` must be strictly positive when sampling; got {self.temperature!r}. "
                    "For greedy decoding set `do_sample=False`."
                )
        if self.top_k is not None and (not _is_int(self.top_k) or self.top_k < 0):
            fail("top_k", "a non-negative integer (0 disables top-k)")
        if self.top_p is not None and (not _is_number(self.top_p) or not 0 < self.top_p <= 1):
            fail("top_p", "a float in (0, 1]")
        if self.typical_p is not None and (not _is_number(self.typical_p) or not 0 < self.typical_p <= 1):
            fail("typical_p", "a float in (0, 1]")
        if self.min_p is not None and (not _is_number(self.min_p) or not 0 <= self.min_p <= 1):
            fail("min_p", "a float in [0, 1]")
        if self.top_h is not None and (not _is_number(self.top_h) or not 0 < self.top_h <= 1):
            fail("top_h", "a float in (0, 1]")
        for name in ("epsilon_cutoff", "eta_cutoff"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not 0 <= value < 1):
                fail(name, "a float in [0, 1) (0 disables it)")
        for name in ("repetition_penalty", "encoder_repetition_penalty"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or value <= 0):
                fail(name, "a strictly positive float (1.0 means no penalty)")
        if self.length_penalty is not None and not _is_number(self.length_penalty):
            fail("length_penalty", "a number")
        for name in ("pad_token_id", "bos_token_id", "forced_bos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is not None and not _is_int(value):
                fail(name, "an integer token id")
        for name in ("eos_token_id", "forced_eos_token_id"):
            value = getattr(self, name)
            if value is not None:
                ids = value if isinstance(value, (list, tuple)) else [value]
                if not ids or not all(_is_int(i) for i in ids):
                    fail(name, "a token id or a non-empty list of token ids")
        if self.bad_words_ids is not None:
            words = self.bad_words_ids
            if (
                not isinstance(words, list) or not words
                or not all(isinstance(w, list) and w and all(_is_int(t) and t >= 0 for t in w) for w in words)
            ):
                fail("bad_words_ids", "a non-empty list of non-empty lists of non-negative token ids")
        for name in ("suppress_tokens", "begin_suppress_tokens"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (list, tuple)) and all(_is_int(t) for t in value)):
                fail(name, "a list of token ids")
        decay = self.exponential_decay_length_penalty
        if decay is not None and not (
            isinstance(decay, (list, tuple)) and len(decay) == 2 and _is_int(decay[0]) and _is_number(decay[1])
        ):
            fail("exponential_decay_length_penalty", "a pair (start_index, decay_factor)")
        if self.num_return_sequences is not None and self.num_return_sequences > 1:
            if self.num_beams is None or self.num_beams == 1:
                if not self.do_sample:
                    raise GenerationConfigError(
                        "Greedy decoding (do_sample=False, num_beams=1) returns one sequence per prompt; "
                        f"got `num_return_sequences`={self.num_return_sequences}. Set do_sample=True or num_beams>1."
                    )
            elif self.num_return_sequences > self.num_beams:
                raise GenerationConfigError(
                    f"`num_return_sequences` ({self.num_return_sequences}) must be at most `num_beams` "
                    f"({self.num_beams}): beam search can only return the beams it keeps."
                )
        if self.suppress_tokens is not None:
            for name in ("forced_bos_token_id", "forced_eos_token_id"):
                forced = getattr(self, name)
                if forced is None:
                    continue
                forced = {forced} if _is_int(forced) else set(forced)
                if forced and forced.issubset(set(self.suppress_tokens)):
                    raise GenerationConfigError(
                        f"Every token of `{name}` ({sorted(forced)}) is also in `suppress_tokens`: forcing a "
                        "suppressed token leaves no finite score. Remove the overlap."
                    )
        for name in _GENERATE_ARGUMENTS:
            if name in self.__dict__:
                raise GenerationConfigError(
                    f"`{name}` is an argument of `generate()`, not a GenerationConfig field; pass it to generate."
                )

    def _ignored_settings(self) -> dict[str, str]:
        issues: dict[str, str] = {}
        if self.do_sample is not True:
            for name, neutral in _SAMPLING_ONLY.items():
                value = getattr(self, name)
                if value is not None and value != neutral:
                    issues[name] = f"set to {value!r} but only used when sampling; set do_sample=True or unset it."
        if self.num_beams is None or self.num_beams == 1:
            for name, neutral in _BEAM_ONLY.items():
                value = getattr(self, name)
                if value is not None and value != neutral:
                    issues[name] = f"set to {value!r} but only used by beam search; set num_beams>1 or unset it."
        if self.return_dict_in_generate is not True:
            for name in EXTRA_OUTPUT_FLAGS:
                if getattr(self, name) is True:
                    issues[name] = "ignored unless return_dict_in_generate=True."
        return issues

    # -- strategy ------------------------------------------------------------------------
    @property
    def generation_mode(self) -> str:
        """``"greedy_search"``, ``"sample"``, ``"beam_search"`` or ``"beam_sample"``."""
        if self.num_beams is None or self.num_beams == 1:
            return "sample" if self.do_sample is True else "greedy_search"
        return "beam_sample" if self.do_sample is True else "beam_search"

    def get_generation_mode(self, assistant_model: Any = None) -> str:
        return self.generation_mode

    # -- updating ------------------------------------------------------------------------
    def update(self, defaults_only: bool = False, allow_custom_entries: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Set the attributes named in ``kwargs``; return the kwargs that are not attributes.

        ``defaults_only=True`` only fills attributes that are still ``None``;
        ``allow_custom_entries=True`` also adds keys the config does not have yet.
        """
        used = []
        for key, value in kwargs.items():
            if key in METADATA_FIELDS:
                used.append(key)
                continue
            if hasattr(self, key):
                if not defaults_only or getattr(self, key) is None:
                    setattr(self, key, value)
                used.append(key)
            elif allow_custom_entries:
                setattr(self, key, value)
                used.append(key)
        self.validate()
        return {key: value for key, value in kwargs.items() if key not in used}

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every attribute (unset ones as ``None``), with the writing library's version."""
        out = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("_original_hash",)}
        out.pop("_commit_hash", None)
        out["tongues_version"] = TONGUES_VERSION
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        """Only what differs from ``GenerationConfig()`` -- what a saved file holds."""
        default = GenerationConfig().to_dict()
        return {
            key: value
            for key, value in self.to_dict().items()
            if key not in default or key == "tongues_version" or value != default[key]
        }

    def to_json_string(self, use_diff: bool = True, ignore_metadata: bool = False) -> str:
        data = self.to_diff_dict() if use_diff else self.to_dict()
        if ignore_metadata:
            for key in METADATA_FIELDS:
                data.pop(key, None)
        return json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n"

    def to_json_file(self, path: str | os.PathLike, use_diff: bool = True) -> None:
        from ..checkpoint.files import atomic_write_text

        atomic_write_text(os.fspath(path), self.to_json_string(use_diff=use_diff))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenerationConfig):
            return False
        return self.to_json_string(use_diff=False, ignore_metadata=True) == other.to_json_string(
            use_diff=False, ignore_metadata=True
        )

    def __hash__(self) -> int:
        return hash(self.to_json_string(ignore_metadata=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string(ignore_metadata=True)}"

    def save_pretrained(self, save_directory: str | os.PathLike, config_file_name: str | None = None) -> None:
        """Write ``generation_config.json`` (only the fields that were set) into ``save_directory``.

        A config changed since it was loaded must be free of ignored settings (checked strictly),
        so a contradictory file is never written; an unchanged loaded config is saved as it came.
        """
        modified = getattr(self, "_original_hash", None) != hash(self)
        try:
            self.validate(strict=modified)
        except GenerationConfigError as err:
            raise GenerationConfigError(f"{err}\nFix these settings to save the generation config.") from None
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise GenerationConfigError(f"save_directory {save_directory} is a file, not a directory")
        os.makedirs(save_directory, exist_ok=True)
        self.to_json_file(os.path.join(save_directory, config_file_name or GENERATION_CONFIG_NAME))

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> "GenerationConfig":
        """Build from a dict; ``kwargs`` override it. ``return_unused_kwargs=True`` also returns unknown kwargs."""
        if not isinstance(config_dict, dict):
            raise GenerationConfigError(f"a generation config must be a JSON object; got {type(config_dict).__name__}")
        return_unused = kwargs.pop("return_unused_kwargs", False)
        config = cls(**{**config_dict, **kwargs})
        unused = config.update(**kwargs)
        return (config, unused) if return_unused else config

    @classmethod
    def from_pretrained(
        cls, pretrained: str | os.PathLike, config_file_name: str | None = None, **kwargs: Any
    ) -> "GenerationConfig":
        """Load ``generation_config.json`` from a directory, a path to the file, or a hub id.

        Hub keywords (``revision``, ``cache_dir``, ``local_files_only``, ``token``) go to
        ``huggingface_hub``; other keywords override loaded values.
        """
        from ..checkpoint.files import resolve_file

        hub_kwargs = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
        name = config_file_name or GENERATION_CONFIG_NAME
        path = resolve_file(pretrained, name, **hub_kwargs)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise GenerationConfigError(f"{path} is not a valid JSON file: {err}") from None
        if not isinstance(data, dict):
            raise GenerationConfigError(f"{path} must hold a JSON object; found {type(data).__name__}")
        if kwargs.pop("_from_model_config", False):
            return cls.from_model_config(data)
        try:
            result = cls.from_dict(data, **kwargs)
        except GenerationConfigError as err:
            raise GenerationConfigError(f"{path}: {err}") from None
        config = result[0] if isinstance(result, tuple) else result
        config._original_hash = hash(config)
        return result

    @classmethod
    def from_model_config(cls, model_config: Any) -> "GenerationConfig":
        """Take the generation fields (special token ids, ``use_cache`` ...) a model config carries.

        ``model_config`` is a config object with ``to_dict()`` or a plain dict (e.g. a ``config.json``).
        """
        if isinstance(model_config, dict):
            config_dict = dict(model_config)
        elif hasattr(model_config, "to_dict"):
            config_dict = model_config.to_dict()
        else:
            raise TypeError(f"from_model_config expects a config or a dict; got {type(model_config).__name__}")
        config_dict.pop("_from_model_config", None)
        config_dict = {k: v for k, v in config_dict.items() if v is not None}
        config = cls.from_dict(config_dict, _from_model_config=True)
        # Composite configs keep decoder settings in a nested text config: use those when still unset.
        for nested in ("decoder", "generator", "text_config"):
            text_config = config_dict.get(nested)
            if isinstance(text_config, dict):
                for name in GENERATION_FIELDS:
                    if getattr(config, name) is None and text_config.get(name) is not None:
                        setattr(config, name, text_config[name])
                break
        if not config.return_dict_in_generate and any(getattr(config, f, False) for f in EXTRA_OUTPUT_FLAGS):
            config.return_dict_in_generate = True
        config._original_hash = hash(config)
        return config


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
