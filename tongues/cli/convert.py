"""``tongues convert --model SRC --output DST``: rewrite a checkpoint in tongues' own layout.

A checkpoint tongues converts while loading (THUDM's original GLM-4 ``chatglm`` layout: fused
``query_key_value``, ``transformer.encoder.layers.N`` names, a tiktoken ``tokenizer.model``) is
written out the way tongues and Transformers store it natively (GLM-4's ``-hf`` layout):
``config.json`` with ``model_type: glm``, safetensors weights under ``model.layers.N...`` names,
``generation_config.json``, and the tokenizer as a ``tokenizer.json``. Other checkpoints are
re-saved as they are (useful to change dtype or shard size).

Example::

    $ tongues convert --model THUDM/glm-4-9b-chat --output glm-4-9b-chat-hf --dtype bfloat16
"""

from __future__ import annotations

import argparse
import os

from . import DTYPES, dtype_name


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``convert`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers()``)."""
    from ..registry import TASKS

    parser = subparsers.add_parser(
        "convert", help="rewrite a checkpoint in tongues' layout (e.g. THUDM GLM-4 -> -hf)",
        description="Load a checkpoint (converting foreign layouts) and save model, generation config and "
                    "tokenizer in tongues' own layout.")
    parser.add_argument("--model", required=True, help="source checkpoint folder or hub id")
    parser.add_argument("--output", required=True, help="folder to write (created; must differ from the source)")
    parser.add_argument("--task", default="causal-lm", choices=TASKS, help="which head to load and save (causal-lm)")
    parser.add_argument("--dtype", type=dtype_name, default="auto", metavar="DTYPE",
                        help=f"weights dtype: {', '.join(DTYPES)} (auto: keep the checkpoint's)")
    parser.add_argument("--max-shard-size", default="5GB", help="largest safetensors shard (5GB)")
    parser.add_argument("--no-tokenizer", action="store_true", help="convert the weights only")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    """Convert ``args.model`` into ``args.output``. Returns the exit code (0 on success).

    Raises:
        CommandError: the source cannot be loaded, or ``--output`` is the source folder.
    """
    from .. import registry
    from ..auto import AutoConfig
    from ..tokenization import AutoTokenizer
    from . import CommandError, resolve_model_dir

    from ..checkpoint.io import parse_size

    resolve_model_dir(args.model, "convert")
    if os.path.exists(args.model) and os.path.exists(args.output) and os.path.samefile(args.model, args.output):
        raise CommandError(f"--output {args.output} is the source folder; write the conversion elsewhere")
    if os.path.isfile(args.output):
        raise CommandError(f"--output {args.output}: is a file; give a folder to write the checkpoint into")
    try:
        parse_size(args.max_shard_size)
    except (ValueError, TypeError) as err:
        raise CommandError(f"--max-shard-size {args.max_shard_size}: {err} (e.g. 5GB, 500MB)") from None
    try:
        config = AutoConfig.from_pretrained(args.model)
        family = registry.family(config.model_type)
        class_name = family.MODELS.get(args.task)
        if class_name is None:
            raise ValueError(f"{config.model_type} has no model for the task {args.task!r} "
                             f"(it has: {', '.join(family.MODELS)})")
        model = getattr(family, class_name).from_pretrained(args.model, config=config, dtype=args.dtype)
        tokenizer = None if args.no_tokenizer else AutoTokenizer.from_pretrained(args.model)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as err:
        raise CommandError(f"--model {args.model}: {err}") from None
    try:
        model.save_pretrained(args.output, max_shard_size=args.max_shard_size)
        if tokenizer is not None:
            # A tokenizer that can express itself as a tokenizer.json (GLM-4's tiktoken one) is saved that way.
            to_fast = getattr(tokenizer, "to_fast", None)
            (to_fast() if callable(to_fast) else tokenizer).save_pretrained(args.output)
    except OSError as err:
        raise CommandError(f"--output {args.output}: cannot write there ({err.strerror or err})") from None
    print(f"Wrote {type(model).__name__} ({config.model_type}, {model.dtype}) to {args.output}")
    return 0
