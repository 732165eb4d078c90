"""``tongues train``: train a causal LM on text files or folders (fine-tune a checkpoint, or from scratch).

From a checkpoint: ``--model DIR`` (its tokenizer is used). From scratch: ``--config config.json``
with ``--tokenizer DIR``, or without one a byte-level BPE tokenizer is trained on the data
(``--vocab-size``) and the config's ``vocab_size`` is set to it. ``--resume OUTPUT/checkpoint-N``
continues a run exactly (pass the same data and flags). An ``--output`` folder that already holds
a run (``final/``, ``checkpoint-N/``) is refused unless ``--overwrite`` (which deletes that run
first) or ``--resume`` is given.

Example::

    $ tongues train --data corpus/ --config tiny-bloom.json --vocab-size 4000 --output runs/tiny --steps 500
    $ tongues train --data corpus/ --config tiny-bloom.json --output runs/tiny --steps 1000 \\
          --resume runs/tiny/checkpoint-500
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from . import CommandError, fraction, non_negative_float, non_negative_int, positive_float, positive_int, seed_value

# What a run writes into --output (and --overwrite removes): nothing else there is touched.
_RUN_ENTRY = re.compile(r"final|tokenizer|checkpoint-\d+")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "train", help="train or fine-tune a causal LM on text files",
        description="Train a causal language model on text files or folders: AdamW with warm-up and cosine decay, "
                    "gradient clipping and accumulation, held-out evaluation, resumable checkpoints.")
    parser.add_argument("--data", nargs="+", required=True, help="text files and/or folders of .txt/.md files")
    parser.add_argument("--output", required=True,
                        help="folder for checkpoints and the final model (refused if it holds a run, unless "
                             "--overwrite or --resume)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the run already in --output (final/, checkpoint-N/, tokenizer/) first")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="checkpoint directory to fine-tune")
    source.add_argument("--config", help="config.json of a model to train from scratch")
    parser.add_argument("--tokenizer", default=None, help="tokenizer directory (from scratch; default: train one)")
    parser.add_argument("--vocab-size", type=positive_int, default=None,
                        help="vocabulary of the trained tokenizer (default: the config's vocab_size)")
    parser.add_argument("--resume", default=None, help="checkpoint-N folder of an earlier run to continue")
    parser.add_argument("--held-out", type=fraction, default=0.05,
                        help="fraction of each file's lines held out, in [0, 1) (0.05)")
    parser.add_argument("--steps", type=positive_int, default=1000, help="optimizer steps (1000)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="blocks per micro-batch (8)")
    parser.add_argument("--block-size", type=positive_int, default=128, help="tokens per block (128)")
    parser.add_argument("--grad-accum", type=positive_int, default=1, help="micro-batches per step (1)")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="peak learning rate (1e-3)")
    parser.add_argument("--min-lr-ratio", type=_ratio, default=0.1, help="final lr / peak lr, in [0, 1] (0.1)")
    parser.add_argument("--warmup", type=non_negative_int, default=None, metavar="N",
                        help="warm-up steps, fewer than --steps (default: 10%% of --steps, at most 100)")
    parser.add_argument("--weight-decay", type=non_negative_float, default=0.1,
                        help="AdamW weight decay on matrices (0.1)")
    parser.add_argument("--max-grad-norm", type=non_negative_float, default=1.0,
                        help="gradient clipping norm; 0 = off (1.0)")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU)")
    parser.add_argument("--fsdp", action="store_true",
                        help="shard parameters, gradients and optimizer state over the torchrun ranks (FSDP2); "
                             "fine-tuning (--model or --resume) under torchrun; --batch-size is per rank x ranks")
    parser.add_argument("--eval-every", type=non_negative_int, default=100, metavar="N",
                        help="evaluate every N steps; 0 = at the end only (100)")
    parser.add_argument("--save-every", type=non_negative_int, default=0, metavar="N",
                        help="checkpoint every N steps; 0 = at the end only (0)")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of the init, data order and dropout (0)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.set_defaults(func=run)
    return parser


def _ratio(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1]; got {text}")
    return value


def warmup_steps(warmup: int | None, steps: int) -> int:
    """``--warmup``, or 10% of ``steps`` (at most 100); a warm-up as long as the run is refused."""
    if warmup is None:
        return min(100, steps // 10)
    if warmup and warmup >= steps:
        raise CommandError(f"--warmup {warmup} is not shorter than --steps {steps}: the learning rate would never "
                           f"reach --lr; use --warmup {steps // 10} (10%) or raise --steps")
    return warmup


def prepare_output(output: str, overwrite: bool, resume: str | None) -> None:
    """Refuse an ``--output`` that already holds a run, unless ``--overwrite`` (delete it) or ``--resume``."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise CommandError(f"--output {output}: is a file; give a folder")
    run = sorted(p.name for p in path.iterdir() if _RUN_ENTRY.fullmatch(p.name)) if path.is_dir() else []
    if not run or resume is not None:
        return
    if not overwrite:
        checkpoints = sorted((n for n in run if n.startswith("checkpoint-")), key=lambda n: int(n.split("-")[1]))
        hint = f"--resume {path / checkpoints[-1]} to continue it, " if checkpoints else ""
        raise CommandError(f"--output {output} already holds a run ({', '.join(run)}); pass {hint}--overwrite to "
                           f"replace it, or choose another --output")
    for name in run:
        target = path / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def _from_scratch(args, documents):
    import torch

    from ..auto import AutoConfig, AutoModelForCausalLM
    from ..configuration import PretrainedConfig
    from ..training import load_tokenizer, save_tokenizer, train_bpe_tokenizer

    if not Path(args.config).is_file():
        raise CommandError(f"--config {args.config}: no such file")
    try:
        data = PretrainedConfig.load_json(args.config)
        config_class = AutoConfig.config_class(data.get("model_type"))
    except (ValueError, KeyError, OSError) as err:
        raise CommandError(f"--config {args.config}: {str(err).strip().splitlines()[0]}") from None
    if args.tokenizer is not None:
        tokenizer_dir = Path(args.tokenizer)
        if not tokenizer_dir.is_dir():
            raise CommandError(f"--tokenizer {args.tokenizer}: no such directory; give a folder holding "
                               f"tokenizer.json (or leave --tokenizer out to train one on the data)")
        try:
            tokenizer = load_tokenizer(tokenizer_dir)
        except (ValueError, KeyError, OSError) as err:
            raise CommandError(f"--tokenizer {args.tokenizer}: {str(err).strip().splitlines()[0]}") from None
        vocab_size = len(tokenizer) if hasattr(tokenizer, "__len__") else tokenizer.get_vocab_size()
        data["vocab_size"] = max(int(data.get("vocab_size", 0)), vocab_size)
    else:
        vocab_size = args.vocab_size or int(data.get("vocab_size", 8000))
        print(f"tongues train: training a byte-level BPE tokenizer of {vocab_size} tokens", file=sys.stderr)
        tokenizer = train_bpe_tokenizer(texts=documents, vocab_size=vocab_size)
        tokenizer_dir = Path(args.output) / "tokenizer"
        save_tokenizer(tokenizer, tokenizer_dir, tokenizer_class=_fast_tokenizer_class(data.get("model_type")))
        data["vocab_size"] = tokenizer.get_vocab_size()
        for name, token in (("bos_token_id", "<s>"), ("eos_token_id", "</s>"), ("pad_token_id", "<pad>")):
            data[name] = tokenizer.token_to_id(token)
    try:
        config = config_class.from_dict(data)
    except ValueError as err:
        raise CommandError(f"--config {args.config}: {str(err).strip().splitlines()[0]}") from None
    torch.manual_seed(args.seed)
    return AutoModelForCausalLM.from_config(config), tokenizer, tokenizer_dir


def _fast_tokenizer_class(model_type: str | None) -> str:
    from .. import registry

    fast = registry.family(model_type).TOKENIZERS[-1]
    return fast or "PreTrainedTokenizerFast"


def _check_fsdp(args) -> None:
    """``--fsdp`` needs torchrun and a checkpoint to fine-tune; then joins the process group."""
    from . import world_size

    if world_size() < 2:
        raise CommandError("--fsdp shards over several processes: run it as "
                           "`torchrun --nproc-per-node N -m tongues train --fsdp ...`")
    if args.model is None and args.resume is None:
        raise CommandError("--fsdp fine-tunes a checkpoint: give --model DIR (or --resume); train from scratch "
                           "in one process first")
    if args.batch_size % world_size():
        raise CommandError(f"--batch-size {args.batch_size} does not divide over {world_size()} FSDP ranks; "
                           f"use a multiple of {world_size()}")
    from ..distributed.tensor_parallel import init_from_env

    init_from_env()


def run(args) -> int:
    """Train; returns the exit code."""
    from ..auto import AutoModelForCausalLM
    from ..training import Trainer, TrainingArguments, load_tokenizer, read_documents, split_held_out, \
        tokenize_and_pack

    warmup = warmup_steps(args.warmup, args.steps)
    if args.resume is not None and not Path(args.resume).is_dir():
        raise CommandError(f"--resume {args.resume}: no such directory; give an OUTPUT/checkpoint-N folder")
    if args.fsdp:
        _check_fsdp(args)
        from ..distributed.tensor_parallel import broadcast_from_rank0

        broadcast_from_rank0(lambda: prepare_output(args.output, args.overwrite, args.resume))
    else:
        prepare_output(args.output, args.overwrite, args.resume)
    try:
        documents = read_documents(args.data)
    except (FileNotFoundError, ValueError) as err:
        raise CommandError(f"--data: {err}") from None
    train_docs, held_docs = split_held_out(documents, args.held_out)
    try:
        if args.resume is not None or args.model is not None:
            source = args.resume or args.model
            if not (Path(source) / "config.json").is_file():
                raise CommandError(f"{'--resume' if args.resume else '--model'} {source}: not a checkpoint "
                                   f"directory (no config.json)")
            model = AutoModelForCausalLM.from_pretrained(source, dtype="float32")
            tokenizer, tokenizer_dir = load_tokenizer(source), Path(source)
        else:
            model, tokenizer, tokenizer_dir = _from_scratch(args, train_docs)
        training = TrainingArguments(
            output_dir=args.output, max_steps=args.steps, batch_size=args.batch_size, block_size=args.block_size,
            gradient_accumulation_steps=args.grad_accum, learning_rate=args.lr, min_lr_ratio=args.min_lr_ratio,
            warmup_steps=warmup, weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm or None,
            bf16=args.bf16, eval_every=args.eval_every or args.steps, save_every=args.save_every, seed=args.seed,
            num_threads=args.threads, fsdp=args.fsdp)
        try:
            train_blocks = tokenize_and_pack(train_docs, tokenizer, args.block_size)
        except ValueError as err:
            raise CommandError(f"--data: {err}; add text, or lower --block-size (and --held-out)") from None
        eval_blocks = None
        try:
            eval_blocks = tokenize_and_pack(held_docs, tokenizer, args.block_size) if held_docs else None
        except ValueError:
            print(f"tongues train: the held-out slice is shorter than one block of {args.block_size} tokens; "
                  f"no evaluation", file=sys.stderr)
        trainer = Trainer(model, training, train_blocks, eval_blocks, tokenizer_dir=tokenizer_dir)
        result = trainer.train(resume_from=args.resume)
        trainer.save_model(Path(args.output) / "final")
    except CommandError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise CommandError(str(err).splitlines()[0]) from None
    summary = {"step": result.step, "train_loss": result.train_loss, **result.eval,
               "model": str(Path(args.output) / "final")}
    print(json.dumps(summary))
    return 0
