"""The ``tongues`` command: ``generate``, ``score``, ``info``, ``train`` (and ``chat``, ``convert``).

Each subcommand lives in its own module ``tongues/cli/<name>.py`` exposing ``register(subparsers)``
(adds its parser and sets ``func``) and ``run(args) -> int``. Exit codes: 0 success, 2 usage error
(argparse), 1 runtime error, reported as one line on stderr that names the culprit.

Example::

    $ tongues generate "Tous les êtres humains" --max-new-tokens 20
    $ tongues score --file text.txt --model path/to/checkpoint
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path
from typing import Sequence

# Command modules, in --help order; a module not written yet is skipped.
COMMAND_MODULES = ("generate", "score", "info", "chat", "convert", "train")
COMMAND_MODULES += ("serve",)  # tongues/cli/serve.py (issue 15)


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class CommandError(Exception):
    """A runtime failure a command reports as ``tongues <command>: <message>`` with exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tongues",
        description="Run, score, inspect and train multilingual language models (XGLM, XLM, BLOOM, GLM-4). "
                    "Without --model, generate and score use a tiny embedded demonstration model.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ImportError as err:
            if err.name and err.name.endswith(f"cli.{name}"):
                continue  # that command is not written yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except CommandError as err:
        print(f"tongues {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tongues {args.command}: interrupted", file=sys.stderr)
        return 130


# -- helpers shared by the commands ---------------------------------------------------------------
def resolve_model_dir(model: str | None, command: str) -> str:
    """``--model`` as given, or the embedded demonstration model (announced on stderr) when omitted.

    A local path must be a folder with a ``config.json``; anything else that does not exist locally
    is treated as a hub id and resolved by the loaders.
    """
    if model is None:
        from ..assets import DEFAULT_MODEL_NOTICE, default_model_path

        try:
            path = default_model_path()
        except FileNotFoundError as err:
            raise CommandError(str(err)) from None
        print(f"tongues {command}: {DEFAULT_MODEL_NOTICE}", file=sys.stderr)
        return str(path)
    path = Path(model).expanduser()
    # "owner/name" that is not a local folder is a hub id; everything else is a path that must exist.
    if path.exists() or not _HUB_ID.fullmatch(model):
        if not path.exists():
            raise CommandError(f"--model {model}: no such directory")
        if not path.is_dir():
            raise CommandError(f"--model {model}: is a file; give the checkpoint's directory")
        if not (path / "config.json").is_file():
            raise CommandError(f"--model {model}: the directory has no config.json, so it is not a checkpoint")
    return model


def load_causal_lm(model: str | None, command: str, dtype: str = "auto", device: str = "cpu"):
    """(model, tokenizer, model_dir) for ``--model`` (or the embedded model), with one-line errors."""
    from ..auto import AutoConfig, AutoModelForCausalLM

    model_dir = resolve_model_dir(model, command)
    try:
        config = AutoConfig.from_pretrained(model_dir)
        loaded = AutoModelForCausalLM.from_pretrained(model_dir, config=config, dtype=dtype, device=device)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as err:
        raise CommandError(f"--model {model_dir}: {_one_line(err)}") from None
    try:
        from ..tokenization import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as err:
        raise CommandError(f"--model {model_dir}: cannot load its tokenizer: {_one_line(err)}") from None
    return loaded, tokenizer, model_dir


def read_text_argument(text: str | None, file: str | None, what: str = "text") -> str:
    """The text of a positional argument, ``--file PATH``, or stdin (``-`` or nothing given on a pipe)."""
    if text is not None and file is not None:
        raise CommandError(f"give the {what} either as an argument or with --file, not both")
    if file is not None:
        try:
            return Path(file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CommandError(f"--file {file}: no such file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise CommandError(f"--file {file}: cannot read it as UTF-8 text ({_one_line(err)})") from None
    if text == "-" or (text is None and not sys.stdin.isatty()):
        return sys.stdin.read()
    return text if text is not None else ""


def _one_line(err: BaseException) -> str:
    message = str(err).strip().splitlines()
    return message[0] if message else type(err).__name__
