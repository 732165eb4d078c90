#!/usr/bin/env python
"""Train tongues' embedded demonstration model: a small BLOOM on Debian's translated manual pages and fortune
cookies and the UDHR, in ten languages written in Latin or Cyrillic letters.

Reproduces tongues/assets/default-model/ (docs/default-model.md has the numbers, the sources' licences
and the setup):

    python scripts/train_default_model.py                      # CPU: the shipped run (9,000 steps, 58 minutes at most)
    python scripts/train_default_model.py --device cuda --minutes 12 --steps 0 --hidden-size 384 --layers 6 --heads 6

Steps: ``apt-get download`` the Debian packages into --cache (once) and build the corpus
(scripts/default_model_corpus.py); hold out 5% of each language's and source's documents (whole
documents); cap each language's training text so that no language dominates; train a byte-level BPE
tokenizer on the training text; train a BLOOM from scratch with tongues.training for the time budget
(the number of steps is calibrated from the first steps' speed), keeping the model of the best periodic
held-out loss; report held-out loss per character for every language; write the best model, in fp16,
into the package with generation settings for sampling.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from default_model_corpus import LANGUAGES, build_corpus  # noqa: E402
from tongues.models.bloom import BloomConfig  # noqa: E402
from tongues.models.bloom.modeling_bloom import BloomForCausalLM  # noqa: E402
from tongues.training import (  # noqa: E402
    Trainer, TrainingArguments, loss_per_character, save_tokenizer, split_documents, tokenize_and_pack,
    train_bpe_tokenizer,
)

# Written into generation_config.json (docs/default-model.md shows the continuations they give).
DEMO_SAMPLING = {"do_sample": True, "temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.2}
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json", "special_tokens_map.json")


def split_corpus(corpus, held_out: float, train_chars: int, eval_chars: int, seed: int):
    """Per language: training documents (shuffled, at most ``train_chars`` characters) and held-out documents
    (whole documents of every source, at most ``eval_chars`` characters)."""
    train, held, stats = {}, {}, {}
    rng = random.Random(seed)
    for language, sources in corpus.items():
        train_docs, held_docs = [], []
        for source, documents in sources.items():
            t, h = split_documents(documents, held_out, seed)
            train_docs += t
            held_docs += h
            stats.setdefault(language, {})[source] = {"documents": len(documents),
                                                      "characters": sum(map(len, documents))}
        rng.shuffle(train_docs)
        rng.shuffle(held_docs)
        train[language] = take_chars(train_docs, train_chars)
        held[language] = take_chars(held_docs, eval_chars)
        stats[language]["train_characters"] = sum(map(len, train[language]))
        stats[language]["held_out_characters"] = sum(map(len, held[language]))
        stats[language]["held_out_documents"] = len(held[language])
    return train, held, stats


def take_chars(documents: list[str], limit: int) -> list[str]:
    taken, total = [], 0
    for document in documents:
        if total >= limit:
            break
        taken.append(document)
        total += len(document)
    return taken


def seconds_per_step(model, blocks: torch.Tensor, batch_size: int, device: torch.device, steps: int = 3) -> float:
    """Wall time of one training step (forward, backward, AdamW) on this machine now, from a throw-away copy."""
    import copy

    probe = copy.deepcopy(model).to(device).train()
    optimizer = torch.optim.AdamW(probe.parameters(), lr=1e-4)
    batch = blocks[:batch_size].to(device)
    for i in range(steps + 1):
        if i == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        probe(input_ids=batch, labels=batch, use_cache=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def write_model(checkpoint: Path, tokenizer_dir: Path, output: Path) -> Path:
    """Write the model of ``checkpoint`` into ``output`` with fp16 weights (half the bytes) and
    ``"dtype": "float32"`` in its config, so that loaders (ours and the reference) compute in fp32, the
    fast dtype on CPUs; plus the tokenizer and generation settings that sample."""
    output.mkdir(parents=True, exist_ok=True)
    BloomForCausalLM.from_pretrained(checkpoint, dtype=torch.float16).save_pretrained(output)
    config = json.loads((output / "config.json").read_text())
    config["dtype"] = "float32"
    (output / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for name in MODEL_FILES[3:]:
        shutil.copyfile(tokenizer_dir / name, output / name)
    generation_file = output / "generation_config.json"
    generation = json.loads(generation_file.read_text()) if generation_file.is_file() else {}
    generation.update(DEMO_SAMPLING)
    generation_file.write_text(json.dumps(generation, indent=2, sort_keys=True) + "\n")
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "tongues-default-model"),
                        help="where the Debian packages are downloaded and unpacked")
    parser.add_argument("--output", default=str(ROOT / "tongues" / "assets" / "default-model"))
    parser.add_argument("--work-dir", default=None, help="where checkpoints go (default: a temporary folder)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is at hand")
    parser.add_argument("--minutes", type=float, default=58.0, help="training budget (wall time)")
    parser.add_argument("--steps", type=int, default=9000,
                        help="steps of the learning-rate schedule (0: as many as --minutes allows at the first "
                             "steps' speed); training stops after --minutes in any case")
    parser.add_argument("--held-out", type=float, default=0.05, help="fraction of documents held out")
    parser.add_argument("--train-chars", type=int, default=4_000_000, help="training characters per language")
    parser.add_argument("--eval-chars", type=int, default=30_000, help="held-out characters per language")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.05)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-blocks", type=int, default=6,
                        help="held-out blocks per language in the periodic evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    started = time.time()

    corpus = build_corpus(Path(args.cache))
    train, held, stats = split_corpus(corpus, args.held_out, args.train_chars, args.eval_chars, args.seed)
    for language in LANGUAGES:
        print(f"{language}: {stats[language]}", flush=True)

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="tongues-default-model-"))
    tok_dir = work / "tokenizer"
    train_docs = [doc for language in LANGUAGES for doc in train[language]]
    tokenizer = train_bpe_tokenizer(texts=train_docs, vocab_size=args.vocab_size)
    save_tokenizer(tokenizer, tok_dir, tokenizer_class="BloomTokenizerFast", model_max_length=2048)
    random.Random(args.seed).shuffle(train_docs)
    train_blocks = tokenize_and_pack(train_docs, tokenizer, args.block_size)
    eval_blocks = torch.cat([tokenize_and_pack(held[language], tokenizer, args.block_size)[:args.eval_blocks]
                             for language in LANGUAGES])
    print(f"{train_blocks.numel()} training tokens ({sum(map(len, train_docs))} characters), "
          f"{len(eval_blocks)} held-out blocks in the periodic evaluation", flush=True)

    torch.manual_seed(args.seed)
    config = BloomConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=args.hidden_size, n_layer=args.layers,
                         n_head=args.heads, hidden_dropout=args.dropout, attention_dropout=args.dropout,
                         bos_token_id=tokenizer.token_to_id("<s>"), eos_token_id=tokenizer.token_to_id("</s>"),
                         pad_token_id=tokenizer.token_to_id("<pad>"))
    model = BloomForCausalLM(config)
    print(f"BLOOM with {model.num_parameters()} parameters", flush=True)
    budget = args.minutes * 60
    steps = args.steps
    if not steps:
        per_step = seconds_per_step(model, train_blocks, args.batch_size, device)
        # Periodic evaluations cost about a twentieth of the time; aim to finish the schedule within budget.
        steps = max(args.warmup + 1, int(budget * 0.95 / per_step))
        print(f"{per_step:.2f} s per step now: {steps} steps in {args.minutes} minutes", flush=True)
    model.to(device)
    training = TrainingArguments(output_dir=str(work / "checkpoints"), max_steps=steps,
                                 batch_size=args.batch_size, block_size=args.block_size, learning_rate=args.lr,
                                 warmup_steps=args.warmup, eval_every=args.eval_every, seed=args.seed,
                                 num_threads=args.threads, keep_best=True,
                                 max_seconds=budget)
    trainer = Trainer(model, training, train_blocks, eval_blocks, tokenizer_dir=tok_dir)
    result = trainer.train()
    for record in result.history:
        if "eval_loss" in record:
            print(f"step {record['step']}: train loss {record['loss']:.3f}, held-out loss {record['eval_loss']:.3f}")
    train_minutes = result.seconds / 60

    output = write_model(Path(training.output_dir) / "best", tok_dir, Path(args.output))
    model = BloomForCausalLM.from_pretrained(output).to(device)  # the shipped weights (fp16), in fp32
    per_language = {language: loss_per_character(model, tokenizer, held[language], args.block_size)
                    for language in LANGUAGES}
    average = sum(r["nats_per_character"] for r in per_language.values()) / len(per_language)
    metrics = {
        "held_out_nats_per_character": average, "per_language": per_language, "best_step": result.best_step,
        "steps": result.step, "train_minutes": train_minutes, "total_minutes": (time.time() - started) / 60,
        "parameters": model.num_parameters(), "train_tokens": train_blocks.numel(),
        "tokens_seen": result.step * args.batch_size * args.block_size,
        "curve": {r["step"]: [round(r["loss"], 4), round(r["eval_loss"], 4)]
                  for r in result.history if "eval_loss" in r},
        "corpus": stats, "args": vars(args), "torch": torch.__version__,
    }
    print(json.dumps(metrics, indent=2), flush=True)
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"model written to {output}; checkpoints and metrics.json in {work}; average held-out "
          f"{average:.3f} nats per character (per-character perplexity {math.exp(average):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
