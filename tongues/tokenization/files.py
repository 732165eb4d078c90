"""Tokenizer files: finding, reading and writing what ``from_pretrained`` / ``save_pretrained`` use.

A tokenizer folder holds ``tokenizer_config.json`` (init arguments, added tokens), optionally
``special_tokens_map.json`` and ``added_tokens.json`` (older layouts), chat templates
(``chat_template.jinja``, ``additional_chat_templates/*.jinja``) and the vocabulary files of the
class (``vocab_files_names``: ``tokenizer.json``, ``sentencepiece.bpe.model``...). This module
resolves them in a local folder or a hub repo, turns them into the keyword arguments of the
tokenizer class, and writes them back atomically. Errors name the file at fault.

Paths written inside a config are never followed and ``auto_map`` code is never imported: only
files found next to the config are read.
"""

from __future__ import annotations

import copy
import glob
import json
import os
from collections.abc import Mapping
from enum import Enum
from typing import Any

from tokenizers import AddedToken

from ..checkpoint.files import CheckpointError, atomic_write_text, resolve_file, staged_directory

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
TOKENIZER_FILE = "tokenizer.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
CHAT_TEMPLATE_DIR = "additional_chat_templates"

SPECIAL_TOKENS_ATTRIBUTES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)

# Keys a tokenizer_config.json may carry that describe where files were, not how to tokenize.
# They are dropped on load and never written back.
_BOOKKEEPING_KEYS = frozenset(
    {
        "name_or_path",
        "special_tokens_map_file",
        "tokenizer_file",
        "vocab_file",
        "merges_file",
        "tokenizer_object",
        "files_loaded",
        "is_local",
        "local_files_only",
        "backend",
        "device_map",
        "slow_tokenizer_class",
        "auto_map",
        "tokenizer_class",
        "init_inputs",
        "added_tokens_decoder",
        "chat_template",
    }
)


# Of the bookkeeping keys, these are read back by from_pretrained.
_KEPT_ON_LOAD = frozenset({"added_tokens_decoder", "chat_template"})

_MISSING = object()


class TokenizerFileError(CheckpointError):
    """A tokenizer file is missing, unreadable or malformed; the message names the file."""


def _added_token_state(token: AddedToken) -> dict[str, Any]:
    return {
        "content": token.content,
        "lstrip": token.lstrip,
        "normalized": token.normalized,
        "rstrip": token.rstrip,
        "single_word": token.single_word,
        "special": token.special,
    }


_ADDED_TOKEN_FIELDS = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")


def _added_token_from_state(state: Any, source: str | None) -> AddedToken:
    if isinstance(state, AddedToken):
        return state
    if isinstance(state, str):
        return AddedToken(state, special=True, normalized=False)
    if not isinstance(state, dict) or "content" not in state:
        raise TokenizerFileError(f"{source}: an added token must be an object with a 'content' field, got {state!r}.")
    fields = {key: value for key, value in state.items() if key in _ADDED_TOKEN_FIELDS}
    return AddedToken(**fields)


def _decode_added_token_values(value: Any, source: str | None) -> Any:
    """Turn the ``{"__type": "AddedToken", ...}`` objects of a config back into AddedTokens."""
    if isinstance(value, dict):
        if value.get("__type") == "AddedToken":
            return _added_token_from_state(value, source)
        return {key: _decode_added_token_values(item, source) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode_added_token_values(item, source) for item in value]
    return value


def _serializable(value: Any) -> Any:
    """JSON-ready copy of a config: AddedTokens become tagged objects, tuples lists."""
    if isinstance(value, AddedToken):
        return {"__type": "AddedToken", **_added_token_state(value)}
    if isinstance(value, Mapping):
        return {str(key): _serializable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serializable(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


def _to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def read_json_file(path: str, what: str) -> Any:
    """Parse the JSON file ``path``; errors name the file and the position of the fault."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise TokenizerFileError(
            f"The {what} file {path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})."
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise TokenizerFileError(f"Could not read the {what} file {path}: {err}.") from None


def read_text_file(path: str, what: str) -> str:
    """The UTF-8 text of ``path``; errors name the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise TokenizerFileError(f"Could not read the {what} file {path}: {err}.") from None


def hub_download_kwargs(cache_dir, force_download, local_files_only, token, revision, subfolder) -> dict[str, Any]:
    """The download arguments of ``from_pretrained`` that were set, as ``resolve_file`` takes them."""
    hub_kwargs: dict[str, Any] = {}
    if cache_dir is not None:
        hub_kwargs["cache_dir"] = os.fspath(cache_dir)
    if force_download:
        hub_kwargs["force_download"] = True
    if local_files_only:
        hub_kwargs["local_files_only"] = True
    if token is not None:
        hub_kwargs["token"] = token
    if revision is not None:
        hub_kwargs["revision"] = revision
    if subfolder:
        hub_kwargs["subfolder"] = subfolder
    return hub_kwargs


def resolve_tokenizer_files(source: str, file_ids: dict[str, str], **hub_kwargs) -> dict[str, str | None]:
    """Path of each file (``file_id -> filename``) in a local folder or hub repo; ``None`` when absent.

    Raises ``TokenizerFileError`` when ``source`` is neither an existing folder nor a reachable hub
    repo holding at least one of the files.
    """
    folder = source
    subfolder = hub_kwargs.get("subfolder")
    if os.path.isdir(source) and subfolder:
        folder = os.path.join(source, subfolder)
    if os.path.isdir(folder):
        return {
            file_id: (os.path.join(folder, name) if os.path.isfile(os.path.join(folder, name)) else None)
            for file_id, name in file_ids.items()
        }
    resolved: dict[str, str | None] = {}
    first_error: CheckpointError | None = None
    for file_id, name in file_ids.items():
        try:
            resolved[file_id] = resolve_file(source, name, required=False, **hub_kwargs)
        except CheckpointError as err:
            # Offline, a hub file that was never cached is "absent"; all absent is an error below.
            first_error = first_error or err
            resolved[file_id] = None
    if not any(resolved.values()):
        detail = f": {first_error}" if first_error else ""
        raise TokenizerFileError(
            f"Could not load a tokenizer from {source!r}: it is not a local directory, and no tokenizer files "
            f"({', '.join(sorted(set(file_ids.values())))}) could be fetched for it as a hub repo{detail}"
        )
    return resolved


def _local_named_templates(source: str, subfolder: str | None) -> dict[str, str]:
    folder = os.path.join(source, subfolder) if subfolder else source
    if not os.path.isdir(os.path.join(folder, CHAT_TEMPLATE_DIR)):
        return {}
    paths = sorted(glob.glob(os.path.join(folder, CHAT_TEMPLATE_DIR, "*.jinja")))
    return {os.path.basename(path)[: -len(".jinja")]: path for path in paths}


# -- saving --------------------------------------------------------------------------------------


def tokenizer_config_to_save(tokenizer) -> dict[str, Any]:
    """The tokenizer_config.json content of ``tokenizer``: its init arguments with their current values."""
    config = copy.deepcopy(tokenizer.init_kwargs)
    for key in list(config):
        if key in _BOOKKEEPING_KEYS or key in tokenizer.vocab_files_names:
            config.pop(key)
            continue
        # An init argument kept as an attribute is saved with its current value.
        current = getattr(tokenizer, key, _MISSING)
        if current is not _MISSING and not callable(current):
            config[key] = copy.deepcopy(current)
    # Token properties live in added_tokens_decoder / tokenizer.json; the config names them.
    special_tokens = tokenizer.special_tokens_map
    for name in (*SPECIAL_TOKENS_ATTRIBUTES, "additional_special_tokens", "extra_special_tokens"):
        config.pop(name, None)
    config.update(special_tokens)
    config["model_max_length"] = tokenizer.model_max_length
    config["padding_side"] = tokenizer.padding_side
    config["truncation_side"] = tokenizer.truncation_side
    config["clean_up_tokenization_spaces"] = tokenizer.clean_up_tokenization_spaces
    if tokenizer.split_special_tokens:
        config["split_special_tokens"] = True
    if tokenizer.model_input_names != type(tokenizer).model_input_names:
        config["model_input_names"] = list(tokenizer.model_input_names)
    config["tokenizer_class"] = type(tokenizer).__name__
    if tokenizer._save_added_tokens_decoder():
        config["added_tokens_decoder"] = {
            str(index): _added_token_state(token) for index, token in tokenizer.added_tokens_decoder.items()
        }
    return config


def save_tokenizer_files(
    tokenizer, save_directory: str | os.PathLike, filename_prefix: str | None = None, save_jinja_files: bool = True
) -> tuple[str, ...]:
    """Write ``tokenizer``'s config, special-tokens map, chat templates and vocabulary; return the paths.

    The files are staged and moved into ``save_directory`` together, so a failed save leaves the
    folder as it was. Named chat templates go to ``additional_chat_templates/`` one file at a time.
    """
    prefix = f"{filename_prefix}-" if filename_prefix else ""
    config = tokenizer_config_to_save(tokenizer)
    chat_template = tokenizer.chat_template
    named_templates: dict[str, str] = {}
    template_text = None
    if isinstance(chat_template, dict):
        if save_jinja_files:
            named_templates = {name: text for name, text in chat_template.items() if name != "default"}
            template_text = chat_template.get("default")
        else:
            config["chat_template"] = [{"name": name, "template": text} for name, text in chat_template.items()]
    elif chat_template is not None:
        if save_jinja_files:
            template_text = chat_template
        else:
            config["chat_template"] = chat_template
    for name in named_templates:
        if os.path.basename(name) != name or name.startswith("."):
            raise ValueError(f"Chat template name {name!r} cannot be used as a file name.")

    save_directory = os.path.abspath(os.fspath(save_directory))
    written: list[str] = []
    with staged_directory(save_directory) as staging:
        files = {
            prefix + TOKENIZER_CONFIG_FILE: _to_json(_serializable(config)),
            prefix + SPECIAL_TOKENS_MAP_FILE: _to_json(tokenizer.special_tokens_map),
        }
        if template_text is not None:
            files[prefix + CHAT_TEMPLATE_FILE] = template_text
        for name, content in files.items():
            with open(os.path.join(staging, name), "w", encoding="utf-8") as handle:
                handle.write(content)
            written.append(os.path.join(save_directory, name))
        for path in tokenizer.save_vocabulary(staging, filename_prefix=filename_prefix):
            written.append(os.path.join(save_directory, os.path.relpath(path, staging)))
    if named_templates:
        # Sub-folders cannot be swapped in by the staging rename, so each template is replaced alone.
        template_dir = os.path.join(save_directory, prefix + CHAT_TEMPLATE_DIR)
        os.makedirs(template_dir, exist_ok=True)
        for name, template in named_templates.items():
            path = os.path.join(template_dir, f"{name}.jinja")
            atomic_write_text(path, template)
            written.append(path)
    return tuple(written)


# -- loading -------------------------------------------------------------------------------------


def find_tokenizer_files(tokenizer_class, source: str, **hub_kwargs) -> dict[str, Any]:
    """Path of every file ``tokenizer_class`` may load from ``source`` (a folder, a file or a hub repo).

    ``hub_kwargs`` are those of ``hub_download_kwargs`` (``subfolder``, ``revision``...).

    Keys are the class's ``vocab_files_names`` ids plus ``tokenizer_config_file``,
    ``special_tokens_map_file``, ``added_tokens_file``, ``chat_template_file`` (``None`` when absent)
    and ``chat_template_dir_files`` (template name -> path).
    """
    file_ids = {
        **tokenizer_class.vocab_files_names,
        "tokenizer_config_file": TOKENIZER_CONFIG_FILE,
        "special_tokens_map_file": SPECIAL_TOKENS_MAP_FILE,
        "added_tokens_file": ADDED_TOKENS_FILE,
        "chat_template_file": CHAT_TEMPLATE_FILE,
    }
    if os.path.isfile(source):
        # A single vocabulary file: the folder around it supplies nothing else.
        file_id = "tokenizer_file" if source.endswith(".json") else "vocab_file"
        if file_id not in tokenizer_class.vocab_files_names:
            raise TokenizerFileError(
                f"{tokenizer_class.__name__}.from_pretrained got the file {source}, but this class loads from a "
                f"folder with {sorted(tokenizer_class.vocab_files_names.values())}; pass the folder instead."
            )
        resolved: dict[str, Any] = dict.fromkeys(file_ids)
        resolved[file_id] = source
    else:
        resolved = resolve_tokenizer_files(source, file_ids, **hub_kwargs)
    resolved["chat_template_dir_files"] = _local_named_templates(source, hub_kwargs.get("subfolder"))
    return resolved


def init_kwargs_from_files(
    tokenizer_class, resolved: dict[str, Any], source: str, init_inputs: tuple, kwargs: dict[str, Any]
) -> tuple[tuple, dict[str, Any]]:
    """The ``(init_inputs, init_kwargs)`` to build ``tokenizer_class`` from the files ``resolved``.

    ``kwargs`` (the caller's overrides) win over the saved configuration; the resolved vocabulary
    file paths fill the class's file arguments the caller did not pass.
    """
    resolved = dict(resolved)
    config_file = resolved.pop("tokenizer_config_file", None)
    init_kwargs = read_json_file(config_file, "tokenizer configuration") if config_file else {}
    if not isinstance(init_kwargs, dict):
        raise TokenizerFileError(f"{config_file} must hold a JSON object, found {type(init_kwargs).__name__}.")
    saved_inputs = init_kwargs.pop("init_inputs", ())
    init_inputs = init_inputs or tuple(saved_inputs)
    # Bookkeeping of whoever saved the folder is dropped; in particular paths inside a config never
    # point at files (only files found next to it are used), and auto_map code is never imported.
    for key in list(init_kwargs):
        if key in tokenizer_class.vocab_files_names or (key in _BOOKKEEPING_KEYS and key not in _KEPT_ON_LOAD):
            init_kwargs.pop(key)

    templates: dict[str, str] = {}
    template_file = resolved.pop("chat_template_file", None)
    if template_file is not None:
        templates["default"] = read_text_file(template_file, "chat template")
    for name, path in resolved.pop("chat_template_dir_files", {}).items():
        templates[name] = read_text_file(path, "chat template")
    if list(templates) == ["default"]:
        init_kwargs["chat_template"] = templates["default"]
    elif templates:
        init_kwargs["chat_template"] = templates

    added_tokens_file = resolved.pop("added_tokens_file", None)
    special_tokens_map_file = resolved.pop("special_tokens_map_file", None)
    added_tokens_decoder: dict[int, AddedToken] = {}
    if "added_tokens_decoder" in init_kwargs:
        for index, state in init_kwargs.pop("added_tokens_decoder").items():
            added_tokens_decoder[int(index)] = _added_token_from_state(state, config_file)
    else:
        # Older layouts: named special tokens in special_tokens_map.json, added ones in added_tokens.json.
        if special_tokens_map_file is not None:
            special_map = read_json_file(special_tokens_map_file, "special tokens map")
            if not isinstance(special_map, dict):
                raise TokenizerFileError(f"{special_tokens_map_file} must hold a JSON object.")
            for key, value in special_map.items():
                if kwargs.get(key):
                    continue
                if isinstance(value, dict):
                    value = _added_token_from_state({**value, "special": True}, special_tokens_map_file)
                elif isinstance(value, list):
                    value = [
                        _added_token_from_state({**item, "special": True}, special_tokens_map_file)
                        if isinstance(item, dict)
                        else item
                        for item in value
                    ]
                init_kwargs[key] = value
        if added_tokens_file is not None:
            added_vocab = read_json_file(added_tokens_file, "added tokens")
            if not isinstance(added_vocab, dict):
                raise TokenizerFileError(f"{added_tokens_file} must map tokens to ids.")
            specials = {str(init_kwargs[name]) for name in SPECIAL_TOKENS_ATTRIBUTES if init_kwargs.get(name)}
            for content, index in added_vocab.items():
                is_special = content in specials
                added_tokens_decoder[int(index)] = AddedToken(
                    content, rstrip=False, lstrip=False, normalized=not is_special, special=is_special
                )
    init_kwargs = _decode_added_token_values(init_kwargs, config_file)

    init_kwargs.update(kwargs)
    for file_id, path in resolved.items():
        if kwargs.get(file_id) is None:
            init_kwargs[file_id] = path
    init_kwargs["added_tokens_decoder"] = added_tokens_decoder
    # Named special tokens take the properties of their entry in added_tokens_decoder.
    by_content = {token.content: token for token in added_tokens_decoder.values()}
    for name in SPECIAL_TOKENS_ATTRIBUTES:
        value = init_kwargs.get(name)
        if isinstance(value, str) and value in by_content:
            init_kwargs[name] = by_content[value]
    init_kwargs["name_or_path"] = source
    return init_inputs, init_kwargs
