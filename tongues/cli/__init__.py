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
import contextlib
import difflib
import importlib
import os
import re
import sys
from pathlib import Path
from typing import Sequence

# Command modules, in --help order, one a line; a module not written yet is skipped.
COMMAND_MODULES = (
    "generate",
    "score",
    "info",
    "chat",
    "convert",
    "train",
    "eval",
    "serve",
)

# Set to see the Python traceback of an unexpected error instead of its one-line summary.
TRACEBACK_ENV = "TONGUES_TRACEBACK"


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class CommandError(Exception):
    """A runtime failure a command reports as ``tongues <command>: <message>`` with exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tongues",
        description="Run, score, inspect and train multilingual language models (XGLM, XLM, BLOOM, GLM-4). "
                    "Without --model, generate, score, info and chat use a tiny embedded demonstration model.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"tongues {__version__}")
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
    if world_size() > 1 and int(os.environ.get("RANK", "0")) != 0:
        # Under torchrun every rank runs the command on its shard of the model; rank 0 speaks for all.
        sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")
    try:
        return int(args.func(args) or 0)
    except CommandError as err:
        print(f"tongues {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tongues {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tongues ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 141
    except Exception as err:  # noqa: BLE001 - the last guard: one line, never a traceback
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(f"tongues {args.command}: {type(err).__name__}: {_one_line(err)} "
              f"(set {TRACEBACK_ENV}=1 to see where; please report it if the input looks right)", file=sys.stderr)
        return 1
    finally:
        if world_size() > 1:
            _leave_process_group()


def entry() -> None:
    """The ``tongues`` executable (and ``python -m tongues``): :func:`main`, then exit with its code.

    Under torchrun the process ends with ``os._exit`` once :func:`main` has left the process group and
    flushed its output. gloo's worker threads may still be releasing the tensors of the last collective
    (rank 0's ``STOP`` to the other ranks, say); a release that needs the GIL while the interpreter is
    finalizing kills the thread mid-unwind and aborts the process ("terminate called without an active
    exception", seen in a core dump: ``ProcessGroupGloo::runLoop`` -> ``~AsyncBroadcastWork`` ->
    ``take_gil`` during ``Py_FinalizeEx``), failing a command that succeeded. Nothing else is left to
    run at that point, so the interpreter's finalization is skipped.
    """
    code = main()
    if world_size() > 1:
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    sys.exit(code)


def _leave_process_group() -> None:
    """Under torchrun: leave the process group before exiting (gloo's threads can otherwise abort the
    process at interpreter exit, failing a command that succeeded)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# -- argument types and flags shared by the commands -------------------------------------------------
DTYPES = ("auto", "float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16",
                  "float64": "float64"}
QUANTIZATIONS = ("int8", "int4")


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {what}; got {text}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def seed_value(text: str) -> int:
    value = non_negative_int(text)
    if value >= 2**64:  # torch.manual_seed's range
        raise argparse.ArgumentTypeError(f"must be below 2**64; got {text}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text}")
    return value


def probability(text: str) -> float:
    value = _float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]; got {text}")
    return value


def fraction(text: str) -> float:
    value = _float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1); got {text}")
    return value


def dtype_name(text: str) -> str:
    name = text.lower().replace("torch.", "")
    name = _DTYPE_ALIASES.get(name, name)
    if name not in DTYPES and name != "float64":
        close = difflib.get_close_matches(name, [*DTYPES, *_DTYPE_ALIASES], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(DTYPES)}; got {text!r}{hint}")
    return name


def add_model_arguments(parser: argparse.ArgumentParser, required: bool = False, quantization: bool = True) -> None:
    """``--model``, ``--dtype``, ``--device`` (and ``--quantization``, ``--threads``) of the commands loading a model."""
    parser.add_argument("--model", required=required, default=None,
                        help="checkpoint directory or hub id" if required else
                        "checkpoint directory or hub id (default: the embedded demonstration model)")
    parser.add_argument("--dtype", type=dtype_name, default="auto", metavar="DTYPE",
                        help=f"weights dtype: {', '.join(DTYPES)} (auto: the checkpoint's)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (cpu)")
    if quantization:
        parser.add_argument("--quantization", choices=QUANTIZATIONS, default=None,
                            help="weight-only quantization of the linear layers (CPU)")
        parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                            help="torch CPU threads (default: torch's choice)")


def check_device(device: str) -> None:
    """Raise :class:`CommandError` naming ``--device`` unless torch can place tensors on ``device``."""
    import torch

    try:
        target = torch.device(device)
    except (RuntimeError, ValueError):
        raise CommandError(f"--device {device}: not a torch device; use cpu, cuda, cuda:N or mps") from None
    if target.type == "cuda":
        if torch.version.cuda is None or not torch.cuda.is_available():
            why = ("this torch build has no CUDA support" if torch.version.cuda is None
                   else "no CUDA GPU is visible")
            raise CommandError(f"--device {device}: {why} (torch {torch.__version__}); use --device cpu, or "
                               f"install a CUDA build of torch")
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise CommandError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible "
                               f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
        return
    if target.type == "meta":
        raise CommandError(f"--device {device}: meta tensors hold no data, so nothing runs on them; use --device cpu")
    if target.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise CommandError(f"--device {device}: MPS (Apple GPU) is not available here; use --device cpu")
    try:
        torch.empty(0, device=target)
    except (RuntimeError, AssertionError) as err:
        raise CommandError(f"--device {device}: torch cannot use it ({_one_line(err)}); use --device cpu") from None


# -- helpers shared by the commands ---------------------------------------------------------------
def resolve_model_dir(model: str | None, command: str, flag: str = "--model") -> str:
    """``--model`` as given, or the embedded demonstration model (announced on stderr) when omitted.

    A local path must be a folder with a ``config.json``; anything else that does not exist locally
    is treated as a hub id and resolved by the loaders. Errors name ``flag`` (empty: a positional).
    """
    if model is None:
        from ..assets import DEFAULT_MODEL_NOTICE, default_model_path

        try:
            path = default_model_path()
        except FileNotFoundError as err:
            raise CommandError(str(err)) from None
        print(f"tongues {command}: {DEFAULT_MODEL_NOTICE}", file=sys.stderr)
        return str(path)
    label = f"{flag} {model}" if flag else model
    path = Path(model).expanduser()
    # "owner/name" that is not a local folder is a hub id; everything else is a path that must exist.
    if path.exists() or not _HUB_ID.fullmatch(model):
        if not path.exists():
            raise CommandError(f"{label}: no such directory")
        if not path.is_dir():
            raise CommandError(f"{label}: is a file; give the checkpoint's directory")
        if not (path / "config.json").is_file():
            raise CommandError(f"{label}: the directory has no config.json, so it is not a checkpoint")
    return model


# Any of these marks a folder that holds a tokenizer.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "*.model", "*.tiktoken")


def world_size() -> int:
    """The number of processes torchrun started for this command (1 when run alone)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def inference_kernels(requested: str = "packed") -> str:
    """The ``kernels=`` a command that only infers loads with: ``requested``, except that under torchrun
    (``WORLD_SIZE`` > 1) the shards stay unpacked ("auto" for "packed")."""
    return "auto" if requested == "packed" and world_size() > 1 else requested


def load_causal_lm(model: str | None, command: str, dtype: str = "auto", device: str = "cpu",
                   quantization: str | None = None, threads: int | None = None):
    """(model, tokenizer, model_dir) for ``--model`` (or the embedded model), with one-line errors.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is sharded over the ranks (``tp_plan="auto"``).
    """
    import torch

    from ..auto import AutoConfig, AutoModelForCausalLM

    check_device(device)
    if world_size() > 1 and device == "cuda":  # torchrun: one GPU a rank on a multi-GPU node
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    if quantization is not None and torch.device(device).type != "cpu":
        raise CommandError(f"--quantization {quantization} runs on the CPU only; drop it or use --device cpu")
    if threads is not None:
        torch.set_num_threads(threads)
    model_dir = resolve_model_dir(model, command)
    try:
        config = AutoConfig.from_pretrained(model_dir)
        # The commands only infer: bf16 weights are packed for oneDNN where that is faster (tongues.fast.packed).
        loaded = AutoModelForCausalLM.from_pretrained(model_dir, config=config, dtype=dtype, device=device,
                                                      quantization=quantization, kernels=inference_kernels(),
                                                      tp_plan="auto" if world_size() > 1 else None)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as err:
        raise CommandError(f"--model {model_dir}: {_one_line(err)}") from None
    folder = Path(model_dir)
    if folder.is_dir() and not any(any(folder.glob(pattern)) for pattern in _TOKENIZER_FILES):
        raise CommandError(f"--model {model_dir}: the directory holds no tokenizer (none of "
                           f"{', '.join(_TOKENIZER_FILES)}); save the tokenizer beside the weights")
    try:
        from ..tokenization import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as err:
        raise CommandError(f"--model {model_dir}: cannot load its tokenizer: {_one_line(err)}") from None
    return loaded, tokenizer, model_dir


def read_text_argument(text: str | None, file: str | None, what: str = "text") -> str:
    """The text of a positional argument, ``--file PATH``, or stdin (``-`` or nothing given on a pipe).

    Under ``torchrun`` rank 0 reads it and hands it to the other ranks.
    """
    if world_size() > 1:
        from ..distributed.tensor_parallel import broadcast_from_rank0, init_from_env

        init_from_env()
        return broadcast_from_rank0(lambda: _read_text(text, file, what))
    return _read_text(text, file, what)


def _read_text(text: str | None, file: str | None, what: str) -> str:
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
