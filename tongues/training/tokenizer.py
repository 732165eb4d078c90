"""Train a byte-level BPE tokenizer (on the ``tokenizers`` library) for a model trained from scratch.

The result is saved in the layout every fast tokenizer of ours reads: ``tokenizer.json`` (the
``tokenizers`` pipeline), ``tokenizer_config.json`` (class name, special tokens, model max length)
and ``special_tokens_map.json``.

Example::

    tok = train_bpe_tokenizer(["corpus/fra.txt", "corpus/rus.txt"], vocab_size=8000)
    save_tokenizer(tok, "out/", tokenizer_class="BloomTokenizerFast")
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Sequence

# BLOOM's pre-tokenizer (bigscience/bloom tokenizer.json): a word is an optional leading space and a run of
# anything but whitespace and the common sentence punctuation of Latin, CJK, Devanagari and Arabic scripts,
# so merges never cross a space or a full stop in any script. Bytes follow through the byte-level alphabet.
BLOOM_SPLIT_PATTERN = " ?[^(\\s|[.,!?…。，、।۔،])]+"

# id 0..3, in BLOOM's order.
DEFAULT_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")


def _build_pipeline():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(BLOOM_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tokenizer.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=False)
    return tokenizer


def train_bpe_tokenizer(files: Sequence[str | os.PathLike] | None = None, vocab_size: int = 8000,
                        special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS, min_frequency: int = 2,
                        texts: Iterable[str] | None = None, show_progress: bool = False):
    """Train a byte-level BPE ``tokenizers.Tokenizer`` on ``files`` (paths) or ``texts`` (strings).

    Every byte (256 symbols) is in the vocabulary, so any text encodes without unknown tokens.
    ``special_tokens`` take the first ids, in order.

    Raises:
        ValueError: neither files nor texts given, or ``vocab_size`` too small for bytes + specials.
    """
    from tokenizers import pre_tokenizers, trainers

    if files is None and texts is None:
        raise ValueError("train_bpe_tokenizer needs files=[...] or texts=[...] to learn from")
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(special_tokens):
        raise ValueError(f"vocab_size={vocab_size} is smaller than the {len(alphabet)} byte symbols "
                         f"plus {len(special_tokens)} special tokens")
    tokenizer = _build_pipeline()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=show_progress,
                                  special_tokens=list(special_tokens), initial_alphabet=alphabet)
    if files is not None:
        missing = [os.fspath(f) for f in files if not os.path.isfile(f)]
        if missing:
            raise FileNotFoundError(f"tokenizer training file not found: {missing[0]}")
        tokenizer.train([os.fspath(f) for f in files], trainer)
    else:
        tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def save_tokenizer(tokenizer, save_directory: str | os.PathLike, tokenizer_class: str = "BloomTokenizerFast",
                   bos_token: str = "<s>", eos_token: str = "</s>", unk_token: str = "<unk>",
                   pad_token: str = "<pad>", model_max_length: int = 2048, padding_side: str = "left") -> None:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json`` into ``save_directory``."""
    os.makedirs(save_directory, exist_ok=True)
    tokenizer.save(os.path.join(save_directory, "tokenizer.json"))
    specials = {"bos_token": bos_token, "eos_token": eos_token, "unk_token": unk_token, "pad_token": pad_token}
    added = {}
    for content in dict.fromkeys(specials.values()):
        token_id = tokenizer.token_to_id(content)
        if token_id is None:
            raise ValueError(f"special token {content!r} is not in the tokenizer's vocabulary")
        added[str(token_id)] = {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
                                "single_word": False, "special": True}
    config = {"tokenizer_class": tokenizer_class, "model_max_length": model_max_length, "padding_side": padding_side,
              "add_prefix_space": False, "clean_up_tokenization_spaces": False, "added_tokens_decoder": added,
              **specials}
    with open(os.path.join(save_directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(save_directory, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(specials, f, indent=2, ensure_ascii=False)
        f.write("\n")
