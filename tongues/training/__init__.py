"""Training: a causal-LM loop (:class:`Trainer`), data packing, and a byte-level BPE tokenizer trainer."""

from .data import (
    list_text_files, load_tokenizer, pack, read_documents, split_documents, split_held_out, tokenize_and_pack,
)
from .tokenizer import train_bpe_tokenizer, save_tokenizer
from .trainer import Trainer, TrainingArguments, TrainResult, batch_indices, evaluate, loss_per_character, lr_factor

__all__ = [
    "Trainer", "TrainingArguments", "TrainResult", "batch_indices", "evaluate", "loss_per_character", "lr_factor",
    "list_text_files", "load_tokenizer", "pack", "read_documents", "split_documents", "split_held_out",
    "tokenize_and_pack",
    "train_bpe_tokenizer", "save_tokenizer",
]
