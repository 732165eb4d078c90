#!/usr/bin/env python
"""Train tongues' embedded demonstration model: a small BLOOM on the 128 UDHR translations in tests/data/udhr/.

Reproduces tongues/assets/default-model/ (see docs/default-model.md for the numbers and the setup):

    python scripts/train_default_model.py            # ~22 minutes on 2 idle CPU cores (docs/default-model.md)

Steps: split each translation by lines (the last 10% of lines are held out), train a byte-level BPE
tokenizer on the training part, train a BLOOM from scratch with tongues.training, report held-out
perplexity next to a unigram baseline with the same tokenizer, and copy the final model and tokenizer
into the package.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tongues.models.bloom import BloomConfig  # noqa: E402
from tongues.models.bloom.modeling_bloom import BloomForCausalLM  # noqa: E402
from tongues.training import (  # noqa: E402
    Trainer, TrainingArguments, evaluate, list_text_files, read_documents, save_tokenizer, split_held_out,
    tokenize_and_pack, train_bpe_tokenizer,
)

# Written into generation_config.json: so small a model loops under greedy search, so it samples by default
# (docs/default-model.md shows the continuations these settings give).
DEMO_SAMPLING = {"do_sample": True, "temperature": 0.8, "top_p": 0.9, "repetition_penalty": 1.3}
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json", "special_tokens_map.json")


def unigram_baseline(train_blocks: torch.Tensor, eval_blocks: torch.Tensor, vocab_size: int) -> dict[str, float]:
    """Held-out loss of add-one-smoothed unigram frequencies from the training tokens, scored on the same
    positions the model predicts (every block position but the first)."""
    counts = torch.bincount(train_blocks.flatten(), minlength=vocab_size).double() + 1.0
    log_probs = (counts / counts.sum()).log()
    loss = -log_probs[eval_blocks[:, 1:].flatten()].mean().item()
    return {"loss": loss, "perplexity": math.exp(loss)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "tests" / "data" / "udhr"))
    parser.add_argument("--output", default=str(ROOT / "tongues" / "assets" / "default-model"))
    parser.add_argument("--work-dir", default=None, help="where checkpoints go (default: a temporary folder)")
    parser.add_argument("--held-out", type=float, default=0.1)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--warmup", type=int, default=90)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-batches", type=int, default=4, help="held-out batches per periodic evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    files = [p for p in list_text_files([args.data]) if p.suffix == ".txt"]
    documents = read_documents(files)
    train_docs, held_docs = split_held_out(documents, args.held_out)
    print(f"{len(files)} documents; {sum(map(len, train_docs))} train / {sum(map(len, held_docs))} held-out characters")

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="tongues-default-model-"))
    tok_dir = work / "tokenizer"
    tokenizer = train_bpe_tokenizer(texts=train_docs, vocab_size=args.vocab_size)
    save_tokenizer(tokenizer, tok_dir, tokenizer_class="BloomTokenizerFast", model_max_length=args.block_size * 8)
    train_blocks = tokenize_and_pack(train_docs, tokenizer, args.block_size)
    eval_blocks = tokenize_and_pack(held_docs, tokenizer, args.block_size)
    print(f"{train_blocks.numel()} train tokens in {len(train_blocks)} blocks, {eval_blocks.numel()} held-out tokens")

    torch.manual_seed(args.seed)
    config = BloomConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=args.hidden_size, n_layer=args.layers,
                         n_head=args.heads, hidden_dropout=args.dropout, attention_dropout=args.dropout,
                         bos_token_id=tokenizer.token_to_id("<s>"), eos_token_id=tokenizer.token_to_id("</s>"),
                         pad_token_id=tokenizer.token_to_id("<pad>"))
    model = BloomForCausalLM(config)
    print(f"BLOOM with {model.num_parameters()} parameters")
    training = TrainingArguments(output_dir=str(work / "checkpoints"), max_steps=args.steps,
                                 batch_size=args.batch_size, block_size=args.block_size, learning_rate=args.lr,
                                 warmup_steps=args.warmup, eval_every=args.eval_every,
                                 eval_max_batches=args.eval_batches, seed=args.seed,
                                 num_threads=args.threads)
    started = time.time()
    result = Trainer(model, training, train_blocks, eval_blocks, tokenizer_dir=tok_dir).train()
    minutes = (time.time() - started) / 60

    final = evaluate(model, eval_blocks, batch_size=args.batch_size)
    baseline = unigram_baseline(train_blocks, eval_blocks, config.vocab_size)
    metrics = {
        "held_out_loss": final["eval_loss"], "held_out_perplexity": final["eval_perplexity"],
        "unigram_loss": baseline["loss"], "unigram_perplexity": baseline["perplexity"],
        "train_loss": result.train_loss, "train_minutes": minutes, "parameters": model.num_parameters(),
        "eval_curve": {r["step"]: r["eval_perplexity"] for r in result.history if "eval_perplexity" in r},
        "train_tokens": train_blocks.numel(), "held_out_tokens": eval_blocks.numel(),
        "tokens_seen": args.steps * args.batch_size * args.block_size, "args": vars(args),
        "torch": torch.__version__,
    }
    print(json.dumps(metrics, indent=2))

    checkpoint = Path(training.output_dir) / f"checkpoint-{result.step}"
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        shutil.copyfile(checkpoint / name, output / name)
    generation = json.loads((output / "generation_config.json").read_text())
    generation.update(DEMO_SAMPLING)
    (output / "generation_config.json").write_text(json.dumps(generation, indent=2, sort_keys=True) + "\n")
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"model written to {output}; checkpoints and metrics.json in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
