"""GPT-2's tokenizer: byte-level BPE over the ``tokenizers`` backend (BLOOM's class, GPT-2's split).

GPT-2 splits text with the ByteLevel pre-tokenizer's own regex (contractions, letter runs, digit
runs, other runs, each with at most one leading space) and maps bytes to printable characters;
``<|endoftext|>`` is its only special token and there is no pad token. ``tokenizer.json`` carries
all of that; the same pipeline is rebuilt here when only ``vocab.json`` + ``merges.txt`` exist.
"""

from __future__ import annotations

from typing import Any

from tokenizers import Tokenizer, decoders, pre_tokenizers, processors

from ..bloom.tokenization_bloom_fast import BloomTokenizerFast


def gpt2_pipeline(backend: Tokenizer, add_prefix_space: bool = False) -> Tokenizer:
    """Give ``backend`` GPT-2's pre-tokenizer, post-processor and decoder; returns it."""
    backend.normalizer = None
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, use_regex=True)
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.decoder = decoders.ByteLevel()
    return backend


class GPT2TokenizerFast(BloomTokenizerFast):
    """GPT-2's byte-level BPE tokenizer; ``unk``, ``bos`` and ``eos`` are all ``<|endoftext|>``, no pad.

    ``add_prefix_space`` and the file arguments are as for :class:`BloomTokenizerFast`.
    """

    def __init__(self, vocab_file=None, merges_file=None, tokenizer_file=None, unk_token="<|endoftext|>",
                 bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token=None, add_prefix_space=False,
                 clean_up_tokenization_spaces=False, **kwargs):
        super().__init__(vocab_file=vocab_file, merges_file=merges_file, tokenizer_file=tokenizer_file,
                         unk_token=unk_token, bos_token=bos_token, eos_token=eos_token, pad_token=pad_token,
                         add_prefix_space=add_prefix_space,
                         clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs)

    def _backend_without_tokenizer_file(self, kwargs: dict[str, Any]) -> Tokenizer | None:
        backend = super()._backend_without_tokenizer_file(kwargs)  # the BPE model from vocab.json + merges.txt
        return None if backend is None else gpt2_pipeline(backend)

    def _check_pretokenized_input(self, is_split_into_words: bool) -> None:
        if is_split_into_words and not self.add_prefix_space:
            raise ValueError("GPT2TokenizerFast needs add_prefix_space=True to encode pre-split words "
                             "(is_split_into_words=True): GPT-2 marks word starts by the space before them.")
