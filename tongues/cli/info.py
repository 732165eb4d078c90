"""``tongues info [DIR]`` (or ``--model DIR``): what a checkpoint directory holds, read without loading weights.

Family and architecture (``config.json``), parameter count, dtypes and size on disk (safetensors
headers), tokenizer class and vocabulary, chat template, generation defaults.

Example::

    $ tongues info path/to/bloom-560m
    $ tongues info --json
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from . import CommandError, resolve_model_dir


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``info`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "info", help="describe a checkpoint directory",
        description="Describe a checkpoint directory: family, size, dtype, tokenizer, chat template. Weights are "
                    "not loaded; safetensors headers are read.")
    parser.add_argument("directory", nargs="?", default=None, metavar="DIR",
                        help="checkpoint directory (default: the embedded model)")
    parser.add_argument("--model", default=None, help="the same as DIR")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
    return parser


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CommandError(f"{path} is not valid JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise CommandError(f"{path} must hold a JSON object; found {type(data).__name__}")
    return data


def _weights(directory: Path) -> dict[str, Any]:
    files = sorted(directory.glob("*.safetensors"))
    if files:
        from safetensors import safe_open

        parameters, dtypes = 0, Counter()
        for file in files:
            try:
                with safe_open(os.fspath(file), framework="pt") as handle:
                    for key in handle.keys():
                        view = handle.get_slice(key)
                        count = 1
                        for dim in view.get_shape():
                            count *= dim
                        parameters += count
                        dtypes[str(view.get_dtype())] += count
            except Exception as err:  # safetensors raises its own error types for corrupt headers
                raise CommandError(f"{file} is not a readable safetensors file ({str(err).splitlines()[0]})") \
                    from None
        return {"format": "safetensors", "files": [f.name for f in files], "parameters": parameters,
                "dtypes": dict(dtypes.most_common()), "bytes": sum(f.stat().st_size for f in files)}
    files = sorted(directory.glob("*.bin"))
    if files:
        return {"format": "pytorch .bin", "files": [f.name for f in files], "parameters": None, "dtypes": {},
                "bytes": sum(f.stat().st_size for f in files)}
    return {"format": None, "files": [], "parameters": None, "dtypes": {}, "bytes": 0}


def _tokenizer(directory: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"class": None, "vocab_size": None, "files": []}
    config_file = directory / "tokenizer_config.json"
    config = _read_json(config_file) if config_file.is_file() else {}
    info["class"] = config.get("tokenizer_class")
    info["files"] = sorted(p.name for p in directory.iterdir()
                           if p.name.startswith(("tokenizer", "vocab", "merges", "special_tokens", "added_tokens",
                                                 "sentencepiece")) or p.suffix == ".model")
    tokenizer_json = directory / "tokenizer.json"
    if tokenizer_json.is_file():
        data = _read_json(tokenizer_json)
        vocab = (data.get("model") or {}).get("vocab")
        added = {t.get("id") for t in data.get("added_tokens", []) if isinstance(t, dict)}
        if isinstance(vocab, (dict, list)):
            ids = set(vocab.values()) if isinstance(vocab, dict) else set(range(len(vocab)))
            info["vocab_size"] = len(ids | added)
    template = config.get("chat_template")
    template_file = directory / "chat_template.jinja"
    if template is None and template_file.is_file():
        template = template_file.read_text(encoding="utf-8")
    if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
        info["chat_template"] = ", ".join(str(t.get("name")) for t in template if isinstance(t, dict))
    else:
        info["chat_template"] = None if template is None else f"{len(template)} characters"
    info["special_tokens"] = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")
                              if isinstance(config.get(k), str)}
    return info


def describe(directory: str | os.PathLike) -> dict[str, Any]:
    """A dict describing the checkpoint in ``directory`` (see the module docstring)."""
    from .. import registry

    path = Path(directory)
    config = _read_json(path / "config.json")
    model_type = config.get("model_type")
    if model_type not in registry.FAMILIES:
        raise CommandError(f"{path / 'config.json'}: model_type {model_type!r} is not a family tongues supports "
                           f"(known: {', '.join(sorted(registry.FAMILIES))})")
    weights = _weights(path)
    generation_file = path / "generation_config.json"
    generation = _read_json(generation_file) if generation_file.is_file() else {}
    return {
        "path": str(path),
        "family": model_type,
        "architectures": config.get("architectures") or [],
        "config": {k: config[k] for k in ("vocab_size", "hidden_size", "n_embed", "d_model", "emb_dim", "n_layer",
                                          "num_layers", "num_hidden_layers", "n_layers", "n_head", "n_heads",
                                          "num_attention_heads", "attention_heads", "num_key_value_heads",
                                          "max_position_embeddings") if k in config},
        "dtype": config.get("dtype", config.get("torch_dtype")),
        "weights": weights,
        "tokenizer": _tokenizer(path),
        "generation": {k: v for k, v in generation.items() if not k.startswith("_") and k != "transformers_version"},
    }


def _human_bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"


def run(args) -> int:
    """Print the description; returns the exit code."""
    if args.directory is not None and args.model is not None and args.directory != args.model:
        raise CommandError(f"give the checkpoint once, as DIR or with --model; got {args.directory} and "
                           f"--model {args.model}")
    flag = "--model" if args.model is not None else ""
    directory = resolve_model_dir(args.directory or args.model, "info", flag)
    if not Path(directory).is_dir():
        raise CommandError(f"{flag + ' ' if flag else ''}{directory}: not a local directory; info reads local "
                           f"checkpoint directories only (download the hub repository first)")
    info = describe(directory)
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return 0
    weights, tokenizer = info["weights"], info["tokenizer"]
    parameters = weights["parameters"]
    lines = [
        ("path", info["path"]),
        ("family", f"{info['family']} ({', '.join(info['architectures']) or 'architecture not recorded'})"),
        ("shape", ", ".join(f"{k}={v}" for k, v in info["config"].items())),
        ("parameters", "unknown (.bin weights are not opened)" if parameters is None else f"{parameters:,}"),
        ("dtype", f"{info['dtype'] or 'not recorded'} (stored: "
                  f"{', '.join(weights['dtypes']) or weights['format'] or 'no weight files'})"),
        ("weights", f"{_human_bytes(weights['bytes'])} in {len(weights['files'])} file(s) ({weights['format']})"
         if weights["files"] else "none found"),
        ("tokenizer", f"{tokenizer['class'] or 'unknown class'}, vocabulary {tokenizer['vocab_size'] or 'unknown'}"
                      f" ({', '.join(tokenizer['files']) or 'no tokenizer files'})"),
        ("special tokens", ", ".join(f"{k}={v}" for k, v in tokenizer["special_tokens"].items()) or "none"),
        ("chat template", tokenizer["chat_template"] or "none"),
        ("generation", ", ".join(f"{k}={v}" for k, v in info["generation"].items()) or "defaults"),
    ]
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"{name:<{width}}  {value}")
    return 0
