"""A causal-LM training loop for any tongues causal model.

AdamW with linear warm-up and cosine decay, gradient clipping and accumulation, optional bf16
autocast on CPU, periodic held-out loss/perplexity, and checkpoints in the Hugging Face layout
(``config.json`` + ``model.safetensors``, loadable by ``from_pretrained`` here and in the reference)
plus what a resume needs: ``optimizer.pt``, ``scheduler.pt``, ``rng_state.pt`` and ``trainer_state.json``.

The data order is a pure function of ``(seed, step)``: epoch ``e`` visits the blocks in
``randperm(N, seed + e)`` order, so a resumed run reads the same batches as an uninterrupted one and,
with the optimizer, schedule and RNG restored, continues it bit for bit.

Example::

    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(vocab_size=8000, hidden_size=128, n_layer=2, n_head=4))
    args = TrainingArguments(output_dir="out", max_steps=500, batch_size=8, block_size=128)
    Trainer(model, args, train_blocks, eval_blocks, tokenizer_dir="tok/").train()
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

TRAINER_STATE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng_state.pt"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "chat_template.jinja", "added_tokens.json")


@dataclass
class TrainingArguments:
    """Hyper-parameters of :class:`Trainer`; steps count optimizer updates (after accumulation)."""

    output_dir: str
    max_steps: int = 1000
    batch_size: int = 8
    block_size: int = 128
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_epsilon: float = 1e-8
    max_grad_norm: float | None = 1.0
    bf16: bool = False
    eval_every: int = 0
    eval_max_batches: int | None = None
    save_every: int = 0
    seed: int = 0
    num_threads: int | None = None
    # Save the model (no optimizer state) into ``output_dir/best`` whenever a periodic evaluation beats the
    # best held-out loss so far, so that a run stopped past its best still has it.
    keep_best: bool = False
    # Stop (and save a checkpoint) after the first step that ends this many seconds after the start.
    max_seconds: float | None = None
    progress: bool = True
    # FSDP2 over the torchrun world (tongues.distributed.fsdp); batch_size stays the global batch.
    fsdp: bool = False

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "block_size", "gradient_accumulation_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TrainingArguments.{name} must be a positive integer; got {getattr(self, name)!r}")
        if self.keep_best and not self.eval_every:
            raise ValueError("TrainingArguments.keep_best needs eval_every > 0: the best model is chosen by "
                             "the periodic held-out evaluations")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"TrainingArguments.max_seconds must be positive; got {self.max_seconds!r}")
        for name in ("warmup_steps", "eval_every", "save_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainingArguments.{name} must be >= 0; got {getattr(self, name)!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"TrainingArguments.learning_rate must be positive; got {self.learning_rate!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"TrainingArguments.min_lr_ratio must be in [0, 1]; got {self.min_lr_ratio!r}")
        if self.warmup_steps and self.warmup_steps >= self.max_steps:
            warnings.warn(f"TrainingArguments.warmup_steps={self.warmup_steps} is not shorter than max_steps="
                          f"{self.max_steps}: the whole run is warm-up and the learning rate never reaches "
                          f"learning_rate={self.learning_rate}", UserWarning, stacklevel=3)


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based): linear warm-up over
    ``warmup_steps``, then a half cosine from 1 down to ``min_lr_ratio`` at ``max_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def batch_indices(micro_batch: int, num_blocks: int, batch_size: int, seed: int) -> torch.Tensor:
    """Block indices of global micro-batch ``micro_batch``: epoch ``e`` reads ``randperm(num_blocks)``
    drawn from a generator seeded ``seed + e``, in consecutive slices (the short tail is skipped)."""
    per_epoch = num_blocks // batch_size
    if per_epoch == 0:
        raise ValueError(f"{num_blocks} training blocks are fewer than one batch of batch_size={batch_size}")
    epoch, j = divmod(micro_batch, per_epoch)
    order = torch.randperm(num_blocks, generator=torch.Generator().manual_seed(seed + epoch))
    return order[j * batch_size:(j + 1) * batch_size]


@torch.no_grad()
def evaluate(model: nn.Module, blocks: torch.Tensor, batch_size: int = 8, max_batches: int | None = None,
             bf16: bool = False) -> dict[str, float]:
    """Mean next-token loss (nats per predicted token) and perplexity of ``model`` on (N, T) ``blocks``."""
    was_training = model.training
    model.eval()
    device = _device_of(model)
    total, count = 0.0, 0
    for b, start in enumerate(range(0, len(blocks), batch_size)):
        if max_batches is not None and b >= max_batches:
            break
        batch = blocks[start:start + batch_size].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=batch, labels=batch, use_cache=False).loss
        predicted = batch.shape[0] * (batch.shape[1] - 1)
        total += loss.float().item() * predicted
        count += predicted
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluate() got no held-out blocks")
    loss = total / count
    return {"eval_loss": loss, "eval_perplexity": math.exp(min(loss, 50.0))}


@torch.no_grad()
def loss_per_character(model: nn.Module, tokenizer, texts: Sequence[str], block_size: int, batch_size: int = 8,
                       bf16: bool = False) -> dict[str, float]:
    """Held-out loss of ``model`` on ``texts`` in nats per token and per character.

    The texts, each followed by the end-of-sequence token, are tokenised into one stream cut into
    consecutive blocks of ``block_size`` (the last one shorter); every token but a block's first is
    predicted. Nats per character = the summed loss / the characters of ``texts`` x (all tokens /
    predicted tokens), so that it does not depend on how many block starts there are; unlike loss per
    token, it compares models with different tokenizers.
    """
    from .data import encoder_for, eos_id_of

    encode, eos = encoder_for(tokenizer), eos_id_of(tokenizer)
    stream: list[int] = []
    for text in texts:
        stream.extend(encode(text))
        if eos is not None:
            stream.append(eos)
    characters = sum(len(text) for text in texts)
    if len(stream) < 2 or characters == 0:
        raise ValueError("loss_per_character() got no text to score")
    blocks = [torch.tensor(stream[i:i + block_size]) for i in range(0, len(stream), block_size)]
    if len(blocks) > 1 and len(blocks[-1]) < 2:
        blocks.pop()
        stream = stream[:(len(blocks)) * block_size]
    was_training = model.training
    model.eval()
    device = _device_of(model)
    total, predicted = 0.0, 0
    for length in sorted({len(b) for b in blocks}):  # the full blocks, then the shorter last one
        same = [b for b in blocks if len(b) == length]
        for start in range(0, len(same), batch_size):
            batch = torch.stack(same[start:start + batch_size]).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=batch, labels=batch, use_cache=False).loss
            n = batch.shape[0] * (length - 1)
            total += loss.float().item() * n
            predicted += n
    model.train(was_training)
    per_token = total / predicted
    per_character = per_token * len(stream) / characters
    return {"loss": per_token, "perplexity": math.exp(min(per_token, 50.0)), "nats_per_character": per_character,
            "tokens": len(stream), "characters": characters}


def _device_of(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters live: batches are moved there (the blocks stay on the CPU)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # Decay matrices only: biases and norm gains are excluded (GPT-2/nanoGPT practice). Tied weights appear once.
    decay, no_decay, seen = [], [], set()
    for _, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (decay if param.dim() >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class TrainResult:
    step: int
    train_loss: float
    eval: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    # With keep_best: the step and held-out loss of the model saved in output_dir/best.
    best_step: int | None = None
    best_eval_loss: float | None = None


class Trainer:
    """Train ``model`` on packed ``train_blocks`` (N, block_size); evaluate on ``eval_blocks`` when given.

    ``tokenizer_dir``: a folder whose tokenizer files are copied into every checkpoint, so each
    checkpoint is a complete model directory.
    """

    def __init__(self, model: nn.Module, args: TrainingArguments, train_blocks: torch.Tensor,
                 eval_blocks: torch.Tensor | None = None, tokenizer_dir: str | os.PathLike | None = None) -> None:
        if train_blocks.dim() != 2 or train_blocks.dtype != torch.long:
            raise ValueError(f"train_blocks must be a (N, block_size) long tensor; got {tuple(train_blocks.shape)} "
                             f"{train_blocks.dtype}")
        vocab = getattr(model.config, "vocab_size", None)
        if vocab is not None and int(train_blocks.max()) >= vocab:
            raise ValueError(f"token id {int(train_blocks.max())} in the training data is outside the model's "
                             f"vocabulary (config.vocab_size={vocab}); the tokenizer does not match the model")
        self.model = model
        self.args = args
        self.train_blocks = train_blocks
        self.eval_blocks = eval_blocks
        self.tokenizer_dir = tokenizer_dir
        if args.fsdp:
            from ..distributed.fsdp import shard_for_training

            shard_for_training(model)
        self.optimizer = torch.optim.AdamW(_param_groups(model, args.weight_decay), lr=args.learning_rate,
                                           betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, args.warmup_steps, args.max_steps, args.min_lr_ratio))
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.best: tuple[int, float] | None = None  # (step, eval_loss) of output_dir/best

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, directory: str | os.PathLike | None = None) -> Path:
        """Write ``checkpoint-<step>/`` (or ``directory``): model, tokenizer, optimizer, schedule, RNG, step."""
        path = Path(directory) if directory is not None else Path(self.args.output_dir) / f"checkpoint-{self.step}"
        optimizer_state = self._save_weights(path, with_optimizer=True)
        if optimizer_state is None:  # another FSDP rank writes
            return path
        torch.save(optimizer_state, path / OPTIMIZER_FILE)
        torch.save(self.scheduler.state_dict(), path / SCHEDULER_FILE)
        torch.save({"torch": torch.get_rng_state()}, path / RNG_FILE)
        state = {"step": self.step, "history": self.history, "args": dataclasses.asdict(self.args)}
        (path / TRAINER_STATE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        return path

    def save_model(self, directory: str | os.PathLike) -> Path:
        """Write only the model and the tokenizer (no training state) into ``directory``."""
        path = Path(directory)
        self._save_weights(path, with_optimizer=False)
        return path

    def _save_weights(self, path: Path, with_optimizer: bool):
        """Write the model and tokenizer into ``path``; return the optimizer state to save beside them
        (``None`` on FSDP ranks other than 0, which only join the gathers)."""
        if not self.args.fsdp:
            self.model.save_pretrained(path)
            self._copy_tokenizer(path)
            return self.optimizer.state_dict() if with_optimizer else {}
        from ..distributed.fsdp import full_model_state, full_optimizer_state, is_main_process

        state = full_model_state(self.model)
        optimizer_state = full_optimizer_state(self.model, self.optimizer) if with_optimizer else {}
        if not is_main_process():
            torch.distributed.barrier()
            return None
        self.model.save_pretrained(path, state_dict=self.model.state_dict_to_save(state))
        self._copy_tokenizer(path)
        torch.distributed.barrier()
        return optimizer_state

    def _copy_tokenizer(self, path: Path) -> None:
        if self.tokenizer_dir is None:
            return
        for name in TOKENIZER_FILES:
            source = Path(self.tokenizer_dir) / name
            if source.is_file():
                shutil.copyfile(source, path / name)

    def load_checkpoint(self, directory: str | os.PathLike) -> None:
        """Restore model weights, optimizer, schedule, RNG and step from a checkpoint of :meth:`save_checkpoint`."""
        from safetensors.torch import load_file

        path = Path(directory)
        needed = [TRAINER_STATE, OPTIMIZER_FILE, SCHEDULER_FILE, RNG_FILE]
        missing = [name for name in needed if not (path / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{path} is not a resumable checkpoint: it lacks {', '.join(missing)}")
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"{path} has no model.safetensors to resume from")
        state = load_file(os.fspath(weights))
        optimizer_state = torch.load(path / OPTIMIZER_FILE, weights_only=True)
        if self.args.fsdp:
            from ..distributed.fsdp import load_full_state

            for target, source in getattr(self.model, "tied_weights", {}).items():
                state.setdefault(target, state[source])
            load_full_state(self.model, self.optimizer, state, optimizer_state)
        else:
            report = self.model.load_state_dict(state, strict=False)
            tied = set(getattr(self.model, "tied_weights", {}))
            absent = [k for k in report.missing_keys if k not in tied]
            if absent or report.unexpected_keys:
                raise ValueError(f"{weights} does not match the model: missing {absent[:5]}, "
                                 f"unexpected {report.unexpected_keys[:5]}")
            if hasattr(self.model, "tie_weights"):
                self.model.tie_weights()
            self.optimizer.load_state_dict(optimizer_state)
        self.scheduler.load_state_dict(torch.load(path / SCHEDULER_FILE, weights_only=True))
        torch.set_rng_state(torch.load(path / RNG_FILE, weights_only=True)["torch"])
        trainer_state = json.loads((path / TRAINER_STATE).read_text(encoding="utf-8"))
        self.step = int(trainer_state["step"])
        self.history = list(trainer_state.get("history", []))

    # -- the loop ------------------------------------------------------------------------------
    def train(self, resume_from: str | os.PathLike | None = None) -> TrainResult:
        """Run until ``args.max_steps``; returns the last training loss, the last evaluation and the history."""
        args, model = self.args, self.model
        if args.num_threads:
            torch.set_num_threads(args.num_threads)
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        else:
            torch.manual_seed(args.seed)  # dropout draws come from the global generator
        model.train()
        tokens_per_step = args.batch_size * args.gradient_accumulation_steps * args.block_size
        start_step, started = self.step, time.perf_counter()
        train_loss = float("nan")
        from ..distributed.fsdp import is_main_process

        bar = _progress(args.max_steps, self.step, args.progress and is_main_process())
        while self.step < args.max_steps:
            train_loss = self._update()
            self.step += 1
            record: dict[str, float] = {"step": self.step, "loss": train_loss, "lr": self.scheduler.get_last_lr()[0]}
            elapsed = time.perf_counter() - started
            tokens_per_second = (self.step - start_step) * tokens_per_step / max(elapsed, 1e-9)
            out_of_time = args.max_seconds is not None and elapsed >= args.max_seconds
            if self.eval_blocks is not None and args.eval_every and (
                    self.step % args.eval_every == 0 or self.step == args.max_steps or out_of_time):
                record.update(evaluate(model, self.eval_blocks, args.batch_size, args.eval_max_batches, args.bf16))
                if args.keep_best and (self.best is None or record["eval_loss"] < self.best[1]):
                    self.best = (self.step, record["eval_loss"])
                    self.save_model(Path(args.output_dir) / "best")
            self.history.append(record)
            if bar is not None:
                postfix = {"loss": f"{train_loss:.3f}", "tok/s": f"{tokens_per_second:.0f}"}
                if "eval_loss" in record:
                    postfix["eval_ppl"] = f"{record['eval_perplexity']:.1f}"
                bar.set_postfix(postfix)
                bar.update(1)
            if args.save_every and self.step % args.save_every == 0 and self.step < args.max_steps:
                self.save_checkpoint()
            if out_of_time:
                break
        if bar is not None:
            bar.close()
        if self.step > start_step:
            self.save_checkpoint()
        last_eval = next((r for r in reversed(self.history) if "eval_loss" in r), {})
        return TrainResult(step=self.step, train_loss=train_loss,
                           eval={k: v for k, v in last_eval.items() if k.startswith("eval_")},
                           history=self.history, seconds=time.perf_counter() - started,
                           best_step=self.best[0] if self.best else None,
                           best_eval_loss=self.best[1] if self.best else None)

    def _update(self) -> float:
        args = self.args
        accumulation = args.gradient_accumulation_steps
        device = _device_of(self.model)
        total = 0.0
        for micro in range(accumulation):
            rows = batch_indices(self.step * accumulation + micro, len(self.train_blocks), args.batch_size, args.seed)
            if args.fsdp:
                from ..distributed.fsdp import rank_rows

                rows = rank_rows(rows)
            batch = self.train_blocks[rows].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = self.model(input_ids=batch, labels=batch, use_cache=False).loss
            (loss / accumulation).backward()
            total += loss.item() / accumulation
        if args.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if args.fsdp:
            from ..distributed.fsdp import mean_over_ranks

            total = mean_over_ranks(total)
        return total


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)
