"""BLOOM's tokenizer: byte-level BPE over the ``tokenizers`` backend.

BLOOM splits text before BPE with one regex, `` ?[^(\\s|[.,!?…。，、।۔،])]+`` (a run of non-space,
non-punctuation characters with at most one leading space; the punctuation list covers Latin, CJK,
Devanagari and Arabic full stops and commas), then maps bytes to printable characters as GPT-2 does.
There is no normalizer, and the post-processor adds no special tokens. ``tokenizer.json`` carries
all of that; the same pipeline is rebuilt here when only ``vocab.json`` + ``merges.txt`` exist.
"""

from __future__ import annotations

from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

from ...tokenization.fast import PreTrainedTokenizerFast, component_state, pipeline_components
from ...tokenization.files import TokenizerFileError, read_json_file, read_text_file

# BLOOM's pre-tokenizer split (from the tokenizer.json of bigscience/bloom).
BLOOM_SPLIT_PATTERN = " ?[^(\\s|[.,!?…。，、।۔،])]+"


def bloom_pipeline(backend: Tokenizer, add_prefix_space: bool = False) -> Tokenizer:
    """Give ``backend`` BLOOM's pre-tokenizer, post-processor and decoder; returns it."""
    backend.normalizer = None
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(BLOOM_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, trim_offsets=True, use_regex=False),
        ]
    )
    backend.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=False)
    backend.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=False)
    return backend


def _read_merges(path: str) -> list[tuple[str, str]]:
    merges = []
    for number, line in enumerate(read_text_file(path, "BPE merges").splitlines(), start=1):
        if not line.strip() or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise TokenizerFileError(f"{path} line {number}: a merge is two tokens separated by a space, got {line!r}.")
        merges.append((parts[0], parts[1]))
    return merges


def _with_prefix_space(state: Any) -> Any:
    # Every ByteLevel step that says add_prefix_space=false is switched on (never the reverse).
    if isinstance(state, dict):
        return {
            key: True if key == "add_prefix_space" and value is False else _with_prefix_space(value)
            for key, value in state.items()
        }
    if isinstance(state, list):
        return [_with_prefix_space(item) for item in state]
    return state


class BloomTokenizerFast(PreTrainedTokenizerFast):
    """BLOOM's byte-level BPE tokenizer (backed by the ``tokenizers`` library).

    A word is encoded differently at the start of a text than after a space (``"Hello"`` vs
    ``" Hello"``). ``add_prefix_space=True`` adds a space before the text so both match, which the
    model was not trained with; it is required for ``is_split_into_words=True``.

    Args:
        vocab_file / merges_file: ``vocab.json`` and ``merges.txt``, used when there is no tokenizer.json.
        tokenizer_file: ``tokenizer.json``.
        unk_token, bos_token, eos_token, pad_token: BLOOM's ``<unk>``, ``<s>``, ``</s>``, ``<pad>`` (ids 0-3).
        add_prefix_space: add a space before the text.
        clean_up_tokenization_spaces: default for ``decode``'s clean-up (off).
    """

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]
    slow_tokenizer_class = None

    def __init__(
        self,
        vocab_file: str | None = None,
        merges_file: str | None = None,
        tokenizer_file: str | None = None,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        add_prefix_space: bool = False,
        clean_up_tokenization_spaces: bool = False,
        **kwargs,
    ):
        super().__init__(
            vocab_file=vocab_file,
            merges_file=merges_file,
            tokenizer_file=tokenizer_file,
            unk_token=unk_token,
            bos_token=bos_token,
            eos_token=eos_token,
            pad_token=pad_token,
            add_prefix_space=add_prefix_space,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **kwargs,
        )
        if add_prefix_space:
            # The saved pipeline may have been built without the prefix space: switch it on in place.
            pre_tokenizer, decoder = pipeline_components(
                _with_prefix_space(component_state(self._tokenizer.pre_tokenizer)),
                _with_prefix_space(component_state(self._tokenizer.decoder)),
            )
            self._tokenizer.pre_tokenizer = pre_tokenizer
            self._tokenizer.decoder = decoder
        self.add_prefix_space = add_prefix_space

    @classmethod
    def _can_build_without_tokenizer_file(cls, init_kwargs: dict[str, Any]) -> bool:
        return bool(init_kwargs.get("vocab_file") and init_kwargs.get("merges_file"))

    def _backend_without_tokenizer_file(self, kwargs: dict[str, Any]) -> Tokenizer | None:
        vocab_file, merges_file = kwargs.get("vocab_file"), kwargs.get("merges_file")
        if not (vocab_file and merges_file):
            return None
        vocab = read_json_file(vocab_file, "BPE vocabulary")
        if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
            raise TokenizerFileError(f"{vocab_file} must map each token to its integer id.")
        backend = Tokenizer(models.BPE(vocab=vocab, merges=_read_merges(merges_file), fuse_unk=False))
        return bloom_pipeline(backend, add_prefix_space=False)

    def _check_pretokenized_input(self, is_split_into_words: bool) -> None:
        if is_split_into_words and not self.add_prefix_space:
            raise ValueError(
                "BloomTokenizerFast needs add_prefix_space=True to encode pre-split words "
                "(is_split_into_words=True): BLOOM marks word starts by the space before them."
            )
